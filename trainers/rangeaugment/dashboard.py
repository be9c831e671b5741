"""RangeAugment's section of the Papers page: for each checkpoint its records measure, the measured PSNR of the
augmented batches against the curriculum's target over training, the learned ranges, and clean vs corrupted test
accuracy. Everything comes from the checkpoint's card.json (`history`, `metrics`), found through the records'
artifact manifests; nothing is recomputed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

RANGE_OPS = (("brightness", "brightness factor"), ("contrast", "contrast factor"), ("noise", "noise std"))


def checkpoints(records: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Checkpoint folder -> its card, for every artifact folder in the records whose manifest names a readable
    checkpoint (artifacts or checkpoints deleted since are skipped)."""
    found: dict[str, dict[str, Any]] = {}
    paths = records["artifact.path"].dropna().unique() if "artifact.path" in records else []
    for art in paths:
        try:
            ckpt = json.loads((Path(str(art)) / "manifest.json").read_text()).get("checkpoint")
            if ckpt and ckpt not in found:
                found[str(ckpt)] = json.loads((Path(str(ckpt)) / "card.json").read_text())
        except (OSError, ValueError, AttributeError):
            continue
    return found


def psnr_figure(history: list[dict[str, Any]]) -> go.Figure:
    """Per epoch: mean measured PSNR (median per-sample MSE of each batch) and mean target PSNR."""
    h = pd.DataFrame(history)
    fig = go.Figure()
    for col, name in (("measured_psnr", "measured (batch median)"), ("target_psnr", "target (curriculum)")):
        fig.add_trace(go.Scatter(x=h["epoch"], y=h[col], mode="lines+markers", name=name))
    fig.update_layout(xaxis_title="epoch", yaxis_title="PSNR (dB)", height=320, margin={"t": 30},
                      title="Augmented-batch PSNR vs target")
    return fig


def ranges_figure(history: list[dict[str, Any]], op: str, label: str) -> go.Figure:
    """One operation's learned range [lo, hi] per epoch, the band between them shaded."""
    h = pd.DataFrame(history)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=h["epoch"], y=h[f"{op}_lo"], mode="lines", name="lo"))
    fig.add_trace(go.Scatter(x=h["epoch"], y=h[f"{op}_hi"], mode="lines", name="hi", fill="tonexty"))
    fig.update_layout(xaxis_title="epoch", yaxis_title=label, height=280, margin={"t": 30},
                      title=f"learned {op} range", yaxis_type="log" if op == "noise" else "linear")
    return fig


def accuracy_table(found: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Clean and corrupted test accuracy of each checkpoint (from its card's metrics)."""
    rows = []
    for ckpt, card in found.items():
        m = card.get("metrics") or {}
        rows.append({"checkpoint": Path(ckpt).name, "augmentor": bool((card.get("args") or {}).get("augment")),
                     **{k: v for k, v in m.items() if k.startswith("test_") and k != "test_n"},
                     "corrupted mean": m.get("corrupted_accuracy"), "PSNR gap (dB)": m.get("psnr_gap")})
    return pd.DataFrame(rows)


def section(records: pd.DataFrame) -> None:
    import streamlit as st

    st.subheader("Learned augmentation (training history)")
    found = checkpoints(records)
    if not found:
        st.info("No RangeAugment checkpoint found through these records: `edgezoo run --papers rangeaugment` trains "
                "and deploys one; its card.json holds the PSNR and range history plotted here.")
        return
    st.dataframe(accuracy_table(found), hide_index=True, width="stretch")
    for ckpt, card in found.items():
        history = card.get("history") or []
        if not history or "measured_psnr" not in history[0]:
            continue
        st.markdown(f"**`{Path(ckpt).name}`** (target {card.get('recipe', {}).get('target_psnr')} dB)")
        st.plotly_chart(psnr_figure(history), key=f"rangeaugment_psnr_{ckpt}")
        for col, (op, label) in zip(st.columns(len(RANGE_OPS)), RANGE_OPS):
            if f"{op}_lo" in history[0]:
                col.plotly_chart(ranges_figure(history, op, label), key=f"rangeaugment_{op}_{ckpt}")
