"""The file named is the file measured: paths resolve from the caller's directory, a file beside an artifact is
measured as itself, and the manifest's sha256 is checked against the bytes measured."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from exporters.artifact import dir_sha256, export_checkpoint
from profiles.measure import Scenario, measure

QUICK = Scenario(warmup=2, min_iters=70, min_seconds=0.05, max_seconds=5.0)


@pytest.fixture(scope="module")
def onnx_artifact(tiny_checkpoint, tmp_path_factory):
    return export_checkpoint(tiny_checkpoint, "onnx", "none", out_dir=tmp_path_factory.mktemp("named") / "a")


def test_relative_path_is_the_callers_copy(onnx_artifact, tmp_path, monkeypatch) -> None:
    """Run from another directory, a relative path names that directory's copy (the child runs elsewhere)."""
    shutil.copytree(onnx_artifact.path, tmp_path / "mine" / "art")
    monkeypatch.chdir(tmp_path / "mine")
    r = measure("art", scenario=QUICK)
    assert r["status"] == "ok", r
    assert r["artifact"]["path"] == str(tmp_path / "mine" / "art")


def test_other_file_in_an_artifact_folder_is_measured_itself(onnx_artifact, tmp_path) -> None:
    art = tmp_path / "art"
    shutil.copytree(onnx_artifact.path, art)
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3], np.ones(12, np.float32))
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, art / "other.onnx")
    r = measure(art / "other.onnx", scenario=QUICK)
    assert r["status"] == "ok", r
    assert r["artifact"]["foreign"] and r["artifact"]["sha256"] == dir_sha256(art / "other.onnx")
    assert r["input_shapes"] == [[1, 4]]  # the named graph's input, not the artifact's (1, 1, 8, 8)


def test_modified_model_file_is_refused_by_sha256(onnx_artifact, tmp_path) -> None:
    art = tmp_path / "art"
    shutil.copytree(onnx_artifact.path, art)
    m = onnx.load(art / "model.onnx")
    init = m.graph.initializer[0]
    arr = onnx.numpy_helper.to_array(init) * 0.5  # a valid model with other numbers
    init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
    onnx.save(m, art / "model.onnx")
    r = measure(art, scenario=QUICK)
    assert r["status"] == "failed" and r["error_class"] == "ArtifactModified" and "latency" not in r
