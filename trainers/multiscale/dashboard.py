"""The multi-scale plug-in's Papers-page section: latency (p50) and top-1 per input resolution, one line per arm
(the checkpoint an artifact was exported from), for a chosen format and compression."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

COLUMNS = ("scenario.input_size", "latency.median_ms", "accuracy.value", "artifact.format", "artifact.compression",
           "artifact.path")


def arm_names(paths: list[str]) -> dict[str, str]:
    """Artifact folder -> the checkpoint folder it was exported from (its manifest), else the folder's parent name."""
    out = {}
    for p in paths:
        try:
            out[p] = Path(json.loads((Path(p) / "manifest.json").read_text())["checkpoint"]).name
        except (OSError, ValueError, KeyError, TypeError):
            out[p] = Path(p).parent.name
    return out


def per_size(df: pd.DataFrame, arms: dict[str, str]) -> pd.DataFrame:
    """The newest ok record per (artifact, input size), with its arm, sorted by size."""
    if df.empty or any(c not in df.columns for c in COLUMNS):
        return pd.DataFrame(columns=[*COLUMNS, "arm"])
    ok = df[(df["status"] == "ok") & df["scenario.input_size"].notna()].sort_values("id")
    ok = ok.drop_duplicates(["artifact.path", "scenario.input_size"], keep="last")
    return ok.assign(arm=ok["artifact.path"].map(arms)).sort_values(["arm", "scenario.input_size"])


def figure(rows: pd.DataFrame) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("latency p50 (ms)", "top-1 on the test split"))
    for arm, part in rows.groupby("arm"):
        x = part["scenario.input_size"]
        fig.add_trace(go.Scatter(x=x, y=part["latency.median_ms"], mode="lines+markers", name=str(arm),
                                 legendgroup=str(arm)), 1, 1)
        fig.add_trace(go.Scatter(x=x, y=part["accuracy.value"], mode="lines+markers", name=str(arm),
                                 legendgroup=str(arm), showlegend=False), 1, 2)
    fig.update_xaxes(title_text="input size (px, square)")
    fig.update_layout(height=380, margin={"t": 40})
    return fig


def section(df: pd.DataFrame) -> None:
    import streamlit as st

    st.subheader("Latency and accuracy per input resolution")
    paths = df["artifact.path"].dropna().unique().tolist() if "artifact.path" in df.columns else []
    rows = per_size(df, arm_names(paths))
    if rows.empty:
        st.info("No per-resolution records yet: `edgezoo run --papers multiscale` exports each arm at every size "
                "it was trained at and profiles each size.")
        return
    c1, c2 = st.columns(2)
    fmt = c1.selectbox("format", sorted(rows["artifact.format"].unique()), key="multiscale_fmt")
    comp = c2.selectbox("compression", sorted(rows["artifact.compression"].unique()), key="multiscale_comp")
    part = rows[(rows["artifact.format"] == fmt) & (rows["artifact.compression"] == comp)]
    if part.empty:
        st.caption(f"No measured {fmt} {comp} artifact (Core ML is measured on macOS only).")
        return
    st.plotly_chart(figure(part), key="multiscale_per_size")
    st.caption("Each arm is one network exported once with every size as an input shape (ONNX dynamic H/W, Core ML "
               "enumerated shapes, MLX shapeless); accuracy at a size is on the test images resized to it.")
