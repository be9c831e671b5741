"""Cross-layer weight sharing (SPIN, arXiv 2207.10237): which unique weight each layer of an isotropic net uses.

D layers, U unique weights, share rate r = D / U, each weight used by exactly r layers (uniform distribution):
- sequential: layer i -> i // r           (0, 0, 1, 1, ...)
- strided:    layer i -> i mod U          (0, 1, ..., U-1, 0, 1, ...)
- random:     a seeded shuffle of the sequential map (stored as a seed in the model args, so a checkpoint
              rebuilds the same map; upstream's random mapping calls a function that does not exist)
"""

from __future__ import annotations

import random

from torch import nn

MAPPINGS = ("sequential", "strided", "random")


def unique_count(depth: int, share: int) -> int:
    """`share` = number of unique weights; 0 means no sharing (one weight per layer)."""
    return depth if share in (0, depth) else share


def layer_map(depth: int, share: int, mapping: str = "sequential", seed: int = 0) -> tuple[int, ...]:
    """Index of the unique weight used by each of `depth` layers."""
    if mapping not in MAPPINGS:
        raise ValueError(f"unknown sharing mapping {mapping!r}; use one of {', '.join(MAPPINGS)}")
    u = unique_count(depth, share)
    if u < 1 or depth % u:
        raise ValueError(f"share={share} must divide depth={depth} (each unique weight serves depth/share layers)")
    if u == depth:
        return tuple(range(depth))  # unshared: identity, whatever the mapping
    r = depth // u
    if mapping == "strided":
        return tuple(i % u for i in range(depth))
    seq = [i // r for i in range(depth)]
    if mapping == "random":
        random.Random(seed).shuffle(seq)
    return tuple(seq)


def groups(mapping: tuple[int, ...]) -> list[list[int]]:
    """Layers that use each unique weight: groups(map)[u] = [i, ...] with map[i] == u."""
    out: list[list[int]] = [[] for _ in range(max(mapping) + 1)]
    for i, u in enumerate(mapping):
        out[u].append(i)
    return out


def unique_parameters(module: nn.Module) -> int:
    """Parameters counted over unique tensors (module.parameters() yields a shared tensor once)."""
    return sum(p.numel() for p in module.parameters())
