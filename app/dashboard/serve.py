"""`edgezoo dashboard`: run Streamlit on Home.py with the workspace passed through EDGEZOO_WORKSPACE."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from app.workspace import Workspace

HOME = Path(__file__).resolve().parent / "Home.py"
ROOT = HOME.parents[2]


def command(host: str = "127.0.0.1", port: int = 8501) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(HOME), "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "minimal"]  # no "Deploy" button: this is a local tool


def environment(ws: Workspace) -> dict[str, str]:
    return {**os.environ, "EDGEZOO_WORKSPACE": str(ws.root), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def _wait(proc: subprocess.Popen, term: list[float], grace: float = 5.0) -> int:
    """Wait for Streamlit; once a stop signal came (time in `term`), kill it if it has not exited after `grace` s.
    A server stopped on request exits 0, whichever signal ended it."""
    while proc.poll() is None:
        try:
            proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            if term and time.monotonic() - term[0] > grace:
                proc.kill()
    return 0 if term and proc.returncode < 0 else int(proc.returncode)


def serve(ws: Workspace, host: str = "127.0.0.1", port: int = 8501) -> int:
    """Serve the dashboard until Ctrl-C or SIGTERM (both stop Streamlit too); returns its exit code."""
    print(f"EdgeZoo dashboard for {ws.root} at http://{host}:{port}", file=sys.stderr)
    proc = subprocess.Popen(command(host, port), env=environment(ws), cwd=ROOT)
    term: list[float] = []

    def on_term(*_: object) -> None:  # only signal the child here: waiting inside a handler can deadlock
        term.append(time.monotonic())
        proc.terminate()

    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, on_term) for sig in signals}  # never leave an orphan server behind
    try:
        return _wait(proc, term)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
