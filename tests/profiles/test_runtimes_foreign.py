"""Model files EdgeZoo did not make, or that were damaged after export: a broken Core ML package is a failure that
says so (not 'unavailable'), and a foreign .mlxfn is profiled with the input shapes it was exported for."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from exporters.artifact import export_checkpoint
from profiles.measure import Scenario, measure
from profiles.runtimes import coreml_rt, mlx_rt

QUICK = Scenario(warmup=2, min_iters=20, min_seconds=0.01, max_seconds=5.0)
SPEC = Path("Data/com.apple.CoreML/model.mlmodel")
WEIGHTS = Path("Data/com.apple.CoreML/weights/weight.bin")

# ------------------------------------------------------------------------------------------------ Core ML


@pytest.fixture(scope="module")
def coreml_artifact(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory):
    return export_checkpoint(tiny_checkpoint, "coreml", "none", out_dir=tmp_path_factory.mktemp("coreml") / "a")


def damaged(artifact, tmp_path: Path, how) -> Path:
    """A copy of the artifact's .mlpackage (a foreign file: no EdgeZoo manifest beside it), damaged by `how`."""
    pkg = tmp_path / "damaged.mlpackage"
    shutil.copytree(artifact.model_file, pkg)
    how(pkg)
    return pkg


def truncate(rel: Path, keep: float = 0.5):
    def cut(pkg: Path) -> None:
        data = (pkg / rel).read_bytes()
        (pkg / rel).write_bytes(data[:int(len(data) * keep)])
    return cut


def delete(rel: str | Path):
    return lambda pkg: (pkg / rel).unlink()


def write(rel: str | Path, text: str):
    return lambda pkg: (pkg / rel).write_text(text)


@pytest.mark.skipif(sys.platform == "darwin", reason="Core ML runs there")
def test_valid_package_off_macos_is_unavailable(coreml_artifact) -> None:
    r = measure(coreml_artifact, scenario=QUICK)
    assert r["status"] == "unavailable" and r["error_class"] == "RuntimeUnavailable", r
    assert coreml_rt.check_package(coreml_artifact.model_file) is None


@pytest.mark.parametrize("how, says", [(truncate(SPEC), "is not a Core ML model spec"),
                                       (delete("Manifest.json"), "Manifest.json is missing")])
def test_broken_package_is_a_failure_naming_it(coreml_artifact, tmp_path: Path, how, says: str) -> None:
    r = measure(damaged(coreml_artifact, tmp_path, how), scenario=QUICK)
    assert r["status"] == "failed" and r["error_class"] == "InvalidCoreMLPackage", r
    assert "not a valid Core ML package" in r["error_message"] and says in r["error_message"]
    assert "re-export" in r["error_message"]


@pytest.mark.parametrize("how, says", [
    (delete(SPEC), f"{SPEC}, listed in Manifest.json, is missing"),
    (truncate(SPEC, 0.0), "holds no model"),
    (write(SPEC, "not a protobuf at all " * 50), "is not a Core ML model spec"),
    (write("Manifest.json", "{not json"), "Manifest.json is not readable JSON"),
    (write("Manifest.json", '{"fileFormatVersion": "1.0.0"}'), "Manifest.json names no root model"),
    (delete(WEIGHTS), "weight file @model_path/weights/weight.bin that"),
    (truncate(WEIGHTS, 0.01), "is truncated"),
])
def test_package_structure_checks(coreml_artifact, tmp_path: Path, how, says: str) -> None:
    with pytest.raises(coreml_rt.InvalidCoreMLPackage) as err:
        coreml_rt.check_package(damaged(coreml_artifact, tmp_path, how))
    assert says in str(err.value) and " -> " in str(err.value)


# ------------------------------------------------------------------------------------------------ MLX


@pytest.fixture(scope="module")
def mlxfn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An .mlxfn made outside EdgeZoo: `x @ W` traced with a (1, 64) input, no metadata."""
    import mlx.core as mx

    w = mx.array(np.random.default_rng(0).standard_normal((64, 10)).astype(np.float32))
    path = tmp_path_factory.mktemp("mlx") / "f.mlxfn"
    mx.export_function(str(path), lambda x: x @ w, mx.zeros((1, 64)))
    return path


def test_foreign_mlxfn_with_given_inputs(mlxfn: Path) -> None:
    r = measure(mlxfn, inputs=[{"name": "x", "shape": [1, 64], "dtype": "float32"}], scenario=QUICK)
    assert r["status"] == "ok", r
    assert r["input_shapes"] == [[1, 64]] and r["artifact"]["foreign"] and r["latency"]["n"] >= 20


def test_foreign_mlxfn_inputs_read_from_the_file(mlxfn: Path) -> None:
    r = measure(mlxfn, scenario=QUICK)
    assert r["status"] == "ok", r
    assert r["input_shapes"] == [[1, 64]]


def test_foreign_mlxfn_with_wrong_inputs_says_which_it_takes(mlxfn: Path) -> None:
    r = measure(mlxfn, inputs=[{"name": "x", "shape": [1, 32], "dtype": "float32"}], scenario=QUICK)
    assert r["status"] == "failed" and r["error_class"] == "MlxInputsUnknown", r
    assert "(1,32) float32" in r["error_message"] and "--input input_0=1x64:float32" in r["error_message"]


def test_when_mlx_exposes_no_shapes_the_error_names_input(mlxfn: Path, monkeypatch) -> None:
    monkeypatch.setattr(mlx_rt, "exported_inputs", lambda message: None)  # an MLX that words its errors otherwise
    rt = mlx_rt.MlxRuntime()
    rt.load(mlxfn, 1, {"device": "cpu"})
    with pytest.raises(mlx_rt.MlxInputsUnknown) as err:
        rt.input_specs()
    assert "--input x=1x64:float32" in str(err.value) and "exposes none" in str(err.value)
    assert rt.run([np.ones((1, 64), np.float32)])[0].shape == (1, 10)  # given inputs still run


def test_signature_with_keywords_and_dtypes(tmp_path: Path) -> None:
    import mlx.core as mx

    path = tmp_path / "g.mlxfn"
    mx.export_function(str(path), lambda x, y, z=None: (x * 2 + y, z + 1), mx.zeros((2, 3), dtype=mx.bfloat16),
                       mx.zeros((3,), dtype=mx.bfloat16), z=mx.zeros((4,), dtype=mx.int32))
    rt = mlx_rt.MlxRuntime()
    rt.load(path, 1, {"device": "cpu"})
    specs = rt.input_specs()
    assert [(s["name"], s["shape"], s["dtype"], s.get("keyword", False)) for s in specs] == [
        ("input_0", [2, 3], "bfloat16", False), ("input_1", [3], "bfloat16", False), ("z", [4], "int32", True)]
    out = rt.run([np.ones((2, 3), np.float32), np.ones(3, np.float32), np.zeros(4, np.int32)])
    assert out[0].shape == (2, 3) and out[1].tolist() == [1, 1, 1, 1]
    assert mlx_rt.exported_inputs("some other wording: (1,64) float32") is None
