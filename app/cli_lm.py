"""`edgezoo lm ...`: the language-model pipeline (OpenELM byte LM on pydoc text). Heavy imports inside commands."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from app.cli_options import WorkspaceOpt, fail as _fail, finite_float, int_at_least
from models.errors import EdgeZooError

app = typer.Typer(help="Language-model pipeline: train, export, profile, run (OpenELM byte LM).", no_args_is_help=True)


def _ws(workspace: Optional[Path]):
    from app.workspace import Workspace

    return Workspace.resolve(workspace)


def check_out_folder(out: Path, option: str = "--out") -> Path:
    """A folder to write into: refuse a path that is (or lies under) a file before any work starts."""
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                where = "is a file" if p == out else f"lies under the file {p}"
                raise EdgeZooError(f"{option} {out} {where}", f"pass {option} a folder path")
            break
    return out


def train_lm_checkpoint(recipe: str, out: Path, sets: List[str]) -> dict:
    from trainers.openelm.recipe import load_lm_recipe
    from trainers.openelm.train import train_lm

    m = train_lm(load_lm_recipe(recipe, sets), check_out_folder(out))
    typer.echo(f"val bpb {m['val_bpb']:.4f} (best {m['best_val_bpb']:.4f}) vs unigram {m['unigram_bpb']:.4f} -> {out}")
    return m


def export_lm_artifact(ckpt: Path, fmt: str, compression: str, out: Path, force: bool) -> Path:
    from exporters.lm.artifact import export_lm

    path = export_lm(ckpt, fmt, compression, out, force=force)
    typer.echo(str(path))
    return path


def check_lm_artifact(artifact: Path, runtime: Optional[str]) -> None:
    """What `lm profile` checks before the store is opened: an LM artifact folder and a known runtime."""
    from exporters.lm.artifact import read_lm_manifest
    from profiles.lm_measure import RUNTIME_OF

    read_lm_manifest(artifact, check_sha=False)  # measure_lm checks the files' sha256 again in full
    if runtime is not None and runtime not in RUNTIME_OF.values():
        raise EdgeZooError(f"unknown LM runtime {runtime!r}",
                           f"use one of: {', '.join(sorted(set(RUNTIME_OF.values())))}")


def default_export_dir(ckpt: Path, fmt: str, compression: str, workspace: Optional[Path]) -> Path:
    """WORKSPACE/artifacts/<checkpoint>-<weights hash>/lm-<format>-<compression>, once the request and the
    checkpoint folder are known to be good (the folder name hashes the weights)."""
    from exporters.lm.artifact import check_lm_request, default_lm_out_dir
    from models.checkpoint import WEIGHTS, read_card

    check_lm_request(fmt, compression)
    read_card(ckpt)
    if not (Path(ckpt) / WEIGHTS).is_file():
        raise EdgeZooError(f"checkpoint {ckpt} has no {WEIGHTS}", "retrain with `edgezoo lm train` or restore the file")
    return default_lm_out_dir(_ws(workspace).artifacts, ckpt, fmt, compression)


def profile_lm_artifact(artifact: Path, runtime: Optional[str], threads: int, store) -> dict:
    from profiles.launcher import keep_interrupted
    from profiles.lm_measure import measure_lm

    with keep_interrupted(store):
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
               force: bool = typer.Option(False, "--force", help="replace a zoo checkpoint of the same name"),
               workspace: Optional[Path] = WorkspaceOpt) -> None:
    """Import an upstream OpenELM checkpoint (e.g. a local apple/OpenELM-270M folder) into the zoo; never downloads."""
    from models import checkpoint
    from models.checkpoint import file_sha256
    from models.openelm_upstream import load_upstream

    folder = Path(folder)
    try:
        out = _ws(workspace).checkpoint_dir(folder.resolve().name if name is None else name)
        if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not force)):
            raise EdgeZooError(f"{out} already exists", "pass another --name" + (
                " or --force to replace it" if out.is_dir() else ""))
        model = load_upstream(folder)
    except EdgeZooError as e:
        _fail(e)
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
           workspace: Optional[Path] = WorkspaceOpt,
           force: bool = typer.Option(False, "--force", help="replace an EdgeZoo artifact already in the output folder")
           ) -> None:
    """Export an LM checkpoint (ONNX prefill+decode graphs with explicit KV cache, mlx-lm folder, stateful Core ML
    package with the KV cache in states (iOS18 / macOS15), or torch)."""
    try:
        # the default folder is the workspace's own (one per checkpoint content); a folder the user named needs --force
        export_lm_artifact(ckpt, fmt, compression, out or default_export_dir(ckpt, fmt, compression, workspace),
                           force or out is None)
    except EdgeZooError as e:
        _fail(e)


@app.command("profile")
def profile(artifact: Path = typer.Argument(..., help="LM artifact folder made by `edgezoo lm export`"),
            runtime: Optional[str] = typer.Option(None, "--runtime", help="torch | onnxruntime | mlx | coreml "
                                                 "(default: the artifact's; coreml is 'unavailable' off macOS)"),
            threads: int = typer.Option(2, "--threads", "-t", callback=int_at_least(1), max=256),
            workspace: Optional[Path] = WorkspaceOpt) -> None:
    """bpb, time to first token, prefill/decode tokens/s, peak memory in a fresh child; stored as a record."""
    try:
        check_lm_artifact(artifact, runtime)
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
    from exporters.lm.artifact import check_lm_request, default_lm_out_dir, reusable_lm_export

    try:
        ws = _ws(workspace)
        ckpt = ws.checkpoint_dir(f"openelm-{Path(recipe).stem}")
        pairs = [(f.strip(), c.strip()) for f in formats.split(",") for c in compressions.split(",")]
        for fmt, comp in pairs:  # every pair is checked before hours of training
            check_lm_request(fmt, comp)
        if not (ckpt / "card.json").exists():
            train_lm_checkpoint(recipe, ckpt, [])
        store, failed = ws.store(), False
        for fmt, comp in pairs:
            out = default_lm_out_dir(ws.artifacts, ckpt, fmt, comp)
            if reusable_lm_export(ckpt, fmt, comp, out):
                typer.echo(f"{out} (reused: same checkpoint, format, compression and exporter)")
            else:
                export_lm_artifact(ckpt, fmt, comp, out, force=True)  # the pipeline's own folder
            failed |= profile_lm_artifact(out, None, 2, store)["status"] not in ("ok", "unavailable")
    except EdgeZooError as e:
        _fail(e)
    if failed:
        raise typer.Exit(1)


@app.command("generate")
def gen(ckpt: Path = typer.Argument(..., help="LM checkpoint folder (byte vocabulary)"),
        prompt: str = typer.Option("def ", "--prompt", "-p"),
        tokens: int = typer.Option(80, "--tokens", "-n", callback=int_at_least(1), help="new tokens"),
        temperature: float = typer.Option(0.8, "--temperature", callback=finite_float(0.0, 10.0), help="0 = greedy"),
        top_k: int = typer.Option(0, "--top-k", callback=int_at_least(0), help="0 = off"),
        top_p: float = typer.Option(0.95, "--top-p", callback=finite_float(0.0, 1.0, strict_low=True, example=0.9)),
        seed: int = typer.Option(0, "--seed", min=0, max=2**63 - 1)) -> None:
    """Sample text from a trained byte LM (KV-cached); prompt + new tokens must fit the model's context."""
    import torch

    from models import checkpoint
    from models.generation.generate import generate
    from models.generation.prompt import byte_prompt
    from models.generation.sampling import check_temperature
    from trainers.text import decode

    try:
        check_temperature(temperature)
        model, card = checkpoint.load_lm(ckpt)
        ids = byte_prompt(model.args, prompt, tokens, card.get("tokenizer"))
    except EdgeZooError as e:
        _fail(e)
    out = generate(model, torch.tensor([ids]), tokens, temperature, top_k, top_p, seed)
    typer.echo(decode(ids) + decode(out[0]))
