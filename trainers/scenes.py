"""Procedural captioned scenes for the image-text papers (CatLIP card 07, CLIP with model-zoo experts card 08).

A 32x32 RGB scene holds 1-3 shapes (circle, square, triangle) in random colours, sizes, positions and depth order,
drawn far to near so nearer shapes occlude farther ones, optionally with an sklearn digit glyph pasted on top, over a
dark noisy background or a crop of `sklearn.datasets.load_sample_images` (texture). Ground truth comes with it: a
semantic mask (0 background, 1-3 shape, 4 glyph), a depth map (1.0 = background; nearer is smaller, and nearer shapes
tend to be larger, so "larger is nearer" is an informative but imperfect cue) and the front shape's attributes.

Captions are templated and partly noisy. Style "catlip": web-like alt text ("a photo of a red square next to a seven,
blurry background"); a fraction carries no useful noun, some carry irrelevant nouns. Style "depth": depth-ordered
("a red circle in front of a blue square"). numpy only, deterministic in the seed; glyphs come from one split of the
digits so test scenes never reuse training glyphs.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

SIZE = 32
SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")
RGB = np.array([[0.9, 0.15, 0.1], [0.15, 0.8, 0.2], [0.15, 0.3, 0.95], [0.95, 0.9, 0.15], [0.6, 0.2, 0.8],
                [1.0, 0.55, 0.05]], np.float32)
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GLYPH_CLASS = 1 + len(SHAPES)     # mask value of digit-glyph pixels
SEG_CLASSES = GLYPH_CLASS + 1     # background, three shapes, glyph
STYLES = ("catlip", "depth")

NO_NOUN_CAPTIONS = ("an image", "nice one", "so pretty", "taken yesterday", "free to use", "wow, just wow",
                    "my favourite", "look at this")
EXTRAS = ("", "", "blurry background", "on a table", "taken with my camera", "stock photo", "in the sky",
          "hd wallpaper")


@dataclass(frozen=True)
class Scenes:
    images: np.ndarray            # (N, 3, 32, 32) float32 in [0, 1]
    masks: np.ndarray             # (N, 32, 32) int64: 0 background, 1..3 shape (SHAPES order), 4 digit glyph
    depth: np.ndarray             # (N, 32, 32) float32: 1.0 background, smaller = nearer
    shape: np.ndarray             # (N,) int64 front (nearest) shape's index in SHAPES
    colour: np.ndarray            # (N,) int64 front shape's index in COLOURS
    digit: np.ndarray             # (N,) int64 pasted digit, -1 when none
    captions: tuple[str, ...]
    objects: tuple[tuple[tuple[int, int, float], ...], ...]  # per scene (shape, colour, depth), nearest first

    def __len__(self) -> int:
        return len(self.captions)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)  # (ys, xs)


def shape_mask(kind: int, cy: float, cx: float, r: float) -> np.ndarray:
    """(32, 32) bool footprint of a shape of radius r centred at (cy, cx)."""
    ys, xs = _grid()
    if SHAPES[kind] == "circle":
        return (ys - cy) ** 2 + (xs - cx) ** 2 <= r * r
    if SHAPES[kind] == "square":
        h = 0.85 * r
        return (np.abs(ys - cy) <= h) & (np.abs(xs - cx) <= h)
    top, bottom = cy - r, cy + 0.8 * r  # upward triangle: width grows linearly from the apex
    return (ys >= top) & (ys <= bottom) & (np.abs(xs - cx) <= (ys - top) * r / (bottom - top))


def _glyphs(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Digit glyphs of one split (trainers.data's fixed split), upsampled to 12x12 in [0, 1]."""
    from trainers.data import load_digits, resize_bilinear

    part = getattr(load_digits(), split)
    return resize_bilinear(part.x, 12)[:, 0], part.y


def _backgrounds(rng: np.random.Generator, n: int, texture: bool) -> np.ndarray:
    noise = rng.normal(0.0, 0.04, (n, 3, SIZE, SIZE)).astype(np.float32)
    if not texture:
        return np.clip(0.12 + noise, 0, 1)
    from sklearn.datasets import load_sample_images

    photos = [np.asarray(im, np.float32).transpose(2, 0, 1) / 255.0 for im in load_sample_images().images]
    out = np.empty((n, 3, SIZE, SIZE), np.float32)
    for i in range(n):
        p = photos[rng.integers(len(photos))]
        y, x = rng.integers(0, p.shape[1] - 4 * SIZE), rng.integers(0, p.shape[2] - 4 * SIZE)
        out[i] = p[:, y:y + 4 * SIZE:4, x:x + 4 * SIZE:4] * 0.45  # dimmed so shapes stand out
    return np.clip(out + noise, 0, 1)


def _caption(rng: np.random.Generator, objs: list[tuple[int, int, float]], digit: int, style: str,
             noise: float) -> str:
    return re.sub(r"\ba (?=[aeiou])(?!one\b)", "an ", _caption_words(rng, objs, digit, style, noise))


def _caption_words(rng: np.random.Generator, objs: list[tuple[int, int, float]], digit: int, style: str,
                   noise: float) -> str:
    def name(o: tuple[int, int, float]) -> str:
        s, c = o[0], o[1]
        if rng.random() < noise:  # a noisy caption names a wrong colour or shape
            s, c = (rng.integers(len(SHAPES)), c) if rng.random() < 0.5 else (s, rng.integers(len(COLOURS)))
        return f"{COLOURS[c]} {SHAPES[s]}"

    if style == "depth":
        text = f"a {name(objs[0])}"
        if len(objs) > 1:
            text += f" in front of a {name(objs[1])}"
        if len(objs) > 2:
            text += f" and a {name(objs[2])}"
        return text
    if rng.random() < 0.1:
        return str(rng.choice(NO_NOUN_CAPTIONS))
    text = f"a photo of a {name(objs[0])}" if rng.random() < 0.6 else f"{name(objs[0])}"
    if digit >= 0 and rng.random() < 0.85:
        text += f" next to a {DIGIT_WORDS[digit]}"
    elif len(objs) > 1:
        text += f" and a {name(objs[1])}"
    extra = str(rng.choice(EXTRAS))
    return f"{text}, {extra}" if extra else text


def make_scenes(n: int, seed: int, *, glyph_split: str = "train", digit_prob: float = 0.5,
                texture: bool = False, style: str = "catlip", caption_noise: float = 0.1) -> Scenes:
    """`n` scenes from generator seed `seed` (deterministic). Glyphs are drawn from `glyph_split` of the digits."""
    if n < 1:
        raise ValueError(f"n={n} must be >= 1")
    if style not in STYLES:
        raise ValueError(f"style={style!r} is unknown; use one of {STYLES}")
    if not (0 <= digit_prob <= 1 and 0 <= caption_noise <= 1):
        raise ValueError(f"digit_prob={digit_prob} and caption_noise={caption_noise} must be in [0, 1]")
    rng = np.random.default_rng(seed)
    glyphs, glyph_labels = _glyphs(glyph_split) if digit_prob > 0 else (None, None)
    images = _backgrounds(rng, n, texture)
    masks = np.zeros((n, SIZE, SIZE), np.int64)
    depth = np.ones((n, SIZE, SIZE), np.float32)
    front_shape, front_colour, digits = (np.empty(n, np.int64) for _ in range(3))
    captions, objects = [], []
    for i in range(n):
        k = int(rng.integers(1, 4))
        d = np.sort(rng.uniform(0.2, 0.9, k))[::-1]            # far to near
        objs = []
        for depth_value in d:
            s, c = int(rng.integers(len(SHAPES))), int(rng.integers(len(COLOURS)))
            r = float(np.clip(9.5 - 7.0 * depth_value + rng.normal(0, 1.0), 3.0, 9.0))  # nearer tends larger
            fp = shape_mask(s, rng.uniform(r, SIZE - r), rng.uniform(r, SIZE - r), r)
            images[i][:, fp] = RGB[c][:, None] * rng.uniform(0.85, 1.0)
            masks[i][fp], depth[i][fp] = 1 + s, depth_value
            objs.append((s, c, float(depth_value)))
        objs.reverse()                                          # nearest first
        digits[i] = -1
        if glyphs is not None and rng.random() < digit_prob:
            j = int(rng.integers(len(glyphs)))
            y, x = rng.integers(0, SIZE - 12, 2)
            ink = glyphs[j] > 0.35
            images[i][:, y:y + 12, x:x + 12][:, ink] = 1.0
            masks[i][y:y + 12, x:x + 12][ink] = GLYPH_CLASS
            depth[i][y:y + 12, x:x + 12][ink] = 0.1
            digits[i] = int(glyph_labels[j])
        front_shape[i], front_colour[i] = objs[0][0], objs[0][1]
        captions.append(_caption(rng, objs, int(digits[i]), style, caption_noise))
        objects.append(tuple(objs))
    return Scenes(images, masks, depth, front_shape, front_colour, digits, tuple(captions), tuple(objects))


def digit_canvases(split: str = "test", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every glyph of a digits split pasted at a random position on a blank background canvas: (N, 3, 32, 32), (N,)
    (CatLIP's transfer task: a 10-way digit classifier on the frozen scene encoder)."""
    rng = np.random.default_rng(seed)
    glyphs, labels = _glyphs(split)
    images = _backgrounds(rng, len(glyphs), texture=False)
    for i, g in enumerate(glyphs):
        y, x = rng.integers(0, SIZE - 12, 2)
        images[i][:, y:y + 12, x:x + 12][:, g > 0.35] = 1.0
    return images, labels.astype(np.int64)


# Attribute datasets: scenes with one attribute as the label (linear probes, CatLIP's deployable encoder's quality)
ATTRIBUTES = {"shape": len(SHAPES), "colour": len(COLOURS), "digit": 1 + len(DIGIT_WORDS)}  # digit 0: none
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}  # generator seed per split; glyphs come from the same split


def attribute_labels(scenes: Scenes, attribute: str) -> np.ndarray:
    """(N,) int64: the front shape's shape or colour index, or the pasted digit + 1 (0: no digit)."""
    if attribute not in ATTRIBUTES:
        raise ValueError(f"attribute {attribute!r} is unknown; use one of {tuple(ATTRIBUTES)}")
    return {"shape": scenes.shape, "colour": scenes.colour, "digit": scenes.digit + 1}[attribute].astype(np.int64)


@functools.lru_cache(maxsize=8)
def split_scenes(split: str, n: int) -> Scenes:
    """`n` catlip-style scenes of one split (SPLIT_SEEDS), glyphs from that split of the digits (cached: every
    export of a checkpoint reads its test split)."""
    return make_scenes(n, SPLIT_SEEDS[split], glyph_split=split)


def attribute_dataset(attribute: str, n_train: int = 4000, n_val: int = 500, n_test: int = 1000):
    """A trainers.data.ImageDataset of scenes labelled by one attribute, named `scenes_<attribute>`."""
    import hashlib

    from trainers.data import ImageDataset, Split

    parts = [split_scenes(s, n) for s, n in (("train", n_train), ("val", n_val), ("test", n_test))]
    splits = [Split(p.images, attribute_labels(p, attribute)) for p in parts]
    h = hashlib.sha256()
    for s in splits:
        h.update(s.x.tobytes())
        h.update(s.y.tobytes())
    return ImageDataset(f"scenes_{attribute}", *splits, ATTRIBUTES[attribute], h.hexdigest())
