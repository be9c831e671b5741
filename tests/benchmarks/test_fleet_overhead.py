"""Benchmark of fleet profiling on a local multi-node Ray cluster (loopback, one CPU per node): figures printed,
never asserted on time.

(a) records from each node: one artifact profiled on device nodes alpha (the head) and beta;
(b) overhead: the wall time of a remote profile on beta vs a local `measure` of the same artifact, alternating in
    the same run, as a ratio; and the ratio of their reported medians (the measurement itself should not change);
(c) the failure record of a node (gamma) removed while it measures, beside beta's record of the same run.

Run: `pytest -m benchmark tests/benchmarks/test_fleet_overhead.py -s` or
`python -m tests.benchmarks.test_fleet_overhead`.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from profiles.measure import Scenario, measure
from tests.benchmarks.test_harness_overhead import bench_artifact

pytestmark = pytest.mark.benchmark
ROUNDS = 3
THREADS = 1  # each node of the local cluster has one CPU


def _row(r: dict[str, Any]) -> dict[str, Any]:
    lat, dev = r.get("latency") or {}, r.get("device") or {}
    return {"device": dev.get("name"), "node": (dev.get("fleet") or {}).get("node_id", "")[:12],
            "status": r["status"], "p50_ms": lat.get("median_ms"), "n": lat.get("n"),
            "accuracy": (r.get("accuracy") or {}).get("value"), "error_class": r.get("error_class"),
            "error_message": r.get("error_message")}


def _overhead(art: Any, address: str, scenario: Scenario) -> dict[str, Any]:
    from profiles import fleet

    local_s, remote_s, local_p50, remote_p50 = [], [], [], []
    for _ in range(ROUNDS):  # alternate, so a change in machine load hits both sides
        t0 = time.perf_counter()
        r = measure(art, "onnxruntime", THREADS, scenario)
        local_s.append(time.perf_counter() - t0)
        local_p50.append(r["latency"]["median_ms"])
        t0 = time.perf_counter()
        [f] = fleet.measure_on([art], ["beta"], address, "onnxruntime", THREADS, scenario)
        remote_s.append(time.perf_counter() - t0)
        assert r["status"] == f["status"] == "ok", (r.get("error_message"), f.get("error_message"))
        remote_p50.append(f["latency"]["median_ms"])
    return {"local_wall_s": local_s, "remote_wall_s": remote_s, "local_p50_ms": local_p50, "remote_p50_ms": remote_p50,
            "wall_ratio": float(np.median(remote_s) / np.median(local_s)),
            "extra_wall_s": float(np.median(remote_s) - np.median(local_s)),
            "p50_ratio": float(np.median(remote_p50) / np.median(local_p50))}


def _removed(cluster: Any, art: Any, scenario: Scenario) -> list[dict[str, Any]]:
    from profiles import fleet
    from tests.profiles.fleet_cluster import add_device, child_of

    gamma = add_device(cluster, "gamma")
    raylet = gamma.all_processes["raylet"][0].process.pid

    def remove() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not child_of(raylet, "profiles.child"):
            time.sleep(0.05)
        cluster.remove_node(gamma, allow_graceful=False)

    remover = threading.Thread(target=remove, daemon=True)
    remover.start()
    records = fleet.measure_on([art], ["gamma", "beta"], cluster.address, "onnxruntime", THREADS, scenario)
    remover.join(30)
    return records


def run_benchmarks() -> dict[str, Any]:
    import ray

    from profiles import fleet
    from tests.profiles.fleet_cluster import add_device, start_cluster

    mp = pytest.MonkeyPatch()
    cluster = start_cluster(mp, "alpha")
    try:
        add_device(cluster, "beta")
        with tempfile.TemporaryDirectory() as tmp:
            art = bench_artifact(Path(tmp))
            scenario = Scenario(min_seconds=1.0)
            each = fleet.measure_on([art], ["alpha", "beta"], cluster.address, "onnxruntime", THREADS, scenario)
            overhead = _overhead(art, cluster.address, scenario)
            removed = _removed(cluster, art, scenario)
    finally:
        ray.shutdown()
        cluster.shutdown()
        mp.undo()
    figures = {"each_node": [_row(r) for r in each], "overhead": overhead, "node_removed": [_row(r) for r in removed]}
    print("\nfleet benchmark (onnxruntime, wide ResNet 8x8, batch 1, %d thread, local Ray cluster)" % THREADS)
    print(json.dumps(figures, indent=2, default=float))
    return figures


def test_fleet_benchmark() -> None:
    figures = run_benchmarks()
    assert {r["device"] for r in figures["each_node"]} == {"alpha", "beta"}
    assert all(r["status"] == "ok" for r in figures["each_node"])
    by = {r["device"]: r for r in figures["node_removed"]}
    assert by["gamma"]["error_class"] == "DeviceLost" and by["beta"]["status"] == "ok"


if __name__ == "__main__":
    run_benchmarks()
