"""Diffusion MAViL's section of the Papers page: what pre-training cost (counted training FLOPs by component) against
what the deployed audio encoder scores (audio-probe accuracy on the held-out clips), per deployed checkpoint. Read
from the checkpoints' card.json (`flops`, `metrics`), found through the records' artifact manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from trainers.rangeaugment.dashboard import checkpoints

COMPONENTS = (("audio_encoder", "audio encoder"), ("video_encoder", "video encoder"), ("fusion", "fusion"),
              ("audio_decoder", "audio decoder"), ("video_decoder", "video decoder"), ("contrastive", "contrastive"))


def cost_table(found: dict[str, dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for ckpt, card in found.items():
        m, r = card.get("metrics") or {}, card.get("recipe") or {}
        if "train_flops" not in m:
            continue
        rows.append({"checkpoint": Path(ckpt).name, "decoder": r.get("decoder"),
                     "video decoder": r.get("video_decoder"),
                     "ratio": f"{r.get('mask_ratio')} -> {r.get('mask_ratio_end')}",
                     "adaptive batch": r.get("adaptive_batch"), "epochs": r.get("epochs"),
                     "training GFLOPs": m["train_flops"] / 1e9, "audio probe": m.get("audio_probe"),
                     "video probe": m.get("video_probe"), "pre-training s": m.get("pretrain_seconds")})
    return pd.DataFrame(rows)


def flops_figure(found: dict[str, dict[str, Any]]) -> go.Figure:
    """Stacked training GFLOPs by component per checkpoint, its audio-probe accuracy on a second axis."""
    names = [Path(c).name for c in found]
    fig = go.Figure()
    for key, label in COMPONENTS:
        fig.add_trace(go.Bar(x=names, y=[(card.get("flops") or {}).get(key, 0) / 1e9 for card in found.values()],
                             name=label))
    fig.add_trace(go.Scatter(x=names, y=[(card.get("metrics") or {}).get("audio_probe") for card in found.values()],
                             mode="markers", marker={"size": 12, "symbol": "diamond"}, name="audio probe",
                             yaxis="y2"))
    fig.update_layout(barmode="stack", height=360, margin={"t": 30}, title="Pre-training cost vs probe accuracy",
                      yaxis={"title": "training GFLOPs (counted per token)"},
                      yaxis2={"title": "audio-probe accuracy", "overlaying": "y", "side": "right",
                              "range": [0, 1]})
    return fig


def section(records: pd.DataFrame) -> None:
    import streamlit as st

    st.subheader("Pre-training compute vs audio-probe accuracy")
    found = {k: v for k, v in checkpoints(records).items() if "train_flops" in (v.get("metrics") or {})}
    if not found:
        st.info("No Diffusion MAViL checkpoint found through these records: `edgezoo run --papers diffmavil` "
                "trains and deploys two; their card.json holds the FLOPs and probe accuracies plotted here.")
        return
    st.dataframe(cost_table(found), hide_index=True, width="stretch")
    st.plotly_chart(flops_figure(found), key="diffmavil_flops")
