"""A small bag-of-words text encoder for CLIP-style training on templated captions (cards 07, 08, 12).

Captions are lower-cased and split on non-letters; each known word maps to an id (0 is padding / unknown). The encoder
averages word embeddings over the caption's known words (an EmbeddingBag-style masked mean) and projects them.
Export: only token ids go in; zero-shot on device uses precomputed prompt embeddings (card 08, section 6).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from torch import nn

PAD = 0
_WORD = re.compile(r"[a-z]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class WordTokenizer:
    """A fixed vocabulary of words -> ids 1..V (0 = padding and unknown words)."""

    def __init__(self, vocabulary: Iterable[str]) -> None:
        self.vocab = {w: i + 1 for i, w in enumerate(sorted(set(vocabulary)))}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> "WordTokenizer":
        return cls(w for t in texts for w in words(t))

    def __len__(self) -> int:
        return len(self.vocab) + 1

    def encode(self, texts: Sequence[str], max_words: int = 16) -> torch.Tensor:
        """(N, max_words) int64 ids, padded with 0; words past max_words are dropped."""
        if max_words < 1:
            raise ValueError(f"max_words={max_words} must be >= 1")
        ids = torch.zeros(len(texts), max_words, dtype=torch.int64)
        for i, text in enumerate(texts):
            known = [self.vocab[w] for w in words(text) if w in self.vocab][:max_words]
            ids[i, :len(known)] = torch.tensor(known, dtype=torch.int64)
        return ids


@dataclass
class BagOfWordsArgs:
    vocab_size: int = 128
    dim: int = 64
    embed_dim: int = 64

    @classmethod
    def tiny(cls) -> "BagOfWordsArgs":
        return cls(vocab_size=32, dim=8, embed_dim=8)


class BagOfWordsEncoder(nn.Module):
    def __init__(self, args: BagOfWordsArgs) -> None:
        super().__init__()
        if min(args.vocab_size, args.dim, args.embed_dim) < 1:
            raise ValueError(f"BagOfWordsArgs sizes must be >= 1, got {args}")
        self.args = args
        self.embed = nn.Embedding(args.vocab_size, args.dim, padding_idx=PAD)
        self.proj = nn.Sequential(nn.LayerNorm(args.dim), nn.Linear(args.dim, args.embed_dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) word ids -> (B, embed_dim); a caption with no known word embeds as the projection of zeros."""
        known = (ids != PAD).to(torch.float32).unsqueeze(-1)                # (B, L, 1)
        mean = (self.embed(ids) * known).sum(1) / known.sum(1).clamp(min=1.0)
        return self.proj(mean)
