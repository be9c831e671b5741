"""`exporters {onnx,coreml,mlx,torch} CHECKPOINT [--compress SPEC] [--out DIR]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from models.errors import EdgeZooError

app = typer.Typer(help="Convert an EdgeZoo checkpoint to ONNX, Core ML or MLX, with compression.",
                  no_args_is_help=True, add_completion=False)

SPEC_HELP = "none | fp16 | int8 | int4[:block=32] | prune[:sparsity=0.5] (prune50) | palettize[:bits=4] (palette4, Core ML)"


def export_command(fmt: str, checkpoint: Path, compress: str, out: Optional[Path], workspace: Optional[Path],
                   force: bool) -> None:
    from app.workspace import Workspace
    from exporters.artifact import export_checkpoint

    try:
        art = export_checkpoint(checkpoint, fmt, compress, out_dir=out, workspace=Workspace.resolve(workspace).root,
                                force=force)
    except EdgeZooError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    m = art.manifest
    typer.echo(json.dumps({"artifact": str(art.path), "size_bytes": m["size_bytes"],
                           "bits_per_weight": round(m["bits_per_weight"], 3), "verification": m["verification"]}, indent=2))


def _make(fmt: str):
    def command(
        checkpoint: Path = typer.Argument(..., help="checkpoint folder (model.safetensors + card.json)"),
        compress: str = typer.Option("none", "--compress", "-c", help=SPEC_HELP),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="artifact folder (default: in the workspace)"),
        workspace: Optional[Path] = typer.Option(None, "--workspace", envvar="EDGEZOO_WORKSPACE"),
        force: bool = typer.Option(False, "--force", help="re-export even if an identical artifact exists"),
    ) -> None:
        export_command(fmt, checkpoint, compress, out, workspace, force)

    command.__doc__ = f"Export CHECKPOINT to {fmt}."
    return command


for _fmt in ("onnx", "coreml", "mlx", "torch"):
    app.command(_fmt)(_make(_fmt))


def main() -> None:
    from app.cli_options import run_app

    run_app(app, "exporters")
