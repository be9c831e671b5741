"""Your own model through the command lines: `exporters FMT package.module:factory --input ...` and
`exporters FMT model.pt2`, `exporters check`, then `edgezoo profile` and `edgezoo report` over the same store; bad
input (a factory that raises or returns no module, a .pt2 of another torch, an op a converter lacks, inputs the
model does not take) is one error line and leaves nothing behind."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from tests.app.cli_harness import assert_clean_failure, invoke

MODELS = '''
import torch
from torch import nn


class Scorer(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, image):
        return self.fc(torch.relu(self.conv(image)).mean((2, 3)))


class Cumulative(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 3)

    def forward(self, feats):
        return torch.cumsum(self.proj(feats), -1)


def make():
    return Scorer().eval()


def cumulative():
    return Cumulative()


def broken():
    raise RuntimeError("weights file missing")


def weights_only():
    return Scorer().state_dict()
'''
INPUT = ["--input", "image=1x1x8x8:float32"]


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding the user's own model code (not registered anywhere), as the current directory."""
    (tmp_path / "own_cli_models.py").write_text(MODELS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("own_cli_models", None)


def _artifact(res) -> Path:
    return Path(json.loads(res.out[res.out.index("{"):])["artifact"])


def test_factory_and_pt2_export(user_dir: Path, capsys: pytest.CaptureFixture) -> None:
    ws = user_dir / "ws"
    res = invoke(["onnx", "own_cli_models:make", *INPUT, "-c", "int8-static", "--output-name", "scores", "-w", str(ws)],
                 capsys, "exporters")
    assert res.code == 0, res.err
    onnx_art = _artifact(res)
    manifest = json.loads((onnx_art / "manifest.json").read_text())
    assert manifest["model"] == "Scorer" and manifest["paper"] is None and manifest["inputs"][0]["name"] == "image"
    assert manifest["outputs"] == [{"name": "scores"}] and manifest["verification"]["ok"]

    from own_cli_models import make

    torch.export.save(torch.export.export(make(), (torch.randn(1, 1, 8, 8),)), str(user_dir / "scorer.pt2"))
    res = invoke(["mlx", "scorer.pt2", "-c", "int4", "--name", "scorer", "-w", str(ws)], capsys, "exporters")
    assert res.code == 0, res.err
    mlx_art = _artifact(res)
    assert json.loads((mlx_art / "manifest.json").read_text())["verification"]["ok"]


@pytest.mark.slow
def test_profile_and_report_put_it_in_the_store(user_dir: Path, capsys: pytest.CaptureFixture) -> None:
    ws = user_dir / "ws"
    res = invoke(["onnx", "own_cli_models:make", *INPUT, "-w", str(ws)], capsys, "exporters")
    onnx_art = _artifact(res)
    res = invoke(["profile", str(onnx_art), "--json", "-w", str(ws)], capsys)
    assert res.code == 0, res.err
    rows = json.loads(res.out)
    assert rows[0]["model"] == "Scorer" and rows[0]["status"] == "ok" and rows[0]["accuracy"] is None  # no labels
    res = invoke(["report", "-w", str(ws)], capsys)
    assert res.code == 0 and "Scorer" in Path(res.out.split()[-1]).read_text()


@pytest.mark.slow
def test_check_lists_coverage(user_dir: Path, capsys: pytest.CaptureFixture) -> None:
    res = invoke(["check", "own_cli_models:cumulative", "--input", "feats=2x4"], capsys, "exporters")
    assert res.code == 0, res.err
    assert "mlx     1/2 ops  missing: aten.cumsum.default at own_cli_models.py:" in res.out


@pytest.mark.parametrize("argv, mentions", [
    (["onnx", "own_cli_models:broken", *INPUT], "raised RuntimeError: weights file missing"),
    (["onnx", "own_cli_models:weights_only", *INPUT], "returned a OrderedDict, not a torch.nn.Module"),
    (["onnx", "own_cli_models:nowhere", *INPUT], "cannot import own_cli_models:nowhere"),
    (["onnx", "own_cli_models:make", "--input", "image=1x3x8x8:float32"], "does not accept the example inputs"),
    (["onnx", "own_cli_models:make", "--input", "x=1x1x8x8:float32"], "forward takes image"),
    (["onnx", "own_cli_models:make", "--input", "image=1x1x8"], "does not accept the example inputs image=1x1x8"),
    (["onnx", "own_cli_models:make", "--input", "image=1x0x8"], "not NAME=SHAPE:DTYPE"),
    (["onnx", "own_cli_models:make"], "needs example inputs"),
    (["onnx", "own_cli_models:make", *INPUT, "--dynamic", "image:2=h:9:16"], "outside its example shape"),
    (["onnx", "own_cli_models:make", *INPUT, "--dynamic", "image:2=side:16,32"], "outside its example shape"),
    (["onnx", "own_cli_models:make", *INPUT, "--dynamic", "image:2=side"], "not NAME:AXIS=DIM:MIN:MAX"),
    (["onnx", "own_cli_models:make", *INPUT, "--dynamic", "pixels:2=side:8:16"], "names input 'pixels'"),
    (["mlx", "own_cli_models:cumulative", "--input", "feats=2x4"], "mlx has no aten.cumsum.default"),
    (["torch", "own_cli_models:make", *INPUT], "takes EdgeZoo checkpoints only"),
    (["onnx", "own_cli_models:make", *INPUT, "-c", "seedlm4"], "not available"),
    (["onnx", "own_cli_models:make", *INPUT, "--output-name", "a", "--output-name", "b"], "2 output names for 1"),
])
def test_bad_input_is_one_line(user_dir: Path, capsys: pytest.CaptureFixture, argv: list[str], mentions: str) -> None:
    assert_clean_failure([*argv, "-w", str(user_dir / "ws")], capsys, user_dir / "ws", mentions=mentions,
                         prog="exporters")
    assert not (user_dir / "ws" / "artifacts").exists() or not any((user_dir / "ws" / "artifacts").rglob("*.onnx"))


def test_pt2_of_another_torch_version(user_dir: Path, capsys: pytest.CaptureFixture) -> None:
    from own_cli_models import make

    good = user_dir / "good.pt2"
    torch.export.save(torch.export.export(make(), (torch.randn(1, 1, 8, 8),)), str(good))
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(user_dir / "old.pt2", "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("models/model.json"):
                data = json.dumps({**json.loads(data), "torch_version": "2.3.1+cu121"}).encode()
            dst.writestr(item, data)
    res = assert_clean_failure(["coreml", "old.pt2", "-w", str(user_dir / "ws")], capsys, user_dir / "ws",
                               mentions="saved by torch 2.3.1+cu121", prog="exporters")
    assert "torch.export.save" in res.err
    (user_dir / "junk.pt2").write_text("not a zip")
    assert_clean_failure(["onnx", "junk.pt2", "-w", str(user_dir / "ws")], capsys, user_dir / "ws",
                         mentions="not a torch.export archive", prog="exporters")
