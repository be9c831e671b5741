"""The results store: SQLite (WAL), schema versioned, one transaction per record.
Each row keeps the full record as JSON plus the columns that tables and filters need."""

from __future__ import annotations

import json
import time
import sqlite3
from pathlib import Path
from typing import Any, Iterator

from models.errors import EdgeZooError

SCHEMA_VERSION = 1
COLUMNS = ("created", "cache_key", "model", "paper", "format", "compression", "runtime", "threads", "device",
           "status", "size_bytes", "bits_per_weight", "p50_ms", "p90_ms", "peak_rss_bytes", "accuracy",
           "parity_sqnr_db", "parity_ok", "error_class", "error_message")


def _column_type(name: str) -> str:
    if name in ("threads", "size_bytes", "peak_rss_bytes", "parity_ok"):
        return "INTEGER"
    return "REAL" if name.endswith(("_ms", "_db", "accuracy", "weight")) else "TEXT"


_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f"{c} {_column_type(c)}" for c in COLUMNS)},
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT, paper TEXT, verdict TEXT, quick INTEGER, seconds REAL,
    result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_key ON records (cache_key, status);
CREATE INDEX IF NOT EXISTS records_model ON records (model, format, compression);
"""


class StoreError(EdgeZooError):
    pass


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    art, lat = record.get("artifact", {}), record.get("latency") or {}
    acc, par = record.get("accuracy") or {}, record.get("parity") or {}
    return {
        "created": record.get("created"), "cache_key": record.get("cache_key"), "model": record.get("model"),
        "paper": record.get("paper"), "format": art.get("format"), "compression": art.get("compression"),
        "runtime": record.get("runtime"), "threads": record.get("threads"),
        "device": (record.get("device") or {}).get("name"), "status": record.get("status"),
        "size_bytes": art.get("size_bytes"), "bits_per_weight": art.get("bits_per_weight"),
        "p50_ms": lat.get("median_ms"), "p90_ms": lat.get("p90_ms"),
        "peak_rss_bytes": (record.get("memory") or {}).get("peak_rss_bytes"), "accuracy": acc.get("value"),
        "parity_sqnr_db": par.get("sqnr_db") if par.get("sqnr_db") != float("inf") else 999.0,
        "parity_ok": None if not par else int(bool(par.get("ok"))),
        "error_class": record.get("error_class"), "error_message": record.get("error_message"),
    }


class Store:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.path, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.executescript(_SCHEMA)
            self._check_version()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"results store {self.path} is not a readable SQLite database ({e})",
                             "move it aside (its records are kept there) and run again to start a new store") from None

    def _check_version(self) -> None:
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            with self.conn:
                self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise StoreError(f"results store {self.path} has schema {row[0]}, newer than this EdgeZoo ({SCHEMA_VERSION})",
                             "upgrade EdgeZoo or use another --workspace")

    def add(self, record: dict[str, Any]) -> int:
        flat = _flat(record)
        with self.conn:  # one transaction per record
            cur = self.conn.execute(
                f"INSERT INTO records ({', '.join(COLUMNS)}, record) VALUES ({', '.join('?' * (len(COLUMNS) + 1))})",
                (*[flat[c] for c in COLUMNS], json.dumps(record, default=str)))
        return int(cur.lastrowid)

    def find_ok(self, cache_key: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT id, record FROM records WHERE cache_key=? AND status='ok' ORDER BY id DESC LIMIT 1",
                                (cache_key,)).fetchone()
        return {**json.loads(row[1]), "id": row[0]} if row else None

    def rows(self, where: str = "", params: tuple = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(f"SELECT id, {', '.join(COLUMNS)} FROM records {where} ORDER BY id", params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def records(self, where: str = "", params: tuple = ()) -> Iterator[dict[str, Any]]:
        for rid, blob in self.conn.execute(f"SELECT id, record FROM records {where} ORDER BY id", params):
            yield {**json.loads(blob), "id": rid}

    def add_claim(self, result: dict[str, Any]) -> int:
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO claims (created, paper, verdict, quick, seconds, result) VALUES (?, ?, ?, ?, ?, ?)",
                (time.strftime("%Y-%m-%dT%H:%M:%S%z"), result["paper"], result["verdict"], int(result.get("quick", False)),
                 result.get("seconds"), json.dumps(result, default=str)))
        return int(cur.lastrowid)

    def claims(self, paper: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE paper=?", (paper,)) if paper else ("", ())
        rows = self.conn.execute(f"SELECT id, created, result FROM claims {where} ORDER BY id", params).fetchall()
        return [{**json.loads(r[2]), "id": r[0], "created": r[1]} for r in rows]

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def close(self) -> None:
        self.conn.close()
