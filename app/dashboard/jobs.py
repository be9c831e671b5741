"""Background jobs for the Run page: each job is `edgezoo ARGS` (the same CLI functions) in its own process.

A job folder ws.root/jobs/<id>/ holds job.json (argv, pid), log.txt (stdout+stderr) and rc once it ends.
Run as `python -m app.dashboard.jobs JOB_DIR` it is the runner inside that process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from app.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
_PERCENT = re.compile(r"(\d{1,3})%\|")
_BOX = "│╭╮╰╯─ "


@dataclass
class Job:
    path: Path
    argv: list[str]
    pid: int
    started: float

    @property
    def id(self) -> str:
        return self.path.name

    def rc(self) -> int | None:
        f = self.path / "rc"
        return int(f.read_text()) if f.exists() and f.read_text().strip() else None

    def status(self) -> str:
        """running | ok | failed | killed (the process is gone without writing rc)."""
        if (rc := self.rc()) is not None:
            return "ok" if rc == 0 else "failed"
        return "running" if _alive(self.pid) else "killed"

    def lines(self, n: int = 40) -> list[str]:
        """Last n log lines; tqdm's carriage-return updates count as lines (the latest wins)."""
        log = self.path / "log.txt"
        if not log.exists():
            return []
        with open(log, "rb") as f:
            f.seek(max(0, log.stat().st_size - 64_000))
            text = f.read().decode(errors="replace")
        return [s for s in re.split(r"[\r\n]+", text) if s.strip()][-n:]

    def progress(self) -> float | None:
        """Fraction done from the latest tqdm bar in the log, if any."""
        for line in reversed(self.lines(5)):
            if m := _PERCENT.search(line):
                return min(int(m.group(1)), 100) / 100
        return None

    def error(self) -> str | None:
        """The user-facing error of a failed job: its `error:` lines, else the last log line."""
        if self.status() not in ("failed", "killed"):
            return None
        lines = self.lines(200)
        if errs := [s for s in lines if s.startswith("error:")]:
            return "\n".join(errs[-5:])
        tail = [t for s in lines[-8:] if (t := s.strip(_BOX))]  # usage errors come in a rich box
        return "\n".join(tail) if tail else "the job ended without output"


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our finished child
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False


def start(ws: Workspace, argv: list[str]) -> Job:
    """Launch `edgezoo ARGV` in a new session (so Cancel can stop its measuring children too)."""
    path = ws.root / "jobs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{argv[0]}-{os.urandom(2).hex()}"
    path.mkdir(parents=True)
    env = {**os.environ, "EDGEZOO_WORKSPACE": str(ws.root), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with open(path / "log.txt", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "app.dashboard.jobs", str(path)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=ROOT,
                                start_new_session=True)
    job = Job(path, argv, proc.pid, time.time())
    (path / "job.json").write_text(json.dumps({"argv": argv, "pid": proc.pid, "started": job.started}))
    return job


def load(path: Path) -> Job | None:
    try:
        spec = json.loads((path / "job.json").read_text())
    except (OSError, ValueError):
        return None
    return Job(path, spec["argv"], int(spec["pid"]), float(spec["started"]))


def list_jobs(ws: Workspace, limit: int = 20) -> list[Job]:
    """Newest first."""
    folder = ws.root / "jobs"
    found = [j for p in folder.iterdir() if p.is_dir() and (j := load(p)) is not None] if folder.exists() else []
    return sorted(found, key=lambda j: j.started, reverse=True)[:limit]  # folder names tie within one second


def cancel(job: Job) -> None:
    if job.status() == "running":
        os.killpg(job.pid, signal.SIGTERM)


def run_job(path: Path) -> int:
    """The runner: wait for job.json, call the CLI in-process, write rc."""
    for _ in range(100):
        if (path / "job.json").exists():
            break
        time.sleep(0.05)
    argv = json.loads((path / "job.json").read_text())["argv"]
    print("$ edgezoo " + " ".join(argv), flush=True)
    from app.cli import app

    try:
        app(argv, prog_name="edgezoo")
        rc = 0
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - a crash must still end as a failed job with its traceback
        traceback.print_exc()
        rc = 1
    sys.stdout.flush()
    (path / "rc").write_text(str(rc))
    return rc


if __name__ == "__main__":
    sys.exit(run_job(Path(sys.argv[1])))
