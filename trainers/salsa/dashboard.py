"""SALSA's section of the dashboard's Papers page (the `dashboard=` hook of its Paper): a table of the six
checkpoints' exported artifacts (bpb, reward, KL, win rate), the reward-KL curve of each policy arm, and the validation
loss along the interpolation between the two SFT models (the loss barrier). The curves come from the card.json of the
checkpoints the records were exported from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

COLUMNS = {"checkpoint": "checkpoint", "artifact.format": "format", "artifact.compression": "compression",
           "accuracy.value": "bits/byte", "accuracy.reward": "reward", "accuracy.kl_to_reference": "KL to reference",
           "accuracy.win_rate_vs_base": "win rate vs base", "status": "status"}


def _card(path: Any) -> dict[str, Any]:
    try:
        return json.loads((Path(str(path)) / "card.json").read_text())
    except (OSError, ValueError, TypeError):
        return {}


def checkpoint_table(records: pd.DataFrame) -> pd.DataFrame:
    """The newest record per (checkpoint, format, compression), with the SALSA quality figures."""
    if records.empty or "artifact.checkpoint" not in records:
        return pd.DataFrame(columns=list(COLUMNS.values()))
    df = records.assign(checkpoint=records["artifact.checkpoint"].map(lambda p: Path(str(p)).name))
    df = df.sort_values("id").groupby(["checkpoint", "artifact.format", "artifact.compression"], dropna=False).tail(1)
    return df.reindex(columns=list(COLUMNS)).rename(columns=COLUMNS).reset_index(drop=True)


def lineage(records: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """checkpoint name -> its card's `salsa` block (stage, parents, curve, interpolation)."""
    if records.empty or "artifact.checkpoint" not in records:
        return {}
    paths = records["artifact.checkpoint"].dropna().unique()
    return {Path(str(p)).name: _card(p).get("salsa") or {} for p in paths}


def curve_frames(records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reward-KL points of each policy arm, validation bpb along each soup's interpolation path)."""
    rk, interp = [], []
    for name, info in lineage(records).items():
        ref = Path(str((info.get("reference") or {}).get("path", "?"))).name
        rk += [{"arm": f"{name} (reference {ref})", **p} for p in info.get("curve") or []]
        interp += [{"soup": name, **p} for p in info.get("interpolation") or []]
    return pd.DataFrame(rk), pd.DataFrame(interp)


def figures(records: pd.DataFrame) -> dict[str, Any]:
    """Plotly figures: 'reward_kl' and 'barrier' (only those with data)."""
    import plotly.express as px

    rk, interp = curve_frames(records)
    out: dict[str, Any] = {}
    if not rk.empty:
        out["reward_kl"] = px.line(rk, x="kl", y="reward", color="arm", markers=True, hover_data=["update"],
                                   labels={"kl": "KL to reference (nats/token, held-out)", "reward": "held-out reward"},
                                   title="Reward vs KL during policy optimization (a point every checkpoint)")
    if not interp.empty:
        out["barrier"] = px.line(interp, x="alpha", y="val_bpb", color="soup", markers=True,
                                 hover_data=["barrier"], labels={"alpha": "alpha (weight of SFT-1)",
                                                                 "val_bpb": "validation bits per byte"},
                                 title="Loss along alpha * SFT-1 + (1 - alpha) * SFT-2 (no barrier: at or below the "
                                       "line between the ends)")
    return out


def section(records: pd.DataFrame) -> None:
    import streamlit as st

    st.subheader("SALSA: reward, KL and the soup")
    table = checkpoint_table(records)
    if table.empty:
        st.caption("No SALSA artifact measured yet: `edgezoo run --papers salsa` trains, exports and profiles the six "
                   "checkpoints.")
        return
    st.dataframe(table, hide_index=True, width="stretch")
    figs = figures(records)
    for key in ("reward_kl", "barrier"):
        if key in figs:
            st.plotly_chart(figs[key], key=f"salsa_{key}")
    if not figs:
        st.caption("The checkpoints' cards hold no reward-KL curve or interpolation path (were they moved?).")
