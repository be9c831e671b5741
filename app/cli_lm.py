"""`edgezoo lm ...`: the language-model pipeline (OpenELM byte LM on pydoc text). Heavy imports inside commands."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from app.cli_options import WorkspaceOpt, fail as _fail
from models.errors import EdgeZooError

app = typer.Typer(help="Language-model pipeline: train, export, profile, run (OpenELM byte LM).", no_args_is_help=True)


def _ws(workspace: Optional[Path]):
    from app.workspace import Workspace

    return Workspace.resolve(workspace)



def train_lm_checkpoint(recipe: str, out: Path, sets: List[str]) -> dict:
    from trainers.openelm.recipe import load_lm_recipe
    from trainers.openelm.train import train_lm

    m = train_lm(load_lm_recipe(recipe, sets), out)
    typer.echo(f"val bpb {m['val_bpb']:.4f} (best {m['best_val_bpb']:.4f}) vs unigram {m['unigram_bpb']:.4f} -> {out}")
    return m


def export_lm_artifact(ckpt: Path, fmt: str, compression: str, out: Path) -> Path:
    from exporters.lm.artifact import export_lm

    path = export_lm(ckpt, fmt, compression, out)
    typer.echo(str(path))
    return path


def profile_lm_artifact(artifact: Path, runtime: Optional[str], threads: int, store) -> dict:
    from profiles.lm_measure import measure_lm

    r = measure_lm(artifact, runtime, threads)
    store.add(r)
    if r["status"] == "unavailable":
        typer.echo(f"unavailable: {artifact}: {r.get('error_message')}", err=True)
        return r
    if r["status"] != "ok":
        typer.echo(f"error: {artifact}: {r.get('error_class')}: {r.get('error_message')}", err=True)
        return r
    bpb = r["accuracy"]["value"]
    typer.echo(f"{r['runtime']}: bpb {'n/a' if bpb is None else f'{bpb:.4f}'}  TTFT {r['ttft_s'] * 1e3:.1f} ms  "
               f"prefill {r['prefill_tokens_per_s']:.0f} tok/s  decode {r['decode_tokens_per_s']:.0f} tok/s  "
               f"peak RSS {r['memory']['peak_rss_bytes'] / 2**20:.0f} MiB")
    return r


@app.command("train")
def train(recipe: str = typer.Argument("openelm_default", help="LM recipe name or YAML path"),
          out: Optional[Path] = typer.Option(None, "--out", "-o", help="checkpoint folder (default WORKSPACE/zoo/openelm)"),
          sets: List[str] = typer.Option([], "--set", help="recipe override key=value"),
          workspace: Optional[Path] = WorkspaceOpt) -> None:
    """Train a byte-level OpenELM (val bpb / perplexity every eval_every steps; unigram baseline reported)."""
    try:
        train_lm_checkpoint(recipe, out or _ws(workspace).zoo / "openelm", sets)
    except EdgeZooError as e:
        _fail(e)


@app.command("import")
def import_cmd(folder: Path = typer.Argument(..., help="upstream folder: config.json + *.safetensors (HF layout)"),
               name: Optional[str] = typer.Option(None, "--name", help="zoo name (default: the folder's name)"),
               workspace: Optional[Path] = WorkspaceOpt) -> None:
    """Import an upstream OpenELM checkpoint (e.g. a local apple/OpenELM-270M folder) into the zoo; never downloads."""
    from models import checkpoint
    from models.checkpoint import file_sha256
    from models.openelm import load_upstream

    folder = Path(folder)
    try:
        model = load_upstream(folder)
    except EdgeZooError as e:
        _fail(e)
    out = _ws(workspace).zoo / (name or folder.resolve().name)
    checkpoint.save(model, out, {"source": {"upstream_folder": str(folder.resolve()),
                                            "config_sha256": file_sha256(folder / "config.json")},
                                 "tokenizer": "bytes" if model.args.vocab_size == 256 else "upstream (not bundled)"})
    typer.echo(f"{sum(p.numel() for p in model.parameters()):,} parameters -> {out}")


@app.command("export")
def export(ckpt: Path = typer.Argument(..., help="LM checkpoint folder"),
           fmt: str = typer.Option("onnx", "--format", "-f", help="torch | onnx | mlx | coreml"),
           compression: str = typer.Option("none", "--compress", "-c", help="none | int8 | int4 | seedlm3 | seedlm4 "
                                            "(int8/int4 for mlx and coreml: the format's own quantizer)"),
           out: Optional[Path] = typer.Option(None, "--out", "-o"),
           workspace: Optional[Path] = WorkspaceOpt) -> None:
    """Export an LM checkpoint (ONNX prefill+decode graphs with explicit KV cache, mlx-lm folder, stateful Core ML
    package with the KV cache in states (iOS18 / macOS15), or torch)."""
    try:
        export_lm_artifact(ckpt, fmt, compression, out or _ws(workspace).artifacts / f"openelm-{fmt}-{compression}")
    except EdgeZooError as e:
        _fail(e)


@app.command("profile")
def profile(artifact: Path = typer.Argument(..., help="LM artifact folder made by `edgezoo lm export`"),
            runtime: Optional[str] = typer.Option(None, "--runtime", help="torch | onnxruntime | mlx | coreml "
                                                 "(default: the artifact's; coreml is 'unavailable' off macOS)"),
            threads: int = typer.Option(2, "--threads", "-t"),
            workspace: Optional[Path] = WorkspaceOpt) -> None:
    """bpb, time to first token, prefill/decode tokens/s, peak memory in a fresh child; stored as a record."""
    try:
        r = profile_lm_artifact(artifact, runtime, threads, _ws(workspace).store())
    except EdgeZooError as e:
        _fail(e)
    if r["status"] not in ("ok", "unavailable"):
        raise typer.Exit(1)


@app.command("run")
def run(recipe: str = typer.Option("openelm_default", "--recipe"),
        formats: str = typer.Option("torch,onnx,mlx,coreml", "--formats"),
        compressions: str = typer.Option("none,int4,seedlm4", "--compressions"),
        workspace: Optional[Path] = WorkspaceOpt) -> None:
    """The default LM pipeline: train -> export every (format, compression) -> profile each into the store.
    Unchanged exports are reused; every artifact is profiled again (a fresh measurement each run)."""
    from exporters.lm.artifact import reusable_lm_export

    ws = _ws(workspace)
    ckpt = ws.zoo / f"openelm-{Path(recipe).stem}"
    try:
        if not (ckpt / "card.json").exists():
            train_lm_checkpoint(recipe, ckpt, [])
        store, failed = ws.store(), False
        for fmt in formats.split(","):
            for comp in compressions.split(","):
                out = ws.artifacts / f"{ckpt.name}-{fmt}-{comp}"
                if reusable_lm_export(ckpt, fmt, comp, out):
                    typer.echo(f"{out} (reused: same checkpoint, format, compression and exporter)")
                else:
                    export_lm_artifact(ckpt, fmt, comp, out)
                failed |= profile_lm_artifact(out, None, 2, store)["status"] not in ("ok", "unavailable")
    except EdgeZooError as e:
        _fail(e)
    if failed:
        raise typer.Exit(1)


@app.command("generate")
def gen(ckpt: Path, prompt: str = "def ", tokens: int = 80, temperature: float = 0.8, top_k: int = 0,
        top_p: float = 0.95, seed: int = 0) -> None:
    """Sample text from a trained byte LM (KV-cached)."""
    import torch

    from models import checkpoint
    from models.openelm import generate
    from trainers.text import decode, encode

    try:
        model, _ = checkpoint.load(ckpt)
    except EdgeZooError as e:
        _fail(e)
    out = generate(model, torch.tensor([encode(prompt)]), tokens, temperature, top_k, top_p, seed)
    typer.echo(prompt + decode(out[0]))
