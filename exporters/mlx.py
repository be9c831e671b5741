"""MLX export: translate the torch.export graph op by op into mlx.core and save it with `mx.export_function`.

The .mlxfn file holds the graph and every weight, so it runs with MLX alone (`mx.import_function`, no torch).
The function takes and returns torch-layout (NCHW) arrays; between ops, 4-D activations stay channels-last
(NHWC), which is what MLX convolutions want, and conv kernels are stored channels-last (O, kH, kW, I) too.

Compression is MLX's own: `fp16` stores every float array in half precision (cast to fp32 in the graph);
`int8`/`int4` store conv and linear weights as `mx.quantize` groups (packed uint32 + fp16 scales and biases),
all in one block that a single `mx.dequantize` in the graph expands (weights too small to gain stay fp32);
`prune` stores the torch-pruned weights dense, zeros included.

The batch dimension is exported shapeless (any batch size) when the traced function gives the same rows for
a batch of 3 as for 3 batches of 1; otherwise the file is re-exported for the example batch only.
"""

from __future__ import annotations

import json
import math
import operator
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import mlx.core as mx
import numpy as np
import torch
from torch import fx, nn

from exporters.artifact import EVAL_DATA, MODEL_FILES, input_specs
from exporters.compression.spec import CompressionSpec
from exporters.verify import numeric_parity
from models.errors import ConversionError

GROUP_SIZES = (32, 64, 128)     # what mx.quantize accepts in affine mode
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


OPS: dict[str, Callable[..., Any]] = {
    "aten.conv2d.default": conv2d,
    "aten.convolution.default": convolution,
    "aten._native_batch_norm_legit_no_training.default": batch_norm_eval,
    "aten.relu.default": unary(lambda a: mx.maximum(a, 0)),
    "aten.hardtanh.default": hardtanh,
    "aten.gelu.default": gelu,
    "aten.sigmoid.default": unary(mx.sigmoid),
    "aten.tanh.default": unary(mx.tanh),
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


# --- weights: what the file stores, and the graph ops that rebuild each constant in fp32 ---------------------------

MIN_SAVING_BYTES = 512  # a weight is quantized only if that saves more than the graph nodes that cut it out cost


def quantized_bytes(w: np.ndarray, g: int, bits: int) -> int:
    """Packed codes plus one fp16 scale and one fp16 bias per group; each row padded to whole groups."""
    rows, k = w.shape[0], w.size // w.shape[0]
    return rows * -(-k // g) * (g * bits // 8 + 4)


def worth_quantizing(w: np.ndarray, g: int, bits: int) -> bool:
    return w.size * 4 - quantized_bytes(w, g, bits) > MIN_SAVING_BYTES


def group_size(weights: list[np.ndarray], bits: int, block: int) -> int:
    """spec.block when MLX takes it; block 0 (per channel, which MLX cannot do): the group size that stores
    the model's weights in the fewest bytes."""
    if block:
        if block not in GROUP_SIZES:
            sizes = "/".join(map(str, GROUP_SIZES))
            raise ConversionError(f"MLX quantizes groups of {sizes} values, not block={block}", "use block=32, 64 or 128")
        return block

    def total(g: int) -> int:
        return sum(quantized_bytes(w, g, bits) if worth_quantizing(w, g, bits) else w.size * 4 for w in weights)
    return min(GROUP_SIZES, key=lambda g: (total(g), -g))


@dataclass
class QuantizedBlock:
    """Every quantized weight in one `mx.quantize`d matrix with one group per row, so the graph holds a single
    `mx.dequantize`: on the CPU it expands into 30-50 primitives, which per layer would outweigh the saving.
    Each weight is cut out again by rows (`take`, as Slice cannot re-infer its shape in a shapeless export)."""
    q: mx.array
    scales: mx.array
    biases: mx.array
    group: int
    bits: int
    layout: list[tuple[str, int, int, int, tuple[int, ...]]]  # name, first row, rows, row length k, shape

    @classmethod
    def build(cls, weights: dict[str, np.ndarray], group: int, bits: int) -> "QuantizedBlock":
        parts, layout, row = [], [], 0
        for name, w in weights.items():
            flat = w.reshape(w.shape[0], -1)   # a row per output channel, groups along the input dims
            k = flat.shape[1]
            part = np.pad(flat, ((0, 0), (0, (-k) % group)), mode="edge").reshape(-1, group)
            layout.append((name, row, len(part), k, w.shape))
            parts.append(part)
            row += len(part)
        q, scales, biases = mx.quantize(mx.array(np.concatenate(parts).astype(np.float16)), group_size=group, bits=bits)
        mx.eval(q, scales, biases)
        return cls(q, scales, biases, group, bits, layout)

    def arrays(self) -> list[mx.array]:
        return [self.q, self.scales, self.biases]

    def unpack(self) -> dict[str, mx.array]:
        full = mx.dequantize(self.q, self.scales, self.biases, group_size=self.group, bits=self.bits, dtype=mx.float32)
        out = {}
        for name, row, rows, k, shape in self.layout:
            w = mx.take(full, mx.arange(row, row + rows), axis=0).reshape(shape[0], -1)
            out[name] = (mx.take(w, mx.arange(k), axis=1) if w.shape[1] != k else w).reshape(shape)
        return out


class WeightStore:
    """The arrays the file stores for the graph's constants, per the spec, and `materialize()`: the graph ops
    that turn them back into fp32 values, traced once per call."""

    def __init__(self, tensors: dict[str, np.ndarray], spec: CompressionSpec) -> None:
        self.spec = spec
        floats = {n: w for n, w in tensors.items() if np.issubdtype(w.dtype, np.floating)}
        candidates = {n: w for n, w in floats.items() if spec.method in ("int8", "int4") and w.ndim >= 2}
        self.group = group_size(list(candidates.values()), spec.bits, spec.block) if candidates else None
        chosen = {n: w for n, w in candidates.items() if worth_quantizing(w, self.group, spec.bits)}
        self.kept_fp32 = len(candidates) - len(chosen)
        self.group = self.group if chosen else None
        self.block = QuantizedBlock.build(chosen, self.group, spec.bits) if chosen else None
        half = spec.method == "fp16"
        self.plain = {n: mx.array(w.astype(np.float16 if half else np.float32) if n in floats else w)
                      for n, w in tensors.items() if n not in chosen}

    def materialize(self) -> dict[str, mx.array]:
        out = {n: a.astype(mx.float32) if a.dtype == mx.float16 else a for n, a in self.plain.items()}
        return {**out, **(self.block.unpack() if self.block else {})}

    @property
    def stored(self) -> list[mx.array]:
        return list(self.plain.values()) + (self.block.arrays() if self.block else [])

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.stored)

    @property
    def quantized(self) -> int:
        return len(self.block.layout) if self.block else 0


# --- the translated program ---------------------------------------------------------------------------------------

def stored_layout(tensor: torch.Tensor, channels_last: bool) -> np.ndarray:
    """Conv kernels are stored channels-last (O, kH, kW, I), as mx.conv2d takes them."""
    w = tensor.detach().cpu().numpy()
    return np.ascontiguousarray(w.transpose(TO_CL)) if channels_last else w


class Program:
    """The torch.export graph as an MLX function: `program(*inputs) -> tuple of outputs`, torch layout both ends."""

    def __init__(self, ep: torch.export.ExportedProgram, spec: CompressionSpec) -> None:
        self.graph = ep.graph
        sig = ep.graph_signature
        self.user_inputs = list(sig.user_inputs)
        self.user_outputs = set(sig.user_outputs)
        self.op_counts = Counter(op_key(n) for n in self.graph.nodes if n.op == "call_function")
        missing = sorted(k for k in self.op_counts if k not in OPS)
        if missing:
            raise unsupported(f"op{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        constants = self._constants(ep)
        conv_weights = {n.args[1].name for n in self.graph.nodes
                        if n.op == "call_function" and op_key(n) in CONV_OPS and isinstance(n.args[1], fx.Node)}
        self.cl_constants = {n for n in conv_weights if n in constants and constants[n].ndim == 4}
        self.weights = WeightStore({n: stored_layout(t, n in self.cl_constants) for n, t in constants.items()}, spec)

    def _constants(self, ep: torch.export.ExportedProgram) -> dict[str, torch.Tensor]:
        """Parameters, buffers and lifted constants the graph reads, by placeholder name."""
        sig, state = ep.graph_signature, {**ep.state_dict, **ep.constants}
        targets = {**sig.inputs_to_parameters, **sig.inputs_to_buffers, **sig.inputs_to_lifted_tensor_constants}
        used = {n.name for n in self.graph.nodes if n.op == "placeholder" and n.users}
        return {name: state[target] for name, target in targets.items() if name in used}

    def __call__(self, *inputs: mx.array) -> tuple[mx.array, ...]:
        feeds = dict(zip(self.user_inputs, inputs))
        constants = self.weights.materialize()
        env: dict[fx.Node, Any] = {}
        for node in self.graph.nodes:
            if node.op == "placeholder" and node.users:
                env[node] = V(feeds[node.name]) if node.name in feeds else \
                    V(constants[node.name], cl=node.name in self.cl_constants)
            elif node.op == "call_function":
                args = fx.node.map_arg(schema_args(node), lambda n: env[n])
                env[node] = OPS[op_key(node)](*args)
            elif node.op == "output":
                return tuple(torch_layout(env[n]) for n in node.args[0] if n.name in self.user_outputs)
        raise ConversionError("the exported graph has no output", "re-export the model")


def torch_graph(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> torch.export.ExportedProgram:
    """torch.export with an empty decomposition table: conv2d, linear, batch norm etc. stay whole."""
    with torch.no_grad():
        return torch.export.export(model.eval(), inputs).run_decompositions({})


# --- export and verify --------------------------------------------------------------------------------------------

def _metadata(inputs: tuple[torch.Tensor, ...], dynamic: bool, spec: CompressionSpec) -> str:
    return json.dumps({"producer": "edgezoo", "inputs": input_specs(inputs, dynamic), "dynamic_batch": dynamic,
                       "layout": "NCHW", "compression": spec.name})


def _batch_consistent(path: Path, example: list[mx.array]) -> bool:
    """A shapeless export is kept only if a batch of 3 gives the rows that 3 batches of 1 give."""
    fn = mx.import_function(str(path))
    rng = np.random.default_rng(0)
    xs = [mx.array(rng.standard_normal((3, *x.shape[1:])).astype(np.float32)) for x in example]
    batched = [np.array(o) for o in fn(*xs)]
    rows = [[np.array(o) for o in fn(*(x[i:i + 1] for x in xs))] for i in range(3)]
    return all(b.shape[0] == 3 and np.allclose(b, np.concatenate([r[j] for r in rows]), rtol=1e-3, atol=1e-4)
               for j, b in enumerate(batched))


def _save(path: Path, program: Program, example: list[mx.array], inputs: tuple[torch.Tensor, ...],
          spec: CompressionSpec) -> tuple[bool, str | None]:
    """Export shapeless (any batch) when that traces and checks out, else for the example's batch size."""
    def fn(*xs: mx.array) -> tuple[mx.array, ...]:
        return program(*xs)

    try:
        mx.export_function(str(path), fn, *example, shapeless=True, metadata=_metadata(inputs, True, spec))
        if _batch_consistent(path, example):
            return True, None
        reason = "the shapeless trace gave different rows for a batch of 3"
    except (ValueError, RuntimeError) as e:
        reason = f"shapeless export failed: {str(e).splitlines()[0][:200]}"
    mx.export_function(str(path), fn, *example, shapeless=False, metadata=_metadata(inputs, False, spec))
    return False, reason


def export(model: nn.Module, inputs: tuple[torch.Tensor, ...], out_dir: Path, spec: CompressionSpec) -> dict:
    try:
        ep = torch_graph(model, inputs)
    except Exception as e:  # torch.export's own failures (data-dependent control flow, ...)
        raise ConversionError(f"torch.export of the model failed: {e.__class__.__name__}: "
                              f"{str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}",
                              "make the model torch.export-able, or export to another format") from None
    program = Program(ep, spec)
    example = [mx.array(t.detach().cpu().numpy()) for t in inputs]
    path = Path(out_dir) / MODEL_FILES["mlx"]
    dynamic, note = _save(path, program, example, inputs, spec)
    w = program.weights
    info: dict[str, Any] = {
        "weight_bytes": w.nbytes,
        "graph_bytes": path.stat().st_size - w.nbytes,   # the rest of the file: ops, shapes, names
        "dynamic_batch": dynamic,
        "batch": None if dynamic else int(inputs[0].shape[0]),
        "translated_ops": dict(sorted(program.op_counts.items())),
        "stored_arrays": len(w.stored),
        "stored_dtypes": dict(Counter(str(a.dtype).removeprefix("mlx.core.") for a in w.stored)),
        "layout": "NCHW at the function boundary, channels-last (NHWC) inside; conv kernels stored OHWI",
        "torch_graph": "torch.export + run_decompositions({})",
        "mlx_version": mx.__version__,
    }
    if note:
        info["dynamic_batch_note"] = note
    info.update(_compression_details(spec, w))
    return info


def _compression_details(spec: CompressionSpec, w: WeightStore) -> dict[str, Any]:
    if spec.method in ("int8", "int4"):
        return {"quantization": "mx.quantize affine (min/max per group) in fp16, fp16 scales and biases; one shared "
                                "mx.dequantize in the graph; other arrays fp32",
                "bits": spec.bits, "group_size": w.group, "quantized_tensors": w.quantized,
                "kept_fp32_tensors": w.kept_fp32, "min_saving_bytes": MIN_SAVING_BYTES}
    if spec.method == "fp16":
        return {"storage": "every float array stored fp16, cast to fp32 in the graph"}
    if spec.method == "prune":
        return {"storage": "pruned weights (zeros from torch-level pruning) stored dense fp32: "
                           "MLX has no sparse storage, so the file is not smaller"}
    return {"storage": "fp32"}


def run_function(fn: Callable[..., Any], x: np.ndarray, dynamic: bool) -> np.ndarray:
    """All rows at once when the export takes any batch, else one row per call."""
    if dynamic:
        out = fn(mx.array(x))[0]
        mx.eval(out)
        return np.array(out)
    outs = []
    for i in range(len(x)):
        out = fn(mx.array(x[i:i + 1]))[0]
        mx.eval(out)
        outs.append(np.array(out))
    return np.concatenate(outs)


def verify(model: nn.Module, artifact) -> dict:
    """Run the .mlxfn in MLX on the artifact's held-out inputs and compare with the fp32 torch reference."""
    data = np.load(artifact.path / EVAL_DATA)
    fn, meta = mx.import_function(str(artifact.model_file), return_metadata=True)
    dynamic = bool(json.loads(meta).get("dynamic_batch")) if meta else False
    out = run_function(fn, data["x"].astype(np.float32), dynamic)
    return {"kind": "numeric", "runtime": "mlx", "dynamic_batch": dynamic, **numeric_parity(out, data["reference"])}
