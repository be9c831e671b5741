"""Synthetic paired audio-video digits (card 12, section 5), numpy only so profiling children can read them.

A clip is a digit class c, a video and an "audio" spectrogram that both follow one motion:
- video (4, 16, 16): an 8x8 sklearn digit glyph of class c moving by a fixed step (dx, dy) in {-2..2}^2 \\ {0}
  per frame (kept inside the frame), plus Gaussian noise;
- audio (1, 16, 32) (frequency x time): class-coded bands (bins c and c + 6) at random strengths, two distractor
  bins of random other frequencies, all shaped by one temporal envelope that follows the glyph's horizontal
  position (interpolated across the 8 time steps of each frame), plus Gaussian noise.
Both modalities are then standardised with the training clips' global mean and std.

Glyphs come from the digits' fixed stratified split (trainers.data): training clips use training glyphs, test clips
test glyphs, so the test set is held out in glyph instances, not only in noise. One generator seed makes all
4,500 clips: 3,000 train / 1,000 test (the card) and 500 validation clips (static-quantization calibration only).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np

from trainers.data import ImageDataset, Split, load_digits

GENERATOR_SEED = 12
SIZES = {"train": 3000, "test": 1000, "val": 500}
FRAMES, FRAME_SIZE, GLYPH = 4, 16, 8
FREQ_BINS, TIME_STEPS = 16, 32
BAND_OFFSET = 6          # class c lights bins c and c + 6 (10 classes, 16 bins)
DISTRACTORS = 2          # bins of other frequencies lit at random strengths, following the same envelope
AUDIO_NOISE, VIDEO_NOISE = 0.25, 0.1
MAX_STEP = 2             # pixels per frame along each axis


@dataclass(frozen=True)
class Clips:
    video: np.ndarray  # (N, 4, 16, 16) float32
    audio: np.ndarray  # (N, 1, 16, 32) float32
    y: np.ndarray      # (N,) int64


@dataclass(frozen=True)
class AVDigits:
    train: Clips
    val: Clips
    test: Clips
    num_classes: int
    split_hash: str


def _trajectory(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners (x, y) of the glyph in the 4 frames: a random nonzero step, a start that keeps it inside."""
    while True:
        step = rng.integers(-MAX_STEP, MAX_STEP + 1, size=2)
        if step.any():
            break
    room = FRAME_SIZE - GLYPH
    travel = (FRAMES - 1) * step
    start = np.array([rng.integers(max(0, -t), room - max(0, t) + 1) for t in travel])
    corners = start[None, :] + np.arange(FRAMES)[:, None] * step[None, :]  # (4, 2)
    return corners[:, 0], corners[:, 1]


def _envelope(xs: np.ndarray) -> np.ndarray:
    """(32,) loudness following the horizontal position: 0.25 at the left edge, 1.0 at the right, linear in
    time between frame centres."""
    level = 0.25 + 0.75 * xs / (FRAME_SIZE - GLYPH)
    centres = (np.arange(FRAMES) + 0.5) * TIME_STEPS / FRAMES
    return np.interp(np.arange(TIME_STEPS) + 0.5, centres, level)


def _clip(glyph: np.ndarray, label: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = _trajectory(rng)
    video = np.zeros((FRAMES, FRAME_SIZE, FRAME_SIZE), np.float64)
    for f in range(FRAMES):
        video[f, ys[f]:ys[f] + GLYPH, xs[f]:xs[f] + GLYPH] = glyph
    video += VIDEO_NOISE * rng.standard_normal(video.shape)
    env = _envelope(xs)
    audio = np.zeros((FREQ_BINS, TIME_STEPS), np.float64)
    for b in (label, label + BAND_OFFSET):
        audio[b] += rng.uniform(0.5, 1.0) * env
    others = np.setdiff1d(np.arange(FREQ_BINS), [label, label + BAND_OFFSET])
    for b in rng.choice(others, DISTRACTORS, replace=False):
        audio[b] += rng.uniform(0.5, 1.0) * env
    audio += AUDIO_NOISE * rng.standard_normal(audio.shape)
    return video.astype(np.float32), audio[None].astype(np.float32)


def make_clips(glyphs: np.ndarray, glyph_labels: np.ndarray, n: int, rng: np.random.Generator) -> Clips:
    """n clips, classes balanced (shuffled), each drawing a random glyph of its class from `glyphs` (N, 8, 8)."""
    y = rng.permutation(np.arange(n) % 10).astype(np.int64)
    by_class = [np.flatnonzero(glyph_labels == c) for c in range(10)]
    video, audio = [], []
    for label in y:
        glyph = glyphs[rng.choice(by_class[label])]
        v, a = _clip(glyph, int(label), rng)
        video.append(v)
        audio.append(a)
    return Clips(np.stack(video), np.stack(audio), y)


def standardized(parts: dict[str, Clips], ref: Clips) -> dict[str, Clips]:
    """Each modality shifted and scaled by the training clips' global mean and std (as AudioMAE normalises its
    log-mel input with dataset statistics): inputs of unit scale for the patch embeddings."""
    stats = {k: (float(getattr(ref, k).mean()), float(getattr(ref, k).std())) for k in ("video", "audio")}
    return {name: Clips(*(((getattr(c, k) - stats[k][0]) / stats[k][1]).astype(np.float32) for k in stats), c.y)
            for name, c in parts.items()}


@functools.lru_cache(maxsize=2)
def load_av_digits(seed: int = GENERATOR_SEED) -> AVDigits:
    """The card's clips from one generator seed (cached per process)."""
    digits = load_digits()
    rng = np.random.default_rng(seed)
    parts = {name: make_clips(getattr(digits, name).x[:, 0], getattr(digits, name).y, n, rng)
             for name, n in SIZES.items()}
    parts = standardized(parts, parts["train"])
    h = hashlib.sha256(digits.split_hash.encode())
    for part in parts.values():
        for arr in (part.video, part.audio, part.y):
            h.update(np.ascontiguousarray(arr).tobytes())
    return AVDigits(parts["train"], parts["val"], parts["test"], 10, h.hexdigest())


def subset(data: AVDigits, n_train: int, n_test: int | None = None) -> AVDigits:
    """The first n_train training clips (and n_test test clips): quick runs on fewer clips, same generator."""
    def head(c: Clips, n: int | None) -> Clips:
        return Clips(c.video[:n], c.audio[:n], c.y[:n])

    return AVDigits(head(data.train, n_train), data.val, head(data.test, n_test), data.num_classes, data.split_hash)


def load_av_audio() -> ImageDataset:
    """The clips' spectrograms (N, 1, 16, 32) with their digit labels: what the deployed audio encoder classifies."""
    d = load_av_digits()
    return ImageDataset("av_digits_audio", *(Split(c.audio, c.y) for c in (d.train, d.val, d.test)),
                        d.num_classes, d.split_hash)
