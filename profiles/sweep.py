"""Sweep a compression knob: export one checkpoint at several points and profile each (LCS alpha first).

`sweep_lcs` is plain Python so the CLI (`edgezoo sweep lcs`) and the dashboard share it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def sweep_row(record: dict[str, Any], alpha: float) -> dict[str, Any]:
    """One table row from a measurement record."""
    art = record.get("artifact") or {}
    return {"alpha": alpha, "format": art.get("format"), "runtime": record.get("runtime"),
            "sparsity": art.get("sparsity"), "size_bytes": art.get("size_bytes"),
            "accuracy": (record.get("accuracy") or {}).get("value"),
            "p50_ms": (record.get("latency") or {}).get("median_ms"), "status": record.get("status"),
            "error": record.get("error_message")}


def sweep_lcs(checkpoint: Path, alphas: tuple[float, ...] = DEFAULT_ALPHAS, formats: tuple[str, ...] = ("onnx",),
              workspace: Path | None = None, threads: int = 1, scenario: Any = None, store: Any = None,
              log: Callable[[str], None] = lambda s: None) -> list[dict[str, Any]]:
    """Export `checkpoint` with `lcs:alpha=A` for every alpha and format, measure each in a child process,
    add the records to `store` (when given) and return one row per (alpha, format)."""
    from exporters.artifact import export_checkpoint
    from profiles.launcher import MeasurementInterrupted
    from profiles.measure import measure

    rows = []
    for fmt in formats:
        for alpha in alphas:
            art = export_checkpoint(Path(checkpoint), fmt, f"lcs:alpha={alpha}", workspace=workspace)
            log(f"{fmt} alpha={alpha:g}: exported {art.path}")
            try:
                record = measure(art, threads=threads, scenario=scenario)
            except MeasurementInterrupted as e:
                if store is not None:
                    store.add(e.record)
                raise
            if store is not None:
                store.add(record)
            rows.append(sweep_row(record, alpha))
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    head = f"{'alpha':>6} {'format':<7} {'sparsity':>8} {'size_kB':>8} {'accuracy':>8} {'p50_ms':>8}  status"
    lines = [head]
    for r in rows:
        num = lambda v, f: format(v, f) if isinstance(v, (int, float)) else "-"  # noqa: E731
        lines.append(f"{r['alpha']:>6.3f} {r['format'] or '-':<7} {num(r['sparsity'], '8.3f')} "
                     f"{num((r['size_bytes'] or 0) / 1e3, '8.1f')} {num(r['accuracy'], '8.3f')} "
                     f"{num(r['p50_ms'], '8.3f')}  {r['status']}{(': ' + r['error']) if r.get('error') else ''}")
    return "\n".join(lines)
