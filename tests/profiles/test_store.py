from __future__ import annotations

import sqlite3

import pytest

from profiles.store import SCHEMA_VERSION, Store, StoreError


def record(status: str = "ok", key: str = "k1") -> dict:
    return {"model": "resnet", "cache_key": key, "status": status, "runtime": "onnxruntime",
            "artifact": {"format": "onnx", "compression": "int8", "size_bytes": 10, "bits_per_weight": 8.2},
            "latency": {"median_ms": 1.5, "p90_ms": 2.0, "samples_ms": [1.5, 1.4]},
            "accuracy": {"value": 0.9}, "parity": {"sqnr_db": 40.0, "ok": True}}


def test_add_and_query(tmp_path) -> None:
    st = Store(tmp_path / "r.db")
    rid = st.add(record())
    st.add(record("failed", "k2"))
    assert st.count() == 2
    row = st.rows("WHERE id=?", (rid,))[0]
    assert row["p50_ms"] == 1.5 and row["format"] == "onnx" and row["parity_ok"] == 1
    assert st.find_ok("k1")["latency"]["samples_ms"] == [1.5, 1.4]
    assert st.find_ok("k2") is None


def test_wal_and_schema_version(tmp_path) -> None:
    st = Store(tmp_path / "r.db")
    assert st.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert st.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)


def test_newer_schema_refused(tmp_path) -> None:
    Store(tmp_path / "r.db").close()
    con = sqlite3.connect(tmp_path / "r.db")
    con.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer than this EdgeZoo"):
        Store(tmp_path / "r.db")


def test_corrupt_store_is_a_clear_error_and_kept(tmp_path) -> None:
    p = tmp_path / "r.db"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a readable SQLite database"):
        Store(p)
    assert p.read_bytes().startswith(b"this is not sqlite")
