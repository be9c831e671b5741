"""What every `edgezoo` command group shares: the workspace option and the one-line error exit."""

from __future__ import annotations

from typing import NoReturn

import typer

WorkspaceOpt = typer.Option(None, "--workspace", "-w", envvar="EDGEZOO_WORKSPACE",
                            help="workspace folder (default ./edgezoo-workspace)")


def fail(err: Exception) -> NoReturn:
    """Print `error: <problem -> fix>` to stderr and exit 2."""
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(2)
