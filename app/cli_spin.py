"""`edgezoo spin ...`: SPIN weight fusion of a trained unshared checkpoint (heavy imports inside the command)."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli_options import fail as _fail, finite_float, int_at_least
from models.errors import EdgeZooError

app = typer.Typer(help="SPIN cross-layer weight sharing (arXiv 2207.10237)")


@app.command()
def fuse(source: Path = typer.Argument(..., help="trained unshared checkpoint (spin_convmixer or vit, share=0)"),
         out: Path = typer.Argument(..., help="output checkpoint folder"),
         share: int = typer.Option(4, help="unique shared weights (divides the depth)", callback=int_at_least(1)),
         mapping: str = typer.Option("sequential", help="sequential | strided | random"),
         reduction: str = typer.Option("mean", help="mean | first | scalar | channel"),
         epochs: int = typer.Option(3, help="fine-tune epochs through the reduction", callback=int_at_least(0)),
         lr: float = typer.Option(1e-3, callback=finite_float(0.0, 10.0, strict_low=True, example=1e-3)),
         seed: int = typer.Option(0, min=0, max=2**32 - 1)) -> None:
    """Weight-fusion init from SOURCE, fine-tune, fuse, and save a plain shared checkpoint to OUT."""
    from app.cli_lm import check_out_folder
    from trainers.spin.recipe import train_fused

    try:
        metrics = train_fused(source, check_out_folder(out, "OUT"), share, mapping, reduction, epochs, lr, seed)
    except EdgeZooError as e:
        _fail(e)
    typer.echo(f"wrote {out}: val {metrics['val_accuracy']:.4f}, test {metrics['test_accuracy']:.4f}")
