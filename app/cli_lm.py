"""`edgezoo lm ...`: the default LM pipeline (OpenELM byte LM on pydoc text). Heavy imports inside commands."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Language-model pipeline: train, export, profile, run (OpenELM byte LM).", no_args_is_help=True)
WS = Path("edgezoo-workspace")


@app.command("train")
def train(recipe: str = typer.Argument("openelm_default"), out: Path = typer.Option(WS / "zoo" / "openelm"),
          set_: list[str] = typer.Option([], "--set", help="recipe override key=value")) -> None:
    """Train a byte-level OpenELM (val bpb / perplexity every eval_every steps; unigram baseline reported)."""
    from trainers.openelm.recipe import load_lm_recipe
    from trainers.openelm.train import train_lm

    m = train_lm(load_lm_recipe(recipe, set_), out)
    typer.echo(f"val bpb {m['val_bpb']:.4f} (best {m['best_val_bpb']:.4f}) vs unigram {m['unigram_bpb']:.4f} -> {out}")


@app.command("export")
def export(ckpt: Path, fmt: str = typer.Option("onnx", help="torch | onnx | mlx"),
           compression: str = typer.Option("none", help="none | int8 | int4 | seedlm3 | seedlm4"),
           out: Path = typer.Option(None)) -> None:
    """Export an LM checkpoint (ONNX prefill+decode graphs with explicit KV cache, mlx-lm folder, or torch)."""
    from exporters.lm.artifact import export_lm

    out = out or WS / "artifacts" / f"openelm-{fmt}-{compression}"
    typer.echo(str(export_lm(ckpt, fmt, compression, out)))


@app.command("profile")
def profile(artifact: Path, runtime: str = typer.Option(None), threads: int = 2,
            db: Path = typer.Option(WS / "results.db")) -> None:
    """bpb, time to first token, prefill/decode tokens/s, peak memory in a fresh child; stored as a record."""
    from profiles.lm_measure import measure_lm
    from profiles.store import Store

    r = measure_lm(artifact, runtime, threads)
    Store(db).add(r)
    if r["status"] != "ok":
        typer.echo(f"failed: {r.get('error_class')}: {r.get('error_message')}")
        raise typer.Exit(1)
    typer.echo(f"{r['runtime']}: bpb {r['accuracy']['value']:.4f}  TTFT {r['ttft_s'] * 1e3:.1f} ms  "
               f"prefill {r['prefill_tokens_per_s']:.0f} tok/s  decode {r['decode_tokens_per_s']:.0f} tok/s  "
               f"peak RSS {r['memory']['peak_rss_bytes'] / 2**20:.0f} MiB")


@app.command("run")
def run(recipe: str = "openelm_default", formats: str = "torch,onnx,mlx", compressions: str = "none,int4,seedlm4") -> None:
    """The default LM pipeline: train -> export every (format, compression) -> profile each into the store."""
    ckpt = WS / "zoo" / "openelm"
    if not (ckpt / "card.json").exists():
        train(recipe, ckpt, [])
    for fmt in formats.split(","):
        for comp in compressions.split(","):
            out = WS / "artifacts" / f"openelm-{fmt}-{comp}"
            export(ckpt, fmt, comp, out)
            profile(out, None, 2, WS / "results.db")


@app.command("generate")
def gen(ckpt: Path, prompt: str = "def ", tokens: int = 80, temperature: float = 0.8, top_k: int = 0,
        top_p: float = 0.95, seed: int = 0) -> None:
    """Sample text from a trained byte LM (KV-cached)."""
    import torch

    from models import checkpoint
    from models.openelm import generate
    from trainers.text import decode, encode

    model, _ = checkpoint.load(ckpt)
    out = generate(model, torch.tensor([encode(prompt)]), tokens, temperature, top_k, top_p, seed)
    typer.echo(prompt + decode(out[0]))
