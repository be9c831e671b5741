"""Printing a claim check: the claim, the paper's numbers, ours (mean ± std over seeds) and the verdict."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from trainers.claims import ClaimResult


def print_claim(result: ClaimResult) -> None:
    console = Console(width=160)
    console.print(f"[bold]{result.paper}[/bold]: {result.claim}")
    table = Table(title=f"measured on {result.device}{' (quick)' if result.quick else ''}, seeds {result.seeds}")
    for col in ("arm", "measured mean ± std", "per seed"):
        table.add_column(col)
    for arm, s in result.measured.items():
        table.add_row(arm, f"{s['mean']:.4f} ± {s['std']:.4f}", ", ".join(f"{v:.4f}" for v in s["per_seed"]))
    console.print(table)
    if result.paper_numbers:
        console.print("paper (at paper scale, not reproduced here): "
                      + "; ".join(f"{k}: {v}" for k, v in result.paper_numbers.items()))
    console.print(f"verdict: [bold]{result.verdict}[/bold] — {result.reason} ({result.seconds:.0f} s)")
