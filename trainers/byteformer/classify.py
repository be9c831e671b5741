"""Classify image files with an exported ByteFormer: the file's bytes go to the artifact (ONNX, MLX; Core ML on
macOS) as int32 tokens and a float mask at the artifact's fixed length, through the same runtimes profiles use.
The file is never decoded: an empty file, one longer than the exported length, or an artifact that does not take
byte tokens is a one-line error.

    edgezoo classify-bytes ARTIFACT FILE [FILE ...]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trainers.byteformer.data import ByteInputError, file_tokens

INPUTS = ["tokens", "mask"]


def byte_artifact(path: Path) -> tuple[Any, int]:
    """The artifact and its fixed byte length; an artifact whose inputs are not (tokens, mask) is refused."""
    from exporters.artifact import check_integrity, load_artifact

    art = load_artifact(Path(path))
    specs = art.manifest.get("inputs") or []
    if [s.get("name") for s in specs] != INPUTS or not specs[0].get("shape"):
        raise ByteInputError(f"{path} does not take byte tokens (its inputs: "
                             f"{', '.join(str(s.get('name')) for s in specs) or 'not declared'})",
                             "pass an artifact exported from a ByteFormer checkpoint (inputs tokens, mask)")
    check_integrity(art)
    return art, int(specs[0]["shape"][-1])


def read_file(path: Path) -> bytes:
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ByteInputError(f"{path} is not a file", "pass the path of an image file (e.g. a JPEG)")
    try:
        return path.read_bytes()
    except OSError as e:
        raise ByteInputError(f"{path} cannot be read ({e.strerror or e.__class__.__name__})",
                             "check the file's permissions") from None


def classify(artifact: Path, files: list[Path], runtime: str | None = None, threads: int = 1) -> list[dict[str, Any]]:
    """Per file: its byte count, the predicted class and the logits. Every file is checked before any is run."""
    from profiles.runtimes import DEFAULT_RUNTIME, resolve

    art, length = byte_artifact(artifact)
    feeds = [(Path(f), file_tokens(read_file(f), length, what=str(f))) for f in files]
    rt = resolve(runtime or DEFAULT_RUNTIME[art.manifest["format"]])()
    rt.load(art.model_file, threads, {})
    out = []
    for path, (tokens, mask) in feeds:
        logits = np.asarray(rt.run([tokens, mask])[0], dtype=np.float32).reshape(-1)
        out.append({"file": str(path), "bytes": int(mask.sum()), "class": int(logits.argmax()),
                    "logits": [round(float(v), 4) for v in logits]})
    return out
