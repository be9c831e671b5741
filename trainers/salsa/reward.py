"""The programmatic reward of card 05 and the prompts it is scored on.

Reward of one continuation (the `new_tokens` bytes after a prompt, scored on their own): +1 per whole-word Python
keyword from a fixed list, -1 per non-printable byte. Printable: ASCII 0x20-0x7E, tab and newline; any other byte
(control bytes, and every byte of a multi-byte UTF-8 character) is non-printable. A keyword counts when it is not
glued to a letter, digit or underscore on either side inside the continuation.

Prompts are `prompt_len`-byte windows: training prompts are drawn from the training split by a seeded generator,
held-out prompts are evenly spaced windows of the validation split (the same for every arm and seed).
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np
import torch

from models.errors import RecipeError

KEYWORD_LISTS: dict[str, tuple[str, ...]] = {
    "python": ("def", "class", "return", "import", "lambda", "yield", "with", "for"),  # card 05, section 5
}
PRINTABLE = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A}


def keyword_list(name: str) -> tuple[str, ...]:
    """The named keyword list; an unknown name is a one-line RecipeError."""
    if not isinstance(name, str) or name not in KEYWORD_LISTS:
        raise RecipeError(f"reward keyword list {name!r} is unknown", f"use one of: {', '.join(KEYWORD_LISTS)}")
    return KEYWORD_LISTS[name]


@cache
def _pattern(name: str) -> re.Pattern[bytes]:
    words = b"|".join(re.escape(w.encode()) for w in keyword_list(name))
    return re.compile(rb"(?<![A-Za-z0-9_])(?:" + words + rb")(?![A-Za-z0-9_])")


def score(continuation: bytes, keywords: str = "python") -> float:
    """+1 per whole-word keyword, -1 per non-printable byte."""
    hits = len(_pattern(keywords).findall(continuation))
    return float(hits - sum(b not in PRINTABLE for b in continuation))


def score_batch(ids: np.ndarray | torch.Tensor, keywords: str = "python") -> np.ndarray:
    """Rewards (B,) of continuations ids (B, T)."""
    arr = np.asarray(ids.cpu() if isinstance(ids, torch.Tensor) else ids).astype(np.uint8)
    return np.array([score(row.tobytes(), keywords) for row in arr], dtype=np.float64)


def train_prompts(data: np.ndarray, batch: int, prompt_len: int, gen: torch.Generator) -> torch.Tensor:
    """(batch, prompt_len) int64 windows drawn from the training bytes."""
    starts = torch.randint(0, len(data) - prompt_len, (batch,), generator=gen)
    return torch.from_numpy(data.astype(np.int64))[starts[:, None] + torch.arange(prompt_len)]


def heldout_prompts(data: np.ndarray, n: int, prompt_len: int) -> torch.Tensor:
    """(n, prompt_len) int64 evenly spaced windows of the validation bytes."""
    if n * prompt_len > len(data):
        raise RecipeError(f"{n} held-out prompts of {prompt_len} bytes do not fit the {len(data)} validation bytes",
                          "ask for fewer or shorter prompts")
    starts = np.linspace(0, len(data) - prompt_len, n).astype(np.int64)
    return torch.from_numpy(np.stack([data[s:s + prompt_len] for s in starts]).astype(np.int64))
