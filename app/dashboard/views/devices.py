"""Devices: the device catalog, roofline-predicted latency per device, and predicted vs measured on this machine."""

import streamlit as st

from app.dashboard import charts, data as D, devices, ui

MAX_RECORDS = 500  # newest records whose JSON is parsed for predictions
COLS = ["id", "model", "format", "compression", "runtime", "threads", "precision", "predicted_ms", "bound",
        "precision_note"]

st.title("Devices")
ws = D.workspace()

st.subheader("Fleet: devices connected now")
head = st.text_input("Fleet head (HOST:PORT of `edgezoo head`)", devices.fleet_head(st.session_state), key="fleet_input",
                     placeholder="127.0.0.1:6379")
st.session_state[devices.FLEET_HEAD] = head.strip()


@st.fragment(run_every=10)
def connected(address: str) -> None:
    """Refreshed every 10 s: what `edgezoo devices` lists; the Run page's jobs can target them (--on)."""
    found, why = devices.fleet_devices(address)
    if why:
        st.warning(f"No fleet listed: {why}")
    elif not found:
        st.info(f"No device is connected to {address}: run `edgezoo agent --address {address} --name NAME` on one.")
    else:
        st.dataframe(devices.fleet_table(found), hide_index=True, width="stretch")


if head.strip():
    connected(head.strip())
else:
    st.caption("Name the fleet's head to list its devices (profiles/FLEET.md: `edgezoo head`, `edgezoo agent`).")
catalog, problem = devices.catalog()
st.subheader("Catalog")
if problem:
    st.warning(f"Device catalog not available: {problem}.")
else:
    st.dataframe(devices.catalog_table(catalog), hide_index=True, width="stretch", height=35 * (len(catalog) + 1) + 3)
    with st.expander("sources and notes (every figure names a public source)"):
        for dev in catalog.values():
            st.markdown(f"**{dev.name}** — " + "; ".join(f"{k}: {v}" for k, v in dev.sources.items()))
            for k, v in dev.notes.items():
                st.caption(f"{k}: {v}")

rf, rf_problem = devices.roofline()
if rf_problem or problem:
    st.warning(f"No predictions: {rf_problem or problem}. Measured latencies are on the Trade-offs page; "
               "no predicted figure is shown rather than an invented one.")
    st.stop()
df = ui.require_store(ws)
view = D.apply_filters(df, ui.sidebar_filters(df))
recs = D.records(ws, view["id"].tail(MAX_RECORDS).tolist())
hosts = devices.cached_hosts(ws)

st.subheader("Predicted latency on a device (roofline)")
st.caption("predicted = max(FLOPs / peak, bytes / bandwidth): a lower bound, not a measurement.")
name = st.selectbox("Device", sorted(catalog), key="predict_device")
pred, skipped = devices.predicted(rf, catalog[name], recs)
if pred.empty:
    st.info("No record in this selection can be predicted (reasons below).")
else:
    st.dataframe(pred[[c for c in COLS + ["measured_p50_ms", "measured_on"] if c in pred]], hide_index=True,
                 width="stretch", column_config={"predicted_ms": "predicted p50 (ms)"})
if not skipped.empty:
    with st.expander(f"{len(skipped)} records not predicted, with the reason"):
        st.dataframe(skipped, hide_index=True, width="stretch")

st.subheader("Per-operator model on this machine (leave one architecture out)")
st.caption("Calibrated on this machine's own ONNX measurements (profiles/latency_model.py): per operator kind and "
           "precision, launch overhead + FLOPs / fitted throughput + bytes / fitted bandwidth, non-negative least "
           "squares. Each architecture is predicted by a fit that never saw it.")
scale = st.radio("Evaluate", ["deploy", "every scale"], horizontal=True, key="latency_model_scale")
per_op, fitted = devices.per_operator(recs, None if scale == "every scale" else scale)
if per_op.empty:
    st.info(f"No per-operator prediction: {fitted['problem']}.")
else:
    s = fitted["summary"]
    a, b, c = st.columns(3)
    a.metric("artifacts within ±10 %", f"{s['within']:.0%}")
    b.metric("median |error|", f"{s['median_abs_error']:.1%}")
    c.metric("artifacts", s["n"])
    st.plotly_chart(charts.predicted_vs_measured(per_op, "measured_ms", "per-operator model, held out"),
                    key="latency_model")
    st.dataframe(per_op[["id", "arch", "compression", "scale", "measured_ms", "predicted_ms", "error"]],
                 hide_index=True, width="stretch", column_config={"error": st.column_config.NumberColumn(
                     "error", format="percent")})
    with st.expander("fitted terms (all records)"):
        st.json(fitted["fit"])

st.subheader("Predicted vs measured on this machine")
if not hosts:
    st.info("No host profile measured yet for this machine: generate a report on the Reports page "
            "(`edgezoo report` measures and caches it); predicted vs measured appears here afterwards.")
    st.stop()
both, _ = devices.versus_host(rf, hosts, recs)
if both.empty:
    st.info("No record measured on this machine has a compute cost to predict from.")
    st.stop()
med = rf.median_abs_error(both.to_dict("records"))
st.metric("median |measured − predicted| / measured", f"{med:.0%}" if med is not None else "—")
st.plotly_chart(charts.predicted_vs_measured(both, "measured_ms"), key="roofline")
st.dataframe(both[["id", "model", "format", "compression", "threads", "predicted_ms", "measured_ms", "bound",
                   "fraction_of_roofline"]], hide_index=True, width="stretch",
             column_config={"predicted_ms": "predicted p50 (ms)"})
