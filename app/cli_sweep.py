"""`edgezoo sweep lcs CKPT --alphas 0,0.25,0.5,0.75,1 [--format onnx --format mlx]`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional

import typer

from app.cli_options import WorkspaceOpt, fail as _fail, int_at_least
from models.errors import EdgeZooError

app = typer.Typer(help="Export a checkpoint at several compression points and profile each.",
                  no_args_is_help=True, add_completion=False)


@app.callback()
def main() -> None:
    """Sweeps: `sweep lcs CHECKPOINT`."""


def parse_alphas(text: str) -> tuple[float, ...]:
    """`0,0.5,1` -> (0.0, 0.5, 1.0): at least one point, each finite and in [0, 1]."""
    try:
        points = tuple(float(a) for a in text.split(",") if a.strip())
    except ValueError:
        raise EdgeZooError(f"--alphas {text!r} is not a comma-separated list of numbers",
                           "e.g. --alphas 0,0.5,1") from None
    bad = [a for a in points if not (math.isfinite(a) and 0.0 <= a <= 1.0)]
    if not points or bad:
        outside = f" ({', '.join(map(str, bad))} not)" if bad else ""
        raise EdgeZooError(f"--alphas {text!r} needs points in [0, 1]{outside}", "e.g. --alphas 0,0.25,0.5,0.75,1")
    return points


def check_lcs_checkpoint(checkpoint: Path, formats: List[str]) -> None:
    """The checkpoint is an LCS / subspace model (read from its card, nothing loaded) and every format is known."""
    from exporters import FORMATS
    from models.checkpoint import read_card

    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise EdgeZooError(f"unknown format(s) {unknown}", f"use --format with one of: {', '.join(FORMATS)}")
    card = read_card(checkpoint)
    subspace = card["args"].get("subspace", "none") if isinstance(card["args"], dict) else "none"
    if card["model"] != "lcs_cnn" or subspace == "none":
        raise EdgeZooError(f"{checkpoint} is a {card['model']!r} checkpoint without a subspace, not an LCS one",
                           "pass a checkpoint trained by `python -m trainers.lcs.recipe` (lcs_cnn with a subspace)")


@app.command("lcs")
def sweep_lcs(checkpoint: Path = typer.Argument(..., help="an LCS / subspace checkpoint folder"),
              alphas: str = typer.Option("0,0.25,0.5,0.75,1", "--alphas", help="comma-separated points in [0, 1]"),
              fmt: List[str] = typer.Option(["onnx"], "--format", "-f", help="onnx | mlx | coreml | torch (repeatable)"),
              threads: int = typer.Option(1, "--threads", callback=int_at_least(1), max=256),
              workspace: Optional[Path] = WorkspaceOpt) -> None:
    """Export CHECKPOINT with `lcs:alpha=A` per alpha and format, profile each, store the records, print a table."""
    from app.workspace import Workspace
    from profiles.sweep import format_table, sweep_lcs as run

    try:
        points = parse_alphas(alphas)
        ws = Workspace.resolve(workspace)
        check_lcs_checkpoint(checkpoint, fmt)  # before the store is opened: bad input leaves nothing behind
        rows = run(checkpoint, points, tuple(fmt), ws.root, threads, store=ws.store(),
                   log=lambda s: typer.echo(s, err=True))
    except EdgeZooError as e:
        _fail(e)
    typer.echo(format_table(rows))
