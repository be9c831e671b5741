"""ByteFormer bad input through the real CLI (`edgezoo classify-bytes`, `edgezoo train`): an empty byte file, a
file longer than the artifact's exported length, a missing file, an artifact that does not take byte tokens, and
out-of-range recipe values are one-line errors naming the problem and the fix; nothing is run, trained or stored.

The artifact here is an artifact folder whose manifest declares ByteFormer's inputs (tokens, mask at 640 bytes):
the checks run before any runtime loads it. tests/trainers/test_byteformer.py classifies real files with a real
exported graph."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from exporters.artifact import MANIFEST, dir_sha256
from tests.app.cli_harness import assert_clean_failure


@pytest.fixture(autouse=True)
def own_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))


def artifact(folder: Path, names: tuple[str, ...] = ("tokens", "mask")) -> Path:
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"graph")
    inputs = [{"name": n, "shape": [None, 640], "dtype": d} for n, d in zip(names, ("int32", "float32"))]
    (folder / MANIFEST).write_text(json.dumps({"model": "byteformer", "format": "onnx", "model_file": "model.onnx",
                                               "inputs": inputs, "sha256": dir_sha256(folder / "model.onnx")}))
    return folder


@pytest.mark.parametrize("content,mentions", [(b"", "is empty (0 bytes)"),
                                              (b"\xff" * 641, "641 bytes, more than the model's exported maximum")])
def test_empty_and_too_long_files(tmp_path: Path, capsys: pytest.CaptureFixture, content: bytes,
                                  mentions: str) -> None:
    art = artifact(tmp_path / "art")
    (tmp_path / "ok.jpg").write_bytes(b"\xff\xd8" * 10)
    (tmp_path / "bad.jpg").write_bytes(content)
    res = assert_clean_failure(["classify-bytes", str(art), str(tmp_path / "ok.jpg"), str(tmp_path / "bad.jpg")],
                               capsys, tmp_path / "ws", mentions=mentions)
    assert "bad.jpg" in res.err and "->" in res.err and "class" not in res.out  # no file is classified


def test_missing_file_and_non_byte_artifact(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    art = artifact(tmp_path / "art")
    assert_clean_failure(["classify-bytes", str(art), str(tmp_path / "nope.jpg")], capsys, tmp_path / "ws",
                         mentions="is not a file")
    image_model = artifact(tmp_path / "image", names=("input",))
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8")
    assert_clean_failure(["classify-bytes", str(image_model), str(tmp_path / "a.jpg")], capsys, tmp_path / "ws",
                         mentions="does not take byte tokens")


@pytest.mark.parametrize("override,mentions", [
    ("epochs=0", "epochs=0 is out of range"), ("encoding=gif", "encoding 'gif' is unknown"),
    ("keep=1.5", "keep=1.5 is out of range"), ("model_args.max_bytes=100000", "max_tokens"),
    ("model_args.dim=31", "divisible by heads")])
def test_bad_recipe_values(tmp_path: Path, capsys: pytest.CaptureFixture, override: str, mentions: str) -> None:
    recipe = str(Path(__file__).parents[2] / "trainers" / "byteformer" / "configs" / "byteformer_tiny.yaml")
    assert_clean_failure(["train", recipe, "--set", override, "-w", str(tmp_path / "ws")], capsys,
                         tmp_path / "ws", mentions=mentions)
    assert not (tmp_path / "ws" / "zoo").exists() or not any((tmp_path / "ws" / "zoo").iterdir())
