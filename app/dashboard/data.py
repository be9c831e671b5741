"""Data access for the pages: flat columns in one SQL query (cached on the db's mtime), full JSON only on demand."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd
import streamlit as st

from app.workspace import Workspace
from profiles.query import KIND_METRIC as _KIND_METRIC, LM_FLAG_SQL as LM_FLAG, front_positions
from profiles.report_papers import higher_is_better, metric_label, metric_order  # noqa: F401 - for the pages
from profiles.store import COLUMNS, StoreError, connect_read_only, store_error

FILTERS = ("paper", "model", "format", "compression", "runtime", "device", "status", "scale")
# small (trained at small scale) | deploy (app/deploy.py: published sizes, seeded weights), by text match as LM_FLAG
SCALE_SQL = """CASE WHEN instr(record, '"scale": "deploy"') > 0 THEN 'deploy' ELSE 'small' END AS scale"""


def workspace() -> Workspace:
    """The workspace named by EDGEZOO_WORKSPACE (set by `edgezoo dashboard`), else the default."""
    return Workspace.resolve()


def db_version(path: Path) -> float:
    """Changes whenever the store does: WAL mode writes to results.db-wal before the main file."""
    files = [path, path.with_name(path.name + "-wal")]
    return max((f.stat().st_mtime_ns for f in files if f.exists()), default=0) / 1e9


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection, checked as the store checks itself, closed after use. A damaged, foreign or
    unreadable store is a StoreError (problem -> fix), also when the damage only shows while reading."""
    conn = connect_read_only(Path(path))
    try:
        yield conn
    except (sqlite3.Error, pd.errors.DatabaseError) as e:  # pandas wraps the sqlite3 error it met
        raise store_error(e.__cause__ or e, Path(path), "read") from None
    finally:
        conn.close()


def show_store_error(err: StoreError) -> None:
    """One message on the page: what is wrong with the store, then what to do (markdown outside `code` escaped)."""
    parts = re.split(r"(`[^`]*`)", f"{err.problem}.\n\n{err.fix[:1].upper()}{err.fix[1:]}.")
    st.error("".join(p if p.startswith("`") else re.sub(r"([\\*_~#|<>\[\]])", r"\\\1", p) for p in parts),
             icon=":material/database:")


def _stop(err: StoreError) -> NoReturn:
    show_store_error(err)
    st.stop()
    raise err  # outside a script run (tests, scripts) st.stop() returns


# Language-model records (scenario kind lm-generate / lm-specdec; bits per byte, lower is better) have their own page.
# The flat table names each row's quality metric from its `lm` flag (profiles.query), not by reading the JSON again;
# pages that parse records (Papers) show the name each record carries.
KIND_METRIC = {0: _KIND_METRIC["classify"], 1: _KIND_METRIC["lm-generate"]}


def latency_title(df: pd.DataFrame) -> str:
    """The p50 axis' title: a language model's p50 is one decode step (one token)."""
    lm = bool(len(df)) and bool((df["lm"] == 1).all())
    return "p50 decode step (ms per token, log)" if lm else "p50 latency (ms, log)"


@st.cache_data(show_spinner=False, max_entries=4)
def load_flat(path: str, version: float) -> pd.DataFrame:
    """Every record's flat columns, the `lm` flag and its kind's quality `metric` (no JSON parsing); `version` is the
    cache key's mtime part."""
    with _connect(Path(path)) as conn:
        df = pd.read_sql_query(f"SELECT id, {', '.join(COLUMNS)}, {LM_FLAG}, {SCALE_SQL} FROM records ORDER BY id",
                               conn)
    return df.assign(metric=df["lm"].map(KIND_METRIC))


def flat(ws: Workspace) -> pd.DataFrame | None:
    """The store's flat table, or None when no store exists yet."""
    if not ws.store_path.exists():
        return None
    try:
        return load_flat(str(ws.store_path), db_version(ws.store_path))
    except StoreError as e:
        _stop(e)


@st.cache_data(show_spinner=False, max_entries=64)
def load_records(path: str, version: float, ids: tuple[int, ...]) -> list[dict[str, Any]]:
    """Full records (JSON parsed) for just these ids, in the given order."""
    if not ids:
        return []
    with _connect(Path(path)) as conn:
        rows = conn.execute(f"SELECT id, record FROM records WHERE id IN ({','.join('?' * len(ids))})", ids).fetchall()
    by_id = {rid: {**json.loads(blob), "id": rid} for rid, blob in rows}
    return [by_id[i] for i in ids if i in by_id]


def records(ws: Workspace, ids: Iterable[int]) -> list[dict[str, Any]]:
    try:
        return load_records(str(ws.store_path), db_version(ws.store_path), tuple(int(i) for i in ids))
    except StoreError as e:
        _stop(e)


def table_exists(ws: Workspace, name: str) -> bool:
    """Whether the store has this table; a store that cannot be read is shown as an error and has none."""
    if not ws.store_path.exists():
        return False
    try:
        with _connect(ws.store_path) as conn:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone()
        return found is not None
    except StoreError as e:
        show_store_error(e)
        return False


def read_table(ws: Workspace, name: str) -> pd.DataFrame:
    try:
        with _connect(ws.store_path) as conn:
            return pd.read_sql_query(f'SELECT * FROM "{name}"', conn)
    except StoreError as e:
        _stop(e)


def without_lm(df: pd.DataFrame) -> pd.DataFrame:
    """Records other than language-model ones (whose accuracy is bits per byte, not a vision top-1)."""
    return df[df["lm"] == 0]


def lm_only(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["lm"] == 1]


def apply_filters(df: pd.DataFrame, chosen: dict[str, list[Any]]) -> pd.DataFrame:
    """Keep rows whose column value is among the chosen ones; an empty choice means no filter."""
    mask = pd.Series(True, index=df.index)
    for col, values in chosen.items():
        if values:
            mask &= df[col].astype(str).isin([str(v) for v in values])
    return df[mask]


def pareto_front(df: pd.DataFrame, x: str = "p50_ms", y: str = "accuracy", higher: bool = True) -> pd.DataFrame:
    """Non-dominated points: lower `x` is better, and higher `y` (lower when not `higher`). Sorted by `x`."""
    return df.iloc[front_positions(df[x].tolist(), df[y].tolist(), higher)]


def label(row: pd.Series | dict[str, Any]) -> str:
    return (f"#{row['id']} {row['model']} · {row['format']}/{row['compression']} · {row['runtime']}"
            f" · {row['status']}")



def record_label(rec: dict[str, Any]) -> str:
    art = rec.get("artifact") or {}
    return label({**rec, "format": art.get("format"), "compression": art.get("compression")})


def for_display(rec: dict[str, Any]) -> dict[str, Any]:
    """The record with its raw samples replaced by their count (thousands of floats are unreadable)."""
    lat = dict(rec.get("latency") or {})
    if "samples_ms" in lat:
        lat["samples_ms"] = f"{len(lat['samples_ms'])} samples (see Compare)"
    return {**rec, "latency": lat}


def _get(rec: dict[str, Any], path: str) -> Any:
    cur: Any = rec
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


COMPARE_FIELDS = (
    "model", "paper", "artifact.format", "artifact.compression", "artifact.size_bytes", "artifact.bits_per_weight",
    "artifact.sparsity", "runtime", "runtime_version", "threads", "device.name", "status", "error_class",
    "error_message", "latency.n", "latency.median_ms", "latency.p90_ms", "latency.p99_ms", "latency.mean_ms",
    "latency.trimmed_mean_ms", "latency.std_ms", "latency.cv", "latency.median_ci95_ms", "latency.min_ms",
    "latency.max_ms", "load_seconds",
    "first_call_ms", "memory.peak_rss_bytes", "memory.load_delta_bytes", "memory.peak_label", "accuracy.metric",
    "accuracy.value", "accuracy.n", "parity.sqnr_db", "parity.max_abs_err", "parity.top1_agreement", "parity.ok",
    "created",
)


def compare_table(recs: list[dict[str, Any]]) -> pd.DataFrame:
    """Fields as rows, one column per record (values as text so mixed types display)."""
    cols = {f"#{r['id']}": [_fmt(_get(r, f)) for f in COMPARE_FIELDS] for r in recs}
    return pd.DataFrame(cols, index=list(COMPARE_FIELDS))


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.5g}"
    if isinstance(v, list) and all(isinstance(x, float) for x in v):
        return "[" + ", ".join(f"{x:.5g}" for x in v) + "]"
    return str(v)
