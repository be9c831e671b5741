"""CatLIP's section of the Papers page: the deployed scene encoders (CatLIP- and CLIP-pre-trained, a linear digit
probe as head) side by side: each checkpoint's linear-probe accuracy per scene attribute (from its card.json) and
the measured probe accuracy of every exported artifact per format and compression (from the records)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from trainers.rangeaugment.dashboard import checkpoints

ATTRIBUTES = ("shape", "colour", "digit")


def probe_table(found: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per pre-trained checkpoint: its arm and probe accuracies on held-out scenes."""
    rows = []
    for ckpt, card in found.items():
        m, r = card.get("metrics") or {}, card.get("recipe") or {}
        rows.append({"checkpoint": Path(ckpt).name, "arm": r.get("arm"), "steps": m.get("steps"),
                     **{f"probe {a}": m.get(f"probe_{a}") for a in ATTRIBUTES}, "probe mean": m.get("probe_mean"),
                     "deployed head": f"{r.get('probe')} probe", "train s": m.get("train_seconds")})
    return pd.DataFrame(rows)


def probe_figure(table: pd.DataFrame) -> go.Figure:
    """Grouped bars: linear-probe accuracy per attribute, one bar group per checkpoint."""
    fig = go.Figure()
    for _, row in table.iterrows():
        fig.add_trace(go.Bar(x=list(ATTRIBUTES), y=[row[f"probe {a}"] for a in ATTRIBUTES],
                             name=f"{row['checkpoint']} ({row['arm']})"))
    fig.update_layout(barmode="group", height=340, margin={"t": 30}, yaxis={"title": "probe accuracy",
                                                                           "range": [0, 1]},
                      title="Linear probes on the frozen encoder (held-out scenes)")
    return fig


def checkpoint_name(artifact_path: object) -> str | None:
    """The name of the checkpoint an artifact folder was exported from (its manifest), None when unreadable."""
    try:
        ckpt = json.loads((Path(str(artifact_path)) / "manifest.json").read_text()).get("checkpoint")
    except (OSError, ValueError, AttributeError):
        return None
    return Path(ckpt).name if ckpt else None


def artifact_figure(records: pd.DataFrame) -> go.Figure | None:
    """Probe accuracy of each exported artifact (newest record per checkpoint, format and compression)."""
    needed = ("artifact.path", "artifact.format", "artifact.compression", "accuracy.value")
    if records.empty or any(c not in records for c in needed):
        return None
    df = records.dropna(subset=["accuracy.value"])
    df = df.assign(checkpoint=df["artifact.path"].map(checkpoint_name)).dropna(subset=["checkpoint"])
    if df.empty:
        return None
    df = df.sort_values(["id"] if "id" in df else []).groupby(
        ["checkpoint", "artifact.format", "artifact.compression"]).tail(1)
    fig = go.Figure()
    for name, part in df.groupby("checkpoint"):
        fig.add_trace(go.Bar(x=part["artifact.format"] + " " + part["artifact.compression"],
                             y=part["accuracy.value"], name=str(name)))
    fig.update_layout(barmode="group", height=340, margin={"t": 30}, title="Deployed digit probe per artifact",
                      yaxis={"title": "probe accuracy (held-out scenes)", "range": [0, 1]})
    return fig


def section(records: pd.DataFrame) -> None:
    import streamlit as st

    st.subheader("CatLIP vs CLIP pre-training: what the deployed encoder knows")
    found = {k: v for k, v in checkpoints(records).items() if "probe_mean" in (v.get("metrics") or {})}
    if not found:
        st.info("No CatLIP checkpoint found through these records: `edgezoo run --papers catlip` trains and deploys "
                "the CatLIP and CLIP encoders; their card.json holds the probe accuracies plotted here.")
        return
    table = probe_table(found)
    st.dataframe(table, hide_index=True, width="stretch")
    st.plotly_chart(probe_figure(table), key="catlip_probes")
    if (fig := artifact_figure(records)) is not None:
        st.plotly_chart(fig, key="catlip_artifacts")
