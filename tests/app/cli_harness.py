"""Drive `edgezoo` / `exporters` in-process through the real entry point (app.cli_options.run_app) and check
that a bad input fails cleanly: non-zero exit, one `error: ...` line naming the problem, no traceback, nothing
left behind (`.partial` folders, edgezoo temp dirs), and the results store unchanged."""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def invoke(argv: list[str], capsys: pytest.CaptureFixture, prog: str = "edgezoo") -> Outcome:
    """Run one command line through the same `run_app` the console scripts use."""
    from app import cli as edgezoo_cli
    from app.cli_options import run_app
    from exporters import cli as exporters_cli

    app = edgezoo_cli.app if prog == "edgezoo" else exporters_cli.app
    capsys.readouterr()
    old = sys.argv
    sys.argv = [prog, *argv]
    try:
        with pytest.raises(SystemExit) as exc:
            run_app(app, prog)
    finally:
        sys.argv = old
    cap = capsys.readouterr()
    return Outcome(int(exc.value.code or 0), cap.out, cap.err)


def _leftovers(workspace: Path) -> set[str]:
    tmp = {p.name for p in Path(tempfile.gettempdir()).glob("edgezoo-*")}
    partial = {str(p) for p in workspace.rglob("*.partial")} if workspace.exists() else set()
    return tmp | partial


def _store_rows(workspace: Path) -> tuple | None:
    db = workspace / "results.db"
    if not db.exists():
        return None
    conn = sqlite3.connect(db)
    try:
        return tuple(conn.execute("SELECT COUNT(*) FROM records").fetchone()) + \
            tuple(conn.execute("SELECT COUNT(*) FROM claims").fetchone())
    except sqlite3.DatabaseError:
        return ("unreadable",)
    finally:
        conn.close()


def assert_clean_failure(argv: list[str], capsys: pytest.CaptureFixture, workspace: Path, *,
                         mentions: str | None = None, prog: str = "edgezoo") -> Outcome:
    """The bad-input contract: exit != 0, an `error:` line that names the problem (and `mentions`, when given),
    no traceback, not the catch-all for bugs, the store unchanged and nothing left behind."""
    before_left, before_rows = _leftovers(workspace), _store_rows(workspace)
    res = invoke(argv, capsys, prog)
    text = res.out + res.err
    assert res.code != 0, f"{argv}: exit 0\n{text}"
    assert "Traceback" not in text, f"{argv}: traceback\n{text}"
    errors = [line for line in res.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, f"{argv}: expected one error line\n{res.err}"
    assert "unexpected" not in errors[0], f"{argv}: reached the catch-all for bugs\n{errors[0]}"
    if mentions is not None:
        assert mentions.lower() in errors[0].lower(), f"{argv}: {mentions!r} not in\n{errors[0]}"
    assert _store_rows(workspace) == before_rows, f"{argv}: the store changed"
    assert _leftovers(workspace) <= before_left, f"{argv}: left behind {_leftovers(workspace) - before_left}"
    return res
