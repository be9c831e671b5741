"""Compression knob: an LCS checkpoint swept over alpha (`edgezoo sweep lcs`), or a DynaMoE LM over its router
sensitivity theta (`edgezoo sweep dynamoe`); slide along the knob and see, per format/runtime, accuracy, size on
disk, sparsity and p50 (LCS) or bits per byte, mean active FFN fraction (router included), active parameters per
token and the measured p50 decode step (DynaMoE), with the whole grid as curves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.dashboard import charts, data as D

LCS_NAME = re.compile(r"^lcs-a(\d+(?:\.\d+)?)$")  # CompressionSpec.name for method lcs
DYNAMOE_NAME = re.compile(r"^dynamoe-t")  # CompressionSpec.name for method dynamoe
CURVES = {"accuracy": ("accuracy", "test accuracy"), "size": ("size_kb", "size on disk (kB)"),
          "p50": ("p50_ms", "p50 latency (ms)")}


def sweep_rows(ws: D.Workspace, flat: pd.DataFrame) -> pd.DataFrame:
    """One row per LCS sweep record (latest per checkpoint line, alpha, format, runtime)."""
    alphas = flat["compression"].astype(str).str.extract(LCS_NAME, expand=False).astype(float)
    ids = flat.loc[alphas.notna(), "id"].tolist()
    rows = [_row(rec) for rec in D.records(ws, ids)]
    df = pd.DataFrame(rows, columns=["id", "line", "alpha", "format", "runtime", "status", "accuracy", "size_kb",
                                     "sparsity", "p50_ms", "error"])
    return latest(df, "alpha")


def latest(df: pd.DataFrame, knob: str) -> pd.DataFrame:
    """The latest record per checkpoint line, knob value, format and runtime, sorted along the knob."""
    if df.empty:
        return df
    df = df.sort_values("id").drop_duplicates(["line", knob, "format", "runtime"], keep="last")
    return df.sort_values(["line", "format", "runtime", knob]).reset_index(drop=True)


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


def curve(df: pd.DataFrame, col: str, title: str, alpha: float, x: str = "alpha",
          x_title: str = "α (kept fraction of weights)", symbol: str = "α") -> go.Figure:
    """`col` vs the knob `x`, one line per format/runtime, the selected point as a dashed vertical line."""
    fig = go.Figure()
    for i, ((fmt, rt), part) in enumerate(df.groupby(["format", "runtime"], sort=True)):
        part = part.dropna(subset=[col])
        if part.empty:
            continue
        fig.add_trace(go.Scatter(x=part[x], y=part[col], mode="lines+markers", name=f"{fmt} / {rt}",
                                 line={"color": charts.PALETTE[i % len(charts.PALETTE)]},
                                 customdata=part[["id"]].to_numpy(),
                                 hovertemplate=f"#%{{customdata[0]}} {symbol}=%{{x:g}}<br>{title}: %{{y:.4g}}<extra></extra>"))
    fig.add_vline(x=alpha, line_dash="dash", line_color="black", annotation_text=f"{symbol}={alpha:g}",
                  annotation_position="top left")
    fig.update_layout(xaxis_title=x_title, yaxis_title=title, height=360,
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


def pick(df: pd.DataFrame, knob: str, what: str, slider: str, keys: tuple[str, str]
         ) -> tuple[pd.DataFrame, list[float], float]:
    """(the chosen checkpoint line's rows, its knob values, the slider's value: starts at the largest)."""
    line = st.selectbox(f"{what} (checkpoint)", sorted(df["line"].unique()), key=keys[0])
    grid = df[df["line"] == line]
    values = sorted(grid[knob].unique())
    return grid, values, st.select_slider(slider, options=values, value=values[-1], format_func=lambda a: f"{a:g}",
                                          key=keys[1])


def lcs_page(sweeps: pd.DataFrame) -> None:
    grid, alphas, alpha = pick(sweeps, "alpha", "LCS model", "α: kept fraction of weights (sparsity ≈ 1 − α)",
                               ("knob_line", "knob_alpha"))
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


# ------------------------------------------------------------------------------------------------ DynaMoE theta

DYNAMOE_CURVES = {"bpb": ("bpb", "bits per byte (validation)"),
                  "fraction": ("active_ffn_fraction", "mean active FFN fraction (router included)"),
                  "p50": ("p50_ms", "p50 decode step (ms per token)")}
DYNAMOE_COLUMNS = ["id", "line", "theta", "format", "runtime", "status", "bpb", "active_ffn_fraction",
                   "active_params_per_token", "p50_ms", "compute", "error"]


def dynamoe_rows(ws: D.Workspace, flat: pd.DataFrame) -> pd.DataFrame:
    """One row per DynaMoE LM record (`dynamoe:theta=T` exports, and `none` exports of a DynaMoE checkpoint at its
    own theta): latest per checkpoint, theta, format and runtime."""
    pick = flat["compression"].astype(str).str.match(DYNAMOE_NAME) | (flat["model"].astype(str) == "dynamoe")
    rows = [r for r in (_dynamoe_row(rec) for rec in D.records(ws, flat.loc[pick, "id"].tolist())) if r is not None]
    return latest(pd.DataFrame(rows, columns=DYNAMOE_COLUMNS), "theta")


def _dynamoe_row(rec: dict[str, Any]) -> dict[str, Any] | None:
    art = rec.get("artifact") or {}
    active = art.get("active_params") or {}
    if "theta" not in active:  # a failed export: nothing was counted
        return None
    lat = (rec.get("latency") or {}).get("median_ms") if rec.get("status") == "ok" else None
    return {"id": rec["id"], "line": Path(str(art.get("path") or art.get("checkpoint") or "")).parent.name
            or str(art.get("checkpoint")), "theta": float(active["theta"]), "format": art.get("format"),
            "runtime": rec.get("runtime"), "status": rec.get("status"),
            "bpb": (rec.get("accuracy") or {}).get("value"), "active_ffn_fraction": active.get("active_ffn_fraction"),
            "active_params_per_token": active.get("active_params_per_token"), "p50_ms": lat,
            "compute": (active.get("compute") or {}).get(str(art.get("format")), "—"), "error": rec.get("error_message")}


def dynamoe_cards(df: pd.DataFrame, theta: float) -> None:
    """Metrics per format/runtime at `theta`; latency only where the runtime measured it."""
    here = df[df["theta"] == theta]
    for _, r in here.sort_values("status", key=lambda s: s != "ok", kind="stable").iterrows():
        st.markdown(f"**{r['format']} / {r['runtime']}** · record #{r['id']} · {r['status']}")
        m = st.columns(4)
        m[0].metric("bits per byte", _num(r["bpb"], ".4f"))
        m[1].metric("active FFN fraction", _num(r["active_ffn_fraction"], ".3f"))
        m[2].metric("active params / token", _num(r["active_params_per_token"], ",.0f"))
        m[3].metric("p50 decode (ms)", _num(r["p50_ms"], ".3f"))
        st.caption(f"FFN compute: {r['compute']}" + (f" · {r['status']}: {r['error']}" if r["status"] != "ok"
                                                      and r["error"] else ""))


def dynamoe_page(moe: pd.DataFrame) -> None:
    grid, thetas, theta = pick(moe, "theta", "DynaMoE model", "θ: router sensitivity (higher: larger experts)",
                               ("knob_moe_line", "knob_theta"))
    st.caption(f"{len(thetas)} profiled θ values, {grid.groupby(['format', 'runtime']).ngroups} format/runtime pairs. "
               "Active parameters are counted at export on validation bytes (routers included); ONNX and Core ML "
               "compute the full FFN and mask it, so their latency does not fall with θ; MLX slices per token.")
    dynamoe_cards(grid, theta)
    cols = st.columns(len(DYNAMOE_CURVES))
    for c, (name, (col, title)) in zip(cols, DYNAMOE_CURVES.items()):
        c.plotly_chart(curve(grid, col, title, theta, "theta", "θ (router sensitivity)", "θ"), key=f"knob_moe_{name}")
    with st.expander("the whole grid"):
        st.dataframe(grid.drop(columns=["line"]), hide_index=True, width="stretch")


st.title("Compression knob")
ws = D.workspace()
flat = D.flat(ws)
has_records = flat is not None and not flat.empty
sweeps = sweep_rows(ws, flat) if has_records else pd.DataFrame()
moe = dynamoe_rows(ws, flat) if has_records else pd.DataFrame()
if sweeps.empty and moe.empty:
    st.info(f"No LCS or DynaMoE sweep records in `{ws.store_path}`. Train an LCS checkpoint "
            f"(trainers/lcs/README.md), then run `edgezoo sweep lcs CKPT --alphas 0.025,0.25,0.5,0.75,1 -f onnx -f mlx "
            f"-w {ws.root}`; or convert a DynaMoE LM (trainers/dynamoe/README.md) and run `edgezoo sweep dynamoe CKPT "
            f"--thetas 0.3,0.5,0.7,0.9,1 -f onnx -f mlx -w {ws.root}`.")
    st.stop()
st.sidebar.caption(f"workspace `{ws.root}`")
knobs = [k for k, df in (("LCS α", sweeps), ("DynaMoE θ", moe)) if not df.empty]
knob = st.radio("knob", knobs, horizontal=True, key="knob_kind") if len(knobs) > 1 else knobs[0]
if knob == "LCS α":
    lcs_page(sweeps)
else:
    dynamoe_page(moe)
