"""Offline datasets with fixed, hashed splits. numpy only, so profiling children can read them without torch."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Callable

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


def upsample2x(x: np.ndarray) -> np.ndarray:
    """Bilinear 2x upsampling of (N, C, H, W) images, as torch's interpolate(align_corners=False)."""
    def weights(n: int) -> np.ndarray:  # (2n, n): output row i mixes source rows lo and lo + 1
        src = np.clip((np.arange(2 * n) + 0.5) / 2 - 0.5, 0, n - 1)
        lo = np.floor(src).astype(int)
        w = np.zeros((2 * n, n), np.float32)
        np.add.at(w, (np.arange(2 * n), lo), 1 - (src - lo))
        np.add.at(w, (np.arange(2 * n), np.minimum(lo + 1, n - 1)), src - lo)
        return w

    return np.einsum("ih,nchw,jw->ncij", weights(x.shape[2]), x, weights(x.shape[3])).astype(np.float32)


def resize_bilinear(x: np.ndarray, height: int, width: int | None = None) -> np.ndarray:
    """(N, C, H, W) images resized to (height, width): bilinear, half-pixel centres, edges clamped, no antialias
    (torch's interpolate(mode="bilinear", align_corners=False) and grid_sample(padding_mode="border"))."""
    width = height if width is None else width

    def taps(out: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(out) + 0.5) * size / out - 0.5, 0, size - 1)
        lo = np.floor(pos).astype(np.int64)
        return lo, np.minimum(lo + 1, size - 1), (pos - lo).astype(np.float32)

    (y0, y1, fy), (x0, x1, fx) = taps(height, x.shape[2]), taps(width, x.shape[3])
    rows = x[:, :, y0] * (1 - fy)[:, None] + x[:, :, y1] * fy[:, None]      # (N, C, height, W)
    return (rows[..., x0] * (1 - fx) + rows[..., x1] * fx).astype(np.float32)  # (N, C, height, width)


def _resized_digits(name: str, resize: Callable[[np.ndarray], np.ndarray]) -> ImageDataset:
    """The digits through `resize`, a stratified 1,200 / 300 / 297 split with a fixed seed (cards 09 and 11)."""
    from sklearn.model_selection import train_test_split

    std = load_digits()
    x = resize(np.concatenate([std.train.x, std.val.x, std.test.x]))
    y = np.concatenate([std.train.y, std.val.y, std.test.y])
    tr, rest = train_test_split(np.arange(len(y)), train_size=1200, stratify=y, random_state=SPLIT_SEED)
    va, te = train_test_split(rest, train_size=300, stratify=y[rest], random_state=SPLIT_SEED)
    tr, va, te = np.sort(tr), np.sort(va), np.sort(te)
    h = hashlib.sha256(std.split_hash.encode())
    for arr in (x, tr, va, te):
        h.update(np.ascontiguousarray(arr).tobytes())
    return ImageDataset(name, Split(x[tr], y[tr]), Split(x[va], y[va]), Split(x[te], y[te]), std.num_classes,
                        h.hexdigest())


def load_digits16() -> ImageDataset:
    """The digits upsampled to 16x16 (bilinear), a stratified 1,200 / 300 / 297 split with a fixed seed (card 09)."""
    return _resized_digits("digits16", upsample2x)


def load_digits32() -> ImageDataset:
    """The digits upsampled to 32x32 (bilinear), the same 1,200 / 300 / 297 split (card 11, multi-scale samplers)."""
    return _resized_digits("digits32", lambda x: resize_bilinear(x, 32))


def load_av_digits_audio() -> ImageDataset:
    """The spectrograms of card 12's synthetic audio-video digits with their labels (trainers/diffmavil/data.py)."""
    from trainers.diffmavil.data import load_av_audio

    return load_av_audio()


def load_scenes(attribute: str) -> ImageDataset:
    """Procedural captioned scenes labelled by one attribute: shape, colour or digit (trainers/scenes.py)."""
    from trainers.scenes import attribute_dataset

    return attribute_dataset(attribute)


def load_scenes_front() -> ImageDataset:
    """Card 08's test scenes labelled by their front object's zero-shot prompt (trainers/clip_experts/student.py)."""
    from trainers.clip_experts.student import front_object_dataset

    return front_object_dataset()


SCENE_DATASETS = {f"scenes_{a}": functools.partial(load_scenes, a) for a in ("shape", "colour", "digit")}
DATASETS = {"digits": load_digits, "digits16": load_digits16, "digits32": load_digits32, **SCENE_DATASETS,
            "av_digits_audio": load_av_digits_audio, "scenes_front": load_scenes_front}


def load_dataset(name: str) -> ImageDataset:
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    return DATASETS[name]()
