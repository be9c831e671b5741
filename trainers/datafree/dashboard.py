"""The data-free paper's section of the dashboard's Papers page (the `dashboard=` hook of its Paper): its artifacts'
held-out accuracy and latency against stored bits per weight, per format (the float model beside the data-free
compressions it was exported with)."""

from __future__ import annotations

from typing import Any

import pandas as pd

COLUMNS = {"artifact.format": "format", "artifact.compression": "compression",
           "artifact.bits_per_weight": "bits/weight", "accuracy.value": "accuracy", "latency.median_ms": "p50 ms",
           "status": "status"}


def artifact_table(records: pd.DataFrame) -> pd.DataFrame:
    """The newest record per (format, compression), with bits per weight, accuracy and median latency."""
    if records.empty or "artifact.format" not in records:
        return pd.DataFrame(columns=list(COLUMNS.values()))
    df = records.sort_values("id") if "id" in records else records
    df = df.groupby(["artifact.format", "artifact.compression"], dropna=False).tail(1)
    out = df.reindex(columns=list(COLUMNS)).rename(columns=COLUMNS)
    return out.sort_values(["format", "bits/weight"], ascending=[True, False]).reset_index(drop=True)


def figure(table: pd.DataFrame) -> Any:
    """Accuracy against bits per weight, one line per format (None when nothing has an accuracy yet)."""
    import plotly.express as px

    rows = table.dropna(subset=["accuracy", "bits/weight"])
    if rows.empty:
        return None
    return px.line(rows.sort_values("bits/weight"), x="bits/weight", y="accuracy", color="format", markers=True,
                   hover_data=["compression", "p50 ms"], title="Held-out accuracy vs stored bits per weight "
                                                              "(scales and lookup tables counted)")


def section(records: pd.DataFrame) -> None:
    import streamlit as st

    st.subheader("Layer-wise data-free compression: accuracy vs bits")
    table = artifact_table(records)
    if table.empty:
        st.caption("No data-free artifact measured yet: `edgezoo run --papers datafree` trains the BatchNorm CNN, "
                   "compresses it with no data and profiles it in each format.")
        return
    st.dataframe(table, hide_index=True, width="stretch")
    fig = figure(table)
    if fig is not None:
        st.plotly_chart(fig, key="datafree_bits")
    st.caption("`edgezoo reproduce datafree` compares round-to-nearest, data-free and real-data reconstruction at "
               "2/3/4/8 bits; its table is in the claims section above.")
