"""Run-time low-bit linears for the OpenELM block layers on CPU: weights stored and multiplied in 4 or 16 bits.

`OrtInt4Linear` (kind "int4"): group-wise asymmetric 4-bit RTN codes in an onnxruntime `MatMulNBits` graph (one
small session per linear, an fp32 scale and a 4-bit integer zero point per `group` inputs -- float zero points
send MatMulNBits to a reference path ~500x slower -- and `accuracy_level` 4: activations quantized to int8 per
block and multiplied with VNNI integer dot products) -- the fastest 4-bit matrix-vector product
measured on this CPU (about 3x torch's int4 kernel, 5x a bf16 oneDNN product at 6144x768).
`Int4Linear` (kind "int4-torch"): group-wise asymmetric 4-bit RTN (models/layers/quant.py, bf16 scale and zero point per `group`
input channels), codes packed by `aten._convert_weight_to_int4pack_for_cpu` and multiplied by
`aten._weight_int4pack_mm_for_cpu` (torch's tinygemm-layout int4 CPU kernel) with bf16 activations: its weights
are 4.25 bits each in memory and never expanded to floats outside the kernel. With fp32 activations that kernel
takes a reference path ~20x slower than an fp32 matmul, so activations go in as bf16.
`Bf16Linear`: the weight in bf16, pre-packed once for oneDNN (`mkldnn._reorder_linear_weight`, multiplied by
`mkldnn._linear_pointwise`): a matrix-vector product then reads half an fp32 weight's bytes and a few-row product
reads the weights once, which is what a verify pass over gamma + 1 tokens needs. Without oneDNN bf16 support it
falls back to `F.linear` on bf16 tensors.

Both take and return the caller's dtype (fp32 in the model): norms, RoPE, attention and the tied byte head stay fp32.
`runtime_copy(model, kind)` is a copy of an OpenELM with every block linear replaced and its attention computed
by `GroupedQueryAttention` (no per-query-head copies of the KV cache); the original is untouched.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

from models.errors import EdgeZooError
from models.layers.quant import encode, lm_linear_names, rtn_quantize
from models.openelm import Attention

INT4_GROUPS = (32, 64, 128, 256)  # group sizes the int4 CPU kernel accepts
INNER_K_TILES = 8                 # the packing's K tiling
N_MULTIPLE = 16                   # the packing needs output widths divisible by this
KINDS = ("int4", "int4-torch", "bf16")
ORT_ACCURACY = 4                  # MatMulNBits: int8 activations, integer dot products


def int4_supported() -> bool:
    return hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu")


def onednn_bf16() -> bool:
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, x.shape[-1]).to(torch.bfloat16)


class Int4Linear(nn.Module):
    """y = x W^T with W as packed 4-bit codes, bf16 scales and zero points per `group` inputs (no bias)."""

    def __init__(self, weight: torch.Tensor, group: int = 128) -> None:
        super().__init__()
        n, k = weight.shape
        if group not in INT4_GROUPS or k % group or n % N_MULTIPLE:
            raise EdgeZooError(f"int4 kernel cannot take a {n}x{k} weight in groups of {group}",
                               f"use a group size from {INT4_GROUPS} dividing the input width, and an output "
                               f"width divisible by {N_MULTIPLE}")
        q = rtn_quantize(weight.detach().float(), 4, group, symmetric=False, scale_dtype=torch.bfloat16)
        # the kernel computes (code - 8) * scale + zero: shift the zero point by 8 steps
        scale, zero = q.scale[..., 0], (q.zero + 8 * q.scale)[..., 0]  # (N, K / group)
        self.out_features, self.in_features, self.group = n, k, group
        self.register_buffer("packed", torch.ops.aten._convert_weight_to_int4pack_for_cpu(
            q.int_codes().to(torch.int32).contiguous(), INNER_K_TILES))
        self.register_buffer("scales_zeros", torch.stack([scale, zero], -1).transpose(0, 1).contiguous().bfloat16())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(_flat(x), self.packed, self.group, self.scales_zeros)
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def stored_bytes(self) -> int:
        return self.packed.numel() * self.packed.element_size() + self.scales_zeros.numel() * 2


def zero_point_int4(weight: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric 4-bit RTN with an integer zero point (what MatMulNBits' fast path takes): per group of `group`
    inputs, scale s = (max(w, 0) - min(w, 0)) / 15, zero point z = round(-min / s), codes clamp(round(w / s) + z);
    w ~ (code - z) s. Returns codes (N, K / group, group), s and z (N, K / group), all fp32."""
    g = weight.detach().float().reshape(weight.shape[0], -1, group)
    low, high = g.amin(-1, keepdim=True).clamp_max(0), g.amax(-1, keepdim=True).clamp_min(0)
    scale = (high - low) / 15
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero group: codes z give 0
    zero = (-low / scale).round().clamp(0, 15)
    codes = encode(g, scale, -zero * scale, 4, symmetric=False)
    return codes, scale[..., 0], zero[..., 0]


def _ort_int4_graph(weight: torch.Tensor, group: int) -> bytes:
    """A serialized ONNX model y = MatMulNBits(x, codes, scales, zero points) for an (N, K) weight."""
    from onnx import TensorProto, helper

    n, k = weight.shape
    codes, scale, zero = zero_point_int4(weight, group)
    packed = _pack_nibbles(codes.to(torch.uint8))  # (N, K / group, group / 2)
    zero = zero.to(torch.uint8)
    zero = _pack_nibbles(torch.cat([zero, zero.new_zeros(n, zero.shape[1] % 2)], 1))  # two per byte, rows padded
    inits = [helper.make_tensor("w", TensorProto.UINT8, list(packed.shape), packed.numpy().tobytes(), raw=True),
             helper.make_tensor("s", TensorProto.FLOAT, [scale.numel()], scale.flatten().tolist()),
             helper.make_tensor("z", TensorProto.UINT8, [zero.numel()], zero.numpy().tobytes(), raw=True)]
    node = helper.make_node("MatMulNBits", ["x", "w", "s", "z"], ["y"], domain="com.microsoft", K=k, N=n, bits=4,
                            block_size=group, accuracy_level=ORT_ACCURACY)
    graph = helper.make_graph([node], "int4_linear", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, n])], inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def _pack_nibbles(codes: torch.Tensor) -> torch.Tensor:
    """uint8 values 0..15, last axis even -> two per byte, the first in the low nibble (MatMulNBits' order)."""
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).contiguous()


class OrtInt4Linear(nn.Module):
    """y = x W^T through an onnxruntime MatMulNBits session holding W as 4-bit codes (no bias)."""

    def __init__(self, weight: torch.Tensor, group: int = 128, threads: int = 1) -> None:
        import onnxruntime as ort

        super().__init__()
        n, k = weight.shape
        if group not in INT4_GROUPS or k % group:
            raise EdgeZooError(f"MatMulNBits cannot take a {n}x{k} weight in groups of {group}",
                               f"use a group size from {INT4_GROUPS} dividing the input width")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(_ort_int4_graph(weight, group), opts, providers=["CPUExecutionProvider"])
        self.out_features, self.in_features, self.group = n, k, group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.detach().reshape(-1, self.in_features).float().contiguous().numpy()
        y = torch.from_numpy(self.session.run(None, {"x": flat})[0])
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def stored_bytes(self) -> int:
        per_row = self.in_features // self.group  # fp32 scales, zero points two per byte
        return self.out_features * (self.in_features // 2 + 4 * per_row + -(-per_row // 2))

    def __deepcopy__(self, memo: dict) -> OrtInt4Linear:
        return self  # the session is immutable: copies of a model share it


class Bf16Linear(nn.Module):
    """y = x W^T with W in bf16, pre-packed for oneDNN where it supports bf16 (no bias)."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        w = weight.detach().to(torch.bfloat16).contiguous()
        self.out_features, self.in_features = w.shape
        self.onednn = onednn_bf16()
        self.weight = torch.ops.mkldnn._reorder_linear_weight(w, 1) if self.onednn else w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.onednn:
            y = torch.ops.mkldnn._linear_pointwise(_flat(x), self.weight, None, "none", [], "")
        else:
            y = F.linear(_flat(x), self.weight)
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def stored_bytes(self) -> int:
        return self.out_features * self.in_features * 2


class GroupedQueryAttention(Attention):
    """OpenELM attention with the queries of each KV head stacked along time, (B, n_kv, g T, D), so keys and values
    are read in place instead of repeated g times per pass (the same rows as `Attention`, a third of the copies
    at 4 query heads per KV head)."""

    def forward(self, x: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor,
                past: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        b, t, _ = x.shape
        qkv = self.qkv_proj(x).reshape(b, t, self.n_q + 2 * self.n_kv, self.d_head).transpose(1, 2)
        q, k, v = qkv.split([self.n_q, self.n_kv, self.n_kv], dim=1)
        cos, sin = self._rope_table(pos)
        q, k = _rotate(self.q_norm(q), cos, sin), _rotate(self.k_norm(k), cos, sin)
        if past is not None:
            grown = _grow_in_place(past[0], k), _grow_in_place(past[1], v)
            k, v = grown if grown[0] is not None and grown[1] is not None else (
                torch.cat([past[0], k], 2), torch.cat([past[1], v], 2))
        g = self.n_q // self.n_kv  # query head h = j * g + i uses KV head j; row i * T + s of group j is (h, s)
        mask = mask.expand(-1, -1, g, -1) if t == 1 else mask.repeat(1, 1, g, 1)  # rows i * T + s read mask row s
        out = F.scaled_dot_product_attention(q.reshape(b, self.n_kv, g * t, self.d_head), k, v, attn_mask=mask,
                                             scale=1.0 / math.sqrt(self.d_head))
        return self.out_proj(out.reshape(b, self.n_q, t, self.d_head).transpose(1, 2).reshape(b, t, -1)), (k, v)


    def _rope_table(self, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin of `rope`'s angles at `pos` (B, T) -> (B, 1, T, D), from a table grown on demand."""
        need = int(pos.max()) + 1
        table = getattr(self, "_rope", None)
        if table is None or table[0].shape[0] < need:
            n = max(need, 2 * (0 if table is None else table[0].shape[0]), 512)
            inv = 1.0 / (self.base ** (torch.arange(0, self.d_head, 2, dtype=torch.float32) / self.d_head))
            angles = torch.arange(n, dtype=torch.float32)[:, None] * inv
            emb = torch.cat([angles, angles], -1)
            table = (emb.cos(), emb.sin())
            self._rope = table
        return table[0][pos][:, None], table[1][pos][:, None]


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """`models.openelm.rope` with precomputed cos and sin (fp32 x)."""
    x1, x2 = x.chunk(2, -1)
    return x * cos + torch.cat([-x2, x1], -1) * sin


def int4_group(model: nn.Module, preferred: int = 128) -> int:
    """The largest int4 group size up to `preferred` that divides every block linear's input width (32 at least:
    the kernels' smallest group; a model it does not divide is refused when the draft is built)."""
    widths = [model.get_submodule(n).in_features for n in lm_linear_names(model)]
    return next((g for g in sorted(INT4_GROUPS, reverse=True) if g <= preferred and all(w % g == 0 for w in widths)),
                INT4_GROUPS[0])


def _make(kind: str, weight: torch.Tensor, group: int, threads: int) -> nn.Module:
    if kind == "int4":
        return OrtInt4Linear(weight, group, threads)
    return Int4Linear(weight, group) if kind == "int4-torch" else Bf16Linear(weight)


def runtime_copy(model: nn.Module, kind: str, group: int = 128, names: list[str] | None = None, threads: int = 1
                 ) -> tuple[nn.Module, dict]:
    """A copy of `model` whose block linears (or `names`) run as `kind` (KINDS); returns it and a report (bits per
    weight as stored, bytes of the replaced weights, their fp32 bytes). `threads`: onnxruntime's intra-op threads."""
    if kind not in KINDS:
        raise EdgeZooError(f"unknown run-time weight format {kind!r}", f"use one of {KINDS}")
    if kind == "int4-torch" and not int4_supported():
        raise EdgeZooError("this torch build has no int4 CPU kernel", "use torch >= 2.5 or the fake-quantized draft")
    out = copy.deepcopy(model).eval()
    stored = total = 0
    for name in names if names is not None else lm_linear_names(out):
        parent, _, leaf = name.rpartition(".")
        lin = out.get_submodule(name)
        new = _make(kind, lin.weight, group, threads)
        setattr(out.get_submodule(parent), leaf, new)
        stored, total = stored + new.stored_bytes(), total + lin.weight.numel()
    for module in out.modules():
        if type(module) is Attention:
            module.__class__ = GroupedQueryAttention  # same parameters, in-place KV reads
    method = f"{kind}-asym-g{group} (packed, run time)" if kind != "bf16" else "bf16 (run time)"
    return out, {"method": method, "bits_per_weight": 8 * stored / max(total, 1), "size_bytes": stored,
                 "weights": total, "fp32_bytes": 4 * total}


# --------------------------------------------------------------------------- in-place KV caches


class GrowableKV:
    """Per layer K and V in preallocated (B, H, capacity, D) tensors: `view(n)` is a slice (no copy) marked
    `growable`, so `GroupedQueryAttention` writes a pass's new entries in place after it instead of concatenating
    the whole cache; `write(pos, k, v)` copies entries in (a no-op for entries a pass already wrote here)."""

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def ensure(self, like: torch.Tensor, length: int) -> None:
        cap = 0 if self.k is None else self.k.shape[2]
        if length <= cap:
            return
        b, h, _, d = like.shape
        new_cap = max(length, 2 * cap, 256)
        k, v = like.new_empty(b, h, new_cap, d), like.new_empty(b, h, new_cap, d)
        if self.k is not None:
            k[:, :, :cap], v[:, :, :cap] = self.k, self.v
        self.k, self.v = k, v

    def write(self, pos: int, k: torch.Tensor, v: torch.Tensor) -> None:
        self.ensure(k, pos + k.shape[2])
        for dst, src in ((self.k, k), (self.v, v)):
            if src.data_ptr() != dst[:, :, pos:].data_ptr():  # not already in place
                dst[:, :, pos:pos + src.shape[2]] = src

    def view(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.k[:, :, :n], self.v[:, :, :n]
        k.growable = v.growable = True
        return k, v


def _grow_in_place(past: torch.Tensor, new: torch.Tensor) -> torch.Tensor | None:
    """`past` extended by `new` along time inside its own storage, or None where it has no room."""
    if not getattr(past, "growable", False):
        return None
    size = (*past.shape[:2], past.shape[2] + new.shape[2], past.shape[3])
    last = past.storage_offset() + sum((s - 1) * st for s, st in zip(size, past.stride()))
    if last >= past.untyped_storage().nbytes() // past.element_size() or past.stride()[3] != 1:
        return None
    out = past.as_strided(size, past.stride())
    out[:, :, past.shape[2]:] = new
    return out


class InPlaceKVCache:
    """The plain full-precision cache (models.generation.cache protocol) without per-step concatenation."""

    def __init__(self) -> None:
        self.layers: list[GrowableKV] = []
        self.length = 0

    def __len__(self) -> int:
        return self.length

    def view(self) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        return [layer.view(self.length) for layer in self.layers] if self.length else None

    def append(self, new: list[tuple[torch.Tensor, torch.Tensor]], n: int) -> None:
        if not self.layers:
            self.layers = [GrowableKV() for _ in new]
        for layer, (k, v) in zip(self.layers, new):
            layer.write(self.length, k[:, :, k.shape[2] - n:], v[:, :, v.shape[2] - n:])
        self.length += n

    def truncate(self, length: int) -> None:
        self.length = min(self.length, length)


class InPlaceHierarchicalKVCache:
    """QuantSpec's hierarchical cache (models.kv_quant.HierarchicalKVCache: codes, flush rule, rollback) whose two
    views, x4 and x8, are each kept dequantized in preallocated storage: store region = that view's dequantized
    codes, buffer region = the same full-precision entries in both. `view(bits)` is then a slice, not a copy."""

    def __init__(self, n_layers: int, group: int = 32, residual: int = 32) -> None:
        from models.kv_quant import HierarchicalKVCache

        self.codes = HierarchicalKVCache(n_layers, group, residual)
        self.views = {bits: [GrowableKV() for _ in range(n_layers)] for bits in (4, 8)}

    def __len__(self) -> int:
        return len(self.codes)

    def room(self) -> int:
        return self.codes.room()

    def view(self, bits: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        n = len(self)
        return [layer.view(n) for layer in self.views[bits]] if n else None

    def append(self, new: list[tuple[torch.Tensor, torch.Tensor]], n: int) -> None:
        start = len(self)
        self.codes.append(new, n)
        for layers in self.views.values():
            for layer, (k, v) in zip(layers, new):
                layer.write(start, k[:, :, k.shape[2] - n:], v[:, :, v.shape[2] - n:])

    def truncate(self, length: int) -> None:
        self.codes.truncate(length)

    def flush(self) -> int:
        """The card's flush; the moved entries' store region is overwritten by each view's dequantized codes."""
        from models.kv_quant import dequantize_keys, dequantize_values

        start = self.codes.store_len
        moved = self.codes.flush()
        if moved:
            for bits, layers in self.views.items():
                for layer, codes in zip(layers, self.codes.layers):
                    k, v = dequantize_keys(codes.keys[-1], bits), dequantize_values(codes.values[-1], bits)
                    layer.write(start, k.to(layer.k.dtype), v.to(layer.v.dtype))
        return moved
