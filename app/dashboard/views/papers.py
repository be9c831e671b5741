"""Papers: one section per discovered paper plug-in (trainers/<key>/, the baselines last): what it brings, its spec
card, its artifacts' newest records, a quality trade-off plot, its claim verdict beside the paper's numbers, and the
commands that produce them. Nothing here names a paper: everything comes from `trainers.papers.discover()`.

A plug-in's own `dashboard` callable gets its records as a DataFrame: one row per record, nested fields as dotted
columns (`artifact.format`, `latency.median_ms`, `acceptance_rate`, ...)."""

import pandas as pd
import streamlit as st

from app.dashboard import charts, data as D, papers as P, ui, zoo
from trainers.papers import Paper, card_text

X_AXES = {"size on disk": ("size_mib", "size on disk (MiB, log)", "peak_rss_bytes"),
          "latency (p50)": ("p50_ms", None, "size_bytes")}  # (x column, x title, marker size column)
NUMBERS = {c: st.column_config.NumberColumn(format=f) for c, f in (
    ("size MiB", "%.3f"), ("bits/weight", "%.2f"), ("p50 ms", "%.4f"), ("decode tok/s", "%.0f"), ("quality", "%.4f"),
    ("acceptance", "%.3f"), ("speed-up vs plain", "%.2f"), ("mean", "%.4f"), ("std", "%.4f"))}


def header(paper: Paper) -> None:
    st.header(paper.title, anchor=paper.key)
    links = [f"`{paper.key}`", "baseline models" if paper.baseline else f"task: {paper.task}"]
    if paper.arxiv:
        links.append(f"[arXiv:{paper.arxiv}](https://arxiv.org/abs/{paper.arxiv})")
    if paper.code:
        links.append(f"[code]({paper.code})")
    st.markdown(" · ".join(links))
    st.markdown(paper.summary)
    brings = [f"**Models:** {', '.join(f'`{m}`' for m in paper.models) or '—'}"]
    for name, d in zip(zoo.deployed_checkpoints(paper), paper.deployables):
        exports = ", ".join(f"{fmt} × {len(specs)}" for fmt, specs in d.exports.items())
        brings.append(f"**Deploys** `{name}` ({d.scenario}): {exports or 'no exports'}")
    st.markdown("  \n".join(brings))
    if text := card_text(paper):
        with st.expander("Spec card"):
            st.markdown(P.card_markdown(text))


def tradeoff_plots(paper: Paper, rows: pd.DataFrame) -> None:
    """Size or latency vs quality, one plot per quality metric (never two metrics on one axis)."""
    if rows.empty:
        st.caption("No record here has a quality value to plot against size or latency; the table holds what "
                   "they measure.")
        return
    c1, c2 = st.columns(2)
    axis = c1.radio("x axis", list(X_AXES), horizontal=True, key=f"x_{paper.key}")
    color = c2.selectbox("Colour by", ["compression", "format", "runtime", "model"], key=f"color_{paper.key}")
    x, x_title, size_col = X_AXES[axis]
    for metric in D.metric_order(rows["metric"]):
        part = rows[rows["metric"] == metric].dropna(subset=[x])
        part = part[part[x] > 0]
        if part.empty:
            st.caption(f"No {D.metric_label(metric)} record has a {axis} to plot.")
            continue
        front = D.pareto_front(part, x=x, higher=D.higher_is_better(metric))
        fig = charts.tradeoff(part, front, size_col, color, x=x, x_title=x_title or D.latency_title(part),
                              y_title=D.metric_label(metric), height=420)
        st.plotly_chart(fig, key=f"tradeoff_{paper.key}_{metric}")


def records_section(paper: Paper, flat_rows: pd.DataFrame, recs: list[dict]) -> None:
    st.subheader("Artifacts (newest record each)")
    if not recs:
        how = (f"`edgezoo run --papers {paper.key} -w {ws.root}` trains its models at small scale, exports and "
               "profiles them (or start it on the Run page)") if paper.deployables else \
            "this plug-in declares nothing for `edgezoo run` to deploy"
        st.info(f"No records for `{paper.key}` in `{ws.store_path}` yet: {how}.")
        return
    st.dataframe(P.artifact_table(recs), hide_index=True, width="stretch", column_config=NUMBERS)
    tradeoff_plots(paper, P.plot_rows(flat_rows, recs))


def claim_section(paper: Paper, claims: pd.DataFrame) -> None:
    st.subheader("Claim")
    if paper.claim_text:
        st.markdown(f"*{paper.claim_text}*")
    if paper.claim is None:
        st.caption("This plug-in declares no claim check.")
        return
    if claims.empty:
        st.info(f"No claim run yet: `edgezoo reproduce {paper.key} -w {ws.root}` runs it (add `--quick` for a "
                "smoke-scale run).")
        return
    latest = claims.iloc[0]
    seeds = P.ours(latest["measured"])["seeds"].max()
    ui.show_verdict(latest["verdict"], f"{latest['created']}: {latest['claim']}. {latest['reason']}")
    left, right = st.columns(2)
    left.markdown("**The paper reports** (at its scale, not reproduced here)")
    left.dataframe(P.theirs(latest["paper_numbers"]), hide_index=True, width="stretch")
    right.markdown(f"**Measured here** (mean ± std over {seeds if pd.notna(seeds) else 0} seed(s))")
    right.dataframe(P.ours(latest["measured"]), hide_index=True, width="stretch", column_config=NUMBERS)
    if len(claims) > 1:
        with st.expander(f"earlier claim runs ({len(claims) - 1})"):
            st.dataframe(zoo.shown(claims.iloc[1:]), hide_index=True, width="stretch")


def plugin_section(paper: Paper, recs: list[dict]) -> None:
    if paper.dashboard is None:
        return
    try:
        paper.dashboard(pd.json_normalize(recs) if recs else pd.DataFrame())
    except Exception as e:  # noqa: BLE001 - one plug-in's broken section must not take the page down
        st.error(f"The `{paper.key}` plug-in's dashboard section failed: {e.__class__.__name__}: {e}")


st.title("Papers")
ws = D.workspace()
flat = D.flat(ws)
all_claims = zoo.claims(ws)
found = P.ordered()
st.sidebar.caption(f"workspace `{ws.root}`")
sections = []
for paper in found:
    rows = P.rows_of(flat, paper)
    sections.append((paper, rows, P.claim_of(all_claims, paper)))
st.caption(f"{len(found)} paper plug-ins found under `trainers/`. Each section: what the paper brings, its artifacts' "
           "newest measurements, and its claim checked at small scale beside the paper's own numbers.")
overview = [{"paper": p.key, "title": p.title, "records": len(r),
             "claim": c.iloc[0]["verdict"] if not c.empty else ("no claim run yet" if p.claim else "—")}
            for p, r, c in sections]
st.dataframe(pd.DataFrame(overview), hide_index=True, width="stretch")
for paper, rows, claims in sections:
    header(paper)
    recs = D.records(ws, rows["id"].tail(P.MAX_RECORDS).tolist()) if not rows.empty else []
    records_section(paper, rows, recs)
    claim_section(paper, claims)
    st.markdown("**Reproduce**")
    st.code(P.commands(paper, ws.root), language="bash")
    plugin_section(paper, recs)
    st.divider()
