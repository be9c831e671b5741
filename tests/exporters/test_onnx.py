from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from exporters.artifact import conversion_summary, export_checkpoint, load_artifact
from exporters import onnx as onnx_exporter
from exporters.compression import parse_spec
from models.errors import ArtifactError, ConversionError

SPECS = ("none", "fp16", "int8", "int4", "prune50")


@pytest.fixture(scope="module")
def onnx_artifacts(tiny_checkpoints, tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    return {spec: export_checkpoint(tiny_checkpoints["resnet"], "onnx", spec, out_dir=root / spec) for spec in SPECS}


def test_every_model_exports_and_matches_torch(tiny_checkpoints, tmp_path) -> None:
    for name, ckpt in tiny_checkpoints.items():
        art = export_checkpoint(ckpt, "onnx", "none", out_dir=tmp_path / name)
        v = art.manifest["verification"]
        assert v["kind"] == "numeric" and v["max_abs_err"] < 1e-3 and v["sqnr_db"] > 60, (name, v)


def test_manifest_contents(onnx_artifacts) -> None:
    m = json.loads((onnx_artifacts["int4"].path / "manifest.json").read_text())
    for key in ("checkpoint_sha256", "compression", "inputs", "size_bytes", "sha256", "bits_per_weight",
                "tool_versions", "git_commit", "verification"):
        assert key in m
    assert m["inputs"][0]["shape"] == [None, 1, 8, 8]
    assert m["compression"]["method"] == "int4" and m["tool_versions"]["onnxruntime"]


def test_compressed_files_are_smaller_and_report_bits(onnx_artifacts) -> None:
    size = {k: a.manifest["size_bytes"] for k, a in onnx_artifacts.items()}
    bits = {k: a.manifest["bits_per_weight"] for k, a in onnx_artifacts.items()}
    assert size["fp16"] < size["none"] and size["int8"] < size["none"] and size["int4"] < size["none"]
    assert 32 <= bits["none"] < 33.5 and 16 <= bits["fp16"] < 17.5
    assert bits["int4"] < bits["int8"] < bits["fp16"]
    assert abs(onnx_artifacts["prune50"].manifest["sparsity"] - 0.5) < 0.01


def test_compressed_ops_present(onnx_artifacts) -> None:
    ops = {k: set(a.manifest["export_details"]["ops"]) for k, a in onnx_artifacts.items()}
    assert {"ConvInteger", "DynamicQuantizeLinear"} <= ops["int8"]
    assert "DequantizeLinear" in ops["int4"]
    g = onnx.load(str(onnx_artifacts["int4"].model_file))
    assert any(t.data_type == onnx.TensorProto.INT4 for t in g.graph.initializer)


def test_second_export_is_reused(onnx_artifacts, tiny_checkpoints) -> None:
    art = onnx_artifacts["none"]
    again = export_checkpoint(tiny_checkpoints["resnet"], "onnx", "none", out_dir=art.path)
    assert again.manifest["created"] == art.manifest["created"]


class Kth(nn.Module):
    """kthvalue has no ONNX translation in torch's exporter."""

    def forward(self, x):
        return torch.kthvalue(x, 2).values


def test_unsupported_op_is_named() -> None:
    with pytest.raises(Exception) as err:
        onnx_exporter.export(Kth(), (torch.randn(1, 8),), Path(tempfile.mkdtemp()), parse_spec("none"))
    assert "aten.kthvalue" in conversion_summary(err.value)


def test_unsupported_op_through_export_checkpoint(tiny_checkpoints, tmp_path, monkeypatch) -> None:
    real_export = onnx_exporter.export
    monkeypatch.setattr(onnx_exporter, "export", lambda m, x, out, spec: real_export(Kth(), (torch.randn(1, 8),), out, spec))
    with pytest.raises(ConversionError, match="unsupported op aten.kthvalue") as err:
        export_checkpoint(tiny_checkpoints["resnet"], "onnx", "none", out_dir=tmp_path / "x")
    assert "->" in str(err.value) and "\n" not in str(err.value) and not (tmp_path / "x").exists()


def test_int4_roundtrip_of_packing() -> None:
    q = np.array([[-8, 7, 0, -1, 3]], dtype=np.int8)
    packed = onnx_exporter._pack_int4(q)
    t = onnx.helper.make_tensor("q", onnx.TensorProto.INT4, [1, 5], packed, raw=True)
    assert onnx.numpy_helper.to_array(t).astype(np.int8).tolist() == q.tolist()


def test_load_artifact_errors(tmp_path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        load_artifact(tmp_path / "missing")
    (tmp_path / "thing.bin").write_bytes(b"123")
    with pytest.raises(ArtifactError, match="not an artifact"):
        load_artifact(tmp_path / "thing.bin")
