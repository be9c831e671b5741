"""One way to read the results store, for the CLI summary, the reports and the dashboard: the newest record per
measured thing (artifact x runtime x threads x scenario, on one device), records by kind (vision, LM generation,
speculative decoding) and by paper, and the one Pareto front (its direction taken from the quality metric)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from profiles.record import KINDS, Record, higher_is_better  # noqa: F401 - the query layer's vocabulary

LM_KINDS = ("lm-generate", "lm-specdec")
# SQL for the flat table's `lm` column. Text match: SQLite's JSON functions reject the NaN / Infinity that records
# may hold, and reading the JSON once more per row would double the load of a big store.
LM_FLAG_SQL = """instr(record, '"kind": "lm-') > 0 AS lm"""
# The quality metric of each kind, as its producer names it (profiles/child.py: top-1; lm_measure: bits per byte)
KIND_METRIC = {"classify": "top1", "lm-generate": "bits_per_byte", "lm-specdec": "bits_per_byte"}


def kind(rec: dict[str, Any]) -> str:
    """classify | lm-generate | lm-specdec (records stored before scenarios named their kind are vision ones)."""
    return str((rec.get("scenario") or {}).get("kind") or "classify")


def is_lm(rec: dict[str, Any]) -> bool:
    return kind(rec) in LM_KINDS


def scale(rec: dict[str, Any]) -> str:
    """small (the main job's trained models) | deploy (app/deploy.py: published sizes, quality not measured)."""
    return str(rec.get("scale") or "small")




def by_kind(recs: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    for r in recs:
        out.setdefault(kind(r), []).append(r)
    return out


def belongs(rec: dict[str, Any], paper: Any) -> bool:
    """A record is a paper's when its `paper` is the plug-in key (records profiled by hand carry the title)."""
    return rec.get("paper") in (paper.key, paper.title)


def of_paper(recs: Iterable[dict[str, Any]], paper: Any) -> list[dict[str, Any]]:
    return [r for r in recs if belongs(r, paper)]


def artifact_key(rec: dict[str, Any]) -> tuple:
    """What one measured thing is: its files (or checkpoint), format, compression, runtime, threads, the device and
    the scenario settings that make different rows of one artifact (speculative decoding's gamma and context, a
    multi-scale model's input size)."""
    art, sc = rec.get("artifact") or {}, rec.get("scenario") or {}
    where = art.get("path") or sc.get("folder") or art.get("checkpoint")
    return (rec.get("model"), where, art.get("format"), art.get("compression"), rec.get("runtime"), rec.get("threads"),
            (rec.get("device") or {}).get("id"), kind(rec), sc.get("gamma"), sc.get("context"), sc.get("mode"),
            sc.get("input_size"))


def latest(recs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest record (by id) per artifact_key, ordered by id."""
    newest: dict[tuple, dict[str, Any]] = {}
    for rec in sorted(recs, key=lambda r: r["id"]):
        newest[artifact_key(rec)] = rec
    return sorted(newest.values(), key=lambda r: r["id"])


def records(store: Any, where: str = "", params: tuple = ()) -> list[dict[str, Any]]:
    """Every stored record (with its id), each checked through Record."""
    return [Record.from_dict(r).to_dict() for r in store.records(where, params)]




def summary_rows(store: Any, where: str = "", params: tuple = ()) -> list[dict[str, Any]]:
    """The flat columns the CLI summary prints (app/summary.py), plus the quality metric's name."""
    return store.rows(where, params)


def front_positions(xs: Sequence[Any], ys: Sequence[Any], higher: bool = True) -> list[int]:
    """Positions of the non-dominated points (lower x is better; higher y, or lower when not `higher`), by x.
    Points with a missing (None / NaN) coordinate are left out."""
    sign = 1.0 if higher else -1.0
    pts = [(float(x), sign * float(y), i) for i, (x, y) in enumerate(zip(xs, ys))
           if x is not None and y is not None and x == x and y == y]
    keep, best = [], float("-inf")
    for _, score, i in sorted(pts, key=lambda p: (p[0], -p[1])):
        if score > best:
            keep.append(i)
            best = score
    return keep


def _path(name: str) -> Callable[[dict[str, Any]], Any]:
    parts = name.split(".")

    def get(rec: dict[str, Any]) -> Any:
        cur: Any = rec
        for p in parts:
            cur = cur.get(p) if isinstance(cur, dict) else None
        return cur
    return get


def pareto_front(recs: Sequence[dict[str, Any]], x: str = "latency.median_ms", y: str = "accuracy.value",
                 metric: str | None = None, higher: bool | None = None) -> list[dict[str, Any]]:
    """The records no other one beats on both `x` (lower is better) and `y` (dotted paths into each record), fastest
    first. The direction of `y` is `higher`, else the quality `metric`'s (bits per byte: lower is better), else
    that of the first record's accuracy metric."""
    if higher is None:
        metric = metric or next(((r.get("accuracy") or {}).get("metric") for r in recs), None)
        higher = higher_is_better(metric)
    gx, gy = _path(x), _path(y)
    return [recs[i] for i in front_positions([gx(r) for r in recs], [gy(r) for r in recs], higher)]
