"""Core ML LM export: a stateful program (one fp16 state pair per layer) for prefill and decode.

On Linux the package is checked structurally (Core ML cannot predict here) and the converted torch module itself is
checked against OpenELM's own cached forward; greedy parity of Core ML predictions runs on macOS only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from exporters.lm.coreml_lm import StatefulLM, causal_mask, state_names
from models import checkpoint
from models.errors import EdgeZooError
from models.generation.generate import generate
from models.openelm import ModelArgs, OpenELM


def _varied(model: OpenELM) -> OpenELM:
    """A random model whose greedy tokens vary (else every runtime agrees on one repeated byte)."""
    with torch.no_grad():
        model.transformer.norm.weight.copy_(torch.randn(model.args.model_dim))
        for layer in model.transformer.layers:
            layer.attn.out_proj.weight.mul_(8.0)
            layer.ffn.proj_2.weight.mul_(8.0)
    return model.eval()


@pytest.fixture(scope="module")
def model() -> OpenELM:
    torch.manual_seed(0)
    return _varied(OpenELM(ModelArgs.tiny()))


@pytest.fixture(scope="module")
def ckpt(model: OpenELM, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkpoint.save(model, tmp_path_factory.mktemp("lm_ckpt"), {"note": "random tiny OpenELM"})


def _export(ckpt: Path, root: Path, compression: str) -> tuple[Path, dict]:
    from exporters.lm.artifact import export_lm

    out = export_lm(ckpt, "coreml", compression, root / f"coreml-{compression}")
    return out, json.loads((out / "lm_manifest.json").read_text())


@pytest.fixture(scope="module")
def exported(ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    return _export(ckpt, tmp_path_factory.mktemp("coreml_lm"), "none")


@torch.no_grad()
def _wrapper_generate(w: StatefulLM, prompt: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy tokens through the stateful module as Core ML will run it (mask shape carries the cached length)."""
    logits = w(prompt.int(), torch.from_numpy(causal_mask(0, prompt.shape[1])))
    first, past, out = logits, prompt.shape[1], []
    for _ in range(n):
        nxt = logits[:, -1].argmax(-1)
        out.append(nxt)
        logits = w(nxt[:, None].int(), torch.from_numpy(causal_mask(past, 1)))
        past += 1
    return torch.stack(out, 1), first


def test_stateful_module_matches_cached_forward(model: OpenELM) -> None:
    prompt = torch.randint(0, 256, (1, 7), generator=torch.Generator().manual_seed(1))
    ours = generate(model, prompt, 12)
    assert len(set(ours[0].tolist())) > 3
    with torch.no_grad():
        ref = model(prompt)
        toks32, first32 = _wrapper_generate(StatefulLM(model, 64, torch.float32), prompt, 12)
        toks16, first16 = _wrapper_generate(StatefulLM(model, 64), prompt, 12)  # the fp16 cache Core ML keeps
        w = StatefulLM(model, 64, torch.float32)  # a 3-token chunk after 7 cached = the last 3 rows of a full pass
        w(prompt.int(), torch.from_numpy(causal_mask(0, 7)))
        nxt = torch.tensor([[5, 9, 200]])
        chunk = w(nxt.int(), torch.from_numpy(causal_mask(7, 3)))
        full = model(torch.cat([prompt, nxt], 1))[:, 7:]
    assert (first32 - ref).abs().max() < 1e-5 and (chunk - full).abs().max() < 1e-5
    assert torch.equal(toks32, ours)
    assert (first16 - ref).abs().max() < 0.05 and torch.equal(toks16, ours)


def test_export_is_stateful_and_verified(exported: tuple[Path, dict], model: OpenELM) -> None:
    out, man = exported
    a = model.args
    v = man["verification"]
    assert man["format"] == "coreml" and man["compression"] == "none" and man["bits_per_weight"] == 32.0
    assert v["ok"], v["problems"]
    assert v["kind"] == ("numeric+structural" if sys.platform == "darwin" else "structural")
    assert len(v["states"]) == 2 * a.num_transformer_layers
    assert [s["name"] for s in v["states"]] == state_names(a.num_transformer_layers)
    assert [tuple(s["shape"]) for s in v["states"][::2]] == [(1, h, a.max_context_length, a.head_dim) for h in a.kv_heads()]
    assert len({s["shape"][1] for s in v["states"]}) > 1  # layer-wise scaling: KV-head counts differ
    assert {s["dtype"] for s in v["states"]} == {"float16"}
    assert v["inputs"][0] == {"name": "input_ids", "shape": [1, None], "dtype": "int32"}
    assert v["ops"]["read_state"] == v["ops"]["write_state"] == 2 * a.num_transformer_layers
    assert not any(op.startswith("constexpr_") for op in v["ops"])
    assert man["export"]["compute_precision"] == "FLOAT32" and man["export"]["timings"]["convert_s"] > 0
    pkg = out / "coreml" / "model.mlpackage"
    assert pkg.is_dir() and v["package_bytes"] == sum(f.stat().st_size for f in pkg.rglob("*") if f.is_file())
    assert v["weight_bin_bytes"] >= 4 * sum(p.numel() for p in model.parameters())  # fp32 weights, stored once


@pytest.mark.parametrize("compression, payload, bits", [
    pytest.param("int8", "INT8", (8.0, 9.5), marks=pytest.mark.slow),  # one more conversion (~7 s on a loaded box)
    ("int4", "INT4", (4.5, 5.5))])
def test_quantized_export(ckpt: Path, exported: tuple[Path, dict], tmp_path: Path, compression: str, payload: str,
                          bits: tuple[float, float]) -> None:
    _, man = _export(ckpt, tmp_path, compression)
    v = man["verification"]
    assert v["ok"], v["problems"]
    assert payload in v["payload_dtypes"] and v["compressed_ops"] == v["linear_weights"] == v["quantized_linear_weights"]
    assert bits[0] <= man["bits_per_weight"] <= bits[1]
    assert v["weight_bin_bytes"] < exported[1]["verification"]["weight_bin_bytes"] * bits[1] / 16
    assert "linear_quantize_weights" in man["export"]["tool"]


def test_structural_check_catches_a_wrong_package(exported: tuple[Path, dict]) -> None:
    from exporters.lm.coreml_lm import INFO_FILE, MODEL_FILE, structural_check_lm

    folder = exported[0] / "coreml"
    info = json.loads((folder / INFO_FILE).read_text())
    assert structural_check_lm(folder / MODEL_FILE, info, None)["ok"]
    unquantized = structural_check_lm(folder / MODEL_FILE, info, "int4")
    assert not unquantized["ok"] and any("not quantized" in p for p in unquantized["problems"])
    shifted = structural_check_lm(folder / MODEL_FILE, {**info, "kv_heads": info["kv_heads"][::-1]}, None)
    assert not shifted["ok"] and any(p.startswith("states") for p in shifted["problems"])


class _ErfinvFFN(nn.Module):
    def __init__(self, ffn: nn.Module) -> None:
        super().__init__()
        self.ffn = ffn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.erfinv(self.ffn(x).clamp(-0.5, 0.5))


def test_unconvertible_op_is_a_clear_error(tmp_path: Path) -> None:
    from exporters.lm.coreml_lm import export_coreml_lm

    torch.manual_seed(0)
    m = OpenELM(ModelArgs.tiny()).eval()
    m.transformer.layers[1].ffn = _ErfinvFFN(m.transformer.layers[1].ffn)
    with pytest.raises(EdgeZooError, match="Core ML conversion of the OpenELM LM failed.*erfinv") as err:
        export_coreml_lm(m, tmp_path / "bad")
    assert len(str(err.value).splitlines()) == 1


@pytest.mark.skipif(sys.platform == "darwin", reason="Core ML runs there")
def test_profile_is_unavailable_off_macos(exported: tuple[Path, dict]) -> None:
    from profiles.lm_measure import measure_lm

    r = measure_lm(exported[0], timeout=120)
    assert r["runtime"] == "coreml" and r["status"] == "unavailable"
    assert r["error_class"] == "RuntimeUnavailable" and "macOS" in r["error_message"]
    assert r["artifact"]["format"] == "coreml" and r["artifact"]["size_bytes"] > 0


@pytest.mark.macos
@pytest.mark.skipif(sys.platform != "darwin", reason="Core ML predicts only on macOS")
def test_coreml_greedy_matches_torch(exported: tuple[Path, dict], model: OpenELM) -> None:
    from profiles.runtimes.coreml_rt import CoreMLRuntime

    prompt = torch.randint(0, 256, (1, 6), generator=torch.Generator().manual_seed(1))
    ours = generate(model, prompt, 10).numpy()
    lm = CoreMLRuntime()
    lm.load_lm(exported[0], 1, {"compute_units": "CPU_ONLY"})
    assert np.array_equal(lm.greedy(prompt.numpy(), 10), ours)
    logits = lm.prefill(prompt.numpy())
    assert lm._past == 6 and np.abs(logits - model(prompt).detach().numpy()).max() < 0.05


@pytest.mark.macos
@pytest.mark.skipif(sys.platform != "darwin", reason="Core ML predicts only on macOS")
def test_coreml_profile_on_macos(exported: tuple[Path, dict]) -> None:
    from profiles.lm_measure import measure_lm

    r = measure_lm(exported[0], threads=1, prompt_len=16, new_tokens=8, context=32, eval_windows=4, timeout=300)
    assert r["status"] == "ok", r.get("error_message")
    assert r["ttft_s"] > 0 and r["decode_tokens_per_s"] > 0 and np.isfinite(r["accuracy"]["value"])
