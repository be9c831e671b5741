"""Compression knob: an LCS checkpoint swept over alpha (`edgezoo sweep lcs`); slide along its line and see
accuracy, size on disk, sparsity and p50 per format/runtime, with the whole grid as curves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.dashboard import charts, data as D

LCS_NAME = re.compile(r"^lcs-a(\d+(?:\.\d+)?)$")  # CompressionSpec.name for method lcs
CURVES = {"accuracy": ("accuracy", "test accuracy"), "size": ("size_kb", "size on disk (kB)"),
          "p50": ("p50_ms", "p50 latency (ms)")}


def sweep_rows(ws: D.Workspace, flat: pd.DataFrame) -> pd.DataFrame:
    """One row per LCS sweep record (latest per checkpoint line, alpha, format, runtime)."""
    alphas = flat["compression"].astype(str).str.extract(LCS_NAME, expand=False).astype(float)
    ids = flat.loc[alphas.notna(), "id"].tolist()
    rows = [_row(rec) for rec in D.records(ws, ids)]
    df = pd.DataFrame(rows, columns=["id", "line", "alpha", "format", "runtime", "status", "accuracy", "size_kb",
                                     "sparsity", "p50_ms", "error"])
    if df.empty:
        return df
    df = df.sort_values("id").drop_duplicates(["line", "alpha", "format", "runtime"], keep="last")
    return df.sort_values(["line", "format", "runtime", "alpha"]).reset_index(drop=True)


def _row(rec: dict[str, Any]) -> dict[str, Any]:
    art = rec.get("artifact") or {}
    folder = Path(str(art.get("path") or "")).parent.name  # artifacts/<model>-<checkpoint hash>/<fmt>-<spec>
    size = art.get("size_bytes")
    return {"id": rec["id"], "line": folder or str(rec.get("model")),
            "alpha": float(LCS_NAME.match(str(art.get("compression"))).group(1)),
            "format": art.get("format"), "runtime": rec.get("runtime"), "status": rec.get("status"),
            "accuracy": (rec.get("accuracy") or {}).get("value"), "size_kb": None if size is None else size / 1e3,
            "sparsity": art.get("sparsity"), "p50_ms": (rec.get("latency") or {}).get("median_ms"),
            "error": rec.get("error_message")}


def curve(df: pd.DataFrame, col: str, title: str, alpha: float) -> go.Figure:
    """`col` vs alpha, one line per format/runtime, the selected alpha as a dashed vertical line."""
    fig = go.Figure()
    for i, ((fmt, rt), part) in enumerate(df.groupby(["format", "runtime"], sort=True)):
        part = part.dropna(subset=[col])
        if part.empty:
            continue
        fig.add_trace(go.Scatter(x=part["alpha"], y=part[col], mode="lines+markers", name=f"{fmt} / {rt}",
                                 line={"color": charts.PALETTE[i % len(charts.PALETTE)]},
                                 customdata=part[["id"]].to_numpy(),
                                 hovertemplate=f"#%{{customdata[0]}} α=%{{x:g}}<br>{title}: %{{y:.4g}}<extra></extra>"))
    fig.add_vline(x=alpha, line_dash="dash", line_color="black", annotation_text=f"α={alpha:g}",
                  annotation_position="top left")
    fig.update_layout(xaxis_title="α (kept fraction of weights)", yaxis_title=title, height=360,
                      margin={"t": 30, "b": 40}, legend={"orientation": "h", "y": -0.25})
    return fig


def _num(v: Any, fmt: str) -> str:
    return "—" if v is None or pd.isna(v) else format(v, fmt)


def _delta(v: Any, ref: Any, fmt: str) -> str | None:
    if v is None or ref is None or pd.isna(v) or pd.isna(ref):
        return None
    return format(v - ref, "+" + fmt)


def point_cards(df: pd.DataFrame, alpha: float) -> None:
    """Metrics per format/runtime at `alpha`, deltas against the dense end (the largest alpha profiled)."""
    here, dense = df[df["alpha"] == alpha], df[df["alpha"] == df["alpha"].max()]
    dense = dense.iloc[0:0] if alpha == df["alpha"].max() else dense  # no all-zero deltas at the dense end
    for _, r in here.sort_values("status", key=lambda s: s != "ok", kind="stable").iterrows():  # measured first
        ref = dense[(dense["format"] == r["format"]) & (dense["runtime"] == r["runtime"])]
        ref = ref.iloc[0] if not ref.empty else {}
        st.markdown(f"**{r['format']} / {r['runtime']}** · record #{r['id']} · {r['status']}")
        m = st.columns(4)
        m[0].metric("accuracy", _num(r["accuracy"], ".3f"), _delta(r["accuracy"], ref.get("accuracy"), ".3f"))
        m[1].metric("size on disk (kB)", _num(r["size_kb"], ".1f"), _delta(r["size_kb"], ref.get("size_kb"), ".1f"),
                    delta_color="inverse")
        m[2].metric("sparsity", _num(r["sparsity"], ".3f"))
        m[3].metric("p50 (ms)", _num(r["p50_ms"], ".3f"), _delta(r["p50_ms"], ref.get("p50_ms"), ".3f"),
                    delta_color="inverse")
        if r["status"] != "ok" and r["error"]:
            st.caption(f"{r['status']}: {r['error']}")


st.title("Compression knob")
ws = D.workspace()
flat = D.flat(ws)
sweeps = sweep_rows(ws, flat) if flat is not None and not flat.empty else pd.DataFrame()
if sweeps.empty:
    st.info(f"No LCS sweep records in `{ws.store_path}`. Train an LCS checkpoint (trainers/lcs/README.md), then run "
            f"`edgezoo sweep lcs CKPT --alphas 0.025,0.25,0.5,0.75,1 -f onnx -f mlx -w {ws.root}`.")
    st.stop()
st.sidebar.caption(f"workspace `{ws.root}`")
line = st.selectbox("LCS model (checkpoint)", sorted(sweeps["line"].unique()), key="knob_line")
grid = sweeps[sweeps["line"] == line]
alphas = sorted(grid["alpha"].unique())
alpha = st.select_slider("α: kept fraction of weights (sparsity ≈ 1 − α)", options=alphas, value=alphas[-1],
                         format_func=lambda a: f"{a:g}", key="knob_alpha")
st.caption(f"{len(alphas)} profiled α values, {grid.groupby(['format', 'runtime']).ngroups} format/runtime pairs; "
           "deltas are against the dense end (largest α).")
point_cards(grid, alpha)
cols = st.columns(len(CURVES))
for c, (name, (col, title)) in zip(cols, CURVES.items()):
    fig = curve(grid, col, title, alpha)
    if name == "size":  # from zero: dense storage keeps the size flat, which a tight axis would hide
        fig.update_yaxes(rangemode="tozero")
    c.plotly_chart(fig, key=f"knob_{name}")
with st.expander("the whole grid"):
    st.dataframe(grid.drop(columns=["line"]), hide_index=True, width="stretch")
