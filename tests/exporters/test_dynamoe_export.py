"""DynaMoE exports: the theta knob in the manifest (active parameters per token, routers counted), the MLX model whose
per-token slicing gives the masked FFN's outputs, ONNX and Core ML as masked dense FFNs (slow: converters)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from exporters.artifact import export_checkpoint
from models import checkpoint
from models.dynamoe import DynaMoE, ModelArgs


@pytest.fixture(scope="module")
def moe_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = DynaMoE(ModelArgs.tiny())
    with torch.no_grad():
        for ffn in model.ffns():  # spread the router's choices over every expert
            ffn.router.weight.normal_(0.0, 1.0)
    out = tmp_path_factory.mktemp("moe") / "dynamoe_tiny"
    checkpoint.save(model, out, {})
    return out


def test_mlx_slicing_matches_masking_and_the_manifest_counts_active_params(moe_ckpt: Path, tmp_path: Path) -> None:
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache

    from exporters.lm.mlx_lm_export import load_mlx_lm

    art = export_checkpoint(moe_ckpt, "mlx", "dynamoe:theta=0.5", workspace=tmp_path)
    man = art.manifest
    assert man["compression_name"] == "dynamoe-t0.50" and man["verification"]["ok"], man["verification"]
    active = man["active_params"]
    assert active["theta"] == 0.5 and 0.25 < active["active_ffn_fraction"] < 1.01
    assert active["active_params_per_token"] < active["total_params"]
    ids = mx.array(np.arange(40, 60, dtype=np.int32)[None])
    outs = {}
    for mode in ("slice", "mask"):
        model, config = load_mlx_lm(art.path / "mlx", ffn_compute=mode)
        assert config["theta"] == 0.5
        cache = make_prompt_cache(model)
        prefill = model(ids, cache=cache)
        outs[mode] = [np.array(prefill)] + [np.array(model(ids[:, i:i + 1], cache=cache)) for i in range(3)]
    for a, b in zip(outs["slice"], outs["mask"]):
        assert np.allclose(a, b, atol=1e-4)


@pytest.mark.slow
def test_onnx_and_coreml_export_the_masked_ffn(moe_ckpt: Path, tmp_path: Path) -> None:
    onnx = export_checkpoint(moe_ckpt, "onnx", "dynamoe:theta=0.7", workspace=tmp_path).manifest
    assert onnx["verification"]["ok"] and onnx["active_params"]["theta"] == 0.7
    assert "masked" in onnx["active_params"]["compute"]["onnx"]
    coreml = export_checkpoint(moe_ckpt, "coreml", "none", workspace=tmp_path).manifest
    assert coreml["verification"]["ok"], coreml["verification"]
