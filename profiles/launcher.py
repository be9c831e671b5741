"""The one child launcher: `python -m MODULE REQUEST.json RESULT.json` in a fresh process, with a timeout.

Whatever the child does, the caller gets a result dict (failures included). If the caller is interrupted (Ctrl-C,
or SIGTERM, which `app.cli_options.run_app` turns into KeyboardInterrupt) the child is stopped, its temp dir
removed, and the interruption re-raised so the caller can record it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_S = 5.0


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after a grace period: a measuring child never outlives its parent's decision."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_child(module: str, request: dict[str, Any], timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one measurement child; returns its result, or a failure dict for a timeout or a crash."""
    with tempfile.TemporaryDirectory(prefix="edgezoo-measure-") as tmp:
        req_path, res_path, err_path = Path(tmp) / "request.json", Path(tmp) / "result.json", Path(tmp) / "stderr"
        req_path.write_text(json.dumps(request))
        full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                                              os.environ.get("PYTHONPATH")])),
                    **(env or {})}
        with open(err_path, "w") as err:
            proc = subprocess.Popen([sys.executable, "-m", module, str(req_path), str(res_path)],
                                    stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, env=full_env,
                                    cwd=PROJECT_ROOT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _stop(proc)
                return {"status": "failed", "error_class": "Timeout",
                        "error_message": f"the measuring child did not finish in {timeout:g} s and was killed; "
                                         "raise --timeout or check the runtime for a hang"}
            except BaseException:
                _stop(proc)
                raise
        stderr = err_path.read_text(errors="replace")
        if res_path.exists():
            try:
                return json.loads(res_path.read_text())
            except json.JSONDecodeError:
                pass
        tail = (stderr.strip().splitlines() or ["(no output)"])[-1][:300]
        return {"status": "failed", "error_class": "ChildCrashed",
                "error_message": f"the measuring child exited with code {proc.returncode} before reporting: {tail}",
                "stderr_tail": stderr[-4000:]}


def interrupted_result(what: str) -> dict[str, Any]:
    from profiles.record import failure

    return failure("interrupted", "Interrupted",
                   f"{what} was interrupted (Ctrl-C or SIGTERM) before it finished; nothing was measured")


class MeasurementInterrupted(KeyboardInterrupt):
    """Raised by a measure function after its child was stopped; `record` is the 'interrupted' record to store."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__("measurement interrupted")
        self.record = record


@contextmanager
def keep_interrupted(store: Any) -> Iterator[None]:
    """Store the 'interrupted' record of a measurement stopped inside the block, then let the interruption go on."""
    try:
        yield
    except MeasurementInterrupted as e:
        store.add(e.record)
        raise
