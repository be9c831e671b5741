"""Group-wise round-to-nearest for LM linears in torch (the SeedLM comparators and the LM's int8/int4 specs).

Honest bits: symmetric stores one fp16 scale per group (bits + 16/group); asymmetric one fp16 scale and one fp16
zero point (bits + 32/group). Scales and zeros are rounded to fp16 before use, as stored.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def rtn_groupwise(w: torch.Tensor, bits: int, group: int, symmetric: bool = True) -> tuple[torch.Tensor, float]:
    """Quantize-dequantize `w` (out, in) along rows in groups of `group`; returns (w_hat, bits per weight)."""
    flat = w.detach().float().reshape(-1)
    pad = (-flat.numel()) % group
    g = torch.cat([flat, flat.new_zeros(pad)]).reshape(-1, group)
    if symmetric:
        qmax = 2 ** (bits - 1) - 1
        scale = (g.abs().amax(1, keepdim=True) / qmax).clamp_min(1e-8).half().float()
        deq = (g / scale).round().clamp(-qmax - 1, qmax) * scale
        overhead = 16
    else:
        levels = 2 ** bits - 1
        lo, hi = g.amin(1, keepdim=True), g.amax(1, keepdim=True)
        scale = ((hi - lo) / levels).clamp_min(1e-8).half().float()
        zero = lo.half().float()
        deq = ((g - zero) / scale).round().clamp(0, levels) * scale + zero
        overhead = 32
    n_groups = g.shape[0]
    bpw = (g.numel() * bits + n_groups * overhead) / flat.numel()
    return deq.reshape(-1)[: flat.numel()].reshape(w.shape).to(w.dtype), bpw


def lm_linear_names(model: nn.Module, prefix: str = "transformer.layers") -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.startswith(prefix)]


@torch.no_grad()
def rtn_(model: nn.Module, bits: int, group: int = 32, symmetric: bool = True, names: list[str] | None = None) -> dict[str, Any]:
    """In place on the block linears (embeddings and norms stay fp32). Returns bits/weight and per-tensor error."""
    report: dict[str, Any] = {"method": f"rtn{bits}-{'sym' if symmetric else 'asym'}-g{group}", "tensors": {}}
    total_bits = total = 0.0
    for name in names if names is not None else lm_linear_names(model):
        lin = model.get_submodule(name)
        w = lin.weight.detach().clone()
        deq, bpw = rtn_groupwise(w, bits, group, symmetric)
        lin.weight.copy_(deq)
        report["tensors"][name] = {"bits_per_weight": bpw, "rel_error": float((deq - w).norm() / w.norm().clamp_min(1e-30))}
        total_bits, total = total_bits + bpw * w.numel(), total + w.numel()
    report.update(bits_per_weight=total_bits / max(total, 1), size_bytes=int(-(-total_bits // 8)), weights=int(total))
    return report
