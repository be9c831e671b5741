"""ByteFormer's Papers-page section: per exported artifact (format x compression) its latency on held-out JPEG
files at the fixed byte length, its top-1 on those files and its parity with torch: what the byte model costs on
device once the decoder is gone, and what each compression does to accuracy."""

from __future__ import annotations

from typing import Any

import pandas as pd

COLUMNS = ("artifact.format", "artifact.compression", "latency.median_ms", "accuracy.value", "status")


def per_artifact(df: pd.DataFrame) -> pd.DataFrame:
    """The newest ok record per (format, compression)."""
    if df.empty or any(c not in df.columns for c in COLUMNS):
        return pd.DataFrame(columns=[*COLUMNS, "artifact"])
    ok = df[df["status"] == "ok"].sort_values("id") if "id" in df.columns else df[df["status"] == "ok"]
    ok = ok.drop_duplicates(["artifact.format", "artifact.compression"], keep="last")
    return ok.assign(artifact=ok["artifact.format"] + " " + ok["artifact.compression"]).sort_values("artifact")


def figure(rows: pd.DataFrame) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("latency p50 (ms), JPEG bytes at the fixed length",
                                                        "top-1 on held-out JPEG files"))
    fig.add_trace(go.Bar(x=rows["artifact"], y=rows["latency.median_ms"], name="latency"), 1, 1)
    fig.add_trace(go.Bar(x=rows["artifact"], y=rows["accuracy.value"], name="top-1"), 1, 2)
    fig.update_layout(height=380, margin={"t": 40}, showlegend=False)
    return fig


def section(df: pd.DataFrame) -> None:
    import streamlit as st

    st.subheader("Classifying JPEG bytes: latency and accuracy per artifact")
    rows = per_artifact(df)
    if rows.empty:
        st.info("No ByteFormer records yet: `edgezoo run --papers byteformer` trains the JPEG model, exports it "
                "(int32 tokens + mask at a fixed length) and profiles it on held-out JPEG files.")
        return
    st.plotly_chart(figure(rows), width="stretch")
    st.caption("Claim: `edgezoo reproduce byteformer` (accuracy per encoding and byte transform, see the Claims page).")
