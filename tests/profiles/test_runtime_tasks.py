"""One runtime per name serves every task: the vision side (load / run) and the LM side (load_lm / prefill /
decode_step) of the same runtime object, on a vision artifact and an LM artifact folder."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models import checkpoint
from models.openelm import ModelArgs, OpenELM
from profiles.runtimes import DEFAULT_RUNTIME, RUNTIMES, resolve
from profiles.runtimes.base import Runtime, RuntimeUnavailable


@pytest.fixture(scope="module")
def lm_model() -> OpenELM:
    torch.manual_seed(0)
    return OpenELM(ModelArgs.tiny()).eval()


@pytest.fixture(scope="module")
def lm_onnx(lm_model: OpenELM, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from exporters.lm.artifact import export_lm

    root = tmp_path_factory.mktemp("lm")
    ckpt = checkpoint.save(lm_model, root / "ckpt", {"note": "random tiny OpenELM"})
    return export_lm(ckpt, "onnx", "none", root / "onnx-none")


def test_one_table_names_every_runtime_of_every_format() -> None:
    from profiles.lm_measure import RUNTIME_OF

    assert RUNTIME_OF is DEFAULT_RUNTIME and set(DEFAULT_RUNTIME.values()) == set(RUNTIMES)
    for name in RUNTIMES:
        cls = resolve(name)
        for method in ("load", "run", "input_specs", "load_lm", "prefill", "decode_step"):
            assert getattr(cls, method) is not getattr(Runtime, method), f"{name} lacks {method}"


def test_onnxruntime_serves_a_vision_artifact_and_an_lm_folder(tiny_checkpoints, lm_onnx: Path,
                                                                lm_model: OpenELM, tmp_path: Path) -> None:
    from exporters.artifact import export_checkpoint
    from models.generation.generate import generate

    art = export_checkpoint(tiny_checkpoints["resnet"], "onnx", "none", out_dir=tmp_path / "vision")
    rt = resolve("onnxruntime")()
    rt.load(art.model_file, 1, {})
    x = np.random.default_rng(0).standard_normal([1, *rt.input_specs()[0]["shape"][1:]]).astype(np.float32)
    before = rt.run([x])[0]

    rt.load_lm(lm_onnx, 1)  # the artifact folder: its onnx/ part is loaded
    prompt = np.array([[3, 141, 59, 26, 53]])
    with torch.no_grad():
        ref = lm_model(torch.from_numpy(prompt)).numpy()
    logits = rt.prefill(prompt)
    assert logits.shape == ref.shape and np.abs(logits - ref).max() < 1e-4
    nxt = logits[:, -1].argmax(-1)[:, None]
    step = rt.decode_step(nxt)
    with torch.no_grad():
        full = lm_model(torch.from_numpy(np.concatenate([prompt, nxt], 1))).numpy()
    assert step.shape == (1, 1, ref.shape[-1]) and np.abs(step[:, -1] - full[:, -1]).max() < 1e-4
    assert np.array_equal(rt.greedy(prompt, 6), generate(lm_model, torch.from_numpy(prompt), 6).numpy())

    assert np.array_equal(rt.run([x])[0], before)  # the vision session is untouched by the LM one


def test_torch_runtime_decodes_like_onnxruntime(lm_onnx: Path, lm_model: OpenELM, tmp_path: Path) -> None:
    from exporters.lm.artifact import export_lm

    ckpt = checkpoint.save(lm_model, tmp_path / "ckpt", {"note": "random tiny OpenELM"})
    folder = export_lm(ckpt, "torch", "none", tmp_path / "torch-none")
    prompt = np.array([[7, 8, 9, 10]])
    tokens = []
    for name, path in (("torch", folder), ("onnxruntime", lm_onnx)):
        rt = resolve(name)()
        rt.load_lm(path, 1)
        tokens.append(rt.greedy(prompt, 5))
    assert np.array_equal(*tokens)


@pytest.mark.skipif(sys.platform == "darwin", reason="Core ML runs there")
def test_coreml_lm_is_unavailable_off_macos(tmp_path: Path) -> None:
    from profiles.runtimes.coreml_rt import LM_UNAVAILABLE

    with pytest.raises(RuntimeUnavailable, match="macOS") as err:
        resolve("coreml")().load_lm(tmp_path, 1)
    assert str(err.value) == LM_UNAVAILABLE
