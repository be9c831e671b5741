"""The summary table printed after `edgezoo run` and by `edgezoo results`."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

HEADERS = ("paper", "model", "format", "compression", "runtime", "size", "bits/w", "p50 ms", "p90 ms", "peak MiB",
           "quality", "parity", "status")
LEFT = ("paper", "model", "format", "compression", "runtime", "status")


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1024:.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.2f} MiB"


def row_cells(r: dict[str, Any]) -> list[str]:
    parity = "-" if r.get("parity_sqnr_db") is None else f"{r['parity_sqnr_db']:.1f} dB"
    status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('error_class') or ''}"
    peak = None if r.get("peak_rss_bytes") is None else float(r["peak_rss_bytes"]) / (1 << 20)
    quality = "-" if r.get("accuracy") is None else f"{r['accuracy']:.3f} {r.get('quality_metric') or ''}".strip()
    model = str(r.get("model")) + (f" @{r['input_size']}px" if r.get("input_size") else "")  # multi-scale rows
    return [str(r.get("paper") or "-"), model, str(r.get("format")), str(r.get("compression")), str(r.get("runtime")),
            _size(int(r["size_bytes"]) if r.get("size_bytes") is not None else None), _fmt(r.get("bits_per_weight"), ".2f"),
            _fmt(r.get("p50_ms"), ".3f"), _fmt(r.get("p90_ms"), ".3f"), _fmt(peak, ".0f"),
            quality, parity, status]


def print_table(rows: list[dict[str, Any]], title: str = "EdgeZoo results") -> None:
    """One row per record; a `device` column when the rows were measured on more than one device (a fleet)."""
    several = len({r.get("device") for r in rows}) > 1
    table = Table(title=title)
    for h in (*HEADERS, *(("device",) if several else ())):
        table.add_column(h, justify="left" if h in LEFT or h == "device" else "right")
    for r in rows:
        table.add_row(*row_cells(r), *([str(r.get("device") or "-")] if several else []))
    Console(width=200).print(table)
