"""Offline datasets with fixed, hashed splits. numpy only, so profiling children can read them without torch."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

SPLIT_SEED = 0
SPLIT_FRACTIONS = (0.7, 0.15, 0.15)  # train / val / test


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # (N, 1, 8, 8) float32 in [0, 1]
    y: np.ndarray  # (N,) int64


@dataclass(frozen=True)
class ImageDataset:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    split_hash: str  # sha256 over pixels, labels and split indices


def _stratified_indices(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_train = int(round(SPLIT_FRACTIONS[0] * len(idx)))
        n_val = int(round(SPLIT_FRACTIONS[1] * len(idx)))
        for part, chunk in zip(parts, (idx[:n_train], idx[n_train:n_train + n_val], idx[n_train + n_val:])):
            part.append(chunk)
    return tuple(np.sort(np.concatenate(p)) for p in parts)  # type: ignore[return-value]


def load_digits() -> ImageDataset:
    """scikit-learn's 1,797 8x8 digits, scaled to [0, 1], stratified 70/15/15 split with a fixed seed."""
    from sklearn.datasets import load_digits as sk_load_digits

    d = sk_load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = d.target.astype(np.int64)
    tr, va, te = _stratified_indices(y, SPLIT_SEED)
    h = hashlib.sha256()
    for arr in (x, y, tr, va, te):
        h.update(np.ascontiguousarray(arr).tobytes())
    return ImageDataset("digits", Split(x[tr], y[tr]), Split(x[va], y[va]), Split(x[te], y[te]), 10, h.hexdigest())


DATASETS = {"digits": load_digits}


def load_dataset(name: str) -> ImageDataset:
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    return DATASETS[name]()
