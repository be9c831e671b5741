"""Trade-offs: quality vs p50 latency with the Pareto front, filtered from the sidebar, one quality metric at a time
(top-1 accuracy: higher is better; bits per byte of language models: lower is better)."""

import streamlit as st

from app.dashboard import charts, data as D, ui

SIZE_BY = {"size on disk": "size_bytes", "peak memory": "peak_rss_bytes"}

st.title("Trade-offs")
ws = D.workspace()
df = ui.require_store(ws)
filtered = D.apply_filters(df, ui.sidebar_filters(df))
metrics = D.metric_order(df["metric"].dropna())
c0, c1, c2 = st.columns([2, 2, 2])
metric = c0.radio("Quality metric", metrics, format_func=D.metric_label, key="metric",
                  help="Metrics are never mixed on one axis: language models report bits per byte (lower is "
                       "better), vision models top-1 accuracy (higher is better).")
size_by = c1.radio("Marker size", list(SIZE_BY), horizontal=True, key="size_by")
color_by = c2.selectbox("Colour by", ["format", "compression", "model", "runtime", "device", "paper"], key="color_by")

view = filtered[filtered["metric"] == metric]
higher = D.higher_is_better(metric)
plot = view.dropna(subset=["accuracy", "p50_ms"])
front = D.pareto_front(plot, higher=higher)
m = st.columns(4)
m[0].metric("records (filtered)", len(view))
m[1].metric("plotted", len(plot))
m[2].metric("on the Pareto front", len(front))
m[3].metric("failed / unavailable", int((view["status"] != "ok").sum()))
if plot.empty:
    st.warning(f"No record in this selection has both a {D.metric_label(metric)} value and a p50 latency.")
else:
    fig = charts.tradeoff(plot, front, SIZE_BY[size_by], color_by, x_title=D.latency_title(plot),
                          y_title=D.metric_label(metric))
    event = st.plotly_chart(fig, key="tradeoff", on_select="rerun", selection_mode=("points", "box", "lasso"))
    picked = sorted({int(p["customdata"][0]) for p in (event.selection.points if event else []) if p.get("customdata")})
    if picked:
        st.subheader(f"{len(picked)} selected")
        if len(picked) >= 2 and not plot["lm"].any() and st.button("Compare selected"):  # Compare: vision only
            st.session_state["compare_ids"] = picked
            st.switch_page("views/compare.py")
        if len(picked) > 5:
            st.caption("the first 5 are shown in full; Compare shows them all side by side")
        for rec in D.records(ws, picked[:5]):
            with st.expander(D.record_label(rec)):
                st.json(D.for_display(rec), expanded=1)
    st.caption(f"Pareto front: no other record is both faster (p50) and better on the quality axis "
               f"({D.metric_label(metric)}). Click, box or lasso points to inspect them.")
    st.dataframe(front[["id", "model", "format", "compression", "runtime", "p50_ms", "accuracy", "size_bytes",
                        "peak_rss_bytes"]].rename(columns={"accuracy": metric}), hide_index=True, width="stretch")
ui.failures(view)
