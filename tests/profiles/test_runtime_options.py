"""Runtime options as scenarios of one artifact: Core ML compute units, MLX on Metal or the CPU, torch on MPS or
the CPU. Options are checked against what each runtime declares; an option this machine lacks (Metal, MPS off a
Mac) is an `unavailable` record naming it, and the option is kept with the record's scenario."""

from __future__ import annotations

import sys

import pytest

from exporters.artifact import export_checkpoint
from models.errors import EdgeZooError
from profiles.measure import Scenario, measure, request_key
from profiles.runtimes import check_options, with_defaults

QUICK = Scenario(warmup=2, min_iters=70, min_seconds=0.05, max_seconds=5.0)
MAC = sys.platform == "darwin"


@pytest.fixture(scope="module")
def artifacts(tiny_checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("options")
    return {fmt: export_checkpoint(tiny_checkpoint, fmt, "none", out_dir=root / fmt) for fmt in ("torch", "mlx")}


@pytest.mark.parametrize("runtime,options", [
    ("coreml", {"compute_units": "CPU_AND_NE"}), ("coreml", {"compute_units": "ALL"}),
    ("mlx", {"device": "cpu"}), ("mlx", {"device": "gpu"}), ("torch", {"device": "mps"}), ("onnxruntime", {})])
def test_declared_options_are_accepted(runtime, options) -> None:
    assert check_options(runtime, options) == options


@pytest.mark.parametrize("runtime,options,match", [
    ("coreml", {"compute_units": "NPU"}, r"compute_units='NPU' is not accepted -> use one of ALL, CPU_ONLY"),
    ("coreml", {"device": "gpu"}, r"no option 'device' -> its options: compute_units"),
    ("onnxruntime", {"device": "gpu"}, r"no option 'device' -> its options: none"),
    ("torch", {"device": "cuda"}, r"device='cuda' is not accepted -> use one of cpu, mps"),
    ("nosuch.module:Runtime", {"device": "cpu"}, r"does not load"),
])
def test_unknown_options_are_refused_by_name(runtime, options, match) -> None:
    with pytest.raises(EdgeZooError, match=match):
        check_options(runtime, options)


def test_each_option_is_its_own_measurement(artifacts) -> None:
    art = artifacts["torch"]
    keys = {request_key(art, "torch", 1, QUICK, o) for o in ({}, {"device": "cpu"}, {"device": "mps"})}
    assert len(keys) == 3


@pytest.mark.skipif(MAC, reason="off macOS only: there MPS and Metal exist")
@pytest.mark.parametrize("fmt,runtime,options,reason", [
    ("torch", "torch", {"device": "mps"}, "torch on MPS needs macOS"),
    ("mlx", "mlx", {"device": "gpu"}, "MLX on Metal (device=gpu) needs macOS"),
])
def test_an_option_this_machine_lacks_is_unavailable(artifacts, fmt, runtime, options, reason) -> None:
    r = measure(artifacts[fmt], runtime, 1, scenario=QUICK, options=options)
    assert r["status"] == "unavailable" and reason in r["error_message"]
    assert r["scenario"]["runtime_options"] == with_defaults(runtime, options)


def test_torch_on_the_cpu_records_the_device(artifacts) -> None:
    r = measure(artifacts["torch"], "torch", 1, scenario=QUICK, options={"device": "cpu"})
    assert r["status"] == "ok", r
    assert r["scenario"]["runtime_options"] == {"device": "cpu"}
    assert r["runtime_options"]["device"] == "cpu"


@pytest.mark.macos
@pytest.mark.parametrize("fmt,runtime,options", [
    ("torch", "torch", {"device": "mps"}), ("mlx", "mlx", {"device": "gpu"}), ("mlx", "mlx", {"device": "cpu"})])
def test_mac_devices_measure_the_same_artifact(artifacts, fmt, runtime, options) -> None:
    r = measure(artifacts[fmt], runtime, 1, scenario=QUICK, options=options)
    assert r["status"] == "ok", r
    assert r["parity"]["top1_agreement"] >= 0.99


@pytest.mark.macos
@pytest.mark.parametrize("units", ["ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE"])
def test_coreml_compute_units_are_scenarios(tiny_checkpoint, tmp_path, units) -> None:
    art = export_checkpoint(tiny_checkpoint, "coreml", "none", out_dir=tmp_path / "c")
    r = measure(art, "coreml", 1, scenario=QUICK, options={"compute_units": units})
    assert r["status"] == "ok", r
    assert r["runtime_options"]["compute_units"] == units
    assert r["scenario"]["runtime_options"] == {"compute_units": units}


@pytest.mark.parametrize("argv,mentions", [
    (["--option", "device"], "not KEY=VALUE"),
    (["--option", "device=cpu", "--option", "device=mps"], "given twice"),
    (["--option", "compute_units=NPU", "--runtime", "coreml"], "use one of ALL, CPU_ONLY"),
    (["--option", "device=cuda"], "use one of cpu, mps"),
])
def test_bad_options_fail_before_anything_is_measured(artifacts, tmp_path, capsys, argv, mentions) -> None:
    from tests.app.cli_harness import assert_clean_failure

    ws = tmp_path / "ws"
    assert_clean_failure(["profile", str(artifacts["torch"].path), *argv, "--workspace", str(ws)], capsys, ws,
                         mentions=mentions)


@pytest.mark.skipif(MAC, reason="off macOS only: there MPS exists")
def test_one_record_per_option_value(artifacts, tmp_path, capsys) -> None:
    from profiles import query
    from app.workspace import Workspace
    from tests.app.cli_harness import invoke

    ws = tmp_path / "ws"
    res = invoke(["profile", str(artifacts["torch"].path), "--option", "device=cpu,mps", "--threads", "1",
                  "--workspace", str(ws)], capsys)
    assert res.code == 0, res.err
    recs = query.records(Workspace.resolve(ws).store())
    assert sorted((r["scenario"]["runtime_options"]["device"], r["status"]) for r in recs) == \
        [("cpu", "ok"), ("mps", "unavailable")]
