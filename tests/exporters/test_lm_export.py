"""LM exports: ONNX prefill/decode graphs with the cache explicit, and an mlx-lm folder, give torch's greedy tokens
through the runtimes that profile them (profiles.runtimes: `load_lm`, `prefill`, `decode_step`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.generation.generate import generate
from models.openelm import ModelArgs, OpenELM


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


def _onnx_lm(folder: Path):
    from profiles.runtimes.onnxruntime_rt import OnnxRuntime

    rt = OnnxRuntime()
    rt.load_lm(folder, 2)
    return rt


@pytest.fixture(scope="module")
def onnx_dir(model: OpenELM, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from exporters.lm.onnx_lm import export_lm_onnx

    out = tmp_path_factory.mktemp("onnx_lm")
    export_lm_onnx(model, out)
    return out


def test_onnx_graphs_have_explicit_cache(onnx_dir: Path, model: OpenELM) -> None:
    import onnx

    dec = onnx.load(str(onnx_dir / "decode.onnx"))
    ins, outs = [i.name for i in dec.graph.input], [o.name for o in dec.graph.output]
    n = model.args.num_transformer_layers
    assert ins[:2] == ["input_ids", "pad"] and len(ins) == 2 + 2 * n and "past.2.value" in ins
    assert outs[0] == "logits" and len(outs) == 1 + 2 * n and "present.0.key" in outs


def test_onnx_greedy_matches_torch(onnx_dir: Path, model: OpenELM) -> None:
    lm = _onnx_lm(onnx_dir)
    prompt = torch.randint(0, 256, (2, 6), generator=torch.Generator().manual_seed(1))
    ours = generate(model, prompt, 10).numpy()
    assert len(set(ours.reshape(-1).tolist())) > 2
    assert np.array_equal(lm.greedy(prompt.numpy(), 10), ours)
    assert np.abs(lm.prefill(prompt.numpy()) - model(prompt).detach().numpy()).max() < 1e-4


def test_onnx_int4_through_onnxruntime_quantizer(onnx_dir: Path, model: OpenELM, tmp_path: Path) -> None:
    import shutil

    import onnx

    from exporters.lm.onnx_lm import quantize_lm_onnx, share_initializers

    q = shutil.copytree(onnx_dir, tmp_path / "q4")
    info = quantize_lm_onnx(q, 4)
    ops = [n.op_type for n in onnx.load(str(q / "decode.onnx")).graph.node]
    assert ops.count("MatMulNBits") >= 4 * model.args.num_transformer_layers  # qkv, out, ffn in/out per layer (+ head
    # when the exporter folds the transposed tied embedding into a constant)
    assert 4.0 < info["bits_per_weight"] <= 5.5  # 4-bit codes + one fp32 scale per 32 (+ padding of 16-wide rows)
    assert (q / "decode.onnx").stat().st_size < 0.8 * (onnx_dir / "decode.onnx").stat().st_size  # graph overhead dominates
    prompt = np.array([[3, 141, 59, 26, 53]])
    logits = _onnx_lm(q).prefill(prompt)
    ref = model(torch.from_numpy(prompt)).detach().numpy()
    assert 0 < np.abs(logits - ref).max() < 0.5 * np.abs(ref).max()  # quantized, still close
    before = sum(f.stat().st_size for f in q.iterdir())
    shared = share_initializers(q)  # prefill and decode point at one weights file
    assert shared["referenced_bytes"] > shared["stored_bytes"] > 0
    assert sum(f.stat().st_size for f in q.iterdir()) < before
    again = _onnx_lm(q).prefill(prompt)
    assert np.array_equal(again, logits)


@pytest.mark.slow
def test_onnx_left_padding(onnx_dir: Path, model: OpenELM) -> None:
    prompt = torch.tensor([[0, 0, 5, 9, 13], [7, 8, 9, 10, 11]])
    pad = torch.tensor([2, 0])
    assert np.array_equal(_onnx_lm(onnx_dir).greedy(prompt.numpy(), 6, pad=pad.numpy()),
                          generate(model, prompt, 6, pad=pad).numpy())


def test_mlx_lm_loads_and_generates_same_tokens(model: OpenELM, tmp_path: Path) -> None:
    pytest.importorskip("mlx_lm")
    from exporters.lm.mlx_lm_export import export_mlx_lm, mlx_generate
    from profiles.runtimes.mlx_rt import MlxRuntime

    export_mlx_lm(model, tmp_path / "mlx")
    prompt = [3, 141, 59, 26, 53]
    ours = generate(model, torch.tensor([prompt]), 10)[0].tolist()
    assert len(set(ours)) > 3
    assert mlx_generate(tmp_path / "mlx", prompt, 10) == ours  # mlx-lm's own generation loop
    rt = MlxRuntime()
    rt.load_lm(tmp_path / "mlx", 1)
    x = np.array([prompt])
    assert rt.greedy(x, 10)[0].tolist() == ours  # the profiling runtime's prefill + decode steps
    assert np.abs(rt.prefill(x) - model(torch.from_numpy(x)).detach().numpy()).max() < 1e-4
    info = export_mlx_lm(model, tmp_path / "mlx4", q_bits=4, q_group=32)
    assert info["quantization"]["float_layers"] == ["transformer.layers.0.attn.out_proj"]  # in=16, not /32
    assert info["size_bytes"] < (tmp_path / "mlx" / "model.safetensors").stat().st_size / 2
    assert len(mlx_generate(tmp_path / "mlx4", prompt, 5)) == 5


@pytest.mark.parametrize("bits,expected", [(4, 6.0), (8, 10.0)])
def test_mlx_bits_per_weight_counted_from_the_saved_file(model: OpenELM, tmp_path: Path, bits: int,
                                                         expected: float) -> None:
    """Codes + float32 scale + float32 bias per group of 32 = bits + 2, read back from the safetensors file; the
    tied embedding (and so the LM head) stays float, like the ONNX, Core ML and torch exports' embedding."""
    pytest.importorskip("mlx_lm")
    from safetensors.numpy import load_file

    from exporters.compression.rtn_groups import lm_linear_names
    from exporters.lm.mlx_lm_export import export_mlx_lm

    info = export_mlx_lm(model, tmp_path / "q", q_bits=bits, q_group=32)["quantization"]
    stored = load_file(str(tmp_path / "q" / "model.safetensors"))
    linears = dict(model.named_modules())
    quantized = [n for n in lm_linear_names(model) if n not in info["float_layers"]]
    assert sorted(quantized) == info["quantized_layers"] and len(quantized) == 4 * model.args.num_transformer_layers - 1
    n_weights = sum(linears[n].weight.numel() for n in quantized)
    n_bytes = sum(stored[f"{n}.{part}"].nbytes for n in quantized for part in ("weight", "scales", "biases"))
    assert info["quantized_weights"] == n_weights and info["quantized_bytes"] == n_bytes
    assert info["bits_per_weight"] == 8 * n_bytes / n_weights == expected  # not the formula's bits + 32/32
    assert stored[f"{quantized[0]}.scales"].dtype == np.float32
    emb = "transformer.token_embeddings"
    assert f"{emb}.scales" not in stored and stored[f"{emb}.weight"].dtype == np.float32
    assert stored[f"{emb}.weight"].shape == (model.args.vocab_size, model.args.model_dim)
    assert not [k for k in stored if k.endswith(".scales") and not k.startswith("transformer.layers.")]
