"""One KV-cache protocol (mlx-lm's `models/cache.py` keeps it per layer inside attention; here it sits around a
whole-model `forward_cached(tokens, past, pad) -> (logits, past + new)`), and the plain full-precision cache.

A cache exposes `view()` (the `past` the model attends to, None when empty), `append(new, n)` (keep the last n
entries of each layer's K/V that a forward pass returned), `len()` (committed entries) and `truncate(length)` (drop
entries past `length`, e.g. rejected draft tokens). `FpKVCache` implements it for plain decoding;
`models.kv_quant.HierarchicalKVCache` (QuantSpec's 8-bit cache, read as x4 or x8) implements it too.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

KVCache = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (k, v): (B, n_kv_i, L, d_head), keys rotated


@runtime_checkable
class Cache(Protocol):
    def __len__(self) -> int: ...

    def view(self) -> KVCache | None: ...

    def append(self, new: KVCache, n: int) -> None: ...

    def truncate(self, length: int) -> None: ...


class FpKVCache:
    """The plain cache: the full-precision K/V of every entry, in the model's dtype."""

    def __init__(self) -> None:
        self.kv: KVCache | None = None

    def __len__(self) -> int:
        return 0 if self.kv is None else self.kv[0][0].shape[2]

    def view(self) -> KVCache | None:
        return self.kv

    def append(self, new: KVCache, n: int) -> None:
        if new[0][0].shape[2] == len(self) + n:  # a pass over this whole cache returned past + new: keep it as is
            self.kv = new
            return
        tails = [(k[:, :, k.shape[2] - n:], v[:, :, v.shape[2] - n:]) for k, v in new]  # (B, H, n, D)
        self.kv = tails if self.kv is None else [(torch.cat([k, nk], 2), torch.cat([v, nv], 2))
                                                 for (k, v), (nk, nv) in zip(self.kv, tails)]

    def truncate(self, length: int) -> None:
        if self.kv is not None:
            self.kv = [(k[:, :, :length], v[:, :, :length]) for k, v in self.kv]
