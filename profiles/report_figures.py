"""Plotly figures for device reports (built here, embedded by report_render)."""

from __future__ import annotations

from typing import Any


def _label(r: dict[str, Any]) -> str:
    a = r.get("artifact") or {}
    return f"{r.get('model')} {a.get('format')} {a.get('compression')} ({r.get('runtime')})"


def latency_accuracy_figure(points: list[dict[str, Any]], front: list[dict[str, Any]]):
    import plotly.graph_objects as go

    fig = go.Figure()
    for fmt in sorted({(r.get("artifact") or {}).get("format") for r in points}, key=str):
        sel = [r for r in points if (r.get("artifact") or {}).get("format") == fmt]
        fig.add_trace(go.Scatter(x=[r["latency"]["median_ms"] for r in sel], y=[r["accuracy"]["value"] for r in sel],
                                 mode="markers", name=str(fmt), text=[_label(r) for r in sel],
                                 marker={"size": 9, "opacity": 0.7}))
    fig.add_trace(go.Scatter(x=[r["latency"]["median_ms"] for r in front], y=[r["accuracy"]["value"] for r in front],
                             mode="lines+markers", name="Pareto front", text=[_label(r) for r in front],
                             line={"color": "crimson", "width": 3}, marker={"size": 12, "symbol": "star"}))
    fig.update_layout(title="Accuracy vs measured p50 latency", xaxis_title="p50 latency (ms, log)",
                      yaxis_title="top-1 accuracy", xaxis_type="log", template="plotly_white", height=480)
    return fig


def measured_vs_predicted_figure(rows: list[dict[str, Any]]):
    import plotly.graph_objects as go

    lo = min(min(r["measured_ms"], r["predicted_ms"]) for r in rows) * 0.5
    hi = max(max(r["measured_ms"], r["predicted_ms"]) for r in rows) * 2
    fig = go.Figure()
    for fmt in sorted({r["format"] for r in rows}, key=str):
        sel = [r for r in rows if r["format"] == fmt]
        fig.add_trace(go.Scatter(x=[r["predicted_ms"] for r in sel], y=[r["measured_ms"] for r in sel], mode="markers",
                                 name=str(fmt), text=[f"{r['model']} {r['compression']} ({r['runtime']})" for r in sel],
                                 marker={"size": 9}))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="measured = predicted",
                             line={"dash": "dash", "color": "gray"}))
    fig.update_layout(title="Measured p50 vs predicted (roofline) on this machine", xaxis_title="predicted ms (log)",
                      yaxis_title="measured p50 ms (log)", xaxis_type="log", yaxis_type="log",
                      template="plotly_white", height=480)
    return fig
