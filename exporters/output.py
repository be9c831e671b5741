"""Output folders of every exporter: built in a private sibling, published by rename.

An existing folder is replaced only when EdgeZoo made it (it holds an EdgeZoo manifest) and the caller may replace
it; a folder the user filled is never emptied, whatever the flags. A failed or killed export leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from models.errors import ArtifactError

MANIFESTS = ("manifest.json", "lm_manifest.json")


def resolve_out(path: str | Path) -> Path:
    """An output path as the caller meant it: relative to their directory, `..` and `~` resolved."""
    return Path(path).expanduser().resolve()


def made_by_edgezoo(folder: Path) -> bool:
    for name in MANIFESTS:
        try:
            return "exporter_version" in json.loads((folder / name).read_text())
        except (OSError, ValueError, TypeError):
            continue
    return False


def check_out_dir(out_dir: Path, may_replace: bool) -> None:
    """Refuse an output folder that would lose someone's files: a file, a non-empty folder EdgeZoo did not make,
    or (unless `may_replace`) another EdgeZoo artifact."""
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if not out_dir.is_dir() or out_dir.is_symlink():
        raise ArtifactError(f"output {out_dir} exists and is not a folder", "pass a new or empty folder to --out")
    if not any(out_dir.iterdir()):
        return
    if not made_by_edgezoo(out_dir):
        raise ArtifactError(f"output folder {out_dir} is not empty and was not made by EdgeZoo",
                            "pass a new or empty folder to --out (EdgeZoo never replaces a folder it did not make)")
    if not may_replace:
        raise ArtifactError(f"output folder {out_dir} holds another EdgeZoo artifact",
                            "pass --force to replace it, or choose another --out")


@contextmanager
def staging(out_dir: Path) -> Iterator[Path]:
    """A fresh sibling folder to build the artifact in; removed on any failure or interruption."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex[:8]}.partial")
    tmp.mkdir()
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already when published


def publish(tmp: Path, out_dir: Path, may_replace: bool) -> None:
    """Move the finished `tmp` to `out_dir`, replacing an EdgeZoo-made folder there only when allowed."""
    check_out_dir(out_dir, may_replace)  # again: the folder may have changed during a long export
    if not out_dir.exists():
        tmp.rename(out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex[:8]}.replaced")
    out_dir.rename(old)
    try:
        tmp.rename(out_dir)
    except OSError:
        old.rename(out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)
