"""One exporter registry for vision and language models, one manifest schema, LM compressions as CompressionSpecs."""

from __future__ import annotations

import json

import pytest

from exporters import FORMATS
from exporters.compression import SUPPORTED, parse_spec
from exporters.formats import EXPORTERS, MODEL_FILES, TASKS
from models.errors import CompressionSpecError

CORE = ("format", "compression", "compression_name", "checkpoint_sha256", "exporter_version", "model", "task",
        "sha256", "size_bytes", "bits_per_weight", "verification", "tool_versions", "created", "model_file")


def test_every_format_list_comes_from_the_registry() -> None:
    assert FORMATS == tuple(e.name for e in EXPORTERS) == tuple(MODEL_FILES)
    assert set(SUPPORTED) == {(e.name, t) for e in EXPORTERS for t in TASKS}


@pytest.mark.parametrize("text,name,block", [("int8", "int8-b32", 32), ("int4", "int4-b32", 32),
                                             ("seedlm3", "seedlm3", 0), ("seedlm4", "seedlm4", 0), ("none", "none", 0)])
def test_lm_compressions_are_specs(text: str, name: str, block: int) -> None:
    spec = parse_spec(text, "onnx", "lm")
    assert spec.name == name and spec.block == block


@pytest.mark.parametrize("text,fmt,task", [("fp16", "onnx", "lm"), ("int4:block=64", "mlx", "lm"),
                                           ("seedlm4", "onnx", "classification"), ("palette4", "onnx", "classification")])
def test_unsupported_pairs_are_refused(text: str, fmt: str, task: str) -> None:
    with pytest.raises(CompressionSpecError):
        parse_spec(text, fmt, task)


def test_lm_and_vision_manifests_share_the_core_fields(tmp_path, tiny_checkpoint) -> None:
    import torch

    from exporters.artifact import export_checkpoint
    from exporters.lm.artifact import read_lm_manifest
    from models import checkpoint
    from models.openelm import ModelArgs, OpenELM

    torch.manual_seed(0)
    lm = checkpoint.save(OpenELM(ModelArgs.tiny()), tmp_path / "zoo" / "lm", {"tokenizer": "bytes"})
    art = export_checkpoint(lm, "torch", "int4", workspace=tmp_path / "ws")
    assert art.path.name == "lm-torch-int4-b32" and art.manifest["task"] == "lm"
    vision = export_checkpoint(tiny_checkpoint, "torch", "none", out_dir=tmp_path / "v")
    for man in (art.manifest, vision.manifest):
        assert all(k in man for k in CORE), [k for k in CORE if k not in man]
    assert art.manifest["verification"]["ok"] and art.manifest["compression"]["block"] == 32
    legacy = read_lm_manifest(art.path)  # the LM profiler's view: the short name
    assert legacy["compression"] == "int4" and legacy["sha256"] == art.manifest["sha256"]
    assert json.loads((art.path / "manifest.json").read_text())["compression_name"] == "int4-b32"
    assert export_checkpoint(lm, "torch", "int4", workspace=tmp_path / "ws").manifest["created"] == art.manifest["created"]
