"""Language models: LM artifacts per format/runtime and compression (bits per byte, TTFT, prefill and decode
tokens/s, memory, size), and QuantSpec self-speculative decoding (acceptance, speed-up, verifier passes, KV cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.dashboard import charts, data as D
from profiles.lm_measure import RUNTIME_OF

COMPRESSIONS = ("none", "int8", "int4", "seedlm4", "seedlm3")  # `make run-lm` order; others sort after
FORMATS = tuple(RUNTIME_OF)
LM_COLS = ["id", "format", "runtime", "compression", "bits/byte", "perplexity", "TTFT (ms)", "prefill tok/s",
           "decode tok/s", "peak MiB", "size MiB", "bits/weight", "threads", "created"]
SPEC_COLS = ["id", "mode", "context", "gamma", "acceptance", "passes/token", "tok/s spec", "tok/s plain", "speed-up",
             "analytic speed-up", "cost ratio c", "KV bytes QuantSpec", "KV bytes fp16", "KV bytes fp32", "created"]
MIB = 2 ** 20


def _num(v: Any, scale: float = 1.0) -> float | None:
    return None if v is None or pd.isna(v) else float(v) * scale


def _line(rec: dict[str, Any]) -> str:
    """The checkpoint an LM record measures: the artifact's checkpoint when recorded, else the artifact folder's name
    less its `-<format>-<compression>` suffix (`edgezoo lm run` names folders <checkpoint>-<format>-<compression>)."""
    art, scen = rec.get("artifact") or {}, rec.get("scenario") or {}
    if art.get("checkpoint"):
        return Path(str(art["checkpoint"])).name
    folder = Path(str(scen.get("folder") or "")).name
    suffix = f"-{art.get('format')}-{art.get('compression')}"
    return (folder[:-len(suffix)] if folder.endswith(suffix) else folder) or str(rec.get("model"))


def _target(fmt: Any, runtime: Any) -> str:
    """The runtime name, or `format on runtime` when the artifact ran on another runtime than its own."""
    return str(runtime) if RUNTIME_OF.get(str(fmt)) == runtime else f"{fmt} on {runtime}"


def _order(df: pd.DataFrame) -> pd.DataFrame:
    rank = {c: i for i, c in enumerate(COMPRESSIONS)}
    fmt_rank = {f: i for i, f in enumerate(FORMATS)}
    key = df["compression"].map(lambda c: rank.get(c, len(rank))) * 100 + df["format"].map(
        lambda f: fmt_rank.get(f, len(fmt_rank)))
    return df.assign(_k=key).sort_values(["_k", "compression", "id"]).drop(columns="_k").reset_index(drop=True)


def lm_rows(recs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (artifact folder, runtime): the newest record's figures."""
    rows = []
    for r in recs:
        art, acc, scen = r.get("artifact") or {}, r.get("accuracy") or {}, r.get("scenario") or {}
        bpb = _num(acc.get("value"))
        rows.append({"id": r["id"], "line": _line(r), "format": art.get("format"), "runtime": r.get("runtime"),
                     "target": _target(art.get("format"), r.get("runtime")), "compression": art.get("compression"),
                     "folder": scen.get("folder") or f"{_line(r)}/{art.get('format')}-{art.get('compression')}",
                     "status": r.get("status"), "bits/byte": bpb, "perplexity": None if bpb is None else 2.0 ** bpb,
                     "TTFT (ms)": _num(r.get("ttft_s"), 1e3), "prefill tok/s": _num(r.get("prefill_tokens_per_s")),
                     "decode tok/s": _num(r.get("decode_tokens_per_s")),
                     "peak MiB": _num((r.get("memory") or {}).get("peak_rss_bytes"), 1 / MIB),
                     "size MiB": _num(art.get("size_bytes"), 1 / MIB), "bits/weight": _num(art.get("bits_per_weight")),
                     "threads": r.get("threads"), "created": r.get("created"),
                     "error": f"{r.get('error_class') or ''}: {r.get('error_message') or ''}".strip(": ")})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    return _order(df.sort_values("id").drop_duplicates(["folder", "runtime"], keep="last"))


def spec_rows(recs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (checkpoint, threads, mode, context, gamma): the newest benchmark record."""
    rows = []
    for r in recs:
        s = r.get("scenario") or {}
        rows.append({"id": r["id"], "line": _line(r), "threads": r.get("threads"), "status": r.get("status"),
                     "mode": s.get("mode"), "context": s.get("context"), "gamma": s.get("gamma"),
                     "acceptance": _num(r.get("acceptance_rate")), "passes/token": _num(r.get("verify_passes_per_token")),
                     "tok/s spec": _num(r.get("decode_tokens_per_s")),
                     "tok/s plain": _num(r.get("plain_decode_tokens_per_s")), "speed-up": _num(r.get("speedup_vs_plain")),
                     "analytic speed-up": _num(r.get("analytic_speedup")), "cost ratio c": _num(r.get("cost_ratio")),
                     "KV bytes QuantSpec": r.get("kv_cache_bytes"), "KV bytes fp16": r.get("kv_cache_bytes_fp16"),
                     "KV bytes fp32": r.get("kv_cache_bytes_fp32"), "kv_context": r.get("kv_cache_context"),
                     "created": r.get("created")})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df = df.sort_values("id").drop_duplicates(["line", "threads", "mode", "context", "gamma"], keep="last")
    return df.sort_values(["mode", "context", "gamma"]).reset_index(drop=True)


def by_compression(df: pd.DataFrame, col: str, yaxis: str) -> go.Figure:
    """Grouped bars: `col` per compression, one bar colour per runtime."""
    comps = list(dict.fromkeys(df["compression"]))
    known = list(RUNTIME_OF.values())
    targets = sorted(df["target"].unique(), key=lambda t: (known.index(t) if t in known else len(known), t))
    cell = df.set_index(["target", "compression"])[col]
    series = {t: [cell.get((t, c)) for c in comps] for t in targets}
    fig = charts.bars(comps, series, yaxis)
    fig.update_layout(xaxis_title="compression", legend_title="runtime", height=360)
    return fig


def vs_gamma(df: pd.DataFrame, col: str, title: str, dotted: str | None = None) -> go.Figure:
    """`col` vs gamma, one line per context length (and mode); `dotted` adds a second column as dotted lines."""
    fig = go.Figure()
    modes = df["mode"].nunique() > 1
    for i, ((ctx, mode), part) in enumerate(df.groupby(["context", "mode"], sort=True)):
        name, color = f"context {ctx}" + (f" · {mode}" if modes else ""), charts.PALETTE[i % len(charts.PALETTE)]
        for c, dash, suffix in [(col, "solid", ""), *([(dotted, "dot", " (analytic)")] if dotted else [])]:
            pts = part.dropna(subset=[c]).sort_values("gamma")
            if not pts.empty:
                fig.add_trace(go.Scatter(x=pts["gamma"], y=pts[c], mode="lines+markers", name=name + suffix,
                                         legendgroup=name, line={"color": color, "dash": dash},
                                         customdata=pts[["id"]].to_numpy(),
                                         hovertemplate=f"#%{{customdata[0]}} γ=%{{x}}<br>{title}: %{{y:.4g}}<extra></extra>"))
    fig.update_layout(xaxis_title="γ (draft tokens per verification)", yaxis_title=title, height=340,
                      margin={"t": 30}, xaxis={"dtick": 1})
    return fig


def kv_bars(df: pd.DataFrame) -> go.Figure:
    kv = df.dropna(subset=["kv_context"]).drop_duplicates("kv_context").sort_values("kv_context")
    names = [f"{int(c)} tokens" for c in kv["kv_context"]]
    series = {label: [_num(v, 1 / 1024) for v in kv[col]] for label, col in
              (("QuantSpec (4-bit + 4-bit residual)", "KV bytes QuantSpec"), ("fp16", "KV bytes fp16"),
               ("fp32", "KV bytes fp32"))}
    fig = charts.bars(names, series, "KV cache (KiB)")
    fig.update_layout(xaxis_title="cached tokens (context + new tokens)", height=340)
    return fig


def _pick(label: str, options: list[str], newest: str, key: str) -> str:
    """A choice only when there is one to make; defaults to the line with the newest record."""
    if len(options) == 1:
        return options[0]
    return st.selectbox(label, options, index=options.index(newest), key=key)


def lm_section(ws: D.Workspace, ids: list[int]) -> None:
    st.header("LM artifacts")
    rows = lm_rows([r for r in D.records(ws, ids) if (r.get("scenario") or {}).get("kind") != "lm-specdec"])
    if rows.empty:
        st.info(f"No language-model profiles in `{ws.store_path}`. Run `make run-lm` (or `edgezoo lm run -w {ws.root} "
                "--compressions none,int8,int4,seedlm4,seedlm3`): it trains a small byte-level OpenELM, exports each "
                "format × compression and profiles it here.")
        return
    line = _pick("LM checkpoint", sorted(rows["line"].unique()), rows.loc[rows["id"].idxmax(), "line"], "lm_line")
    rows = rows[rows["line"] == line]
    ok = rows[rows["status"] == "ok"]
    st.caption("bits/byte: held-out validation bits per byte (lower is better); perplexity = 2^bpb per byte. "
               "Decode tok/s from the median per-token step; newest record per artifact folder and runtime.")
    if not ok.empty:
        st.dataframe(ok[LM_COLS], hide_index=True, width="stretch", column_config={
            c: st.column_config.NumberColumn(format=f) for c, f in (
                ("bits/byte", "%.4f"), ("perplexity", "%.3f"), ("TTFT (ms)", "%.2f"), ("prefill tok/s", "%.0f"),
                ("decode tok/s", "%.0f"), ("peak MiB", "%.0f"), ("size MiB", "%.2f"), ("bits/weight", "%.2f"))})
        left, right = st.columns(2)
        left.plotly_chart(by_compression(ok, "decode tok/s", "decode tokens/s (higher is better)"), key="lm_decode")
        right.plotly_chart(by_compression(ok, "bits/byte", "validation bits per byte (lower is better)"), key="lm_bpb")
    unavailable = rows[rows["status"] == "unavailable"]
    if not unavailable.empty:
        st.subheader("Not measurable on this machine")
        st.dataframe(unavailable[["id", "format", "runtime", "compression", "error"]].rename(columns={"error": "reason"}),
                     hide_index=True, width="stretch")
    failed = rows[~rows["status"].isin(["ok", "unavailable"])]
    if not failed.empty:
        st.error(f"{len(failed)} LM profiling run(s) failed: re-run `edgezoo lm profile ARTIFACT -w {ws.root}` to "
                 "see the error in full.")
        st.dataframe(failed[["id", "format", "runtime", "compression", "status", "error"]], hide_index=True,
                     width="stretch")


def spec_section(ws: D.Workspace, ids: list[int]) -> None:
    st.header("Speculative decoding (QuantSpec)")
    rows = spec_rows([r for r in D.records(ws, ids) if (r.get("scenario") or {}).get("kind") == "lm-specdec"])
    if rows.empty:
        st.info(f"No QuantSpec benchmark in `{ws.store_path}`. Run `edgezoo specdec bench CKPT -w {ws.root}` on an LM "
                f"checkpoint (e.g. `{ws.zoo / 'openelm-openelm_default'}` after `make run-lm`); "
                "`edgezoo demo specdec` shows drafts being accepted and rejected live.")
        return
    rows = rows.assign(run=rows["line"] + " · " + rows["threads"].astype(str) + " thread(s)")
    run = _pick("Benchmark", sorted(rows["run"].unique()), rows.loc[rows["id"].idxmax(), "run"], "spec_run")
    rows = rows[(rows["run"] == run) & (rows["status"] == "ok")]
    threads = rows["threads"].iloc[0] if not rows.empty else "?"
    st.caption(f"Measured on this machine's CPU ({threads} thread(s)), plain and speculative decoding interleaved on "
               "the same validation prompts. Here a draft pass costs about as much as a verifier pass (cost ratio "
               "c ≈ 1: fake-quantized weights stay fp32), so a speed-up below 1 is expected; the paper's gain is "
               "bandwidth-bound decoding at long contexts on GPU. More points: `edgezoo specdec bench CKPT "
               "--gammas 1,2,4,6,8 --contexts 128,480`; watch it live: `edgezoo demo specdec`.")
    c1, c2 = st.columns(2)
    fig = vs_gamma(rows, "acceptance", "acceptance rate (accepted / drafted)")
    fig.update_yaxes(range=[0, 1.02])
    c1.plotly_chart(fig, key="spec_acceptance")
    fig = vs_gamma(rows, "speed-up", "speed-up vs plain decoding (tok/s ratio)", dotted="analytic speed-up")
    fig.add_hline(y=1.0, line_dash="dash", line_color="grey", annotation_text="plain decoding")
    c2.plotly_chart(fig, key="spec_speedup")
    c3, c4 = st.columns(2)
    c3.plotly_chart(vs_gamma(rows, "passes/token", "verifier passes per generated token"), key="spec_passes")
    c4.plotly_chart(kv_bars(rows), key="spec_kv")
    st.dataframe(rows[SPEC_COLS], hide_index=True, width="stretch", column_config={
        c: st.column_config.NumberColumn(format=f) for c, f in (
            ("acceptance", "%.3f"), ("passes/token", "%.3f"), ("tok/s spec", "%.0f"), ("tok/s plain", "%.0f"),
            ("speed-up", "%.2f"), ("analytic speed-up", "%.2f"), ("cost ratio c", "%.2f"))})


st.title("Language models")
ws = D.workspace()
flat = D.flat(ws)
lm_ids = D.lm_only(flat)["id"].tolist() if flat is not None else []
st.sidebar.caption(f"workspace `{ws.root}`")
lm_section(ws, lm_ids)
spec_section(ws, lm_ids)
