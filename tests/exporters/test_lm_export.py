"""LM exports: ONNX prefill/decode graphs with the cache explicit, and an mlx-lm folder, give torch's greedy tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.openelm import ModelArgs, OpenELM, generate


@pytest.fixture(scope="module")
def model() -> OpenELM:
    torch.manual_seed(0)
    m = OpenELM(ModelArgs.tiny()).eval()
    with torch.no_grad():  # a random model whose greedy tokens vary (else every runtime agrees on one repeated byte)
        m.transformer.norm.weight.copy_(torch.randn(m.args.model_dim))
        for layer in m.transformer.layers:
            layer.attn.out_proj.weight.mul_(8.0)
            layer.ffn.proj_2.weight.mul_(8.0)
    return m


@pytest.fixture(scope="module")
def onnx_dir(model: OpenELM, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from exporters.lm.onnx_lm import export_lm_onnx

    out = tmp_path_factory.mktemp("onnx_lm")
    export_lm_onnx(model, out)
    return out


@pytest.mark.slow  # the dynamo export of two graphs takes ~20 s of CPU (over a minute on a loaded 2-core box)
def test_onnx_graphs_have_explicit_cache(onnx_dir: Path, model: OpenELM) -> None:
    import onnx

    dec = onnx.load(str(onnx_dir / "decode.onnx"))
    ins, outs = [i.name for i in dec.graph.input], [o.name for o in dec.graph.output]
    n = model.args.num_transformer_layers
    assert ins[:2] == ["input_ids", "pad"] and len(ins) == 2 + 2 * n and "past.2.value" in ins
    assert outs[0] == "logits" and len(outs) == 1 + 2 * n and "present.0.key" in outs


@pytest.mark.slow
def test_onnx_greedy_matches_torch(onnx_dir: Path, model: OpenELM) -> None:
    from exporters.lm.onnx_lm import OnnxLM

    lm = OnnxLM(onnx_dir)
    prompt = torch.randint(0, 256, (2, 6), generator=torch.Generator().manual_seed(1))
    ours = generate(model, prompt, 10).numpy()
    assert len(set(ours.reshape(-1).tolist())) > 2
    assert np.array_equal(lm.generate(prompt.numpy(), 10), ours)
    logits, _ = lm.step(prompt.numpy(), np.zeros(2, np.int64), None)
    assert np.abs(logits - model(prompt).detach().numpy()).max() < 1e-4


@pytest.mark.slow
def test_onnx_left_padding(onnx_dir: Path, model: OpenELM) -> None:
    from exporters.lm.onnx_lm import OnnxLM

    prompt = torch.tensor([[0, 0, 5, 9, 13], [7, 8, 9, 10, 11]])
    pad = torch.tensor([2, 0])
    assert np.array_equal(OnnxLM(onnx_dir).generate(prompt.numpy(), 6, pad.numpy()), generate(model, prompt, 6, pad=pad).numpy())


def test_mlx_lm_loads_and_generates_same_tokens(model: OpenELM, tmp_path: Path) -> None:
    pytest.importorskip("mlx_lm")
    from exporters.lm.mlx_lm_export import export_mlx_lm, mlx_generate, mlx_logits

    export_mlx_lm(model, tmp_path / "mlx")
    prompt = [3, 141, 59, 26, 53]
    ours = generate(model, torch.tensor([prompt]), 10)[0].tolist()
    assert len(set(ours)) > 3
    assert mlx_generate(tmp_path / "mlx", prompt, 10) == ours
    x = np.array([prompt])
    assert np.abs(mlx_logits(tmp_path / "mlx", x) - model(torch.from_numpy(x)).detach().numpy()).max() < 1e-4
    info = export_mlx_lm(model, tmp_path / "mlx4", q_bits=4, q_group=32)
    assert info["quantization"]["float_layers"] == ["transformer.layers.0.attn.out_proj"]  # in=16, not /32
    assert info["size_bytes"] < (tmp_path / "mlx" / "model.safetensors").stat().st_size / 3
    assert len(mlx_generate(tmp_path / "mlx4", prompt, 5)) == 5
