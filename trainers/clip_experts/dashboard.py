"""CLIP meets model-zoo experts' section of the Papers page: for each deployed checkpoint (CLIP only; CLIP + expert
pseudo-labels) the frozen-encoder probe mIoU and depth RMSE and the zero-shot accuracy (from its card.json), and a few
test scenes with the true mask, the expert's pseudo-label and the probe's prediction (its examples.npz)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from trainers.rangeaugment.dashboard import checkpoints

PANELS = (("miou", "probe mIoU (higher is better)"), ("depth_rmse", "probe depth RMSE (lower is better)"),
          ("zero_shot", "zero-shot shape/colour accuracy"))
# mask colours: background, circle, square, triangle; ignored pseudo-label pixels grey
CLASS_RGB = np.array([[20, 20, 20], [230, 80, 60], [60, 160, 230], [240, 200, 40], [128, 128, 128]], np.uint8)


def metrics_table(found: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per checkpoint: its arm, expert noise and the card's metrics."""
    rows = []
    for ckpt, card in found.items():
        m, r = card.get("metrics") or {}, card.get("recipe") or {}
        rows.append({"checkpoint": Path(ckpt).name, "arm": r.get("arm"),
                     "expert noise": r.get("noise") if r.get("arm") == "experts" else None,
                     "steps": m.get("steps"), "probe mIoU": m.get("miou"), "depth RMSE": m.get("depth_rmse"),
                     "zero-shot": m.get("zero_shot"), "zs shape": m.get("zs_shape"), "zs colour": m.get("zs_colour"),
                     "pseudo mIoU": m.get("pseudo_miou"), "pseudo coverage": m.get("pseudo_coverage"),
                     "train s": m.get("train_seconds")})
    return pd.DataFrame(rows)


def metrics_figure(table: pd.DataFrame) -> go.Figure:
    """Three panels (mIoU, depth RMSE, zero-shot), one bar per checkpoint."""
    fig = make_subplots(rows=1, cols=len(PANELS), subplot_titles=[t for _, t in PANELS])
    columns = {"miou": "probe mIoU", "depth_rmse": "depth RMSE", "zero_shot": "zero-shot"}
    for col, (key, _) in enumerate(PANELS, start=1):
        fig.add_trace(go.Bar(x=table["checkpoint"] + " (" + table["arm"].astype(str) + ")",
                             y=table[columns[key]], showlegend=False), row=1, col=col)
    fig.update_layout(height=340, margin={"t": 50}, title="Frozen encoder: dense probes and zero-shot (test scenes)")
    return fig


def colourise(mask: np.ndarray) -> np.ndarray:
    """(H, W) classes (IGNORE = -1 shown grey) -> (H, W, 3) uint8."""
    return CLASS_RGB[np.where(mask < 0, len(CLASS_RGB) - 1, mask)]


def scene_figure(examples: dict[str, np.ndarray], title: str) -> go.Figure:
    """Per example scene (rows): the image, the true mask, the expert's pseudo-label, the probe's prediction."""
    n = len(examples["image"])
    has_pseudo = len(examples["pseudo"]) == n
    cols = ["image", "true mask", *(["expert pseudo-label"] if has_pseudo else []), "probe prediction"]
    fig = make_subplots(rows=n, cols=len(cols), subplot_titles=cols + [""] * (len(cols) * (n - 1)),
                        horizontal_spacing=0.02, vertical_spacing=0.03)
    for i in range(n):
        panels = [(examples["image"][i].transpose(1, 2, 0) * 255).astype(np.uint8), colourise(examples["mask"][i]),
                  *([colourise(examples["pseudo"][i])] if has_pseudo else []), colourise(examples["probe_seg"][i])]
        for j, img in enumerate(panels, start=1):
            fig.add_trace(go.Image(z=img), row=i + 1, col=j)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=170 * max(n, 1), margin={"t": 50, "b": 0}, title=title)
    return fig


def load_examples(ckpt: str) -> dict[str, np.ndarray] | None:
    from trainers.clip_experts.recipe import EXAMPLES

    try:
        with np.load(Path(ckpt) / EXAMPLES) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError):
        return None


def section(records: pd.DataFrame) -> None:
    import streamlit as st

    st.subheader("Dense features from expert pseudo-labels, zero-shot kept")
    found = {k: v for k, v in checkpoints(records).items() if "depth_rmse" in (v.get("metrics") or {})}
    if not found:
        st.info("No CLIP-with-experts checkpoint found through these records: `edgezoo run --papers clip-experts` "
                "trains and deploys both arms; their card.json and examples.npz hold what is shown here.")
        return
    table = metrics_table(found)
    st.dataframe(table, hide_index=True, width="stretch")
    st.plotly_chart(metrics_figure(table), key="clip_experts_metrics")
    st.caption("Zero-shot is the mean of front-object shape and colour accuracy from the 18 prompts "
               "'a {colour} {shape}'; the deployed artifacts' records score the joint 18-way prediction.")
    for ckpt, card in found.items():
        if (ex := load_examples(ckpt)) is not None:
            arm = (card.get("recipe") or {}).get("arm")
            st.plotly_chart(scene_figure(ex, f"{Path(ckpt).name} ({arm}): test scenes"),
                            key=f"clip_experts_scenes_{ckpt}")
