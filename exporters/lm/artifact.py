"""Language-model artifacts through the one export path (exporters.artifact.export_checkpoint): thin wrappers kept
for `edgezoo lm` and the LM profiler. Compressions: none | int8 | int4 (group-32 RTN) | seedlm3 | seedlm4, parsed
by exporters.compression.parse_spec for task "lm"; the formats' LM plug-ins live beside this file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from exporters.artifact import EXPORTER_VERSION, LM_MANIFEST, MANIFEST, default_out_dir, dir_sha256, export_checkpoint
from exporters.compression import parse_spec
from exporters.formats import FORMATS, LM
from models.checkpoint import checkpoint_hash, read_card
from models.errors import ArtifactError

LM_FORMATS = FORMATS  # every format exports language models too


def check_lm_request(fmt: str, compression: str) -> None:
    if fmt not in LM_FORMATS:
        raise ArtifactError(f"unknown LM format {fmt!r}", f"use one of: {', '.join(LM_FORMATS)}")
    parse_spec(compression, fmt, LM)


def default_lm_out_dir(artifacts: Path, ckpt: Path, fmt: str, compression: str) -> Path:
    """One folder per (checkpoint content, format, compression): two checkpoints never share an export."""
    ckpt = Path(ckpt).resolve()
    return default_out_dir(Path(artifacts).parent, {"task": LM, "model": ckpt.name}, checkpoint_hash(ckpt), fmt,
                           parse_spec(compression, fmt, LM), ckpt)


def read_lm_manifest(folder: Path, check_sha: bool = True) -> dict[str, Any]:
    """The manifest of an LM artifact folder, with its files checked against the sha256 recorded at export."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"LM artifact {folder} is not a folder", "pass a folder made by `edgezoo lm export`")
    try:
        man = json.loads((folder / LM_MANIFEST).read_text())
        man["format"], man["model_file"]
    except FileNotFoundError:
        raise ArtifactError(f"{folder} has no {LM_MANIFEST}", "pass a folder made by `edgezoo lm export`") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise ArtifactError(f"{folder / LM_MANIFEST} is corrupt", "re-export with `edgezoo lm export`") from None
    part = folder / str(man["model_file"])
    if check_sha and man.get("sha256") and (not part.exists() or dir_sha256(part) != man["sha256"]):
        raise ArtifactError(f"the files of {folder} do not match its manifest (sha256 differs from the export's)",
                            "re-export it with `edgezoo lm export ... --force`")
    return man


def reusable_lm_export(ckpt: Path, fmt: str, compression: str, out_dir: Path) -> bool:
    """True when `out_dir` already holds this exact export: same checkpoint weights, format, compression, exporter."""
    try:
        read_lm_manifest(out_dir)
        man = json.loads((Path(out_dir) / MANIFEST).read_text())
    except (ArtifactError, OSError, ValueError):
        return False
    return (man.get("format"), man.get("compression"), man.get("exporter_version"), man.get("checkpoint_sha256")) == (
        fmt, parse_spec(compression, fmt, LM).to_dict(), EXPORTER_VERSION, checkpoint_hash(ckpt))


def export_lm(ckpt: Path, fmt: str, compression: str, out_dir: Path, force: bool = False) -> Path:
    """Export an LM checkpoint into `out_dir` (resolved from the caller's directory). An existing EdgeZoo export
    there is replaced only with `force`; a folder EdgeZoo did not make never is."""
    check_lm_request(fmt, compression)
    ckpt = Path(ckpt).resolve()
    task = read_card(ckpt).get("task")
    if task != LM:
        raise ArtifactError(f"{ckpt} is a {task!r} checkpoint, not a language model",
                            "pass an LM checkpoint (edgezoo lm train / lm import); vision models export with `exporters`")
    return export_checkpoint(ckpt, fmt, compression, out_dir=out_dir, force=force).path
