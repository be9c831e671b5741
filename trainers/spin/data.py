"""The SPIN card's split: scikit-learn digits upsampled to 16x16 (nearest), 500 train (stratified, a reduced set
for headroom), 300 validation, the remaining 997 for test. Fixed seed, so every arm and seed sees the same split."""

from __future__ import annotations

import numpy as np

from trainers.data import Split

SPLIT_SEED = 0
N_TRAIN, N_VAL = 500, 300


def _stratified_take(y: np.ndarray, pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n indices from `pool`, per class in proportion to its share of the pool (largest remainders)."""
    labels, counts = np.unique(y[pool], return_counts=True)
    exact = counts * n / len(pool)
    take = np.floor(exact).astype(int)
    take[np.argsort(-(exact - take))[: n - take.sum()]] += 1
    return np.sort(np.concatenate([rng.permutation(pool[y[pool] == c])[:k] for c, k in zip(labels, take)]))


def load_digits16() -> tuple[Split, Split, Split]:
    """(train, val, test) splits of (N, 1, 16, 16) float32 images in [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0).repeat(2, axis=1).repeat(2, axis=2)[:, None]  # (N, 1, 16, 16)
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(SPLIT_SEED)
    every = np.arange(len(y))
    train = _stratified_take(y, every, N_TRAIN, rng)
    rest = np.setdiff1d(every, train)
    val = _stratified_take(y, rest, N_VAL, rng)
    test = np.setdiff1d(rest, val)
    return tuple(Split(np.ascontiguousarray(x[i]), y[i]) for i in (train, val, test))  # type: ignore[return-value]
