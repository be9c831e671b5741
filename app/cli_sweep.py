"""`edgezoo sweep lcs CKPT --alphas 0,0.25,0.5,0.75,1 [--format onnx --format mlx]`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(help="Export a checkpoint at several compression points and profile each.",
                  no_args_is_help=True, add_completion=False)


@app.callback()
def main() -> None:
    """Sweeps: `sweep lcs CHECKPOINT`."""


@app.command("lcs")
def sweep_lcs(checkpoint: Path = typer.Argument(..., help="an LCS / subspace checkpoint folder"),
              alphas: str = typer.Option("0,0.25,0.5,0.75,1", "--alphas", help="comma-separated points in [0, 1]"),
              fmt: List[str] = typer.Option(["onnx"], "--format", "-f", help="onnx | mlx | coreml | torch (repeatable)"),
              threads: int = typer.Option(1, "--threads"),
              workspace: Optional[Path] = typer.Option(None, "--workspace", "-w", envvar="EDGEZOO_WORKSPACE")) -> None:
    """Export CHECKPOINT with `lcs:alpha=A` per alpha and format, profile each, store the records, print a table."""
    from app.workspace import Workspace
    from models.errors import EdgeZooError
    from profiles.sweep import format_table, sweep_lcs as run

    try:
        points = tuple(float(a) for a in alphas.split(",") if a.strip())
    except ValueError:
        typer.echo(f"error: --alphas {alphas!r} is not a comma-separated list of numbers -> e.g. 0,0.5,1", err=True)
        raise typer.Exit(2) from None
    ws = Workspace.resolve(workspace)
    try:
        rows = run(checkpoint, points, tuple(fmt), ws.root, threads, store=ws.store(),
                   log=lambda s: typer.echo(s, err=True))
    except EdgeZooError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(format_table(rows))
