"""Widgets shared by the pages: the store guard, the sidebar filters, the failures table, claim verdicts and the
job list."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from app.dashboard import data as D, devices, jobs
from app.workspace import Workspace
from trainers.claims import QUICK_LABEL


def require_store(ws: Workspace, include_lm: bool = True) -> pd.DataFrame:
    """The flat records table (without language-model records unless `include_lm`); stops the page with a hint when
    there is no store or nothing to show."""
    df = D.flat(ws)
    if df is None or df.empty:
        st.info(f"No results yet in `{ws.store_path}`. Run `edgezoo run -w {ws.root}` or start a job on the Run page.")
        st.stop()
    if not include_lm and (df := D.without_lm(df)).empty:
        st.info(f"Only language-model records in `{ws.store_path}`: they are on the Language models page. Run "
                f"`edgezoo run -w {ws.root}` for vision models.")
        st.stop()
    return df


def sidebar_filters(df: pd.DataFrame) -> dict[str, list[Any]]:
    """One multiselect per filter column (empty = everything); keys are `filter_<column>`."""
    st.sidebar.header("Filters")
    chosen = {}
    for col in D.FILTERS:
        options = sorted(df[col].dropna().astype(str).unique())
        chosen[col] = st.sidebar.multiselect(col, options, key=f"filter_{col}", placeholder="all")
    st.sidebar.caption(f"workspace `{D.workspace().root}`")
    return chosen


def failures(df: pd.DataFrame) -> None:
    bad = df[df["status"] != "ok"]
    if bad.empty:
        return
    with st.expander(f"{len(bad)} failed / unavailable records", expanded=False):
        st.dataframe(bad[["id", "model", "format", "compression", "runtime", "status", "error_class", "error_message"]],
                     hide_index=True, width="stretch")


def show_verdict(verdict: str, text: str) -> None:
    """A claim verdict in its colour: pass green, fail red, inconclusive yellow; a quick (smoke-scale) run is
    labelled quick and a quick pass is blue, never the green of a full pass."""
    quick = verdict.endswith(QUICK_LABEL)
    base = verdict.removesuffix(QUICK_LABEL)
    body = f"**{base}{' — quick run' if quick else ''}** · {text.rstrip()}"
    if quick:
        body += ("" if body.endswith(".") else ".") + (" Quick runs use a smaller experiment (fewer epochs, seeds or "
                                                        "sizes): a smoke test, not the full check.")
    if base == "pass":
        (st.info if quick else st.success)(body, icon=":material/bolt:" if quick else ":material/check_circle:")
    elif base == "fail":
        st.error(body, icon=":material/cancel:")
    else:
        st.warning(body, icon=":material/help:")


def report_argv(ws: Workspace, key: str = "report_device") -> list[str]:
    """`edgezoo report` for a device picked from the catalog (host = this machine, its measured roofline profile)."""
    catalog, problem = devices.catalog()
    if problem:
        st.caption(f"device catalog unavailable ({problem}): only the host can be chosen")
    device = st.selectbox("Device the predicted figures are for", ["host", *sorted(catalog)], key=key,
                          help="host = this machine, with its measured (cached) roofline profile")
    return ["report", "-w", str(ws.root), "--device", device]


STATUS_ICON = {"running": ":material/progress_activity:", "ok": ":material/check_circle:", "failed": ":material/error:",
               "killed": ":material/warning:"}  # Streamlit bundles this font: no emoji font needed


def job_panel(job: jobs.Job) -> None:
    """One job: status, progress bar from its tqdm output, its error if it failed, and the log tail."""
    status = job.status()
    with st.expander(f"{job.id} — {status}", expanded=status != "ok", icon=STATUS_ICON[status]):
        st.caption("edgezoo " + " ".join(job.argv))
        if status == "running":
            if (frac := job.progress()) is not None:
                st.progress(frac)
            if st.button("Cancel", key=f"cancel_{job.id}"):
                jobs.cancel(job)
        if err := job.error():
            st.error(err)
        st.code("\n".join(job.lines(30)) or "(no output yet)", language="text")


def jobs_section(ws: Workspace, only: str | None = None, limit: int = 20) -> None:
    """The job list, refreshed every 2 s while one runs (then one full rerun stops the refresh)."""
    def listed() -> list[jobs.Job]:
        return [j for j in jobs.list_jobs(ws, limit) if only is None or j.argv[:1] == [only]]

    refresh = 2.0 if any(j.status() == "running" for j in listed()) else None

    @st.fragment(run_every=refresh)
    def body() -> None:
        current = listed()
        running = sum(j.status() == "running" for j in current)
        if refresh and not running:
            st.rerun()
        st.subheader(f"Jobs ({running} running)")
        if not current:
            st.caption(f"No jobs yet; their logs go to `{ws.root / 'jobs'}`.")
        for job in current:
            job_panel(job)

    body()
