"""The one sampling filter (temperature, top-k, top-p -> probabilities) and the samplers built on it, as in mlx-lm's
`sample_utils.py`: a sampler maps last-position logits (B, V) to next ids (B,). Plain generation, every runtime's
loop and the speculative decoder's draft, bonus and acceptance rule all read their distributions from
`filtered_probs`."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch.nn import functional as F

from models.generation.generate import Sampler, greedy

MIN_TEMPERATURE = 1e-3  # a smaller positive temperature overflows logits / T in fp32: use 0 (greedy) instead


def filtered_probs(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """The sampling distribution (..., V) in fp32 after temperature, top-k and top-p; temperature <= 0 gives a one-hot
    argmax. Generation and the speculative decoder's acceptance rule both use it."""
    logits = logits.float()
    if temperature <= 0:
        return F.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    logits = logits / temperature
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.shape[-1]), -1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        srt, idx = logits.sort(-1, descending=True)
        drop = srt.softmax(-1).cumsum(-1) - srt.softmax(-1) > top_p  # keep the smallest prefix reaching top_p
        logits = logits.scatter(-1, idx, srt.masked_fill(drop, float("-inf")))
    return logits.softmax(-1)


def sample(probs: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """One draw per row: probs (..., V) -> ids (...) (a (V,) distribution gives a 0-d id)."""
    return torch.multinomial(probs, 1, generator=gen)[..., 0]


def make_sampler(temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
                 gen: torch.Generator | None = None) -> Sampler:
    """logits (B, V) -> next ids (B,): the argmax for temperature 0, else a draw from `filtered_probs`."""
    if temperature <= 0:
        return greedy
    draw: Callable[[torch.Tensor], torch.Tensor] = lambda logits: sample(  # noqa: E731
        filtered_probs(logits, temperature, top_k, top_p), gen)
    return draw


def check_temperature(temperature: float) -> None:
    """0 means greedy; a positive temperature must be large enough that logits / T stay finite."""
    from models.errors import EdgeZooError

    if not math.isfinite(temperature) or temperature < 0 or 0 < temperature < MIN_TEMPERATURE:
        raise EdgeZooError(f"temperature {temperature:g} cannot be sampled from",
                           f"use 0 for greedy decoding or a temperature of at least {MIN_TEMPERATURE:g}")
