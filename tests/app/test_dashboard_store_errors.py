"""A store the dashboard cannot read (not SQLite, an other layout, a newer schema) is one clear message on each
page that reads it (what is wrong, then what to do), never a raw DatabaseError; a read-only store is just read."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.workspace import Workspace
from profiles import store as S
from tests.app import synthetic
from tests.profiles.test_store_faults import refuse_shm

DASH = Path(__file__).resolve().parents[2] / "app" / "dashboard"
PAGES = ("tradeoffs", "compare", "devices", "knob", "lm")


def corrupt(db: Path) -> None:
    db.write_bytes(b"these bytes are not an SQLite database " * 200)


def execute(db: Path, sql: str) -> None:
    with closing(sqlite3.connect(db)) as con, con:
        con.execute(sql)


def other_layout(db: Path) -> None:
    execute(db, "CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")


def newer(db: Path) -> None:
    S.Store(db).close()
    execute(db, "UPDATE meta SET value='99' WHERE key='schema_version'")


CASES = {"corrupt": (corrupt, "not a readable SQLite database", "move it aside"),
         "layout": (other_layout, "older or other layout", "move it aside"),
         "newer": (newer, "newer than this EdgeZoo", "upgrade EdgeZoo")}


@pytest.fixture(params=list(CASES))
def broken(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Workspace, str, str, str]:
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    make, problem, fix = CASES[request.param]
    make(ws.store_path)
    synthetic.write_card(ws)
    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(ws.root))
    return ws, hashlib.sha256(ws.store_path.read_bytes()).hexdigest(), problem, fix


def run(name: str) -> AppTest:
    at = AppTest.from_file(str(DASH / "views" / f"{name}.py"), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("name", PAGES)
def test_unreadable_store_is_one_message_per_page(broken, name: str) -> None:
    ws, before, problem, fix = broken
    at = run(name)
    (err,) = at.error
    assert problem in err.value and fix.lower() in err.value.lower() and ws.store_path.name in err.value
    assert "Execution failed on sql" not in err.value
    assert hashlib.sha256(ws.store_path.read_bytes()).hexdigest() == before  # the dashboard never writes


def test_zoo_page_still_shows_checkpoints_beside_the_store_error(broken) -> None:
    _, _, problem, _ = broken
    at = run("zoo")
    assert "digits_resnet" in [h.value for h in at.header]
    assert [problem in e.value for e in at.error] == [True]


def test_read_only_store_is_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store in a folder nobody may write (its -shm cannot be made): read through SQLite's immutable mode."""
    ws = synthetic.build(tmp_path / "ws", n=12)
    refuse_shm(monkeypatch)
    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(ws.root))
    at = run("tradeoffs")
    assert not at.error and at.get("plotly_chart")
