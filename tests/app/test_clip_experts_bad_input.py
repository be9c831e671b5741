"""CLIP with model-zoo experts, bad input through the real CLI: out-of-range and unknown recipe values, and an image
of the wrong size for the exported zero-shot encoder, are one-line errors naming the problem and the fix; nothing is
trained or stored."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch

from models.registry import build
from models.scene_clip import ZeroShotSceneArgs
from tests.app.cli_harness import assert_clean_failure


@pytest.fixture(autouse=True)
def own_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Temp files of this test only: other jobs on the machine may leave theirs in the shared one meanwhile."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))


@pytest.mark.parametrize("override,mentions", [
    ("noise=2", "noise=2 is out of range"), ("threshold=1.0", "threshold=1.0 would ignore every pixel"),
    ("arm=siglip", "arm 'siglip' is unknown"), ("student_scenes=1", "student_scenes=1 is out of range"),
    ("seg_weight=-1", "seg_weight=-1 is out of range"), ("lr=nan", "lr"), ("lambda_seg=1", "unknown keys")])
def test_bad_recipe_values(tmp_path: Path, capsys: pytest.CaptureFixture, override: str, mentions: str) -> None:
    res = assert_clean_failure(["train", "clip_experts", "--set", override, "-w", str(tmp_path / "ws")], capsys,
                               tmp_path / "ws", mentions=mentions)
    assert "->" in res.err and not (tmp_path / "ws" / "zoo" / "clip_experts").exists()


@pytest.fixture(scope="module")
def zero_shot_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny zero-shot scene classifier (encoder + constant prompt matrix) exported to ONNX."""
    from exporters.own import export

    root = tmp_path_factory.mktemp("clip-experts-artifact")
    torch.manual_seed(0)
    model = build("scene_clip_zeroshot", ZeroShotSceneArgs.tiny()).eval()
    return export(model, (torch.rand(1, 3, 32, 32),), "onnx", out=root / "onnx", workspace=root / "ws").path


@pytest.mark.parametrize("shape", ["1x3x16x16", "1x1x32x32", "1x3x32"])
def test_wrong_image_size_for_the_exported_zero_shot_encoder(zero_shot_artifact: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture, shape: str) -> None:
    res = assert_clean_failure(["profile", str(zero_shot_artifact), "--input", f"input={shape}:float32", "-w",
                                str(tmp_path / "ws")], capsys, tmp_path / "ws", mentions="exported for inputs")
    assert "1x3x32x32" in res.err  # the fix names the size it takes
    assert not (tmp_path / "ws" / "results.db").exists()
