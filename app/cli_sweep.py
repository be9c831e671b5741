"""`edgezoo sweep lcs CKPT --alphas 0,0.25,0.5,0.75,1 [--format onnx --format mlx]` and
`edgezoo sweep dynamoe CKPT --thetas 0.3,0.5,0.7,0.9 [--format onnx --format mlx]`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

from app.cli_options import WorkspaceOpt, fail as _fail, int_at_least
from models.errors import EdgeZooError

app = typer.Typer(help="Export a checkpoint at several compression points and profile each.",
                  no_args_is_help=True, add_completion=False)


@app.callback()
def main() -> None:
    """Sweeps: `sweep lcs CHECKPOINT`, `sweep dynamoe CHECKPOINT`."""


def parse_points(text: str, flag: str = "--alphas", example: str = "0,0.25,0.5,0.75,1") -> tuple[float, ...]:
    """`0,0.5,1` -> (0.0, 0.5, 1.0): at least one point, each finite and in [0, 1]."""
    try:
        points = tuple(float(a) for a in text.split(",") if a.strip())
    except ValueError:
        raise EdgeZooError(f"{flag} {text!r} is not a comma-separated list of numbers",
                           f"e.g. {flag} {example}") from None
    bad = [a for a in points if not (math.isfinite(a) and 0.0 <= a <= 1.0)]
    if not points or bad:
        outside = f" ({', '.join(map(str, bad))} not)" if bad else ""
        raise EdgeZooError(f"{flag} {text!r} needs points in [0, 1]{outside}", f"e.g. {flag} {example}")
    return points


def parse_alphas(text: str) -> tuple[float, ...]:
    return parse_points(text, "--alphas", "0,0.25,0.5,0.75,1")


def _check_formats(formats: List[str]) -> None:
    from exporters import FORMATS

    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise EdgeZooError(f"unknown format(s) {unknown}", f"use --format with one of: {', '.join(FORMATS)}")


def check_lcs_checkpoint(checkpoint: Path, formats: List[str]) -> None:
    """The checkpoint is an LCS / subspace model (read from its card, nothing loaded) and every format is known."""
    from models.checkpoint import read_card

    _check_formats(formats)
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
    from profiles.sweep import format_table, sweep_lcs as run

    _sweep(lambda: parse_alphas(alphas), check_lcs_checkpoint, run, format_table, checkpoint, fmt, threads, workspace)


def _sweep(points: Callable[[], tuple[float, ...]], check: Callable[[Path, List[str]], None], run: Callable[..., Any],
           table: Callable[[list], str], checkpoint: Path, fmt: List[str], threads: int,
           workspace: Optional[Path]) -> None:
    """Parse the points, check the checkpoint (before the store is opened: bad input leaves nothing behind), run
    the sweep into the workspace's store and print its table; an EdgeZooError is one line and exit code 1."""
    from app.workspace import Workspace

    try:
        values = points()
        ws = Workspace.resolve(workspace)
        check(checkpoint, fmt)
        rows = run(checkpoint, values, tuple(fmt), ws.root, threads, store=ws.store(),
                   log=lambda s: typer.echo(s, err=True))
    except EdgeZooError as e:
        _fail(e)
    typer.echo(table(rows))


def check_dynamoe_checkpoint(checkpoint: Path, formats: List[str]) -> None:
    """The checkpoint is a DynaMoE LM (read from its card, nothing loaded) and every format is known."""
    from models.checkpoint import read_card

    _check_formats(formats)
    card = read_card(checkpoint)
    if card["model"] != "dynamoe":
        raise EdgeZooError(f"{checkpoint} is a {card['model']!r} checkpoint, not a DynaMoE one",
                           "pass a checkpoint converted by `edgezoo train dynamoe_main` (trainers/dynamoe)")


@app.command("dynamoe")
def sweep_dynamoe(checkpoint: Path = typer.Argument(..., help="a DynaMoE checkpoint folder"),
                  thetas: str = typer.Option("0.3,0.5,0.6,0.7,0.8,0.9,1", "--thetas",
                                             help="comma-separated router sensitivities in [0, 1]"),
                  fmt: List[str] = typer.Option(["onnx"], "--format", "-f",
                                                help="onnx | mlx | coreml | torch (repeatable)"),
                  threads: int = typer.Option(1, "--threads", callback=int_at_least(1), max=256),
                  workspace: Optional[Path] = WorkspaceOpt) -> None:
    """Export CHECKPOINT with `dynamoe:theta=T` per theta and format, profile each (bpb, decode latency), store the
    records with the active FFN fraction and parameters per token, print a table."""
    from profiles.sweep import format_dynamoe_table, sweep_dynamoe as run

    _sweep(lambda: parse_points(thetas, "--thetas", "0.3,0.5,0.7,0.9,1"), check_dynamoe_checkpoint, run,
           format_dynamoe_table, checkpoint, fmt, threads, workspace)
