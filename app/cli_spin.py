"""`edgezoo spin ...`: SPIN weight fusion of a trained unshared checkpoint (heavy imports inside the command)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="SPIN cross-layer weight sharing (arXiv 2207.10237)")


@app.command()
def fuse(source: Path = typer.Argument(..., help="trained unshared checkpoint (spin_convmixer or vit, share=0)"),
         out: Path = typer.Argument(..., help="output checkpoint folder"),
         share: int = typer.Option(4, help="unique shared weights"),
         mapping: str = typer.Option("sequential", help="sequential | strided | random"),
         reduction: str = typer.Option("mean", help="mean | first | scalar | channel"),
         epochs: int = typer.Option(3, help="fine-tune epochs through the reduction"),
         lr: float = typer.Option(1e-3), seed: int = typer.Option(0)) -> None:
    """Weight-fusion init from SOURCE, fine-tune, fuse, and save a plain shared checkpoint to OUT."""
    from trainers.spin.recipe import train_fused

    metrics = train_fused(source, out, share, mapping, reduction, epochs, lr, seed)
    typer.echo(f"wrote {out}: val {metrics['val_accuracy']:.4f}, test {metrics['test_accuracy']:.4f}")
