"""Profiling on a fleet: a local multi-node Ray cluster on loopback (one Cluster for the module), two devices with
their own custom resources, an artifact shipped and measured on each, a node removed mid-run, a tampered artifact."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the fleet tests need Ray: pip install -e '.[test]' (or '.[fleet]')")

from profiles import fleet  # noqa: E402
from profiles.measure import Scenario  # noqa: E402
from tests.profiles.fleet_cluster import NODE, add_device, child_of, start_cluster  # noqa: E402

QUICK = Scenario(warmup=2, min_iters=70, min_seconds=0.05, max_seconds=5.0)


@pytest.fixture(scope="module")
def cluster():
    mp = pytest.MonkeyPatch()
    c = start_cluster(mp, "alpha")
    add_device(c, "beta")
    yield c
    ray.shutdown()
    c.shutdown()
    mp.undo()


def matmul_onnx(path: Path) -> Path:
    """A small ONNX model (x[n,64] @ w[64,64]) that EdgeZoo did not export: profiled as a foreign file."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [64, 64], np.random.default_rng(0).random(64 * 64, np.float32))
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 64])], initializer=[w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    from exporters.artifact import load_artifact

    return load_artifact(matmul_onnx(tmp_path_factory.mktemp("fleet") / "matmul.onnx"))


def test_devices_advertise_resource_and_fingerprint(cluster) -> None:
    found = {d["name"]: d for d in fleet.devices(cluster.address)}
    assert set(found) >= {"alpha", "beta"} and found["alpha"]["node_id"] != found["beta"]["node_id"]
    for dev in found.values():
        assert dev["address"] == "127.0.0.1"
        assert dev["os"] and dev["chip"] and dev["fingerprint"] and "onnxruntime" in dev["runtimes"].split(".")


def test_runtime_the_device_lacks_is_unavailable(cluster, artifact) -> None:
    [r] = fleet.measure_on([artifact], ["beta"], cluster.address, runtime="coreml", scenario=QUICK)
    assert r["status"] == "unavailable" and r["error_class"] == "RuntimeUnavailable"
    assert "beta" in r["error_message"] and r["device"]["name"] == "beta"


def test_tampered_artifact_is_refused_on_the_device(cluster, tmp_path) -> None:
    """The bytes change after the manifest's sha256 was taken: the device refuses to measure them."""
    from exporters.artifact import load_artifact

    loaded = load_artifact(matmul_onnx(tmp_path / "m.onnx"))
    data = bytearray(loaded.model_file.read_bytes())
    data[-1] ^= 0xFF
    loaded.model_file.write_bytes(bytes(data))
    [r] = fleet.measure_on([loaded], ["beta"], cluster.address, scenario=QUICK)
    assert r["status"] == "failed" and r["error_class"] == "ArtifactModified", r
    assert "sha256" in r["error_message"] and "latency" not in r and r["device"]["name"] == "beta"


def test_node_removed_mid_run_gives_a_failure_record(cluster, artifact) -> None:
    gamma = add_device(cluster, "gamma")
    raylet = gamma.all_processes["raylet"][0].process.pid

    def remove_when_measuring() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not child_of(raylet, "profiles.child"):
            time.sleep(0.05)
        cluster.remove_node(gamma, allow_graceful=False)

    remover = threading.Thread(target=remove_when_measuring, daemon=True)
    remover.start()
    slow = Scenario(warmup=2, min_iters=70, min_seconds=2.0, max_seconds=6.0)
    records = fleet.measure_on([artifact], ["gamma", "beta"], cluster.address, scenario=slow, timeout=60)
    remover.join(30)
    by = {r["device"]["name"]: r for r in records}
    assert by["gamma"]["status"] == "failed" and by["gamma"]["error_class"] == "DeviceLost", by["gamma"]
    assert "gamma" in by["gamma"]["error_message"] and by["gamma"]["model"] == artifact.manifest["model"]
    assert by["beta"]["status"] == "ok", by["beta"]  # the run went on with the other device


def test_unknown_device_is_refused_before_anything_runs(cluster, artifact) -> None:
    with pytest.raises(fleet.FleetError, match="no device named nowhere"):
        fleet.measure_on([artifact], ["nowhere"], cluster.address, scenario=QUICK)


@pytest.mark.slow
def test_exported_artifact_is_measured_with_its_eval_data(cluster, tiny_checkpoint, tmp_path) -> None:
    """An artifact EdgeZoo exported: its held-out data travels with it and accuracy is measured on the device."""
    from exporters.artifact import export_checkpoint

    art = export_checkpoint(tiny_checkpoint, "onnx", "none", out_dir=tmp_path / "onnx")
    [r] = fleet.measure_on([art], ["alpha"], cluster.address, scenario=QUICK)
    assert r["status"] == "ok", r
    assert r["accuracy"]["n"] > 0 and 0 <= r["accuracy"]["value"] <= 1 and r["model"] == art.manifest["model"]


def test_cluster_listens_on_loopback_only(cluster) -> None:
    from tests.profiles.fleet_cluster import listening_addresses

    addresses = listening_addresses(cluster)
    assert addresses and addresses <= {"127.0.0.1", "::1"}, addresses
    assert NODE["node_ip_address"] == "127.0.0.1"


@pytest.fixture(scope="module")
def fleet_ws(cluster, artifact, tmp_path_factory) -> Path:
    """A workspace whose records `edgezoo profile --on alpha,beta` measured on the two devices."""
    from tests.app.cli_harness import invoke

    ws = tmp_path_factory.mktemp("fleet-ws") / "ws"
    capsys = _Capture()
    res = invoke(["profile", str(artifact.model_file), "--on", "alpha,beta", "--address", cluster.address, "-w",
                  str(ws), "-t", "1", "--json"], capsys)
    assert res.code == 0, res.err
    return ws


class _Capture:
    """What `invoke` needs of pytest's capsys, for a module-scoped fixture (output goes to the terminal)."""

    def readouterr(self):
        import types

        return types.SimpleNamespace(out="", err="")


def test_profile_on_each_named_node_through_the_cli(fleet_ws, artifact) -> None:
    """`edgezoo profile --on alpha,beta`: measured on each node, one record per device, stored by this process
    (the head's side) alone."""
    from app.workspace import Workspace

    ws = fleet_ws
    by = {r["device"]["name"]: r for r in Workspace.resolve(ws).store().records()}
    assert set(by) == {"alpha", "beta"}
    for name, r in by.items():
        assert r["status"] == "ok" and r["threads"] == 1, r
        assert r["latency"]["n"] >= 200 and r["input_shapes"] == [[1, 64]] and r["memory"]["peak_rss_bytes"] > 0
        assert r["device"]["id"].startswith(f"{name}@") and r["device"]["cpu"]
        assert r["artifact"]["path"] == str(artifact.path) and r["artifact"]["sha256"] == artifact.manifest["sha256"]
    assert by["alpha"]["device"]["fleet"]["node_id"] != by["beta"]["device"]["fleet"]["node_id"]
    assert by["alpha"]["cache_key"] != by["beta"]["cache_key"]


@pytest.mark.slow
def test_agent_command_joins_and_leaves(cluster, artifact) -> None:
    """`edgezoo agent` makes this machine a device of the cluster; Ctrl-C takes it out again."""
    import signal
    import subprocess
    import sys

    edgezoo = str(Path(sys.executable).parent / "edgezoo")
    proc = subprocess.Popen([edgezoo, "agent", "--address", cluster.address, "--name", "delta", "--num-cpus", "1",
                             "--runtimes", "onnxruntime"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and "delta" not in {d["name"] for d in fleet.devices(cluster.address)}:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.5)
        [r] = fleet.measure_on([artifact], ["delta"], cluster.address, scenario=QUICK)
        assert r["status"] == "ok" and r["device"]["fleet"]["runtimes"] == "onnxruntime", r
        [torch_r] = fleet.measure_on([artifact], ["delta"], cluster.address, runtime="torch", scenario=QUICK)
        assert torch_r["status"] == "unavailable" and "no torch runtime" in torch_r["error_message"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "delta" in {d["name"] for d in fleet.devices(cluster.address)}:
        time.sleep(0.5)
    assert "delta" not in {d["name"] for d in fleet.devices(cluster.address)}


def test_dashboard_lists_devices_and_run_page_targets_them(cluster, tmp_path, monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    dash = Path(__file__).resolve().parents[2] / "app" / "dashboard" / "views"
    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("EDGEZOO_FLEET_ADDRESS", cluster.address)
    at = AppTest.from_file(str(dash / "devices.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert {"alpha", "beta"} <= set(at.dataframe[0].value["name"])
    at = AppTest.from_file(str(dash / "run.py"), default_timeout=60).run()
    assert set(at.multiselect(key="run_on").options) >= {"alpha", "beta"}
    at.multiselect(key="run_on").set_value(["beta"]).run()
    assert f"--on beta --address {cluster.address}" in at.code[0].value


def test_report_groups_results_by_measured_device(fleet_ws) -> None:
    import types

    from app.workspace import Workspace
    from profiles.report import _results

    records = list(Workspace.resolve(fleet_ws).store().records())
    section = _results(types.SimpleNamespace(records=records))
    titles = [block.caption for block in section.blocks]
    assert titles == ["Results: matmul on alpha", "Results: matmul on beta"], titles


@pytest.mark.slow
def test_main_job_profiles_on_devices_and_reuses_per_device(cluster, tmp_path) -> None:
    """`edgezoo run --on alpha,beta`: each artifact measured on both devices, stored here; a second run reuses them."""
    from app.pipeline import RunPlan, run
    from app.workspace import Workspace

    plan = RunPlan(recipes=("digits_resnet",), format_specs={"onnx": ("none",)}, overrides=("epochs=1",), threads=1,
                   devices=("alpha", "beta"), address=cluster.address)
    ws = Workspace.resolve(tmp_path / "ws")
    rows = run(ws, plan, log=lambda s: None)
    assert sorted(r["device"] for r in rows) == ["alpha", "beta"] and {r["status"] for r in rows} == {"ok"}, rows
    again = run(ws, plan, log=lambda s: None)
    assert sorted(r["id"] for r in again) == sorted(r["id"] for r in rows)  # reused per device, nothing re-measured
