"""Text data for the byte-level LM: the standard library's `pydoc_data.topics`, offline and fixed.

Tokenizer choice: bytes (vocabulary 256). The OpenELM card's small-scale claim and the SeedLM card's experiment are
stated in validation *bits per byte* on a byte vocabulary; a byte tokenizer has no training step, no file to ship,
no out-of-vocabulary case, and makes bpb = loss / ln 2 exactly (a BPE model would need a tokens-to-bytes
conversion and a tokenizer artefact that itself depends on the split). Published OpenELM checkpoints use the
Llama-2 tokenizer, which is not bundled and is never downloaded here.

Split: the topic texts joined in sorted-key order, UTF-8 encoded; the first 90 % of bytes train, the last 10 %
validate (a contiguous tail, so no validation text leaks into training windows). Byte count and sha256 are recorded.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch

VOCAB_SIZE = 256
SEPARATOR = "\n\n"


@dataclass(frozen=True)
class TextCorpus:
    train: np.ndarray  # uint8 bytes
    val: np.ndarray
    n_bytes: int
    sha256: str
    name: str = "pydoc_data.topics"

    def info(self) -> dict[str, object]:
        return {"dataset": self.name, "bytes": self.n_bytes, "sha256": self.sha256, "train_bytes": len(self.train),
                "val_bytes": len(self.val), "tokenizer": "bytes", "vocab_size": VOCAB_SIZE}


def corpus_bytes() -> bytes:
    from pydoc_data.topics import topics

    return SEPARATOR.join(topics[k] for k in sorted(topics)).encode("utf-8")


def load_text(val_fraction: float = 0.1) -> TextCorpus:
    raw = corpus_bytes()
    arr = np.frombuffer(raw, dtype=np.uint8).copy()
    cut = int(len(arr) * (1.0 - val_fraction))
    return TextCorpus(arr[:cut], arr[cut:], len(arr), hashlib.sha256(raw).hexdigest())


def encode(text: str) -> list[int]:
    return list(text.encode("utf-8"))


def decode(ids: list[int] | np.ndarray | torch.Tensor) -> str:
    return bytes(int(i) for i in ids).decode("utf-8", errors="replace")


def random_windows(data: np.ndarray, batch: int, context: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) int64 (batch, context): random windows and their next-byte targets."""
    starts = torch.randint(0, len(data) - context - 1, (batch,), generator=gen)
    idx = starts[:, None] + torch.arange(context + 1)
    seq = torch.from_numpy(data.astype(np.int64))[idx]
    return seq[:, :-1], seq[:, 1:]


def eval_windows(data: np.ndarray, context: int, max_windows: int | None = None) -> torch.Tensor:
    """Non-overlapping windows (n, context + 1) covering `data` (every byte predicted once, from a fresh context)."""
    n = (len(data) - 1) // context
    n = n if max_windows is None else min(n, max_windows)
    t = torch.from_numpy(data[: n * context + 1].astype(np.int64))
    return torch.stack([t[i * context: i * context + context + 1] for i in range(n)])


def unigram_bpb(train: np.ndarray, val: np.ndarray) -> float:
    """Baseline: bits per byte of the validation bytes under add-one-smoothed training byte frequencies."""
    counts = np.bincount(train, minlength=VOCAB_SIZE).astype(np.float64) + 1.0
    logp = np.log2(counts / counts.sum())
    return float(-logp[val].mean())


def bits_per_byte(nll_nats: float) -> float:
    return nll_nats / math.log(2)
