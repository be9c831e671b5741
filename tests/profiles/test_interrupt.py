"""Killing `edgezoo profile` with SIGTERM or SIGINT stops the measuring child, removes its temp dir and leaves a
record saying it was interrupted; the pipeline and sweeps store that record too."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exporters.artifact import export_checkpoint
from profiles.launcher import MeasurementInterrupted

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def onnx_artifact(tiny_checkpoint, tmp_path_factory):
    return export_checkpoint(tiny_checkpoint, "onnx", "none", out_dir=tmp_path_factory.mktemp("int") / "a")


def _default_signals() -> None:
    """The CLI as a terminal starts it: SIGINT handled by default and nothing blocked, whatever an earlier test in
    this process (a server library's handlers) left behind: ignored dispositions and masks survive exec."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads children from /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_child_and_records_interruption(onnx_artifact, tmp_path, sig) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    ws = tmp_path / "ws"
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", "from app.cli import main; main()", "profile", str(onnx_artifact.path),
                             "--runtime", "tests.profiles.fault_runtimes:Hangs", "--workspace", str(ws)],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_signals)
    deadline = time.time() + 180  # the parent imports torch and hashes the artifact first: slow on a loaded machine
    while not _children(proc.pid) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    children = _children(proc.pid)
    if not children:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the measuring child never started (exit {proc.returncode}):\n{err[-2000:]}")
    time.sleep(1.0)  # let the child load and enter its (hanging) run
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=90)  # a hang guard: SIGTERM, 5 s grace, SIGKILL, then one store write
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    time.sleep(0.2)
    assert not any(_alive(c) for c in children), "the measuring child outlived its parent"
    assert list(tmp.glob("edgezoo-*")) == []  # the request/result temp dir is gone
    conn = sqlite3.connect(ws / "results.db")
    rows = [json.loads(r[0]) for r in conn.execute("SELECT record FROM records")]
    assert len(rows) == 1 and rows[0]["status"] == "interrupted" and rows[0]["error_class"] == "Interrupted"
    assert rows[0]["artifact"]["sha256"] == onnx_artifact.manifest["sha256"]


def test_pipeline_stores_the_interrupted_record(onnx_artifact, tmp_path, monkeypatch) -> None:
    import profiles.measure
    from app.pipeline import profile_or_reuse
    from profiles.store import Store

    def interrupted(*args, **kwargs):
        raise MeasurementInterrupted({"status": "interrupted", "error_class": "Interrupted", "model": "resnet",
                                      "artifact": {"format": "onnx"}})

    monkeypatch.setattr(profiles.measure, "measure", interrupted)
    store = Store(tmp_path / "results.db")
    with pytest.raises(KeyboardInterrupt):
        profile_or_reuse(onnx_artifact, store, threads=1)
    assert [r["status"] for r in store.rows()] == ["interrupted"]


@pytest.mark.parametrize("threads,timeout", [(0, 10.0), (-1, 10.0), (2, float("nan")), (2, 0.0), (2, float("inf"))])
def test_measure_refuses_bad_threads_and_timeouts(onnx_artifact, threads, timeout) -> None:
    from models.errors import EdgeZooError
    from profiles.measure import measure

    with pytest.raises(EdgeZooError):
        measure(onnx_artifact, threads=threads, timeout=timeout)
