"""MLX op translation: each aten op of a torch.export graph as mlx.core calls on `V` values (4-D activations
kept channels-last between ops). Used by exporters/mlx.py."""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Callable

import mlx.core as mx
import numpy as np
from torch import fx

from models.errors import ConversionError

TO_CL = (0, 2, 3, 1)            # NCHW -> NHWC (and OIHW -> OHWI for kernels)
TO_TORCH = (0, 3, 1, 2)         # NHWC -> NCHW
CL_AXIS = (0, 3, 1, 2)          # where torch dim d of a 4-D tensor lives in channels-last storage
CONV_OPS = ("aten.conv2d.default", "aten.convolution.default")


# --- translated values --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class V:
    """A translated tensor. `cl`: a 4-D tensor stored channels-last (torch dims 0, 2, 3, 1)."""
    a: mx.array
    cl: bool = False


def torch_layout(v: V) -> mx.array:
    return mx.transpose(v.a, TO_TORCH) if v.cl else v.a


def channels_last(v: V) -> mx.array:
    """The value channels-last; a lower-rank operand is first left-padded to 4-D, as broadcasting would."""
    if v.cl:
        return v.a
    if v.a.ndim > 4:
        raise ConversionError(f"a {v.a.ndim}-D tensor meets a channels-last 4-D one", "keep image tensors 4-D")
    return mx.transpose(mx.expand_dims(v.a, tuple(range(4 - v.a.ndim))) if v.a.ndim < 4 else v.a, TO_CL)


def _aligned(*xs: Any) -> tuple[list[Any], bool]:
    """Operands of an elementwise op in one layout: channels-last if any is; Python numbers pass through."""
    cl = any(isinstance(x, V) and x.cl for x in xs)
    return [(channels_last(x) if cl else x.a) if isinstance(x, V) else x for x in xs], cl


def _pair(v: Any) -> tuple[int, int]:
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def unsupported(what: str) -> ConversionError:
    return ConversionError(f"MLX export does not support {what}",
                           "replace it in the model with supported ops, or export to onnx/coreml")


# --- op handlers: arguments arrive in the aten schema's order, defaults filled in ------------------------------

def conv2d(x: V, w: V, bias: V | None, stride, padding, dilation, groups: int) -> V:
    if x.a.ndim != 4:
        raise unsupported(f"{x.a.ndim - 2}-D convolution (only 2-D)")
    if isinstance(padding, str):
        raise unsupported(f"convolution padding={padding!r}")
    y = mx.conv2d(channels_last(x), channels_last(w), _pair(stride), _pair(padding), _pair(dilation), groups)
    return V(y + bias.a if bias is not None else y, cl=True)


def convolution(x: V, w: V, bias: V | None, stride, padding, dilation, transposed: bool, output_padding,
                groups: int) -> V:
    if transposed:
        raise unsupported("transposed convolution (aten.convolution with transposed=True)")
    return conv2d(x, w, bias, stride, padding, dilation, groups)


def _per_channel(x: V, p: mx.array) -> mx.array:
    """A (C,) parameter shaped to broadcast along the channel dim (last if channels-last, else dim 1)."""
    return p if x.cl or x.a.ndim <= 2 else mx.expand_dims(p, tuple(range(1, x.a.ndim - 1)))


def batch_norm_eval(x: V, weight: V | None, bias: V | None, mean: V, var: V, momentum: float,
                    eps: float) -> tuple[V, None, None]:
    scale = mx.rsqrt(var.a + eps) * (weight.a if weight is not None else 1.0)
    shift = (bias.a if bias is not None else 0.0) - mean.a * scale
    y = x.a * _per_channel(x, scale) + _per_channel(x, shift)
    return V(y, x.cl), None, None   # aten also returns save_mean / save_rstd; nothing here reads them


def elementwise(f: Callable[..., mx.array]) -> Callable[..., V]:
    def handler(x: Any, other: Any = None, *rest: Any) -> V:
        (a, b), cl = _aligned(x, other)
        return V(f(a, b, *rest), cl)
    return handler


def unary(f: Callable[[mx.array], mx.array]) -> Callable[..., V]:
    return lambda x, *_: V(f(x.a), x.cl)


def hardtanh(x: V, lo: float, hi: float) -> V:
    return V(mx.clip(x.a, lo, hi), x.cl)


def gelu(x: V, approximate: str = "none") -> V:
    a = x.a
    if approximate == "tanh":
        return V(0.5 * a * (1 + mx.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3))), x.cl)
    return V(0.5 * a * (1 + mx.erf(a / math.sqrt(2))), x.cl)


def mean(x: V, dims, keepdim: bool = False, dtype=None) -> V:
    rank = x.a.ndim
    dims = sorted({d % rank for d in (dims if dims else range(rank))})
    if not x.cl:
        return V(mx.mean(x.a, axis=dims, keepdims=keepdim))
    y = V(mx.mean(x.a, axis=[CL_AXIS[d] for d in dims], keepdims=True), cl=True)
    return y if keepdim else V(mx.squeeze(torch_layout(y), axis=dims))


def adaptive_avg_pool2d(x: V, output_size) -> V:
    if tuple(output_size) != (1, 1):
        raise unsupported(f"adaptive_avg_pool2d to {tuple(output_size)} (only to 1x1)")
    return mean(x, [-2, -1], keepdim=True)


def view(x: V, size) -> V:
    """Reshape in torch layout; a kept leading (batch) dim becomes -1 so a shapeless export takes any batch."""
    a = torch_layout(x)
    size = list(size)
    if size and -1 not in size and a.ndim and size[0] == a.shape[0]:
        size[0] = -1
    return V(mx.reshape(a, size))


def flatten(x: V, start: int = 0, end: int = -1) -> V:
    """As a reshape with -1 for the batch dim (mx.flatten records a fixed shape in a shapeless export)."""
    a = torch_layout(x)
    start, end = start % a.ndim, end % a.ndim
    size = [*a.shape[:start], math.prod(a.shape[start:end + 1]), *a.shape[end + 1:]]
    if start > 0:
        size[0] = -1
    return V(mx.reshape(a, size))


def permute(x: V, dims) -> V:
    return V(mx.transpose(torch_layout(x), list(dims)))


def t(x: V) -> V:
    return V(mx.transpose(x.a) if x.a.ndim == 2 else x.a)


def linear(x: V, w: V, bias: V | None) -> V:
    y = mx.matmul(torch_layout(x), mx.transpose(w.a))
    return V(y + bias.a if bias is not None else y)


def addmm(bias: V, m1: V, m2: V, beta: float = 1, alpha: float = 1) -> V:
    return V(beta * bias.a + alpha * mx.matmul(m1.a, m2.a))


def mm(a: V, b: V) -> V:
    return V(mx.matmul(torch_layout(a), torch_layout(b)))


def cat(xs: list[V], dim: int = 0) -> V:
    arrays, cl = _aligned(*xs)
    rank = xs[0].a.ndim
    return V(mx.concatenate(arrays, axis=CL_AXIS[dim % 4] if cl else dim % rank), cl)


def identity(x: V, *_: Any) -> V:
    return x


def _normalize(a: mx.array, axes: tuple[int, ...], eps: float) -> mx.array:
    mu = mx.mean(a, axis=axes, keepdims=True)
    var = mx.var(a, axis=axes, keepdims=True)
    return (a - mu) * mx.rsqrt(var + eps)


def group_norm(x: V, groups: int, weight: V | None, bias: V | None, eps: float = 1e-5, *_: Any) -> V:
    """Statistics per (sample, group) over the group's channels and all positions."""
    a = x.a
    if x.cl:  # (N, H, W, C) -> (N, H, W, G, C/G)
        n_c = a.shape[-1]
        y = _normalize(mx.reshape(a, (-1, *a.shape[1:-1], groups, n_c // groups)), (1, 2, 4), eps)
        y = mx.reshape(y, (-1, *a.shape[1:]))
    else:  # (N, C, ...) -> (N, G, C/G * positions)
        n_c = a.shape[1]
        y = mx.reshape(_normalize(mx.reshape(a, (-1, groups, math.prod(a.shape[1:]) // groups)), (2,), eps),
                       (-1, *a.shape[1:]))
    if weight is not None:
        y = y * _per_channel(x, weight.a)
    if bias is not None:
        y = y + _per_channel(x, bias.a)
    return V(y, x.cl)


def layer_norm(x: V, shape, weight: V | None, bias: V | None, eps: float = 1e-5, *_: Any) -> V:
    a = torch_layout(x)
    y = _normalize(a, tuple(range(a.ndim - len(shape), a.ndim)), eps)
    return V(y * (weight.a if weight is not None else 1.0) + (bias.a if bias is not None else 0.0))


def matmul(a: V, b: V) -> V:
    return V(mx.matmul(torch_layout(a), torch_layout(b)))


def softmax(x: V, dim: int, half_to_float: bool = False) -> V:
    return V(mx.softmax(torch_layout(x), axis=dim))


def transpose(x: V, dim0: int, dim1: int) -> V:
    return V(mx.swapaxes(torch_layout(x), dim0, dim1))


def select(x: V, dim: int, index: int) -> V:
    """x[..., index, ...] as a one-hot weighted sum: MLX's gather and slice keep the traced batch size in a
    shapeless export, a broadcast product does not (exact for finite values)."""
    a = torch_layout(x)
    dim = dim % a.ndim
    onehot = np.zeros(a.shape[dim], np.float32)
    onehot[index % a.shape[dim]] = 1.0
    shape = [1] * a.ndim
    shape[dim] = a.shape[dim]
    return V(mx.sum(a * mx.array(onehot.reshape(shape)).astype(a.dtype), axis=dim))


def conv1d(x: V, w: V, bias: V | None, stride, padding, dilation, groups: int) -> V:
    """(N, C, L) torch layout in and out; MLX convolves (N, L, C) with (O, K, I) kernels."""
    if isinstance(padding, str):
        raise unsupported(f"convolution padding={padding!r}")
    first = (lambda v: list(v)[0] if isinstance(v, (list, tuple)) else v)
    y = mx.conv1d(mx.swapaxes(torch_layout(x), 1, 2), mx.swapaxes(w.a, 1, 2), first(stride), first(padding),
                  first(dilation), groups)
    return V(mx.swapaxes(y + bias.a if bias is not None else y, 1, 2))


def embedding(weight: V, indices: V, *_: Any) -> V:
    return V(mx.take(weight.a, indices.a, axis=0))


def slice_(x: V, dim: int = 0, start: int | None = None, end: int | None = None, step: int = 1) -> V:
    a = torch_layout(x)
    index = [slice(None)] * a.ndim
    index[dim % a.ndim] = slice(start, None if end is None or end >= a.shape[dim % a.ndim] else end, step)
    return V(a[tuple(index)])


def clamp(x: V, lo: float | None = None, hi: float | None = None) -> V:
    a = x.a
    a = a if lo is None else mx.maximum(a, lo)
    return V(a if hi is None else mx.minimum(a, hi), x.cl)


def reduce(f: Callable[..., mx.array]) -> Callable[..., V]:
    """amax / sum over torch dims (torch layout), keepdim as torch's."""
    def handler(x: V, dims=None, keepdim: bool = False, *_: Any) -> V:
        a = torch_layout(x)
        axes = sorted({d % a.ndim for d in (dims if dims else range(a.ndim))})
        return V(f(a, axis=axes, keepdims=keepdim))
    return handler


def new_zeros(x: V, size, *_: Any) -> V:
    return V(mx.zeros(list(size), dtype=x.a.dtype))


OPS: dict[str, Callable[..., Any]] = {
    "aten.conv1d.default": conv1d,
    "aten.embedding.default": embedding,
    "aten.slice.Tensor": slice_,
    "aten.clamp.default": clamp,
    "aten.amax.default": reduce(mx.max),
    "aten.sum.dim_IntList": reduce(mx.sum),
    "aten.unsqueeze.default": lambda x, dim: V(mx.expand_dims(torch_layout(x), dim)),
    "aten.new_zeros.default": new_zeros,
    "aten.rsub.Scalar": lambda x, other, alpha=1: V(other - alpha * torch_layout(x)),
    "aten._assert_tensor_metadata.default": lambda *_: None,
    "aten.conv2d.default": conv2d,
    "aten.convolution.default": convolution,
    "aten._native_batch_norm_legit_no_training.default": batch_norm_eval,
    "aten.relu.default": unary(lambda a: mx.maximum(a, 0)),
    "aten.hardtanh.default": hardtanh,
    "aten.gelu.default": gelu,
    "aten.sigmoid.default": unary(mx.sigmoid),
    "aten.tanh.default": unary(mx.tanh),
    "aten.rsqrt.default": unary(mx.rsqrt),
    "aten.silu.default": unary(lambda a: a * mx.sigmoid(a)),
    "aten.add.Tensor": elementwise(lambda a, b, alpha=1: a + (b if alpha == 1 else alpha * b)),
    "aten.sub.Tensor": elementwise(lambda a, b, alpha=1: a - (b if alpha == 1 else alpha * b)),
    "aten.mul.Tensor": elementwise(mx.multiply),
    "aten.div.Tensor": elementwise(mx.divide),
    "aten.mean.dim": mean,
    "aten.adaptive_avg_pool2d.default": adaptive_avg_pool2d,
    "aten.view.default": view,
    "aten.reshape.default": view,
    "aten._unsafe_view.default": view,
    "aten.flatten.using_ints": flatten,
    "aten.permute.default": permute,
    "aten.t.default": t,
    "aten.linear.default": linear,
    "aten.addmm.default": addmm,
    "aten.mm.default": mm,
    "aten.cat.default": cat,
    "aten.group_norm.default": group_norm,
    "aten.layer_norm.default": layer_norm,
    "aten.matmul.default": matmul,
    "aten.bmm.default": matmul,
    "aten._softmax.default": softmax,
    "aten.softmax.int": softmax,
    "aten.transpose.int": transpose,
    "aten.select.int": select,
    "aten.clone.default": identity,
    "aten.alias.default": identity,
    "getitem": lambda values, i: values[i],
}


def op_key(node: fx.Node) -> str:
    return "getitem" if node.target is operator.getitem else str(node.target)


def schema_args(node: fx.Node) -> list[Any]:
    """The node's arguments in schema order, defaults filled in (still FX nodes where they are tensors)."""
    if op_key(node) == "getitem":
        return list(node.args)
    values = []
    for i, arg in enumerate(node.target._schema.arguments):
        if i < len(node.args) and not arg.kwarg_only:
            values.append(node.args[i])
        elif arg.name in node.kwargs:
            values.append(node.kwargs[arg.name])
        elif arg.has_default_value():
            values.append(arg.default_value)
        else:
            raise ConversionError(f"{op_key(node)} has no value for argument {arg.name!r}", "re-export the model")
    return values
