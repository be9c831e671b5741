"""`exporters {onnx,coreml,mlx,torch} CHECKPOINT [--compress SPEC] [--out DIR]`: vision and language-model
checkpoints alike, through `exporters.artifact.export_checkpoint` (which dispatches on the card's task)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from app.cli_options import WorkspaceOpt, fail, output_path, run_app
from exporters import FORMATS
from models.errors import EdgeZooError

app = typer.Typer(help="Convert an EdgeZoo checkpoint to ONNX, Core ML or MLX, with compression.",
                  no_args_is_help=True, add_completion=False)

SPEC_HELP = ("none | fp16 | int8 | int4[:block=32] | prune[:sparsity=0.5] (prune50) | palettize[:bits=4] "
             "(palette4, Core ML); language models: none | int8 | int4 | seedlm3 | seedlm4")


def check_checkpoint(ckpt: Path) -> None:
    """Checked before any output is made: a language-model card names a registered language model; a vision card
    names a dataset EdgeZoo has (what export evaluates on). A missing folder, a file or a malformed card fails in
    `read_card`."""
    from models.checkpoint import CARD, read_card
    from models.errors import CheckpointError
    from models.registry import names
    from trainers.data import DATASETS

    card = read_card(ckpt)
    if card.get("task") == "lm":
        if card["model"] not in names("lm"):
            raise CheckpointError(f"checkpoint card {Path(ckpt) / CARD}: task 'lm' but {card['model']!r} is not a "
                                  "language model", f"language models: {', '.join(names('lm'))}; fix card.json")
        return
    dataset = card.get("dataset", "digits")
    if not isinstance(dataset, str) or dataset not in DATASETS:
        raise CheckpointError(f"checkpoint card {Path(ckpt) / CARD}: dataset {dataset!r} is unknown",
                              f"the card should name one of: {', '.join(DATASETS)}; retrain or restore card.json")


def export_command(fmt: str, checkpoint: Path, compress: str, out: Optional[Path], workspace: Optional[Path],
                   force: bool) -> None:
    from app.workspace import Workspace
    from exporters.artifact import export_checkpoint

    try:
        check_checkpoint(checkpoint)
        art = export_checkpoint(checkpoint, fmt, compress, out_dir=out, workspace=Workspace.resolve(workspace).root,
                                force=force)
    except EdgeZooError as e:
        fail(e)
    m = art.manifest
    typer.echo(json.dumps({"artifact": str(art.path), "size_bytes": m["size_bytes"],
                           "bits_per_weight": round(m["bits_per_weight"], 3), "verification": m["verification"]}, indent=2))


def _make(fmt: str):
    def command(
        checkpoint: Path = typer.Argument(..., help="checkpoint folder (model.safetensors + card.json): vision or LM"),
        compress: str = typer.Option("none", "--compress", "-c", help=SPEC_HELP),
        out: Optional[Path] = typer.Option(None, "--out", "-o", callback=output_path("folder"),
                                           help="artifact folder (default: in the workspace)"),
        workspace: Optional[Path] = WorkspaceOpt,
        force: bool = typer.Option(False, "--force", help="re-export even if an identical artifact exists"),
    ) -> None:
        export_command(fmt, checkpoint, compress, out, workspace, force)

    command.__doc__ = f"Export CHECKPOINT to {fmt}."
    return command


for _fmt in FORMATS:
    app.command(_fmt)(_make(_fmt))


def main() -> None:
    run_app(app, "exporters")
