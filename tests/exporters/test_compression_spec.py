from __future__ import annotations

import json

import pytest
import torch

from exporters.compression import CompressionSpec, parse_spec
from exporters.compression import rtn
from exporters.compression.torch_level import prune_, weight_sparsity
from models.errors import CompressionSpecError
from models.registry import build


@pytest.mark.parametrize("text,name", [("none", "none"), ("fp16", "fp16"), ("int8", "int8"), ("int4", "int4-b32"),
                                        ("int4:block=64", "int4-b64"), ("prune50", "prune50-ft2"),
                                        ("prune:sparsity=0.7,finetune=0", "prune70"), ("palette4", "palette4")])
def test_parse_and_round_trip(text: str, name: str) -> None:
    spec = parse_spec(text)
    assert spec.name == name
    assert CompressionSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize("text,match", [("int3", "unknown compression spec"), ("int4:bits=3", "bad option"),
                                         ("prune:sparsity=1.5", "must be in"), ("int4:block=7", "block"),
                                         ("int4:block=x", "not a number")])
def test_bad_specs(text: str, match: str) -> None:
    with pytest.raises(CompressionSpecError, match=match):
        parse_spec(text)


def test_format_support_checked() -> None:
    with pytest.raises(CompressionSpecError, match="not available for onnx"):
        parse_spec("palette4", "onnx")


def test_unknown_keys_rejected() -> None:
    with pytest.raises(CompressionSpecError, match="unknown compression fields"):
        CompressionSpec.from_dict({"method": "int8", "colour": 1})


def test_global_pruning_hits_target_sparsity() -> None:
    model = build("resnet", {"widths": (8, 16)})
    prune_(model, 0.5)
    assert abs(weight_sparsity(model) - 0.5) < 0.01
    assert not any("weight_orig" in k for k in model.state_dict())  # made permanent


def test_blockwise_quantization_error_shrinks_with_bits() -> None:
    w = torch.randn(16, 8, 3, 3)
    e4 = (rtn(w, 4, 32) - w).abs().mean()
    e8 = (rtn(w, 8, 0) - w).abs().mean()
    assert e8 < e4 < w.abs().mean()
    assert len(torch.unique(rtn(w, 4, 32)[0].flatten()[:32])) <= 16
