"""Reports: `edgezoo report` as a background job (it may measure the host profile), then download HTML / Markdown."""

import importlib.util

import streamlit as st

from app.dashboard import data as D, jobs, ui

MIME = {".html": "text/html", ".md": "text/markdown"}

st.title("Reports")
ws = D.workspace()
if importlib.util.find_spec("profiles.report") is None:
    st.warning("Report writing is not available yet: `profiles/report.py` (write_report) is missing from this "
               "EdgeZoo. Nothing can be generated here until it lands.")
    st.stop()

argv = ui.report_argv(ws)
st.code("edgezoo " + " ".join(argv), language="bash")
if st.button("Generate report", type="primary", key="generate"):
    st.toast(f"started job {jobs.start(ws, argv).id}")
ui.jobs_section(ws, only="report", limit=5)

found = sorted((p for p in ws.reports.glob("*") if p.suffix in MIME), key=lambda p: p.stat().st_mtime,
               reverse=True) if ws.reports.exists() else []
st.subheader("Reports in the workspace")
if not found:
    st.caption(f"none yet in `{ws.reports}`")
for i, path in enumerate(found[:10]):
    c1, c2 = st.columns([3, 1])
    c1.write(f"`{path.name}` · {path.stat().st_size / 1024:.0f} KiB")
    data = path.read_bytes if path.stat().st_size > 1 << 20 else path.read_bytes()  # big files: read on click
    c2.download_button("Download", data, file_name=path.name, mime=MIME[path.suffix], key=f"dl_{i}", on_click="ignore")
if md := next((p for p in found if p.suffix == ".md"), None):
    with st.expander(f"preview {md.name}"):
        st.markdown(md.read_text())
