"""What the measuring child says about its own numbers: whether the peak-memory reset took (label and
`peak_reset`), and what stopped the timed loop (`stopped_by`, `below_min_seconds`). The child's functions are
called in this process with a fake runtime, so each case is forced rather than hoped for."""

from __future__ import annotations

import builtins
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from profiles import child, memory
from profiles.runtimes.base import Runtime


class FakeRuntime(Runtime):
    """Loads nothing; each call takes `delay` seconds and returns its input."""
    name = "fake"
    delay = 0.0

    def load(self, model_file: Path, threads: int, options: dict[str, Any]) -> None:
        pass

    def input_specs(self) -> list[dict[str, Any]]:
        return [{"name": "x", "shape": [None, 4], "dtype": "float32"}]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if self.delay:
            time.sleep(self.delay)
        return [inputs[0]]


def scenario(**over: Any) -> dict[str, Any]:
    return {"batch": 1, "warmup": 1, "min_iters": 5, "min_seconds": 0.01, "max_seconds": 10.0, "max_iters": 1000,
            **over}


def request(**sc: Any) -> dict[str, Any]:
    return {"runtime": f"{__name__}:FakeRuntime", "threads": 1, "scenario": scenario(**sc), "options": {},
            "model_file": "unused", "folder": "unused", "evaluate": False}


# ----------------------------------------------------------------------------- the peak-memory reset

def test_failed_reset_is_labelled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "reset_peak", lambda: False)
    mem = child.measure_in_child(request())["memory"]
    assert mem["peak_reset"] is False
    assert "after reset" not in mem["peak_label"] and "includes load" in mem["peak_label"]


def test_successful_reset_is_labelled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "reset_peak", lambda: True)
    mem = child.measure_in_child(request())["memory"]
    assert mem["peak_reset"] is True
    expected = "VmHWM after reset post-load" if Path("/proc/self/status").exists() else "no reset"
    assert expected in mem["peak_label"]


def test_real_reset_and_label_agree() -> None:
    mem = child.measure_in_child(request())["memory"]
    assert isinstance(mem["peak_reset"], bool) and mem["peak_label"] == memory.peak_label(mem["peak_reset"])
    if sys.platform == "darwin":
        assert mem["peak_reset"] is False and "ru_maxrss" in mem["peak_label"]


def test_reset_refused_by_the_os(monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = builtins.open

    def refuse(path, *args, **kwargs):
        if str(path) == "/proc/self/clear_refs":
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refuse)
    assert memory.reset_peak() is False


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="no /proc/self/clear_refs")
def test_reset_ignored_by_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The write succeeds but the watermark stays above the resident set: not a reset."""
    monkeypatch.setattr(memory, "_status_kib", lambda *f: {"VmHWM": 900_000, "VmRSS": 100_000})
    assert memory.reset_peak() is False
    monkeypatch.setattr(memory, "_status_kib", lambda *f: {"VmHWM": 100_000, "VmRSS": 100_000})
    assert memory.reset_peak() is True


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="no /proc/self/clear_refs")
def test_reset_drops_an_earlier_peak() -> None:
    block = np.ones(64 * 2 ** 20, dtype=np.uint8)  # 64 MiB touched, then freed
    del block
    before = memory.peak_rss()
    if memory.reset_peak():
        assert memory.peak_rss() < before - 32 * 2 ** 20


# ----------------------------------------------------------------------------- what stopped the timed loop

@pytest.mark.parametrize("sc,stopped_by,below_min_seconds,below_min_iters", [
    ({}, "min_iters_and_seconds", False, False),
    ({"min_seconds": 5.0, "max_iters": 20}, "max_iters", True, False),                        # the run cap
    ({"min_iters": 10 ** 9, "min_seconds": 5.0, "max_seconds": 0.05}, "max_seconds", True, True),
    ({"min_iters": 10 ** 9, "min_seconds": 0.01, "max_seconds": 0.05}, "max_seconds", False, True),
])
def test_timed_loop_says_what_stopped_it(sc, stopped_by, below_min_seconds, below_min_iters) -> None:
    rt = FakeRuntime()
    rt.delay = 0.001
    samples, ended = child._timed_loop(rt, [np.zeros((1, 4), np.float32)], scenario(**sc))
    assert ended["stopped_by"] == stopped_by
    assert ended["below_min_seconds"] is below_min_seconds and ended["below_min_iters"] is below_min_iters
    assert (ended["loop_seconds"] < scenario(**sc)["min_seconds"]) is below_min_seconds
    if stopped_by == "max_iters":
        assert len(samples) == 20


def test_latency_record_carries_the_stop_reason() -> None:
    lat = child.measure_in_child(request(min_seconds=5.0, max_iters=30))["latency"]
    assert lat["n"] == 30 and lat["stopped_by"] == "max_iters" and lat["below_min_seconds"] is True
    assert lat["min_seconds"] == 5.0 and 0 < lat["loop_seconds"] < 5.0
    ok = child.measure_in_child(request(min_seconds=0.0))["latency"]
    assert ok["stopped_by"] == "min_iters_and_seconds" and ok["below_min_seconds"] is False
