"""The Python API: the CLI's verbs as functions, for a model of your own or a zoo checkpoint.

    export(model, example_inputs, fmt, compress="none", out=None)  -> Artifact   (exporters/own.py)
    check(model, example_inputs)                                    -> op coverage per format
    profile(artifact, runtime=None, threads=2)                      -> record, stored in the workspace's store
    compare(model=None)                                             -> the store's rows (your model beside the zoo)
    report(out=None)                                                -> the device report's paths

Every function takes `workspace=` (default: $EDGEZOO_WORKSPACE or ./edgezoo-workspace), as the CLI does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exporters.artifact import Artifact
from exporters.own import check, export

__all__ = ["check", "compare", "export", "profile", "report"]


def profile(artifact: Artifact | str | Path, runtime: str | None = None, threads: int = 2,
            workspace: str | Path | None = None, timeout: float = 180.0) -> dict[str, Any]:
    """Measure one artifact in a fresh child process (the format's default runtime unless `runtime`) and store the
    record. A user model's metric (computed on the artifact's outputs at export) fills the record's quality when
    the child measured none; without labels or a metric, accuracy stays "not measured" (None)."""
    from app.workspace import Workspace
    from profiles.measure import measure

    record = measure(artifact if isinstance(artifact, Artifact) else Path(artifact), runtime, threads,
                     timeout=timeout)
    art = artifact if isinstance(artifact, Artifact) else None
    quality = (art.manifest.get("quality") or {}) if art else {}
    if record.get("accuracy") is None and quality.get("value") is not None:
        record["accuracy"] = {"metric": quality["metric"], "value": quality["value"],
                              "dataset": quality.get("dataset"), "n": quality.get("n")}
    record["id"] = Workspace.resolve(workspace).store().add(record)
    return record


def compare(model: str | None = None, workspace: str | Path | None = None) -> list[dict[str, Any]]:
    """The store's flat rows (size, latency, accuracy, status ...), all of them or one model's."""
    from app.workspace import Workspace
    from profiles import query

    store = Workspace.resolve(workspace).store()
    return query.summary_rows(store, "WHERE model=?", (model,)) if model else query.summary_rows(store)


def report(out: list[str | Path] | None = None, workspace: str | Path | None = None,
           device: str | None = None) -> list[Path]:
    """Write the device report (HTML and Markdown; by default in WORKSPACE/reports) over everything stored."""
    from app.workspace import Workspace
    from profiles.report import write_report

    return write_report(Workspace.resolve(workspace), device=device, outs=[Path(p) for p in out or []])
