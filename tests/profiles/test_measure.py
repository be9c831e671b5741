"""The child-process harness: real measurements, foreign files, and every way a child can fail."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from exporters.artifact import export_checkpoint
from profiles.measure import Scenario, measure

QUICK = Scenario(warmup=2, min_iters=70, min_seconds=0.05, max_seconds=5.0)


@pytest.fixture(scope="module")
def onnx_artifact(tiny_checkpoints, tmp_path_factory):
    return export_checkpoint(tiny_checkpoints["resnet"], "onnx", "none", out_dir=tmp_path_factory.mktemp("m") / "a")


def test_ok_record_has_everything(onnx_artifact) -> None:
    r = measure(onnx_artifact, scenario=QUICK)
    assert r["status"] == "ok", r
    lat = r["latency"]
    assert lat["n"] >= 70 and len(lat["samples_ms"]) == lat["n"] and lat["p90_ms"] is not None
    assert lat["median_ci95_ms"][0] <= lat["median_ms"] <= lat["median_ci95_ms"][1]
    assert r["load_seconds"] > 0 and r["first_call_ms"] > 0
    assert r["runtime_options"]["intra_op_num_threads"] == 2
    assert r["memory"]["peak_rss_bytes"] > 10e6 and r["memory"]["load_delta_bytes"] is not None
    assert r["accuracy"]["n"] == 270 and 0 <= r["accuracy"]["value"] <= 1
    assert r["parity"]["max_abs_err"] < 1e-3
    assert r["device"]["cpu"] and r["environment"]["python"] and r["runtime_version"]


def test_foreign_onnx_file(tmp_path) -> None:
    """A model EdgeZoo did not make: inputs come from its declared specs, accuracy is absent."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3], np.ones(12, np.float32))
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])], initializer=[w])
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    r = measure(path, scenario=QUICK)
    assert r["status"] == "ok", r
    assert r["artifact"]["foreign"] and "accuracy" not in r and r["input_shapes"] == [[1, 4]]


@pytest.mark.parametrize("runtime,error_class", [("tests.profiles.fault_runtimes:Crashes", "ChildCrashed"),
                                                 ("tests.profiles.fault_runtimes:Raises", "RuntimeError")])
def test_child_failures_become_records(onnx_artifact, runtime, error_class) -> None:
    r = measure(onnx_artifact, runtime, scenario=QUICK)
    assert r["status"] == "failed" and r["error_class"] == error_class
    assert r["error_message"] and "\n" not in r["error_message"]


def test_hanging_child_is_killed(onnx_artifact) -> None:
    r = measure(onnx_artifact, "tests.profiles.fault_runtimes:Hangs", scenario=QUICK, timeout=8)
    assert r["status"] == "failed" and r["error_class"] == "Timeout" and "--timeout" in r["error_message"]


def test_corrupt_model_file_is_a_failure_record(onnx_artifact, tmp_path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(onnx_artifact.path, bad)
    (bad / "model.onnx").write_bytes(b"\x00garbage" * 100)
    r = measure(bad, scenario=QUICK)
    assert r["status"] == "failed" and r["error_class"] == "ArtifactModified"  # sha256 checked before any timing
    alone = tmp_path / "alone.onnx"  # the same bytes as a foreign file: the runtime's own failure is the record
    alone.write_bytes(b"\x00garbage" * 100)
    r = measure(alone, scenario=QUICK)
    assert r["status"] == "failed" and r["error_class"] not in ("ArtifactModified", "ChildCrashed")


def test_coreml_is_unavailable_on_linux(tiny_checkpoints, tmp_path) -> None:
    import sys

    if sys.platform == "darwin":
        pytest.skip("Core ML runs here")
    art = export_checkpoint(tiny_checkpoints["resnet"], "coreml", "none", out_dir=tmp_path / "c")
    r = measure(art, scenario=QUICK)
    assert r["status"] == "unavailable" and "macOS" in r["error_message"]
