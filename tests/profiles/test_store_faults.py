"""The store under faults: locked, disk full, read-only, damaged, other layouts. A record is never lost and every
failure says what is wrong and what to do."""

from __future__ import annotations

import errno
import hashlib
import json
import sqlite3
import threading
from pathlib import Path

import pytest

from profiles import store as S
from profiles.store import SPOOL_DIR, Store, StoreError
from tests.profiles.test_store import record


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def spooled(root: Path) -> list[Path]:
    return sorted((root / SPOOL_DIR).glob("*.json"))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    Store(tmp_path / "results.db").close()
    return tmp_path / "results.db"


def hold_lock(path: Path) -> sqlite3.Connection:
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    return other


# ------------------------------------------------------------------------------------------------ add: locked


def test_locked_store_spools_the_record_and_the_next_open_imports_it(db: Path) -> None:
    st = Store(db, lock_wait=0.3)
    other = hold_lock(db)
    with pytest.raises(StoreError) as err:
        st.add(record(key="locked"))
    e = err.value
    assert e.kind == "locked" and "locked by another process" in e.problem and " -> " in str(e)
    assert e.spool is not None and str(e.spool) in str(e) and "imported into the store" in str(e)
    assert e.spool.parent == db.parent / SPOOL_DIR and e.spool.name.endswith("-locked.json")
    assert json.loads(e.spool.read_text())["cache_key"] == "locked"
    other.execute("ROLLBACK")
    st.close()
    again = Store(db)
    assert again.find_ok("locked")["latency"]["samples_ms"] == [1.5, 1.4]
    assert spooled(db.parent) == []


def test_a_lock_released_within_the_wait_is_retried(db: Path) -> None:
    st = Store(db, lock_wait=10)
    other = hold_lock(db)
    timer = threading.Timer(0.3, lambda: other.execute("ROLLBACK"))
    timer.start()
    try:
        rid = st.add(record(key="late"))
    finally:
        timer.join()
    assert st.rows("WHERE id=?", (rid,))[0]["cache_key"] == "late" and spooled(db.parent) == []


# ------------------------------------------------------------------------------------------------ add: disk full


def fill(st: Store) -> None:
    """The store's file can grow no further: SQLite then fails writes exactly as on a full disk (SQLITE_FULL)."""
    pages = st.conn.execute("PRAGMA page_count").fetchone()[0]
    st.conn.execute(f"PRAGMA max_page_count={pages}")


def big_record(key: str) -> dict:
    rec = record(key=key)
    rec["latency"]["samples_ms"] = [float(i) for i in range(5000)]
    return rec


def test_disk_full_spools_the_record(db: Path) -> None:
    st = Store(db)
    fill(st)
    with pytest.raises(StoreError) as err:
        st.add(big_record("full"))
    assert err.value.kind == "disk-full" and "is full" in err.value.problem and "free space" in err.value.fix
    assert err.value.spool.exists() and len(json.loads(err.value.spool.read_text())["latency"]["samples_ms"]) == 5000
    st.close()
    assert Store(db).find_ok("full") is not None and spooled(db.parent) == []


def test_disk_full_for_the_spool_too_puts_the_record_in_the_error(db: Path, monkeypatch) -> None:
    st = Store(db)
    fill(st)

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(S.tempfile, "mkstemp", no_space)
    with pytest.raises(StoreError) as err:
        st.add(big_record("nowhere"))
    text = str(err.value)
    assert err.value.spool is None and "No space left on device" in text and "\n" not in text
    rec = json.loads(text[text.index("{"):])  # the record itself, ready to be saved by hand
    assert rec["cache_key"] == "nowhere" and len(rec["latency"]["samples_ms"]) == 5000
    assert list((db.parent / SPOOL_DIR).iterdir()) == []


def test_claims_are_spooled_and_imported_too(db: Path) -> None:
    st = Store(db)
    fill(st)
    claim = {"paper": "lcs", "verdict": "pass", "quick": True, "seconds": 1.0, "claim": "x" * 20000}
    with pytest.raises(StoreError) as err:
        st.add_claim(claim)
    assert err.value.spool.name.endswith(S.CLAIM_SUFFIX)
    st.close()
    (got,) = Store(db).claims("lcs")
    assert got["verdict"] == "pass" and got["claim"] == claim["claim"] and got["created"]


# ------------------------------------------------------------------------------------------------ import_spool


def test_import_keeps_unreadable_files_and_never_adds_a_record_twice(db: Path) -> None:
    spool = db.parent / SPOOL_DIR
    spool.mkdir()
    (spool / "broken.json").write_text("{not json")
    (spool / "a-k9.json").write_text(json.dumps(record(key="k9")))
    st = Store(db)
    assert st.count() == 1 and [p.name for p in spooled(db.parent)] == ["broken.json"]
    (spool / "a-k9.json").write_text(json.dumps(record(key="k9")))  # as if the process died before the delete
    assert [p.name for p in st.import_spool()] == ["a-k9.json"] and st.count() == 1


def test_import_into_a_full_store_leaves_the_files(db: Path) -> None:
    spool = db.parent / SPOOL_DIR
    spool.mkdir()
    (spool / "a-big.json").write_text(json.dumps(big_record("big")))
    assert Store(db, read_only=True).count() == 0 and len(spooled(db.parent)) == 1  # read-only: nothing imported
    st = Store(db)
    assert st.count() == 1 and not spool.exists()  # emptied, then removed
    spool.mkdir()
    (spool / "b-big.json").write_text(json.dumps(big_record("big2")))
    fill(st)
    with pytest.raises(StoreError, match="is full"):
        st.import_spool()
    assert len(spooled(db.parent)) == 1 and st.count() == 1


# ------------------------------------------------------------------------------------------------ open: damaged


def test_not_a_database_says_move_it_aside(tmp_path: Path) -> None:
    p = tmp_path / "results.db"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as err:
        Store(p)
    assert err.value.kind == "corrupt" and "move it aside" in err.value.fix
    assert p.read_bytes() == b"this is not sqlite" * 100


def test_an_empty_file_becomes_a_new_store(tmp_path: Path) -> None:
    (tmp_path / "results.db").touch()
    st = Store(tmp_path / "results.db")
    st.add(record())
    assert st.count() == 1


# ------------------------------------------------------------------------------------------------ open: layouts


def other_layout(path: Path, sql: str) -> str:
    con = sqlite3.connect(path)
    con.executescript(sql)
    con.close()
    return sha(path)


@pytest.mark.parametrize("sql, found", [
    (("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('schema_version', '0');"
      "CREATE TABLE records (id INTEGER PRIMARY KEY, model TEXT, record TEXT);"), "schema 0"),
    ("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT);", "no schema version"),
])
def test_other_or_older_layout_is_refused_and_left_unchanged(tmp_path: Path, sql: str, found: str) -> None:
    p = tmp_path / "results.db"
    before = other_layout(p, sql)
    for read_only in (False, True):
        with pytest.raises(StoreError) as err:
            Store(p, read_only=read_only)
        assert err.value.kind == "layout" and found in err.value.problem and "left unchanged" in err.value.problem
        assert "move it aside" in err.value.fix and "not a readable SQLite" not in str(err.value)
    assert sha(p) == before


def test_newer_schema_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    p = tmp_path / "results.db"
    before = other_layout(p, "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                             "INSERT INTO meta VALUES ('schema_version', '2');")
    with pytest.raises(StoreError) as err:
        Store(p)
    assert err.value.kind == "newer" and sha(p) == before
    names = [r[0] for r in sqlite3.connect(p).execute("SELECT name FROM sqlite_master")]
    assert names == ["meta", "sqlite_autoindex_meta_1"]


def test_a_v1_store_from_before_claims_gets_its_claims_table(db: Path) -> None:
    con = sqlite3.connect(db)
    con.execute("DROP TABLE claims")
    con.commit()
    con.close()
    assert Store(db, read_only=True).claims() == []  # read-only: an empty stand-in, the file untouched
    assert Store(db).add_claim({"paper": "lcs", "verdict": "fail"}) == 1


# ------------------------------------------------------------------------------------------------ open: read-only


def test_no_write_permission_opens_read_only(db: Path, monkeypatch) -> None:
    Store(db).add(record())
    before = sha(db)
    monkeypatch.setattr(S.os, "access", lambda path, mode: False)  # what a non-root user without w bits sees
    st = Store(db)
    assert st.read_only is not None and st.count() == 1 and st.rows()[0]["p50_ms"] == 1.5
    with pytest.raises(sqlite3.OperationalError, match="readonly"):  # the connection really is read-only
        st.conn.execute("DELETE FROM records")
    with pytest.raises(StoreError) as err:
        st.add(record(key="k2"))
    assert err.value.kind == "read-only" and "read-only" in err.value.problem and "--workspace" in err.value.fix
    assert "chmod" in err.value.fix and err.value.spool.exists()
    assert sha(db) == before


def readonly_rw_connection(path: Path, timeout: float) -> sqlite3.Connection:
    """What SQLite gives a process whose writes the OS refuses: a connection on which every write fails."""
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)


def test_sqlite_refusing_writes_at_open_falls_back_to_read_only(db: Path, monkeypatch) -> None:
    con = sqlite3.connect(db)  # a store that needs a write at open (its claims table)
    con.execute("DROP TABLE claims")
    con.commit()
    con.close()
    monkeypatch.setattr(S, "_connect_rw", readonly_rw_connection)
    st = Store(db)
    assert st.read_only is not None and st.read_only.kind == "read-only" and st.claims() == [] and st.count() == 0


def test_sqlite_refusing_the_write_of_a_record_spools_it(db: Path, monkeypatch) -> None:
    monkeypatch.setattr(S, "_connect_rw", readonly_rw_connection)
    st = Store(db)  # a current store needs no write to open
    with pytest.raises(StoreError) as err:
        st.add(record())
    assert err.value.kind == "read-only" and "readonly database" in err.value.problem and err.value.spool.exists()


def test_read_only_workspace_without_a_store(tmp_path: Path, monkeypatch) -> None:
    def refuse(self, *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(StoreError) as err:
        Store(tmp_path / "ws" / "results.db")
    assert err.value.kind == "read-only" and "--workspace" in err.value.fix
    with pytest.raises(StoreError, match="no results store") as err:
        Store(tmp_path / "ws" / "results.db", read_only=True)
    assert err.value.kind == "missing"


def refuse_shm(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite as it opens a WAL store in a folder nobody may write: no -shm file can be made, so only a connection
    in immutable mode opens."""
    real = sqlite3.connect

    def connect(database, *a, **k):
        if "immutable=1" not in str(database):
            raise sqlite3.OperationalError("unable to open database file")
        return real(database, *a, **k)

    monkeypatch.setattr(S.sqlite3, "connect", connect)


def test_read_only_wal_store_whose_shm_cannot_be_made_is_read_immutable(db: Path, monkeypatch) -> None:
    st = Store(db)
    st.add(record())
    st.close()  # the last writer's close checkpoints the WAL into the main file and removes -wal/-shm
    assert not db.with_name(db.name + "-shm").exists()
    refuse_shm(monkeypatch)
    assert S.connect_read_only(db).execute("SELECT COUNT(*) FROM records").fetchone() == (1,)


# ------------------------------------------------------------------------------------------------ open: disk full


def test_disk_full_when_creating_the_store(tmp_path: Path, monkeypatch) -> None:
    def tiny(path: Path, timeout: float) -> sqlite3.Connection:
        con = sqlite3.connect(path, timeout=timeout)
        con.execute("PRAGMA max_page_count=1")  # no room for a single table
        return con

    monkeypatch.setattr(S, "_connect_rw", tiny)
    with pytest.raises(StoreError) as err:
        Store(tmp_path / "results.db")
    assert err.value.kind == "disk-full" and "free space" in err.value.fix
    assert "not a readable SQLite" not in str(err.value)
