"""QuantSpec's hierarchical KV cache (card 02, section 2): one stored 8-bit cache read as two views.

Per group, `s_U = (max - min) / 15` and `C_U = clamp(round((x - min) / s_U), 0, 15)`; the residual
`r = x - (min + s_U C_U)` gets `C_L = clamp(round(r / s_L), -8, 7)` with `s_L = s_U / 16`, stored as `C_L + 8`.
The draft reads `x4 = min + s_U C_U` (upper codes only), the verifier `x8 = x4 + s_L C_L`.

Keys are grouped per channel over G consecutive tokens, values per token over G channels. Our heads are small
(d_head 16 < G 32), so values are grouped over min(G, d_head) channels, i.e. one group per token and head.
Both stages are the shared RTN (models/layers/quant.py), multiplying by 1/s_U (a zero s_U gives codes 0).
Codes are uint8 planes with two 4-bit codes per byte (upper plane, lower plane: the draft touches half the bytes);
s_U and min are fp16, rounded before use, as stored.

The newest tokens stay in a full-precision buffer (the model's dtype). After a commit, once the buffer holds more
than 2R tokens, the oldest `len - R - (len mod G)` move to the quantized store, so the store is always whole groups
and rollback is a length decrement on the buffer: rejected draft tokens never reach the store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from models.errors import EdgeZooError
from models.generation.cache import KVCache
from models.layers.quant import decode, encode, group_scales

SCALE_DTYPE = torch.float16
LOWER_STEPS = 16  # s_L = s_U / 16


@dataclass
class HierCodes:
    """One quantized tensor: packed 4-bit code planes plus per-group fp16 scale and minimum."""
    upper: torch.Tensor    # uint8, C_U packed two per byte along the group axis
    lower: torch.Tensor    # uint8, C_L + 8 packed two per byte
    scale: torch.Tensor    # fp16 s_U, one per group (group axis kept as size 1)
    minimum: torch.Tensor  # fp16

    def nbytes(self) -> dict[str, int]:
        return {"upper": self.upper.numel(), "lower": self.lower.numel(),
                "scales": (self.scale.numel() + self.minimum.numel()) * self.scale.element_size()}


def pack4(codes: torch.Tensor) -> torch.Tensor:
    """uint8 codes in 0..15 (last axis even) -> half as many bytes."""
    return codes[..., 0::2] | (codes[..., 1::2] << 4)


def unpack4(packed: torch.Tensor) -> torch.Tensor:
    return torch.stack([packed & 15, packed >> 4], -1).flatten(-2)


def hier_quantize(x: torch.Tensor) -> HierCodes:
    """Quantize groups along the last axis of `x` (..., G) into upper and residual 4-bit codes."""
    xf = x.float()
    scale, minimum = group_scales(xf, 4, symmetric=False, scale_dtype=SCALE_DTYPE)  # asymmetric 4-bit RTN
    cu = encode(xf, scale, minimum, 4, symmetric=False, reciprocal=True)
    resid = xf - decode(cu, scale, minimum)
    cl = encode(resid, scale / LOWER_STEPS, None, 4, symmetric=True, reciprocal=True)  # symmetric, scale s_U / 16
    return HierCodes(pack4(cu.to(torch.uint8)), pack4((cl + 8).to(torch.uint8)),
                     scale.to(SCALE_DTYPE), minimum.to(SCALE_DTYPE))


def hier_dequantize(c: HierCodes, bits: int) -> torch.Tensor:
    """bits 4 -> x4 (upper codes only), 8 -> x8 (upper + residual). Returns fp32 (..., G)."""
    scale = c.scale.float()
    x4 = decode(unpack4(c.upper).float(), scale, c.minimum.float())
    if bits == 4:
        return x4
    if bits == 8:
        return decode(unpack4(c.lower).float() - 8, scale / LOWER_STEPS, x4)
    raise ValueError(f"bits must be 4 or 8, got {bits}")


def value_group(group: int, d_head: int) -> int:
    """Channels per value group: min(G, d_head), or their gcd when that does not divide d_head."""
    g = min(group, d_head)
    return g if d_head % g == 0 else math.gcd(group, d_head)


def quantize_keys(k: torch.Tensor, group: int) -> HierCodes:
    """k (B, H, T, D), T a multiple of G -> groups of G tokens per channel: codes (B, H, T/G, D, G/2)."""
    b, h, t, d = k.shape
    return hier_quantize(k.reshape(b, h, t // group, group, d).transpose(-1, -2))


def dequantize_keys(c: HierCodes, bits: int) -> torch.Tensor:
    x = hier_dequantize(c, bits)  # (B, H, T/G, D, G)
    b, h, n, d, g = x.shape
    return x.transpose(-1, -2).reshape(b, h, n * g, d)


def quantize_values(v: torch.Tensor, group: int) -> HierCodes:
    """v (B, H, T, D) -> groups of `value_group` channels per token: codes (B, H, T, D/g, g/2)."""
    b, h, t, d = v.shape
    g = value_group(group, d)
    return hier_quantize(v.reshape(b, h, t, d // g, g))


def dequantize_values(c: HierCodes, bits: int) -> torch.Tensor:
    x = hier_dequantize(c, bits)
    return x.reshape(*x.shape[:3], -1)


def store_length(total: int, group: int, residual: int) -> int:
    """Tokens in the quantized store right after a flush at `total` tokens (all in the buffer before)."""
    return total - residual - total % group if total > 2 * residual else 0


class LayerKV:
    """One layer's hierarchical cache: quantized store (whole groups) + full-precision buffer."""

    def __init__(self, group: int, residual: int) -> None:
        self.group, self.residual = group, residual
        self.keys: list[HierCodes] = []    # one entry per flush
        self.values: list[HierCodes] = []
        self.store_len = 0
        self.buf_k: torch.Tensor | None = None  # (B, H, Lb, D)
        self.buf_v: torch.Tensor | None = None
        self._views: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # dequantized store, extended per flush
        self.width = 0  # B * H * D: elements per token of K (or V)

    @property
    def buffer_len(self) -> int:
        return 0 if self.buf_k is None else self.buf_k.shape[2]

    def __len__(self) -> int:
        return self.store_len + self.buffer_len

    def append(self, k: torch.Tensor, v: torch.Tensor) -> None:
        self.width = k.shape[0] * k.shape[1] * k.shape[3]
        if self.buf_k is None:
            self.buf_k, self.buf_v = k, v
        else:
            self.buf_k, self.buf_v = torch.cat([self.buf_k, k], 2), torch.cat([self.buf_v, v], 2)

    def truncate(self, length: int) -> None:
        keep = length - self.store_len
        if keep < 0:
            raise ValueError(f"cannot roll back into the quantized store ({length} < {self.store_len})")
        if self.buf_k is not None and keep < self.buffer_len:
            self.buf_k, self.buf_v = self.buf_k[:, :, :keep], self.buf_v[:, :, :keep]

    def flush(self) -> int:
        """Card rule: past 2R buffered tokens, move the oldest len - R - (len mod G) to the store."""
        n = self.buffer_len
        if n <= 2 * self.residual:
            return 0
        move = n - self.residual - n % self.group
        kc, vc = quantize_keys(self.buf_k[:, :, :move], self.group), quantize_values(self.buf_v[:, :, :move], self.group)
        self.keys.append(kc)
        self.values.append(vc)
        for bits in (4, 8):
            new = (dequantize_keys(kc, bits).to(self.buf_k.dtype), dequantize_values(vc, bits).to(self.buf_v.dtype))
            old = self._views.get(bits)
            self._views[bits] = new if old is None else (torch.cat([old[0], new[0]], 2), torch.cat([old[1], new[1]], 2))
        self.buf_k, self.buf_v = self.buf_k[:, :, move:], self.buf_v[:, :, move:]
        self.store_len += move
        return move

    def view(self, bits: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Dequantized store (x4 or x8) followed by the buffer: the `past` the model attends to."""
        if bits not in (4, 8):
            raise ValueError(f"bits must be 4 or 8, got {bits}")
        if self.store_len == 0:
            return None if self.buf_k is None else (self.buf_k, self.buf_v)
        sk, sv = self._views[bits]
        if self.buffer_len == 0:
            return sk, sv
        return torch.cat([sk, self.buf_k], 2), torch.cat([sv, self.buf_v], 2)

    def nbytes(self) -> dict[str, int]:
        out = {"upper": 0, "lower": 0, "scales": 0}
        for c in self.keys + self.values:
            for key, val in c.nbytes().items():
                out[key] += val
        out["buffer"] = 0 if self.buf_k is None else 2 * self.buf_k.numel() * self.buf_k.element_size()
        out["dequantized_views"] = sum(t.numel() * t.element_size() for kv in self._views.values() for t in kv)
        return out


class HierarchicalKVCache:
    """Per-layer `LayerKV`s (KV heads may differ per layer) used through `OpenELM.forward_cached`:
    pass `view(bits)` as the cache, then `append(new_cache, n)` takes the last n K/V entries it returns.
    Implements `models.generation.cache.Cache` (its plain `view()` is the verifier's x8 view)."""

    def __init__(self, n_layers: int, group: int = 32, residual: int = 32) -> None:
        if group < 2 or group % 2 or residual % group:
            raise EdgeZooError(f"KV group {group} / residual {residual} not usable",
                               "use an even group size G and a residual length R that is a multiple of G")
        self.group, self.residual = group, residual
        self.layers = [LayerKV(group, residual) for _ in range(n_layers)]

    def __len__(self) -> int:
        return len(self.layers[0])

    @property
    def store_len(self) -> int:
        return self.layers[0].store_len

    @property
    def buffer_len(self) -> int:
        return self.layers[0].buffer_len

    def room(self) -> int:
        """Entries that can still be appended before the next flush would trigger (2R - buffer)."""
        return 2 * self.residual - self.buffer_len

    def view(self, bits: int = 8) -> KVCache | None:
        views = [layer.view(bits) for layer in self.layers]
        return None if views[0] is None else views

    def append(self, new: KVCache, n: int) -> None:
        for layer, (k, v) in zip(self.layers, new):
            layer.append(k[:, :, k.shape[2] - n:], v[:, :, v.shape[2] - n:])

    def truncate(self, length: int) -> None:
        for layer in self.layers:
            layer.truncate(length)

    def flush(self) -> int:
        return [layer.flush() for layer in self.layers][0]

    def nbytes(self) -> dict[str, int]:
        """Bytes held: code planes, fp16 scales/minima, the buffer (its own dtype), the dequantized views kept for
        speed on CPU (a fused kernel would not hold them), and an fp16 / fp32 cache of the same length."""
        out: dict[str, int] = {}
        for layer in self.layers:
            for key, val in layer.nbytes().items():
                out[key] = out.get(key, 0) + val
        out["total"] = out["upper"] + out["lower"] + out["scales"] + out["buffer"]
        out["draft_reads"] = out["upper"] + out["scales"] + out["buffer"]
        elems = sum(2 * len(layer) * layer.width for layer in self.layers)
        out.update(fp16=2 * elems, fp32=4 * elems)
        return out


def cache_bytes(kv_heads: list[int], d_head: int, context: int, group: int = 32, residual: int = 32,
                buffer_bytes: int = 2) -> dict[str, int]:
    """Bytes of a hierarchical cache right after a flush at `context` tokens (batch 1, fp16 buffer by default),
    beside fp16 and fp32 caches of the same length."""
    stored = store_length(context, group, residual)
    buffered = context - stored
    gv = value_group(group, d_head)
    total = {"codes": 0, "scales": 0, "buffer": 0, "fp16": 0, "fp32": 0, "draft_reads": 0}
    for h in kv_heads:
        elems = h * stored * d_head
        groups = h * (stored // group) * d_head + h * stored * (d_head // gv)  # key groups + value groups
        total["codes"] += 2 * elems  # K and V, upper + lower nibble = one byte per element
        total["scales"] += 2 * 2 * groups
        total["buffer"] += 2 * h * buffered * d_head * buffer_bytes
        total["fp16"] += 2 * h * context * d_head * 2
        total["fp32"] += 2 * h * context * d_head * 4
    total["quantspec"] = total["codes"] + total["scales"] + total["buffer"]
    total["draft_reads"] = total["codes"] // 2 + total["scales"] + total["buffer"]
    return total
