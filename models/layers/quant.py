"""Round-to-nearest (RTN) quantization: the one implementation, used by training-time fake quantization (LCS+Q),
the QuantSpec KV cache, the LM linears' group-wise RTN (QuantSpec draft, SeedLM comparators, LM int8/int4) and
the exporters (torch-level fake quantization, ONNX int4 codes).

Options: `bits`; `group` consecutive values share a scale (0: a whole row); `layout` "rows" groups along each
output row of w reshaped (out, -1) (per output channel or blocks along the input dimension), "flat" along the
flattened tensor (groups may cross rows; group 0: one scale per tensor); a partial last group is zero-padded (the
padding takes part in min/max). Symmetric: codes in [-2^{b-1}, 2^{b-1}-1], scale max|x| / (2^{b-1}-1).
Asymmetric: codes in [0, 2^b-1], scale (max-min) / (2^b-1), zero point min. `scale_dtype` rounds scales and
zero points to their stored precision before use. A zero scale gives code 0. `reciprocal` multiplies by 1/scale
(as the KV cache does) instead of dividing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


def qrange(bits: int, symmetric: bool) -> tuple[int, int]:
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if symmetric else (0, 2 ** bits - 1)


def inverse(scale: torch.Tensor) -> torch.Tensor:
    """1 / scale, and 0 where the scale is 0."""
    return torch.where(scale > 0, 1.0 / scale.clamp_min(1e-30), torch.zeros_like(scale))


def group_scales(g: torch.Tensor, bits: int, symmetric: bool = True,
                 scale_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(scale, zero point or None) per group along the last axis of `g` (kept as size 1)."""
    qmax = qrange(bits, symmetric)[1]
    if symmetric:
        scale, zero = g.abs().amax(-1, keepdim=True).clamp_min(1e-12) / qmax, None
    else:
        zero = g.amin(-1, keepdim=True)
        scale = (g.amax(-1, keepdim=True) - zero) / qmax
    if scale_dtype is not None:  # used as stored
        scale = scale.to(scale_dtype).to(g.dtype)
        zero = None if zero is None else zero.to(scale_dtype).to(g.dtype)
    return scale, zero


def encode(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | None, bits: int, symmetric: bool = True,
           reciprocal: bool = False) -> torch.Tensor:
    """Integer codes (in x's dtype): clamp(round((x - zero) / scale)) to the `bits` range."""
    t = x if zero is None else x - zero
    t = t * inverse(scale) if reciprocal else torch.where(scale > 0, t / scale, 0.0)
    return t.round().clamp(*qrange(bits, symmetric))


def decode(codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | None = None) -> torch.Tensor:
    out = codes * scale
    return out if zero is None else out + zero


def _rows(shape: torch.Size, layout: str) -> int:
    if layout not in ("rows", "flat"):
        raise ValueError(f"unknown RTN layout {layout!r}; use 'rows' or 'flat'")
    return shape[0] if layout == "rows" else 1


def to_groups(w: torch.Tensor, group: int = 0, layout: str = "rows") -> torch.Tensor:
    """(rows, n_groups, group), each row zero-padded to whole groups."""
    flat = w.reshape(_rows(w.shape, layout), -1)
    group = group or flat.shape[1]
    return F.pad(flat, (0, (-flat.shape[1]) % group)).reshape(flat.shape[0], -1, group)


def from_groups(g: torch.Tensor, shape: torch.Size, layout: str = "rows") -> torch.Tensor:
    rows = _rows(shape, layout)
    return g.reshape(rows, -1)[:, : shape.numel() // rows].reshape(shape)


@dataclass
class Quantized:
    """What RTN stores: codes (rows, n_groups, group) incl. padding, scales and zero points (rows, n_groups, 1)."""
    codes: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor | None
    bits: int
    scale_bits: int
    shape: torch.Size
    layout: str

    def dequantize(self) -> torch.Tensor:
        return from_groups(decode(self.codes, self.scale, self.zero), self.shape, self.layout)

    def int_codes(self) -> torch.Tensor:
        """The codes in the original shape (padding dropped)."""
        return from_groups(self.codes, self.shape, self.layout)

    def stored_bits(self) -> int:
        """Bits of the stored codes, scales and zero points (counted, padding included)."""
        params = self.scale.numel() + (0 if self.zero is None else self.zero.numel())
        return self.codes.numel() * self.bits + params * self.scale_bits


def rtn_quantize(w: torch.Tensor, bits: int, group: int = 0, *, symmetric: bool = True, layout: str = "rows",
                 scale_dtype: torch.dtype | None = None, reciprocal: bool = False) -> Quantized:
    """RTN of `w` in its own dtype (pass w.float() for fp32 arithmetic)."""
    g = to_groups(w, group, layout)
    scale, zero = group_scales(g, bits, symmetric, scale_dtype)
    codes = encode(g, scale, zero, bits, symmetric, reciprocal)
    scale_bits = torch.finfo(scale_dtype or g.dtype).bits
    return Quantized(codes, scale, zero, bits, scale_bits, w.shape, layout)


def rtn(w: torch.Tensor, bits: int, group: int = 0, **options: Any) -> torch.Tensor:
    """Quantize-dequantize (options as `rtn_quantize`)."""
    return rtn_quantize(w, bits, group, **options).dequantize()


def fake_quant(w: torch.Tensor, bits: int, group: int = 0, **options: Any) -> torch.Tensor:
    """Training-time RTN with a straight-through gradient; exact grid values when `w` needs no gradient."""
    q = rtn(w.detach(), bits, group, **options)
    return w + (q - w).detach() if w.requires_grad else q


# --- group-wise RTN of LM linears (fp16 scales and zero points, groups along the flattened weight) -------------

def rtn_groupwise(w: torch.Tensor, bits: int, group: int, symmetric: bool = True) -> tuple[torch.Tensor, float]:
    """Quantize-dequantize `w` in fp32 with fp16 scales (and zero points when asymmetric) per `group` values of the
    flattened tensor; returns (w_hat in w's dtype, stored bits per weight)."""
    q = rtn_quantize(w.detach().float(), bits, group, symmetric=symmetric, layout="flat", scale_dtype=torch.float16)
    return q.dequantize().to(w.dtype), q.stored_bits() / w.numel()


def lm_linear_names(model: nn.Module, prefix: str = "transformer.layers") -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.startswith(prefix)]


@torch.no_grad()
def rtn_(model: nn.Module, bits: int, group: int = 32, symmetric: bool = True,
         names: list[str] | None = None) -> dict[str, Any]:
    """In place on the block linears (embeddings and norms stay fp32). Returns bits/weight and per-tensor error."""
    report: dict[str, Any] = {"method": f"rtn{bits}-{'sym' if symmetric else 'asym'}-g{group}", "tensors": {}}
    total_bits = total = 0.0
    for name in names if names is not None else lm_linear_names(model):
        lin = model.get_submodule(name)
        w = lin.weight.detach().clone()
        deq, bpw = rtn_groupwise(w, bits, group, symmetric)
        lin.weight.copy_(deq)
        rel = float((deq - w).norm() / w.norm().clamp_min(1e-30))
        report["tensors"][name] = {"bits_per_weight": bpw, "rel_error": rel}
        total_bits, total = total_bits + bpw * w.numel(), total + w.numel()
    report.update(bits_per_weight=total_bits / max(total, 1), size_bytes=int(-(-total_bits // 8)), weights=int(total))
    return report
