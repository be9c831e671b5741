"""Sweep a compression knob: export one checkpoint at several points and profile each (LCS alpha, DynaMoE theta).

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
    from profiles.measure import measure

    rows = []
    for fmt in formats:
        for alpha in alphas:
            art = export_checkpoint(Path(checkpoint), fmt, f"lcs:alpha={alpha}", workspace=workspace)
            log(f"{fmt} alpha={alpha:g}: exported {art.path}")
            record = stored(lambda: measure(art, threads=threads, scenario=scenario), store)
            rows.append(sweep_row(record, alpha))
    return rows


def stored(measure_point: Callable[[], dict[str, Any]], store: Any, **fields: Any) -> dict[str, Any]:
    """Measure one point and add its record (with `fields` set) to `store` when given; an interrupted
    measurement's record is stored too before the interruption goes on."""
    from profiles.launcher import MeasurementInterrupted

    try:
        record = {**measure_point(), **fields}
    except MeasurementInterrupted as e:
        if store is not None:
            store.add({**e.record, **fields})
        raise
    if store is not None:
        store.add(record)
    return record


def format_table(rows: list[dict[str, Any]]) -> str:
    head = f"{'alpha':>6} {'format':<7} {'sparsity':>8} {'size_kB':>8} {'accuracy':>8} {'p50_ms':>8}  status"
    lines = [head]
    for r in rows:
        num = lambda v, f: format(v, f) if isinstance(v, (int, float)) else "-"  # noqa: E731
        lines.append(f"{r['alpha']:>6.3f} {r['format'] or '-':<7} {num(r['sparsity'], '8.3f')} "
                     f"{num((r['size_bytes'] or 0) / 1e3, '8.1f')} {num(r['accuracy'], '8.3f')} "
                     f"{num(r['p50_ms'], '8.3f')}  {r['status']}{(': ' + r['error']) if r.get('error') else ''}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ DynaMoE theta

DEFAULT_THETAS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def dynamoe_row(record: dict[str, Any], theta: float) -> dict[str, Any]:
    """One table row of a DynaMoE theta point: bpb measured on the runtime, active FFN fraction and parameters per
    token counted at export, p50 decode step where measured."""
    art = record.get("artifact") or {}
    active = art.get("active_params") or {}
    return {"theta": theta, "format": art.get("format"), "runtime": record.get("runtime"),
            "active_ffn_fraction": active.get("active_ffn_fraction"),
            "active_params_per_token": active.get("active_params_per_token"),
            "bpb": (record.get("accuracy") or {}).get("value"),
            "p50_ms": (record.get("latency") or {}).get("median_ms"), "status": record.get("status"),
            "error": record.get("error_message")}


def sweep_dynamoe(checkpoint: Path, thetas: tuple[float, ...] = DEFAULT_THETAS, formats: tuple[str, ...] = ("onnx",),
                  workspace: Path | None = None, threads: int = 1, store: Any = None,
                  log: Callable[[str], None] = lambda s: None, **lm_settings: Any) -> list[dict[str, Any]]:
    """Export a DynaMoE checkpoint with `dynamoe:theta=T` for every theta and format, profile each LM artifact in a
    child process (profiles.lm_measure), add the records (paper "dynamoe") to `store` and return one row each."""
    from exporters.artifact import export_checkpoint
    from profiles.lm_measure import measure_lm

    rows = []
    for fmt in formats:
        for theta in thetas:
            art = export_checkpoint(Path(checkpoint), fmt, f"dynamoe:theta={theta}", workspace=workspace)
            log(f"{fmt} theta={theta:g}: exported {art.path}")
            record = stored(lambda: measure_lm(art.path, threads=threads, **lm_settings), store, paper="dynamoe")
            rows.append(dynamoe_row(record, theta))
    return rows


def format_dynamoe_table(rows: list[dict[str, Any]]) -> str:
    num = lambda v, f: format(v, f) if isinstance(v, (int, float)) else "-"  # noqa: E731
    lines = [f"{'theta':>6} {'format':<7} {'FFN frac':>8} {'active/tok':>10} {'bpb':>7} {'p50_ms':>8}  status"]
    for r in rows:
        lines.append(f"{r['theta']:>6.3f} {r['format'] or '-':<7} {num(r['active_ffn_fraction'], '8.3f')} "
                     f"{num(r['active_params_per_token'], '10.0f')} {num(r['bpb'], '7.4f')} {num(r['p50_ms'], '8.3f')}"
                     f"  {r['status']}{(': ' + r['error']) if r.get('error') else ''}")
    return "\n".join(lines)
