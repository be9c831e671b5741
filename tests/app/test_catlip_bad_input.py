"""CatLIP bad input through the real CLI: out-of-range and unknown recipe values, and an image of the wrong size for
an exported scene encoder, are one-line errors naming the problem and the fix; nothing is trained or stored.
(A caption with no known noun is not an error: tests/trainers/test_catlip.py checks its all-zero target.)"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest

from models import checkpoint
from models.registry import build
from models.scene_encoder import SceneEncoderArgs
from tests.app.cli_harness import assert_clean_failure


@pytest.fixture(autouse=True)
def own_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Temp files of this test only: other jobs on the machine may leave theirs in the shared one meanwhile."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))


@pytest.mark.parametrize("override,mentions", [
    ("vocab_size=0", "vocab_size=0 is out of range"), ("vocab_size=1000", "vocab_size=1000 is out of range"),
    ("arm=siglip", "arm 'siglip' is unknown"), ("bce=sum", "bce 'sum' is unknown"), ("batch_size=1", "batch_size"),
    ("channels=[8,8]", "channels"), ("probe=size", "probe 'size'"), ("lr=nan", "lr")])
def test_bad_recipe_values(tmp_path: Path, capsys: pytest.CaptureFixture, override: str, mentions: str) -> None:
    res = assert_clean_failure(["train", "catlip", "--set", override, "-w", str(tmp_path / "ws")], capsys,
                               tmp_path / "ws", mentions=mentions)
    assert "->" in res.err and not (tmp_path / "ws" / "zoo" / "catlip").exists()


@pytest.fixture(scope="module")
def encoder_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny scene encoder (32x32 single-channel digits as its eval data) exported to ONNX."""
    from exporters.artifact import export_checkpoint

    root = tmp_path_factory.mktemp("catlip-artifact")
    model = build("scene_encoder", dataclasses.replace(SceneEncoderArgs.tiny(), image_size=32)).eval()
    checkpoint.save(model, root / "ckpt", {"dataset": "digits32"})
    return export_checkpoint(root / "ckpt", "onnx", out_dir=root / "onnx").path


@pytest.mark.parametrize("shape", ["1x1x64x64", "1x3x32x32", "1x1x32", "4x1x16x16"])
def test_wrong_image_size_for_an_exported_encoder(encoder_artifact: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture, shape: str) -> None:
    res = assert_clean_failure(["profile", str(encoder_artifact), "--input", f"input={shape}:float32", "-w",
                                str(tmp_path / "ws")], capsys, tmp_path / "ws", mentions="exported for inputs Nx1x32x32")
    assert "--input input=1x1x32x32:float32" in res.err  # the fix names the size it takes
    assert not (tmp_path / "ws" / "results.db").exists()


def test_matching_inputs_pass_the_check(encoder_artifact: Path) -> None:
    from exporters.artifact import load_artifact
    from profiles.measure import check_inputs

    art = load_artifact(encoder_artifact)
    for shape in ([1, 1, 32, 32], [8, 1, 32, 32]):  # the batch dim is dynamic
        check_inputs(art, [{"name": "input", "shape": shape, "dtype": "float32"}])
    check_inputs(art, None)
