"""Data for the Papers page, all from plug-in discovery: each paper's records and their newest record per artifact
(profiles/report_papers.py, shared with the reports) as display tables, and its claim checks."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from profiles import report_papers as R
from trainers.papers import Paper

MAX_RECORDS = 2000  # newest records per paper whose JSON is parsed
ordered = R.ordered_papers
DISPLAY = {"size_bytes": "size MiB", "bits_per_weight": "bits/weight", "p50_ms": "p50 ms",
           "decode_tokens_per_s": "decode tok/s", "gamma": "γ", "speedup": "speed-up vs plain",
           "kl": "KL to reference", "win_rate": "win rate vs base"}


def rows_of(flat: pd.DataFrame | None, paper: Paper) -> pd.DataFrame:
    """The flat rows of this paper's records (`paper` is the plug-in key; records profiled by hand carry the title)."""
    if flat is None:
        return pd.DataFrame(columns=["id", "paper"])
    return flat[flat["paper"].astype(str).isin([paper.key, paper.title])]


def artifact_table(recs: list[dict[str, Any]]) -> pd.DataFrame:
    """The newest record per artifact, one row each, without the columns no row fills."""
    df = pd.DataFrame([R.artifact_row(r) for r in R.newest(recs)])
    if df.empty:
        return df
    df["size_bytes"] = df["size_bytes"] / 2**20
    return df.rename(columns=DISPLAY).dropna(axis=1, how="all")


def plot_rows(flat_rows: pd.DataFrame, recs: list[dict[str, Any]]) -> pd.DataFrame:
    """Flat rows of the newest records that have a quality value to plot, with size in MiB and the metric each
    record names."""
    metric = {r["id"]: (r.get("accuracy") or {}).get("metric") for r in R.newest(recs)}
    rows = flat_rows[flat_rows["id"].isin(list(metric)) & (flat_rows["status"] == "ok")].dropna(subset=["accuracy"])
    return rows.assign(size_mib=rows["size_bytes"] / 2**20, metric=rows["id"].map(metric).fillna(rows["metric"]))


def claim_of(all_claims: pd.DataFrame | None, paper: Paper) -> pd.DataFrame:
    """This paper's claim checks, newest first (empty when none ran)."""
    if all_claims is None:
        return pd.DataFrame()
    return all_claims[all_claims["paper"].astype(str) == paper.key]


def ours(measured: dict[str, Any] | None) -> pd.DataFrame:
    """Our numbers: one row per arm, mean ± std over seeds."""
    return pd.DataFrame(R.ours({"measured": measured}), columns=["arm", "mean", "std", "seeds", "per seed"])


def theirs(paper_numbers: dict[str, Any] | None) -> pd.DataFrame:
    """The paper's numbers, as it reports them (at its scale, not reproduced here)."""
    return pd.DataFrame(R.theirs({"paper_numbers": paper_numbers}), columns=["setting", "paper reports"])


def card_markdown(text: str) -> str:
    """A spec card for display inside a section: its headings three levels down (the page's headers stay above
    them), code blocks left as they are."""
    out, fenced = [], False
    for line in text.splitlines():
        fenced ^= line.lstrip().startswith("```")
        out.append(line if fenced else re.sub(r"^(#{1,3}) ", lambda m: "#" * (len(m.group(1)) + 3) + " ", line))
    return "\n".join(out)


def commands(paper: Paper, root: Any) -> str:
    """The commands that produce this paper's records and claim verdict."""
    lines = [f"edgezoo run --papers {paper.key} -w {root}"]
    if paper.claim is not None:
        lines.insert(0, f"edgezoo reproduce {paper.key} -w {root}")
    return "\n".join(lines)
