"""Compare: two or more records side by side, with latency distributions from the raw samples."""

import streamlit as st

from app.dashboard import charts, data as D, ui

st.title("Compare")
ws = D.workspace()
df = ui.require_store(ws, include_lm=False)  # LM records are compared on their own page
labels = {int(r.id): D.label(r._asdict()) for r in df.itertuples(index=False)}
if "compare_ids" not in st.session_state:
    st.session_state["compare_ids"] = [int(i) for i in df.loc[df["status"] == "ok", "id"].head(2)]
ids = st.multiselect("Records (pick two or more; type to search)", list(labels), format_func=labels.__getitem__,
                     key="compare_ids")
if len(ids) < 2:
    st.info("Pick at least two records to compare.")
    st.stop()

recs = D.records(ws, ids)
names = [f"#{r['id']} {r.get('model')} {r['artifact'].get('format')}/{r['artifact'].get('compression')}" for r in recs]
st.dataframe(D.compare_table(recs), width="stretch", height=35 * (len(D.COMPARE_FIELDS) + 1) + 3)

st.subheader("Latency distribution (raw samples)")
kind = st.radio("Plot", ["box", "violin"], horizontal=True, key="dist_kind")
st.plotly_chart(charts.latency_dist(recs, names, kind), key="latency_dist")

left, right = st.columns(2)
with left:
    st.subheader("Memory")
    mem = [r.get("memory") or {} for r in recs]
    st.plotly_chart(charts.bars(names, {
        "peak RSS (MiB)": [_m / 2**20 if (_m := m.get("peak_rss_bytes")) else None for m in mem],
        "load delta (MiB)": [_m / 2**20 if (_m := m.get("load_delta_bytes")) else None for m in mem],
    }, "MiB"), key="memory")
    st.caption(f"peak: {(mem[0].get('peak_label') or 'n/a')}")
with right:
    st.subheader("Parity vs torch reference")
    par = [r.get("parity") or {} for r in recs]
    st.plotly_chart(charts.bars(names, {"SQNR (dB)": [p.get("sqnr_db") for p in par]}, "dB"), key="parity")
    agree = [f"{n.split()[0]} {p.get('top1_agreement', '—')}" for n, p in zip(names, par)]
    st.caption("top-1 agreement: " + ", ".join(agree))
