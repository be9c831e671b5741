"""Layer-wise data-free compression (exporters/compression/datafree.py): specs and their errors, BatchNorm-synthesised
inputs, the reconstruction (on the grid, never worse than RTN on its inputs, parallel == sequential), the pruning
variant, and exports through ONNX QDQ, MLX and Core ML with the manifest's report."""

from __future__ import annotations

import functools
import json
import os

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from exporters.compression import CompressionSpec, compress_, parse_spec
from exporters.compression import datafree as df
from models.errors import CompressionSpecError
from models.registry import build, example_inputs
from tests.app.cli_harness import assert_clean_failure

TINY = {"channels": [4, 8, 8], "norm": "batch"}


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    """Few samples and steps: the mechanics, not the accuracy (the claim measures that)."""
    monkeypatch.setattr(df, "datafree_", functools.partial(df.datafree_, steps=6, samples=64, workers=1))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from models import checkpoint

    out = tmp_path_factory.mktemp("datafree") / "cnn"
    checkpoint.save(_model(), out, {"dataset": "digits"})
    return out


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    m = build("lcs_cnn", TINY)
    with torch.no_grad():  # non-trivial BatchNorm statistics and affine parameters
        for bn in (b for b in m.modules() if isinstance(b, nn.BatchNorm2d)):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
    return m.eval()


@pytest.mark.parametrize("text,name,bits,sparsity", [
    ("datafree", "datafree4", 4, 0.0), ("datafree:bits=3", "datafree3", 3, 0.0),
    ("datafree:sparsity=0.9", "datafree-p90", 32, 0.9), ("datafree:bits=4,sparsity=0.5", "datafree4-p50", 4, 0.5)])
def test_specs_parse_and_round_trip(text, name, bits, sparsity) -> None:
    spec = parse_spec(text, "onnx")
    assert (spec.name, spec.bits, spec.sparsity) == (name, bits, sparsity)
    assert CompressionSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize("text,match", [
    ("datafree:bits=0", "bits in 'datafree:bits=0' must be 2..8"), ("datafree:bits=9", "must be 2..8"),
    ("datafree:bits=32", "must be 2..8"), ("datafree:steps=3", "bad option 'steps=3'"),
    ("datafree:sparsity=1.2", "sparsity in 'datafree:sparsity=1.2' must be in"), ("datafree:bits=x", "not a number")])
def test_bad_specs(text, match) -> None:
    with pytest.raises(CompressionSpecError, match=match):
        parse_spec(text)


def test_no_batchnorm_is_one_clear_error() -> None:
    model = build("lcs_cnn", {"channels": [4, 8, 8], "norm": "group", "groups": 2}).eval()
    with pytest.raises(CompressionSpecError) as err:
        compress_(model, parse_spec("datafree:bits=3"))
    assert "has no BatchNorm layer" in err.value.problem and "norm: batch" in err.value.fix
    assert "\n" not in str(err.value)


def test_synthetic_inputs_follow_the_feeding_batchnorm() -> None:
    model = _model()
    with torch.no_grad():
        bn = model.features[1]
        bn.weight.fill_(0.1)
        bn.bias.copy_(torch.linspace(1.0, 2.0, 4))  # ReLU(N(beta, 0.1^2)) ~ beta for beta >= 1
    inputs, sources = df.synthetic_inputs(model, example_inputs(model, 1)[0], n=256)
    assert sources == {"features.0": ["prior"], "features.3": ["features.1"], "features.6": ["features.4"],
                       "head": ["features.7"]}
    x0 = inputs["features.0"]
    assert x0.shape == (256, 1, 8, 8) and 0 <= x0.min() and x0.max() <= 1
    means = inputs["features.3"].mean((0, 2, 3))
    assert torch.allclose(means, torch.linspace(1.0, 2.0, 4), atol=0.02)
    assert inputs["head"].shape == (256, 8)  # through the global pooling: a mean of 2x2 ReLU-Gaussians


def test_residual_network_is_sampled_through_its_additions() -> None:
    model = build("resnet", {"widths": [4, 8]}).eval()
    _, sources = df.synthetic_inputs(model, example_inputs(model, 1)[0], n=16)
    assert sources["stem.0"] == ["prior"]
    assert len(sources["fc"]) == 2  # the last block's BatchNorm and its shortcut's


def test_reconstruction_on_grid_never_worse_and_parallel_equals_sequential() -> None:
    model = _model()
    inputs, _ = df.synthetic_inputs(model, example_inputs(model, 1)[0], n=64)
    seq, par = _model(), _model()
    rep = df.reconstruct_(seq, inputs, bits=3, steps=10, workers=1)
    rep_par = df.reconstruct_(par, inputs, bits=3, steps=10, workers=2)
    assert rep_par["workers"] == min(2, os.cpu_count())
    for (name, a), (_, b) in zip(seq.state_dict().items(), par.state_dict().items()):
        assert torch.equal(a, b), name
    for name, layer in rep["layers"].items():
        assert layer["mse"] <= layer["mse_rtn"] and layer["seconds"] > 0
        w, s = seq.get_submodule(name).weight, seq.datafree_scales[name]
        codes = w / s.reshape((-1,) + (1,) * (w.dim() - 1))
        assert torch.allclose(codes, codes.round(), atol=1e-4)
        assert codes.round().min() >= -4 and codes.round().max() <= 3
    assert rep["bits_per_weight"] > 3.0  # codes plus one fp32 scale per output channel
    moved = seq.features[4].running_mean - model.features[4].running_mean
    assert moved.abs().max() > 0  # the learned offset is folded into the next BatchNorm


def test_pruning_variant_keeps_the_masks() -> None:
    model = _model()
    inputs, _ = df.synthetic_inputs(model, example_inputs(model, 1)[0], n=64)
    masks = df.magnitude_masks(model, 0.8)
    rep = df.reconstruct_(model, inputs, bits=32, sparsity=0.8, steps=20)
    for name, mask in masks.items():
        w = model.get_submodule(name).weight
        assert torch.all(w[mask == 0] == 0)
        assert rep["layers"][name]["mse"] <= rep["layers"][name]["mse_rtn"]


def test_onnx_qdq_and_manifest(ckpt, tmp_path) -> None:
    from exporters.artifact import export_checkpoint

    art = export_checkpoint(ckpt, "onnx", "datafree:bits=3", out_dir=tmp_path / "a")
    m = art.manifest
    assert m["verification"]["ok"] and m["verification"]["max_abs_err"] < 1e-4
    details = m["export_details"]
    assert details["quantized_layers"] == ["features.0", "features.3", "features.6", "head"]
    assert details["higher_precision_layers"] == [] and details["ops"]["DequantizeLinear"] == 4
    g = onnx.load(str(art.model_file))
    assert sum(t.data_type == onnx.TensorProto.INT4 for t in g.graph.initializer) == 4
    report = m["compression_report"]
    assert report["bits"] == 3 and set(report["layers"]) == set(details["quantized_layers"])
    assert "features.7.bias" in report["higher_precision"] and 3 < m["bits_per_weight"] < 8


def test_mlx_quantized_arrays(ckpt, tmp_path) -> None:
    from exporters.artifact import export_checkpoint

    art = export_checkpoint(ckpt, "mlx", "datafree:bits=4", out_dir=tmp_path / "m")
    d = art.manifest["export_details"]
    assert d["bits"] == 4 and d["quantized_tensors"] >= 1 and art.manifest["verification"]["ok"]


@pytest.mark.slow
def test_coreml_per_channel_luts(ckpt, tmp_path) -> None:
    from exporters.artifact import export_checkpoint

    art = export_checkpoint(ckpt, "coreml", "datafree:bits=3", out_dir=tmp_path / "c")
    v = art.manifest["verification"]
    assert v["ok"], v["problems"]
    assert art.manifest["export_details"]["ops"]["constexpr_lut_to_dense"] == 4 and "UINT3" in v["payload_dtypes"]


@pytest.mark.parametrize("spec,mentions", [("datafree:bits=0", "must be 2..8"), ("datafree:colour=1", "bad option")])
def test_cli_bad_spec(ckpt, tmp_path, capsys, spec, mentions) -> None:
    assert_clean_failure(["onnx", str(ckpt), "--compress", spec, "--workspace", str(tmp_path)], capsys, tmp_path,
                         mentions=mentions, prog="exporters")


def test_cli_model_without_batchnorm(tmp_path, capsys) -> None:
    from models import checkpoint

    checkpoint.save(build("lcs_cnn", {"channels": [4, 8, 8], "groups": 2}), tmp_path / "gn", {"dataset": "digits"})
    assert_clean_failure(["onnx", str(tmp_path / "gn"), "--compress", "datafree:bits=3", "--workspace",
                          str(tmp_path / "ws")], capsys, tmp_path / "ws", mentions="no BatchNorm", prog="exporters")


def test_stored_bits_count_scales() -> None:
    rep = df.stored_bits(_model(), 4)
    k = 4 * 9  # features.0 -> 4 channels of 1x3x3
    assert rep["layers"]["features.0"]["bits_per_weight"] == pytest.approx((k * 4 + 4 * 32) / k)
    assert np.isclose(rep["bits_per_weight"] * sum(v["weights"] for v in rep["layers"].values()), rep["size_bytes"] * 8,
                      atol=8)
