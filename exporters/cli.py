"""`exporters {onnx,coreml,mlx,torch} MODEL [--compress SPEC] [--out DIR]`: vision and language-model
checkpoints alike, through `exporters.artifact.export_checkpoint` (which dispatches on the card's task); a model of
your own (a .pt2, package.module:factory with --input, an .onnx file) through `exporters.own.export`.
`exporters check MODEL`: the op coverage of your model's graph per format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from app.cli_options import WorkspaceOpt, fail, input_specs, output_path, run_app
from exporters import FORMATS
from models.errors import EdgeZooError

app = typer.Typer(help="Convert an EdgeZoo checkpoint or your own model to ONNX, Core ML or MLX, with compression.",
                  no_args_is_help=True, add_completion=False)

SPEC_HELP = ("none | fp16 | int8 | int8-static (ONNX, calibrated) | int4[:block=32] | prune[:sparsity=0.5] (prune50) "
             "| palettize[:bits=4] "
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


def _is_own(model: str) -> bool:
    """A user model: a .pt2 / .onnx file or package.module:factory; anything else is a zoo checkpoint folder."""
    from exporters.own_source import FACTORY

    return model.endswith((".pt2", ".onnx")) or (bool(FACTORY.match(model)) and not Path(model).exists())


def export_command(fmt: str, checkpoint: Path | str, compress: str, out: Optional[Path], workspace: Optional[Path],
                   force: bool, inputs: Optional[list[dict]] = None, dynamic: Optional[list[str]] = None,
                   name: Optional[str] = None, outputs: Optional[list[str]] = None) -> None:
    from app.workspace import Workspace
    from exporters.artifact import export_checkpoint

    try:
        root = Workspace.resolve(workspace).root
        if _is_own(str(checkpoint)):
            art = _export_own(fmt, str(checkpoint), compress, out, root, force, inputs, dynamic, name, outputs)
        else:
            if inputs or dynamic or outputs:
                raise EdgeZooError("--input/--dynamic/--output-name are for your own models, not zoo checkpoints",
                                   "drop them: a checkpoint's inputs come from its card")
            check_checkpoint(Path(checkpoint))
            art = export_checkpoint(Path(checkpoint), fmt, compress, out_dir=out, workspace=root, force=force)
    except EdgeZooError as e:
        fail(e)
    m = art.manifest
    bits = m["bits_per_weight"]
    typer.echo(json.dumps({"artifact": str(art.path), "size_bytes": m["size_bytes"],
                           "bits_per_weight": None if bits is None else round(bits, 3),
                           "verification": m["verification"]}, indent=2, default=str))


def _export_own(fmt: str, model: str, compress: str, out: Optional[Path], root: Path, force: bool,
                inputs: Optional[list[dict]], dynamic: Optional[list[str]], name: Optional[str],
                outputs: Optional[list[str]] = None):
    from exporters.own import export
    from exporters.own_source import example_tensors

    example = example_tensors(inputs) if inputs else None
    if model.endswith(".onnx"):
        return export(model, example, fmt, compress, out, name=name, workspace=root, force=force)
    return export(model, example, fmt, compress, out, name=name, workspace=root, force=force, dynamic=dynamic,
                  input_names=[s["name"] for s in inputs] if inputs else None, output_names=outputs or None)


MODEL_HELP = ("a checkpoint folder (model.safetensors + card.json), a torch.export program saved as .pt2, "
              "package.module:factory (with --input), or an .onnx file (ONNX compressions only)")
InputOpt = typer.Option(None, "--input", callback=input_specs,
                        help="NAME=SHAPE:DTYPE, repeatable (e.g. x=1x3x32x32:float32): example inputs of a "
                             "module:factory model, one per forward() argument in order")
DynamicOpt = typer.Option(None, "--dynamic", help="NAME:AXIS=DIM:MIN:MAX or NAME:AXIS=DIM:S1,S2,..., repeatable "
                                                  "(e.g. tokens:1=seq:1:512, image:2=side:32,64): a dynamic axis "
                                                  "besides the batch (Core ML: RangeDim, or EnumeratedShapes for "
                                                  "listed sizes)")


def _make(fmt: str):
    def command(
        checkpoint: str = typer.Argument(..., help=MODEL_HELP),
        compress: str = typer.Option("none", "--compress", "-c", help=SPEC_HELP),
        out: Optional[Path] = typer.Option(None, "--out", "-o", callback=output_path("folder"),
                                           help="artifact folder (default: in the workspace)"),
        workspace: Optional[Path] = WorkspaceOpt,
        force: bool = typer.Option(False, "--force", help="re-export even if an identical artifact exists"),
        inputs: Optional[List[str]] = InputOpt,
        dynamic: Optional[List[str]] = DynamicOpt,
        name: Optional[str] = typer.Option(None, "--name", help="your model's name in tables (default: its class)"),
        outputs: Optional[List[str]] = typer.Option(None, "--output-name", help="your model's output names, "
                                                    "repeatable, in order (default: output, output_1, ...)"),
    ) -> None:
        export_command(fmt, checkpoint, compress, out, workspace, force, inputs, dynamic, name, outputs)

    command.__doc__ = f"Export MODEL to {fmt}."
    return command


for _fmt in FORMATS:
    app.command(_fmt)(_make(_fmt))


@app.command("check")
def check_command(model: str = typer.Argument(..., help="a .pt2 file or package.module:factory (with --input)"),
                  inputs: Optional[List[str]] = InputOpt) -> None:
    """Op coverage of MODEL's graph per format (which ops each converter lacks, and where), before converting."""
    from exporters.own import check
    from exporters.own_source import example_tensors

    try:
        report = check(model, example_tensors(inputs) if inputs else None)
    except EdgeZooError as e:
        fail(e)
    for fmt, r in report["formats"].items():
        missing = "; ".join(f"{op} at {', '.join(w[:2])}" for op, w in r["missing"].items())
        typer.echo(f"{fmt:7s} {r['covered_ops']}/{r['total_ops']} ops" + (f"  missing: {missing}" if missing else ""))
    typer.echo(json.dumps(report, indent=2))


def main() -> None:
    run_app(app, "exporters")
