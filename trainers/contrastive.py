"""Symmetric InfoNCE (CLIP's loss) with a learnable, clipped temperature; used by the CatLIP baseline arm, CLIP with
model-zoo experts and DiffMAViL's audio-video alignment.

logits = s * I T^T with L2-normalised features, s = exp(logit_scale) initialised to 1/0.07 and clipped at 100;
loss = (CE(image -> text) + CE(text -> image)) / 2, the i-th text being the i-th image's positive.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

INIT_TEMPERATURE = 0.07
MAX_SCALE = 100.0


class LogitScale(nn.Module):
    """The learnable s = exp(logit_scale), clamped to at most MAX_SCALE (as CLIP does after each step)."""

    def __init__(self, init_temperature: float = INIT_TEMPERATURE) -> None:
        super().__init__()
        if not 0 < init_temperature <= 1:
            raise ValueError(f"init_temperature={init_temperature} must be in (0, 1]")
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))

    def forward(self) -> torch.Tensor:
        return self.logit_scale.exp().clamp(max=MAX_SCALE)


def similarity_logits(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """(Na, d), (Nb, d) -> (Na, Nb) scaled cosine similarities."""
    return scale * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).t()


def symmetric_info_nce(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """CLIP's loss for a batch of paired embeddings a[i] <-> b[i]."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"paired batches differ in size: {a.shape[0]} vs {b.shape[0]}")
    logits = similarity_logits(a, b, scale)
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
