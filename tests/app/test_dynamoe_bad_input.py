"""DynaMoE bad input through the real CLI: theta outside [0, 1] (recipe, compression spec, sweep), a dense checkpoint
that is not an OpenELM or lacks the SwiGLU FFN the conversion splits, a non-DynaMoE checkpoint given the theta
knob: one-line errors, nothing written."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from models import checkpoint
from models.openelm import ModelArgs, OpenELM
from models.registry import build
from tests.app.cli_harness import assert_clean_failure

TINY = Path(__file__).resolve().parents[2] / "trainers" / "dynamoe" / "configs" / "dynamoe_tiny.yaml"
DENSE = ModelArgs(model_dim=32, num_transformer_layers=2, head_dim=8, qkv_multipliers=(1.0, 1.0),
                  ffn_multipliers=(4.0, 4.0), max_context_length=64)


@pytest.fixture(autouse=True)
def own_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))


def _train(tmp_path: Path, capsys: pytest.CaptureFixture, override: str, mentions: str) -> None:
    out = tmp_path / "zoo" / "moe"
    assert_clean_failure(["train", str(TINY), "--set", override, "--out", str(out), "-w", str(tmp_path)],
                         capsys, tmp_path, mentions=mentions)
    assert not out.exists()


@pytest.mark.parametrize("override,mentions", [
    ("theta=1.5", "theta"), ("theta=-0.1", "theta"), ("theta=nan", "theta"), ("tau=0", "tau"),
    ("label_rule=entropy", "label_rule"), ("expert_fractions=[0.5,0.25,1.0]", "expert_fractions"),
    ("dense_checkpoint=/nonexistent/ckpt", "does not exist")])
def test_recipe_values(tmp_path: Path, capsys: pytest.CaptureFixture, override: str, mentions: str) -> None:
    _train(tmp_path, capsys, override, mentions)


def test_dense_checkpoint_that_is_not_an_openelm(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint.save(build("resnet"), tmp_path / "resnet", {})
    _train(tmp_path, capsys, f"dense_checkpoint={tmp_path / 'resnet'}", "not a dense OpenELM")


def test_dense_checkpoint_without_a_swiglu_ffn(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = tmp_path / "dense"
    checkpoint.save(OpenELM(DENSE), ckpt, {})
    weights = load_file(str(ckpt / checkpoint.WEIGHTS))
    weights["transformer.layers.1.ffn.proj_1.weight"] = torch.zeros(128, 32)  # no [gate | up] pair for 128 units
    save_file(weights, str(ckpt / checkpoint.WEIGHTS))
    _train(tmp_path, capsys, f"dense_checkpoint={ckpt}", "layer 1 has no SwiGLU FFN")


def test_theta_knob_needs_a_dynamoe_checkpoint_and_a_theta_in_range(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    ckpt = tmp_path / "dense"
    checkpoint.save(OpenELM(DENSE), ckpt, {})
    out = tmp_path / "art"
    assert_clean_failure(["export", "torch", str(ckpt), "-c", "dynamoe:theta=0.5", "--out", str(out),
                          "-w", str(tmp_path)], capsys, tmp_path, mentions="needs a DynaMoE checkpoint")
    assert not out.exists()
    assert_clean_failure(["export", "torch", str(ckpt), "-c", "dynamoe:theta=1.2", "--out", str(out),
                          "-w", str(tmp_path)], capsys, tmp_path, mentions="theta")
    assert_clean_failure(["sweep", "dynamoe", str(ckpt), "--thetas", "0.5", "-w", str(tmp_path)], capsys,
                         tmp_path, mentions="not a DynaMoE one")
    for bad in ("0.5,1.5", "x", ""):
        assert_clean_failure(["sweep", "dynamoe", str(ckpt), "--thetas", bad, "-w", str(tmp_path)], capsys,
                             tmp_path, mentions="--thetas")
    assert not (tmp_path / "results.db").exists() and not out.exists()
