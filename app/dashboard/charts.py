"""Plotly figures for the pages (plain functions of data frames / records; no Streamlit here)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

FRONT = "Pareto front"
WEBGL_ABOVE = 2000  # points; SVG beyond this gets slow in the browser
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
HOVER = ("id", "model", "paper", "format", "compression", "runtime", "threads", "device", "status",
         "size", "bits_per_weight", "p50_ms", "p90_ms", "peak", "accuracy", "parity_sqnr_db")


def _hover_data(df: pd.DataFrame) -> np.ndarray:
    out = df.assign(size=_mib(df["size_bytes"]), peak=_mib(df["peak_rss_bytes"]))
    for col in ("bits_per_weight", "p50_ms", "p90_ms", "accuracy", "parity_sqnr_db"):
        out[col] = out[col].map(lambda v: "—" if pd.isna(v) else f"{v:.4g}")
    return out[list(HOVER)].astype(str).to_numpy()


def _mib(s: pd.Series) -> pd.Series:
    return s.map(lambda v: "—" if pd.isna(v) else f"{v / 2**20:.2f} MiB")


def _hovertemplate() -> str:
    lines = [f"{name}: %{{customdata[{i}]}}" for i, name in enumerate(HOVER)]
    return "<br>".join(lines) + "<extra></extra>"


def marker_sizes(values: pd.Series, lo: float = 6.0, hi: float = 30.0) -> np.ndarray:
    """Marker area grows with the value; missing values get the smallest marker."""
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    top = np.nanmax(v) if np.isfinite(v).any() else 1.0
    return np.where(np.isfinite(v), lo + (hi - lo) * np.sqrt(np.clip(v, 0, None) / (top or 1.0)), lo)


def log_ticks(values: pd.Series) -> list[float]:
    """1-2-5 tick values spanning the data (plotly's own log ticks label 0.2 as a bare "2")."""
    v = pd.to_numeric(values, errors="coerce")
    v = v[v > 0]
    if v.empty:
        return []
    lo, hi = np.floor(np.log10(v.min())), np.ceil(np.log10(v.max()))
    steps = (1, 2, 5) if v.max() / v.min() > 10 else (1, 1.5, 2, 3, 4, 5, 7)  # denser within one decade
    ticks = [m * 10.0 ** e for e in range(int(lo), int(hi) + 1) for m in steps]
    return [t for t in ticks if v.min() / 2 <= t <= v.max() * 2]


def tradeoff(df: pd.DataFrame, front: pd.DataFrame, size_col: str, color_col: str, x: str = "p50_ms",
             x_title: str = "p50 latency (ms, log)", y_title: str = "accuracy", height: int = 560) -> go.Figure:
    """Quality (`accuracy` column, titled `y_title`) vs `x` on a log axis, one trace per colour group, the Pareto
    front as a line."""
    scatter = go.Scattergl if len(df) > WEBGL_ABOVE else go.Scatter  # the front too: WebGL draws above SVG
    hi = float(np.clip(34 - 4 * np.log10(max(len(df), 1)), 12, 30))  # smaller markers when there are many
    sizes = pd.Series(marker_sizes(df[size_col], lo=min(6.0, hi / 2), hi=hi), index=df.index)
    fig = go.Figure()
    for i, (group, part) in enumerate(df.groupby(df[color_col].astype(str), sort=True)):
        marker = {"size": sizes[part.index], "color": PALETTE[i % len(PALETTE)], "line": {"width": 0.5},
                  "opacity": 0.75 if len(df) <= WEBGL_ABOVE else 0.45}
        fig.add_trace(scatter(x=part[x], y=part["accuracy"], mode="markers", name=str(group), marker=marker,
                              customdata=_hover_data(part), hovertemplate=_hovertemplate()))
    fig.add_trace(scatter(x=front[x], y=front["accuracy"], mode="lines+markers", name=FRONT,
                             line={"color": "black", "width": 2, "shape": "hv"},
                             marker={"symbol": "star", "size": 10, "color": "gold", "line": {"width": 1}},
                             customdata=_hover_data(front), hovertemplate=_hovertemplate()))
    ticks = log_ticks(df[x])
    fig.update_layout(xaxis_title=x_title, yaxis_title=y_title, xaxis_type="log",
                      xaxis={"tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks]},
                      legend_title=color_col, height=height, margin={"t": 30})
    return fig


def history(card_history: list[dict[str, Any]]) -> go.Figure:
    """Training curves: losses on the left axis, validation accuracy on the right."""
    h = pd.DataFrame(card_history)
    fig = go.Figure()
    for col in ("train_loss", "val_loss"):
        if col in h:
            fig.add_trace(go.Scatter(x=h["epoch"], y=h[col], mode="lines+markers", name=col))
    if "val_accuracy" in h:
        fig.add_trace(go.Scatter(x=h["epoch"], y=h["val_accuracy"], mode="lines+markers", name="val_accuracy",
                                 yaxis="y2"))
    fig.update_layout(xaxis_title="epoch", yaxis_title="loss", height=320, margin={"t": 20},
                      yaxis2={"title": "val accuracy", "overlaying": "y", "side": "right", "range": [0, 1.02],
                              "tickvals": [0, 0.2, 0.4, 0.6, 0.8, 1.0], "showgrid": False})
    return fig


def latency_dist(recs: list[dict[str, Any]], names: list[str], kind: str = "box") -> go.Figure:
    """Raw latency samples per record as box or violin plots."""
    fig = go.Figure()
    for rec, name in zip(recs, names):
        samples = (rec.get("latency") or {}).get("samples_ms") or []
        trace = go.Violin(y=samples, name=name, box_visible=True, meanline_visible=True) if kind == "violin" \
            else go.Box(y=samples, name=name, boxmean=True)
        fig.add_trace(trace)
    ticks = log_ticks(pd.Series([v for r in recs for v in (r.get("latency") or {}).get("samples_ms") or []]))
    fig.update_layout(yaxis_title="latency (ms, log)", yaxis_type="log", height=420, showlegend=False, margin={"t": 20},
                      yaxis={"tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks]})
    return fig


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and np.isfinite(v) else None


def bars(names: list[str], series: dict[str, list[float | None]], yaxis: str) -> go.Figure:
    """Grouped bars; missing or infinite values (e.g. SQNR of an exact copy) are left out."""
    fig = go.Figure([go.Bar(x=names, y=[_finite(v) for v in vals], name=label) for label, vals in series.items()])
    fig.update_layout(barmode="group", yaxis_title=yaxis, height=320, margin={"t": 20})
    return fig


def predicted_vs_measured(df: pd.DataFrame, measured: str = "measured_p50_ms",
                          predictor: str = "roofline lower bound") -> go.Figure:
    """Predicted vs measured p50 per record, with the y = x line (the roofline's prediction is a lower bound);
    a frame with an `error` column ((predicted - measured) / measured) shows it on hover."""
    text = ("#" + df["id"].astype(str) + " " + df["model"].astype(str) + " " + df["format"].astype(str) + "/"
            + df["compression"].astype(str))
    if "error" in df:
        text = text + " error " + (100 * df["error"]).round(1).astype(str) + " %"
    fig = go.Figure(go.Scatter(x=df["predicted_ms"], y=df[measured], mode="markers", text=text,
                               name="records",
                               hovertemplate="%{text}<br>predicted %{x:.4g} ms<br>measured %{y:.4g} ms"))
    both = pd.concat([df["predicted_ms"], df[measured]]).dropna()
    both = both[both > 0]
    if not both.empty:
        fig.add_trace(go.Scatter(x=[both.min(), both.max()], y=[both.min(), both.max()], mode="lines", name="y = x",
                                 line={"dash": "dash", "color": "grey"}))
    fig.update_layout(xaxis_title=f"predicted p50 (ms, {predictor})", yaxis_title="measured p50 (ms)",
                      xaxis_type="log", yaxis_type="log", height=460, showlegend=False, margin={"t": 20})
    return fig
