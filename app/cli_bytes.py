"""`edgezoo classify-bytes ARTIFACT FILE...`: an exported ByteFormer on image files' bytes (trainers/byteformer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from app.cli_options import fail as _fail, int_at_least
from models.errors import EdgeZooError


def classify_bytes(artifact: Path = typer.Argument(..., help="artifact folder exported from a ByteFormer checkpoint"),
                   files: List[Path] = typer.Argument(..., help="image files (e.g. JPEG), classified from their bytes"),
                   runtime: Optional[str] = typer.Option(None, help="onnxruntime | mlx | coreml (default: the "
                                                                     "format's)"),
                   threads: int = typer.Option(1, "--threads", "-t", callback=int_at_least(1), max=256),
                   as_json: bool = typer.Option(False, "--json")) -> None:
    """Classify files from their raw bytes (no decoding) with an exported ByteFormer at its fixed byte length."""
    from trainers.byteformer.classify import classify

    try:
        rows = classify(artifact, list(files), runtime, threads)
    except (EdgeZooError, KeyError) as e:
        _fail(e)
    for row in rows:
        typer.echo(json.dumps(row) if as_json else f"{row['file']}: class {row['class']} ({row['bytes']} bytes)")
