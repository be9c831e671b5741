"""RangeAugment (Mehta et al., arXiv 2212.10553): an augmentor whose magnitude ranges are learned, and the
image-similarity loss L_NA that drives the augmented batch towards a target PSNR.

Inputs are images in [0, 1] (no mean/std normalisation before the augmentor). Each operation has a learnable range
[lo, hi], lo = a + (b - a) sigmoid(_low), hi = c + (d - c) sigmoid(_high), and draws m = lo + u (hi - lo),
u ~ U(0, 1), per sample. Each call shuffles the operation order, applies each operation to a fresh random half of
the batch and clips to [0, 1]. The augmentor is active in training mode only. Attribute and parameter names follow
corenet's `DistributionNeuralAugmentor` (`brightness._low`, ...); noise's m is a standard deviation.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

PIXEL = 255.0
MAX_MSE = PIXEL ** 2  # 65025: the largest per-pixel squared error of 8-bit images
OPS = ("brightness", "contrast", "noise")
# per operation: lo bounds (a, b), hi bounds (c, d), initial raw logits (_low, _high), as upstream
RANGES: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "brightness": ((0.1, 0.9), (1.1, 10.0), (0.5, 1.5)),
    "contrast": ((0.1, 0.9), (1.1, 10.0), (0.5, 1.5)),
    "noise": ((0.0, 5e-5), (1e-4, 1.0), (0.0, 0.1)),
}


class UniformRange(nn.Module):
    """A learnable range [lo, hi] (bounded by sigmoids of 0-d raw logits) and per-sample draws from it."""

    def __init__(self, lo_bounds: tuple[float, float], hi_bounds: tuple[float, float],
                 init: tuple[float, float]) -> None:
        super().__init__()
        self.lo_bounds, self.hi_bounds = lo_bounds, hi_bounds
        self._low = nn.Parameter(torch.tensor(float(init[0])))
        self._high = nn.Parameter(torch.tensor(float(init[1])))

    @property
    def low(self) -> torch.Tensor:
        a, b = self.lo_bounds
        return a + (b - a) * torch.sigmoid(self._low)

    @property
    def high(self) -> torch.Tensor:
        c, d = self.hi_bounds
        return c + (d - c) * torch.sigmoid(self._high)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, 1, 1, 1) magnitudes m = lo + u (hi - lo), differentiable in the range."""
        u = torch.rand(n, 1, 1, 1, generator=generator, device=self._low.device)
        return self.low + u * (self.high - self.low)


def brightness(x: torch.Tensor, m: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return m * x


def contrast(x: torch.Tensor, m: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return (1.0 - m) * x.mean(dim=(-2, -1), keepdim=True) + m * x  # mean per image and channel


def noise(x: torch.Tensor, m: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return x + m * torch.randn(x.shape, generator=generator, device=x.device)


APPLY: dict[str, Callable[..., torch.Tensor]] = {"brightness": brightness, "contrast": contrast, "noise": noise}


class RangeAugmentor(nn.Module):
    """Brightness, contrast and noise with learned ranges, on the batch, in training mode only. `generator` (set by
    the trainer) makes the draws reproducible without touching the global random state."""

    def __init__(self, ops: tuple[str, ...] = OPS) -> None:
        super().__init__()
        unknown = [op for op in ops if op not in RANGES]
        if unknown or not ops or len(set(ops)) != len(ops):
            raise ValueError(f"augmentor operations {list(ops)} must be distinct names from {list(OPS)}")
        self.ops = tuple(ops)
        for op in self.ops:
            self.add_module(op, UniformRange(*RANGES[op]))
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        n, gen = max(1, x.shape[0] // 2), self.generator
        for i in torch.randperm(len(self.ops), generator=gen).tolist():  # a fresh operation order each call
            op = self.ops[i]
            idx = torch.randperm(x.shape[0], generator=gen)[:n].to(x.device)  # a fresh half of the batch
            part = APPLY[op](x.index_select(0, idx), getattr(self, op).sample(n, gen), gen)
            x = x.index_copy(0, idx, part)
        return x.clamp(0.0, 1.0)

    @torch.no_grad()
    def ranges(self) -> dict[str, float]:
        """The current ranges as plain numbers: {"brightness_lo": ..., "brightness_hi": ..., ...}."""
        out: dict[str, float] = {}
        for op in self.ops:
            r = getattr(self, op)
            out[f"{op}_lo"], out[f"{op}_hi"] = float(r.low), float(r.high)
        return out


def psnr_to_mse(psnr: float) -> float:
    """Per-pixel MSE on the 0-255 scale at a given PSNR: 10^((20 log10 255 - PSNR) / 10)."""
    return 10.0 ** ((20.0 * math.log10(PIXEL) - psnr) / 10.0)


def mse_to_psnr(mse: float) -> float:
    """PSNR (dB) of a per-pixel MSE on the 0-255 scale; infinite for an untouched image."""
    return math.inf if mse <= 0 else 20.0 * math.log10(PIXEL) - 10.0 * math.log10(mse)


def per_sample_mse(x: torch.Tensor, x_aug: torch.Tensor) -> torch.Tensor:
    """(B,) mean over C, H, W of (255 (x' - x))^2."""
    return ((PIXEL * (x_aug - x)) ** 2).mean(dim=(1, 2, 3))


def cosine_curriculum(start_psnr: float, end_psnr: float, period: int) -> torch.Tensor:
    """Target MSE for steps 0..period, cosine in MSE space: end + (start - end)(1 + cos(pi i / (period + 1))) / 2.
    Callers keep the last value after `period` steps."""
    start, end = psnr_to_mse(start_psnr), psnr_to_mse(end_psnr)
    i = torch.arange(period + 1, dtype=torch.float64)
    return (end + 0.5 * (start - end) * (1.0 + torch.cos(math.pi * i / (period + 1)))).float()


def na_loss(mse: torch.Tensor, target_mse: float, alpha: float = 100.0) -> torch.Tensor:
    """L_NA = alpha / 65025 * mean_i SmoothL1(MSE_i, MSE*) (effectively L1 at these magnitudes)."""
    target = torch.full_like(mse, float(target_mse))
    return (alpha / MAX_MSE) * nn.functional.smooth_l1_loss(mse, target)
