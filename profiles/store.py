"""The results store: SQLite (WAL), schema versioned, one transaction per record.
Each row keeps the full record as JSON plus the columns that tables and filters need.

A measurement is never lost: when the store cannot take a record (locked past the wait, disk full, read-only,
damaged) the record is written as JSON to WORKSPACE/unsaved-records/ and imported the next time the store is
opened for writing. Opening never modifies a store it then refuses (a file that is not SQLite, an other or older
layout, a newer schema), and a store this process may not write is opened read-only, so that reading commands
(results, report, dashboard) still work."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from models.errors import EdgeZooError
from profiles.record import Record, validated

SCHEMA_VERSION = 1
COLUMNS = ("created", "cache_key", "model", "paper", "format", "compression", "runtime", "threads", "device",
           "status", "size_bytes", "bits_per_weight", "p50_ms", "p90_ms", "peak_rss_bytes", "accuracy",
           "parity_sqnr_db", "parity_ok", "error_class", "error_message")
SPOOL_DIR = "unsaved-records"  # next to the store: records that could not be written to it
CLAIM_SUFFIX = ".claim.json"  # a spooled claim check (records end in plain .json)
LOCK_WAIT_S = 15.0  # how long `add` retries a store that another process holds locked

log = logging.getLogger("edgezoo.store")
T = TypeVar("T")


def _column_type(name: str) -> str:
    if name in ("threads", "size_bytes", "peak_rss_bytes", "parity_ok"):
        return "INTEGER"
    return "REAL" if name.endswith(("_ms", "_db", "accuracy", "weight")) else "TEXT"


_TABLES = {
    "meta": "meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "records": f"""records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f"{c} {_column_type(c)}" for c in COLUMNS)},
    record TEXT NOT NULL
)""",
    "claims": """claims (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT, paper TEXT, verdict TEXT, quick INTEGER, seconds REAL,
    result TEXT NOT NULL
)""",
}
_SCHEMA = "".join(f"CREATE TABLE IF NOT EXISTS {ddl};\n" for ddl in _TABLES.values()) + f"""
CREATE INDEX IF NOT EXISTS records_key ON records (cache_key, status);
CREATE INDEX IF NOT EXISTS records_model ON records (model, format, compression);
INSERT OR IGNORE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');
"""
_INSERT_RECORD = f"INSERT INTO records ({', '.join(COLUMNS)}, record) VALUES ({', '.join('?' * (len(COLUMNS) + 1))})"
_INSERT_CLAIM = "INSERT INTO claims (created, paper, verdict, quick, seconds, result) VALUES (?, ?, ?, ?, ?, ?)"


class StoreError(EdgeZooError):
    """`kind`: corrupt | read-only | disk-full | locked | layout | newer | missing | cantopen | io.
    `spool`: the file a record that could not be stored was saved to, if any."""

    def __init__(self, problem: str, fix: str, kind: str = "io", spool: Path | None = None) -> None:
        super().__init__(problem, fix)
        self.kind = kind
        self.spool = spool


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


# ------------------------------------------------------------------------------------------------ what went wrong

_OS_KINDS = {errno.ENOSPC: "disk-full", errno.EDQUOT: "disk-full", errno.EROFS: "read-only", errno.EACCES: "read-only",
             errno.EPERM: "read-only"}
_SQLITE_KINDS = (("SQLITE_BUSY", "locked"), ("SQLITE_LOCKED", "locked"), ("SQLITE_FULL", "disk-full"),
                 ("SQLITE_READONLY", "read-only"), ("SQLITE_PERM", "read-only"), ("SQLITE_NOTADB", "corrupt"),
                 ("SQLITE_CORRUPT", "corrupt"), ("SQLITE_CANTOPEN", "cantopen"))
_TEXT_KINDS = (("is locked", "locked"), ("disk is full", "disk-full"), ("readonly", "read-only"),
               ("not a database", "corrupt"), ("malformed", "corrupt"), ("unable to open", "cantopen"))


def error_kind(e: BaseException) -> str:
    """What a sqlite3 / OS error means for the store (see StoreError.kind)."""
    if isinstance(e, StoreError):
        return e.kind
    if isinstance(e, OSError):
        return _OS_KINDS.get(e.errno or 0, "io")
    name, text = getattr(e, "sqlite_errorname", None) or "", str(e).lower()
    for prefix, kind in _SQLITE_KINDS:
        if name.startswith(prefix):
            return kind
    return next((kind for needle, kind in _TEXT_KINDS if needle in text), "io")


def store_error(e: BaseException, path: Path, doing: str = "opened") -> StoreError:
    """One StoreError ("problem -> fix") for a sqlite3 / OS error met while the store at `path` was `doing`."""
    if isinstance(e, StoreError):
        return e
    kind, detail = error_kind(e), f"{e.__class__.__name__}: {e}"
    problem, fix = {
        "corrupt": (f"results store {path} is not a readable SQLite database ({detail})",
                    (f"move it aside (e.g. `mv {path} {path}.broken`; its bytes are kept there) and run again to "
                     "start a new store")),
        "read-only": (f"results store {path} is read-only for this process ({detail})",
                      (f"pass --workspace a writable folder, or make {path} and its folder writable (chmod/chown); "
                       "results, report and dashboard still read it as it is")),
        "disk-full": (f"the disk holding results store {path} is full ({detail})",
                      "free space on that disk, or pass --workspace a folder on another disk"),
        "locked": (f"results store {path} is locked by another process ({detail})",
                   "wait for the other edgezoo command (or the program holding the file) to finish"),
        "cantopen": (f"results store {path} cannot be opened ({detail})",
                     "check that its folder exists and is readable and writable, or pass --workspace another folder"),
        "io": (f"results store {path} could not be {doing} ({detail})",
               "check the disk and the file's permissions, or pass --workspace another folder"),
    }[kind]
    return StoreError(problem, fix, kind)


# ------------------------------------------------------------------------------------------------ layout

def _layout(conn: sqlite3.Connection, path: Path) -> set[str]:
    """The tables this store still needs (empty when current; all of them for a new, empty file), read without
    writing anything. Raises StoreError for a newer schema or an other / older layout."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")} - {"sqlite_sequence"}
    if not tables:
        return set(_TABLES)
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() if "meta" in tables else None
    version = row[0] if row else None
    if str(version).isdigit() and int(version) > SCHEMA_VERSION:
        raise StoreError(f"results store {path} has schema {version}, newer than this EdgeZoo ({SCHEMA_VERSION})",
                         "upgrade EdgeZoo or use another --workspace", "newer")
    columns = {r[1] for r in conn.execute("PRAGMA table_info(records)")}
    missing = [c for c in (*COLUMNS, "record") if c not in columns]
    if "meta" not in tables or version not in (None, str(SCHEMA_VERSION)) or missing:
        found = f"schema {version}" if version is not None else "no schema version"
        lacks = f"; records lacks {', '.join(missing[:4])}{'...' if len(missing) > 4 else ''}" if missing else ""
        raise StoreError(f"results store {path} has an older or other layout ({found}, tables "
                         f"{', '.join(sorted(tables))}{lacks}); it was left unchanged",
                         f"move it aside (e.g. `mv {path} {path}.old`) and run again to start a new store "
                         f"(schema {SCHEMA_VERSION}), or pass --workspace another folder", "layout")
    return set(_TABLES) - tables | ({"meta"} if version is None else set())


def connect_read_only(path: Path, timeout: float = 30.0) -> sqlite3.Connection:
    """A read-only connection to an existing store, checked like Store does (raises StoreError). Tables a current
    store may lack (e.g. claims) are empty temporary tables, so reads work. Nothing in the file is changed."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"no results store at {path}", "run `edgezoo run` (or `edgezoo profile`) first", "missing")
    uri = path.resolve().as_uri()
    # immutable: a WAL store in a folder where its -shm file cannot be made, which happens once the last writer has
    # closed it (and so checkpointed the WAL into the main file, all that immutable mode reads)
    for extra in ("", "&immutable=1"):
        conn = None
        try:
            conn = sqlite3.connect(f"{uri}?mode=ro{extra}", uri=True, timeout=timeout)
            for name in _layout(conn, path) - {"meta"}:
                conn.execute(f"CREATE TEMP TABLE {_TABLES[name]}")
            return conn
        except (sqlite3.Error, StoreError) as e:
            if conn is not None:
                conn.close()
            if error_kind(e) != "cantopen" or extra:
                raise store_error(e, path) from None
    raise AssertionError("unreachable")


def _connect_rw(path: Path, timeout: float) -> sqlite3.Connection:
    """The writing connection (tests replace it to simulate a read-only file or a full disk)."""
    return sqlite3.connect(path, timeout=timeout)


def _may_write(path: Path) -> bool:
    """Whether this process may write the store file and create its -wal/-shm files (root may write anything)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


# ------------------------------------------------------------------------------------------------ spool

def _spool_write(folder: Path, stem: str, text: str, suffix: str = ".json") -> Path:
    """Write `text` to folder/STEM.json through a temporary file and a rename; never replaces a file."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9._+-]", "-", stem)[:150]
    target, n = folder / f"{stem}{suffix}", 1
    while target.exists():
        n += 1
        target = folder / f"{stem}-{n}{suffix}"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _record_row(record: dict[str, Any], blob: str) -> tuple:
    flat = _flat(record)
    return (*[flat[c] for c in COLUMNS], blob)


def _claim_row(result: dict[str, Any], created: str, blob: str) -> tuple:
    return (created, result["paper"], result["verdict"], int(result.get("quick", False)), result.get("seconds"), blob)


class Store:
    """`Store(path)` opens for writing where this process may write, else read-only (see `read_only`).
    `read_only=True` never writes. `lock_wait`: seconds `add` retries a store another process holds locked."""

    def __init__(self, path: Path, read_only: bool = False, lock_wait: float = LOCK_WAIT_S) -> None:
        self.path = Path(path)
        self.spool_dir = self.path.parent / SPOOL_DIR
        self.lock_wait = lock_wait
        self.read_only: StoreError | None = None  # why writes are refused, when they are
        if read_only:
            self.conn = connect_read_only(self.path, timeout=max(0.05, lock_wait))
            self.read_only = StoreError(f"results store {self.path} was opened read-only",
                                        "open it with Store(path) to write to it", "read-only")
            return
        if self.path.exists() and not _may_write(self.path):
            why = PermissionError(errno.EACCES, "this process may not write the file or its folder")
            self._open_read_only(store_error(why, self.path))
            return
        try:
            self._open_writable()
        except (sqlite3.Error, OSError) as e:
            err = store_error(e, self.path)
            if err.kind not in ("read-only", "cantopen") or not self.path.exists():
                raise err from None
            self._open_read_only(err)
            return
        if any(self.spool_dir.glob("*.json")):
            try:
                if files := self.import_spool():
                    log.warning(f"imported {len(files)} unsaved record(s) from {self.spool_dir} into {self.path}")
            except StoreError as e:
                log.warning(f"unsaved records in {self.spool_dir} stay there for now: {e}")

    def _open_writable(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = _connect_rw(self.path, timeout=max(0.05, min(5.0, self.lock_wait / 3)))
        try:
            if _layout(self.conn, self.path):  # reads only: a refused store is left as it was
                self._retry(lambda: self.conn.executescript(f"BEGIN;\n{_SCHEMA}COMMIT;"))
            if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self._retry(lambda: self.conn.execute("PRAGMA journal_mode=WAL"))
        except BaseException:
            self.conn.close()
            raise

    def _open_read_only(self, reason: StoreError) -> None:
        """Fall back to reading, saying why (writes then go to the spool with `reason` as their error)."""
        self.conn = connect_read_only(self.path, timeout=max(0.05, self.lock_wait))
        self.read_only = reason
        log.warning(f"note: {reason.problem}: opened for reading only")

    def _retry(self, fn: Callable[[], T]) -> T:
        """fn(), retried while another process holds the store locked, for up to `lock_wait` seconds."""
        deadline, pause = time.monotonic() + self.lock_wait, 0.05
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as e:
                if self.conn.in_transaction:
                    self.conn.rollback()
                if error_kind(e) != "locked" or time.monotonic() >= deadline:
                    raise
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(2 * pause, 1.0)

    def _insert(self, sql: str, row: tuple) -> int:
        def once() -> int:
            with self.conn:  # one transaction per record
                return int(self.conn.execute(sql, row).lastrowid)
        return self._retry(once)

    def _write(self, sql: str, row: tuple, spool: tuple[str, str, str]) -> int:
        """Insert one row; if the store cannot take it, save it to the spool ((stem, text, suffix) of the file) and
        raise a StoreError that says where."""
        try:
            if self.read_only:
                raise self.read_only
            return self._insert(sql, row)
        except (sqlite3.Error, OSError, StoreError) as e:
            raise self._spooled(store_error(e, self.path, "written"), *spool) from None

    def _spooled(self, err: StoreError, stem: str, text: str, suffix: str) -> StoreError:
        try:
            saved = _spool_write(self.spool_dir, stem, text, suffix)
        except OSError as e:  # the disk is full or the folder read-only: the terminal is the last place left
            return StoreError(f"{err.problem}; saving it to {self.spool_dir} failed too ({e.__class__.__name__}: {e})",
                              f"{err.fix}. Nothing else holds this result: save the JSON that follows to a .json file "
                              f"in {self.spool_dir} and it is imported when the store next opens for writing: {text}",
                              err.kind)
        return StoreError(f"{err.problem}; the result was saved to {saved}",
                          f"{err.fix}; nothing needs measuring again: the saved result is imported into the store the "
                          f"next time an edgezoo command opens it for writing (e.g. `edgezoo results -w "
                          f"{self.path.parent}`, or Store(path).import_spool())",
                          err.kind, saved)

    def add(self, record: dict[str, Any] | Record) -> int:
        """Store one record (checked through profiles.record.Record); its id. Never loses it: see StoreError.spool."""
        record = record.to_dict() if isinstance(record, Record) else validated(record)
        blob = json.dumps(record, default=str)
        stem = f"{record.get('created') or _now()}-{record.get('cache_key') or 'record'}"
        return self._write(_INSERT_RECORD, _record_row(record, blob), (stem, blob, ".json"))

    def add_claim(self, result: dict[str, Any]) -> int:
        blob, created = json.dumps(result, default=str), _now()
        spooled = json.dumps({"created": created, "claim": result}, default=str)
        return self._write(_INSERT_CLAIM, _claim_row(result, created, blob),
                           (f"{created}-claim-{result.get('paper')}", spooled, CLAIM_SUFFIX))

    def import_spool(self) -> list[Path]:
        """Load the records (and claims) that earlier writes saved to `spool_dir`; each file is deleted only after
        its row is committed, and a row already in the store is not added twice. Returns the imported files;
        an unreadable file is left in place with a warning. Raises StoreError when the store cannot take them."""
        if self.read_only:
            raise self.read_only
        done = []
        for file in sorted(self.spool_dir.glob("*.json")):
            try:
                data = json.loads(text := file.read_text())
                if file.name.endswith(CLAIM_SUFFIX):
                    sql, blob = _INSERT_CLAIM, json.dumps(data["claim"], default=str)
                    row, dup = _claim_row(data["claim"], data["created"], blob), ("claims", "paper", "result")
                else:
                    sql, row, dup = _INSERT_RECORD, _record_row(data, text), ("records", "cache_key", "record")
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
                log.warning(f"left {file} in place: not a saved record ({e.__class__.__name__}: {e})")
                continue
            exists = f"SELECT 1 FROM {dup[0]} WHERE {dup[1]} IS ? AND {dup[2]} = ?"  # row[1]: paper / cache_key
            try:
                if not self.conn.execute(exists, (row[1], row[-1])).fetchone():
                    self._insert(sql, row)
            except sqlite3.Error as e:
                raise store_error(e, self.path, "written") from None
            file.unlink()
            done.append(file)
        if done and not any(self.spool_dir.iterdir()):
            self.spool_dir.rmdir()
        return done

    def find_ok(self, cache_key: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT id, record FROM records WHERE cache_key=? AND status='ok' ORDER BY id DESC LIMIT 1", (cache_key,)
        ).fetchone()
        return {**json.loads(row[1]), "id": row[0]} if row else None

    def rows(self, where: str = "", params: tuple = ()) -> list[dict[str, Any]]:
        """The flat columns, plus `quality_metric` (what `accuracy` holds: top1, bpb, ...) and `input_size` (a
        multi-scale model's input resolution, else None) read from the record. A record holding Infinity or NaN
        (an exact parity's SQNR) is not JSON to SQLite before 3.42: those two read None rather than failing the query."""
        def field(path: str) -> str:
            return f"CASE WHEN json_valid(record) THEN json_extract(record, '{path}') END"

        cur = self.conn.execute(f"SELECT id, {', '.join(COLUMNS)}, {field('$.accuracy.metric')} AS quality_metric, "
                                f"{field('$.scenario.input_size')} AS input_size FROM records {where} ORDER BY id",
                                params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def records(self, where: str = "", params: tuple = ()) -> Iterator[dict[str, Any]]:
        """Full records as stored (dicts, with their id); Record.from_dict types one."""
        for rid, blob in self.conn.execute(f"SELECT id, record FROM records {where} ORDER BY id", params):
            yield {**json.loads(blob), "id": rid}

    def claims(self, paper: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE paper=?", (paper,)) if paper else ("", ())
        rows = self.conn.execute(f"SELECT id, created, result FROM claims {where} ORDER BY id", params).fetchall()
        return [{**json.loads(r[2]), "id": r[0], "created": r[1]} for r in rows]

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def close(self) -> None:
        self.conn.close()
