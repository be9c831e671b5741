"""Card 06's data: the digits at 32x32 (trainers.data "digits32", 1,200 / 300 / 297) as 8-bit grayscale images
encoded to file bytes by Pillow (raw pixels, PNG, TIFF, JPEG quality 60), once per process, plus the byte
transforms of the paper: a fixed permutation of byte values, a per-sample shuffle of positions, reversal, and a
fixed keep-mask over positions (the "privacy camera": only the kept positions are stored).

A split's bytes are stored padded with -1 (upstream's padding value) in an int32 array (N, L): `trim` cuts a batch
to its longest sample. numpy and Pillow only.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from models.errors import EdgeZooError

ENCODINGS = ("raw", "png", "tiff", "jpeg")
TRANSFORMS = ("none", "permute", "shuffle", "reverse", "keep")
JPEG_QUALITY = 60
DATASET = "digits32"


class ByteInputError(EdgeZooError):
    """A byte input the model cannot take: empty, too long, or not a file the encoder knows."""


@dataclass(frozen=True)
class ByteSplit:
    x: np.ndarray  # (N, L) int32 bytes, -1 after each sample's end
    y: np.ndarray  # (N,) int64


@dataclass(frozen=True)
class ByteDataset:
    name: str
    train: ByteSplit
    val: ByteSplit
    test: ByteSplit
    split_hash: str


def to_uint8(x: np.ndarray) -> np.ndarray:
    """(N, 1, H, W) float images in [0, 1] -> (N, H, W) uint8."""
    return np.clip(np.round(x[:, 0] * 255.0), 0, 255).astype(np.uint8)


def encode(image: np.ndarray, encoding: str) -> bytes:
    """One (H, W) uint8 image as file bytes: raw pixels (row-major), PNG, TIFF (uncompressed) or JPEG q60."""
    if encoding == "raw":
        return image.tobytes()
    from PIL import Image

    fmt = {"png": "PNG", "tiff": "TIFF", "jpeg": "JPEG"}.get(encoding)
    if fmt is None:
        raise ValueError(f"encoding {encoding!r} is not one of {ENCODINGS}")
    buf = io.BytesIO()
    Image.fromarray(image, "L").save(buf, fmt, **({"quality": JPEG_QUALITY} if fmt == "JPEG" else {}))
    return buf.getvalue()


def pad(samples: list[bytes] | list[np.ndarray], length: int | None = None) -> np.ndarray:
    """Byte sequences -> (N, L) int32, -1 after each sample's end."""
    n = length or max(len(s) for s in samples)
    out = np.full((len(samples), n), -1, np.int32)
    for i, s in enumerate(samples):
        out[i, :len(s)] = np.frombuffer(bytes(s), np.uint8) if isinstance(s, bytes) else s
    return out


def unpad(row: np.ndarray) -> np.ndarray:
    return row[row >= 0]


@lru_cache(maxsize=None)
def encoded(encoding: str) -> ByteDataset:
    """The digits32 split encoded once per process."""
    from trainers.data import load_dataset

    d = load_dataset(DATASET)
    parts = [ByteSplit(pad([encode(im, encoding) for im in to_uint8(s.x)]), s.y) for s in (d.train, d.val, d.test)]
    return ByteDataset(f"{DATASET}-{encoding}", *parts, d.split_hash)


def transform(x: np.ndarray, kind: str, seed: int, keep: float = 1.0, salt: int = 0) -> np.ndarray:
    """A byte transform of padded samples (N, L). `permute`: one fixed permutation of the 256 values (from
    `seed`); `shuffle`: every sample's positions in its own random order (from seed, `salt` and the row);
    `reverse`: byte order reversed; `keep`: a fixed random subset of `keep` of the positions (from `seed`), in
    order (raw bytes, a fixed length)."""
    if kind == "none":
        return x
    rows = [unpad(r) for r in x]
    if kind == "permute":
        table = np.random.default_rng(seed).permutation(256).astype(np.int32)
        return np.where(x >= 0, table[np.clip(x, 0, 255)], -1).astype(np.int32)
    if kind == "shuffle":
        rng = np.random.default_rng([seed, salt])
        return pad([r[rng.permutation(len(r))] for r in rows], x.shape[1])
    if kind == "reverse":
        return pad([r[::-1] for r in rows], x.shape[1])
    if kind == "keep":
        n = x.shape[1]
        if not 0.0 < keep <= 1.0 or any(len(r) != n for r in rows):
            raise ValueError("keep needs a fraction in (0, 1] and fixed-length samples (raw bytes)")
        kept = np.sort(np.random.default_rng(seed).permutation(n)[:max(1, round(keep * n))])
        return x[:, kept]
    raise ValueError(f"byte transform {kind!r} is not one of {TRANSFORMS}")


def arm_data(encoding: str, kind: str = "none", seed: int = 0, keep: float = 1.0) -> ByteDataset:
    """The three splits of one encoding under one transform (the same permutation / mask for every split)."""
    d = encoded(encoding)
    parts = [ByteSplit(transform(s.x, kind, seed, keep, salt), s.y) for salt, s in enumerate((d.train, d.val, d.test))]
    return ByteDataset(f"{d.name}-{kind}", *parts, d.split_hash)


def trim(x: np.ndarray) -> np.ndarray:
    """A padded batch cut to its longest sample."""
    return x[:, :max(1, int((x >= 0).sum(1).max()))]


def file_tokens(data: bytes, max_bytes: int, what: str = "input") -> tuple[np.ndarray, np.ndarray]:
    """One file's bytes as the exported graph's inputs: tokens int32 (1, max_bytes) and mask float32 (1, max_bytes).
    An empty file, or one longer than the exported length, is a one-line error."""
    if len(data) == 0:
        raise ByteInputError(f"{what} is empty (0 bytes)", "pass a non-empty image file (e.g. a JPEG)")
    if len(data) > max_bytes:
        raise ByteInputError(f"{what} has {len(data)} bytes, more than the model's exported maximum of {max_bytes}",
                             f"re-encode it smaller (e.g. lower JPEG quality or resolution) to at most {max_bytes} "
                             "bytes, or export the model with a larger max_bytes")
    return model_inputs(np.frombuffer(data, np.uint8).astype(np.int32)[None], max_bytes)


def model_inputs(x: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Padded bytes (N, L <= length) -> the exported graph's inputs at its fixed length: tokens int32 (N, length),
    0 after each sample's end, and mask float32 (N, length), 1 on real bytes."""
    if x.shape[1] > length:
        raise ByteInputError(f"samples of up to {x.shape[1]} bytes do not fit the exported length {length}",
                             f"export with model_args.max_bytes >= {x.shape[1]}")
    full = np.full((len(x), length), -1, np.int32)
    full[:, :x.shape[1]] = x
    return np.maximum(full, 0).astype(np.int32), (full >= 0).astype(np.float32)


def eval_inputs(card: dict) -> dict:
    """What a ByteFormer checkpoint's artifacts are evaluated on (exporters/artifact.py `write_eval_data`): the test
    split's bytes of the checkpoint's encoding and transform as (tokens, mask) at the exported length, labels, and
    validation bytes to calibrate on."""
    r, length = card["recipe"], card["args"]["max_bytes"]
    d = arm_data(r["encoding"], r["transform"], r["seed"], r["keep"])
    return {"x": list(model_inputs(d.test.x, length)), "y": d.test.y, "calib": list(model_inputs(d.val.x, length)),
            "source": f"{d.name}: the test split's file bytes ({len(d.test.y)} files)"}
