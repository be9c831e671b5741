"""`edgezoo run --scale deploy`: which architectures and compressions it picks (any registered model whose Args has
a deploy(), derived from the registries), weights copied from a small checkpoint where shapes match, and one tiny
end-to-end slice through the real export / profile / store path (a ConvMixer whose deploy() is patched small):
records marked scale=deploy, quality not measured, parity by SQNR. Bad flags fail with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app import deploy
from app.pipeline import RunPlan
from app.workspace import Workspace
from models import checkpoint
from models.convmixer import ConvMixerArgs
from models.range_augment_cnn import RangeAugmentCNNArgs
from models.registry import build
from tests.app.cli_harness import assert_clean_failure


def test_selection_is_every_model_with_a_deploy_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    every = dict(deploy.select(None, None))
    assert {"resnet", "mobilenetv2", "convmixer", "spin_convmixer", "vit", "openelm"} <= set(every)
    assert every["resnet"] == "baselines" and every["spin_convmixer"] == "spin"
    assert "range_augment_cnn" not in every  # no deploy(): not built
    monkeypatch.setattr(RangeAugmentCNNArgs, "deploy", classmethod(lambda cls: cls()), raising=False)
    assert ("range_augment_cnn", "rangeaugment") in deploy.select(("rangeaugment",), None)
    assert [m for m, _ in deploy.select(("baselines",), ("resnet", "vit"))] == ["resnet"]


def test_exports_follow_the_exporter_registry() -> None:
    vision = deploy.exports("classification", None)
    assert vision["onnx"] == ("none", "fp16", "int8", "int8-static", "int4")
    assert "palette4" in vision["coreml"] and "int8-static" not in vision["mlx"]
    assert all("prune50" not in specs for specs in vision.values())
    assert deploy.exports("lm", ("onnx",)) == {"onnx": ("none", "int8", "int4")}


def test_transfer_copies_tensors_whose_name_and_shape_match(tmp_path: Path) -> None:
    small = build("convmixer", ConvMixerArgs(in_channels=3, dim=8, depth=1, num_classes=10))
    checkpoint.save(small, tmp_path / "small", {})
    torch.manual_seed(0)
    big = build("convmixer", ConvMixerArgs(in_channels=3, dim=8, depth=1, num_classes=1000))
    info = deploy.transfer(big, tmp_path / "small")
    assert info["tensors_copied"] == info["tensors"] - 2  # all but the 1000-class head's weight and bias
    assert torch.equal(big.stem[0].weight, small.stem[0].weight)
    assert not torch.equal(big.head.bias[:10], small.head.bias)


def _slice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, spec: str) -> tuple[Workspace, list]:
    """One deploy-scale artifact of a ConvMixer whose deploy() is patched small, with a small checkpoint beside it."""
    args = dict(in_channels=3, image_size=16, dim=8, depth=1, patch_size=2, num_classes=1000)
    monkeypatch.setattr(ConvMixerArgs, "deploy", classmethod(lambda cls: cls(**args)))
    monkeypatch.setitem(deploy.SPECS, "classification", (spec,))
    monkeypatch.setattr(deploy, "scenario", _quick)  # a few calls: the figures are not the point here
    ws = Workspace.resolve(tmp_path / "ws")
    small = build("convmixer", ConvMixerArgs(**{**args, "num_classes": 10}))
    checkpoint.save(small, ws.checkpoint_dir("digits_convmixer"), {})
    rows = deploy.run(ws, RunPlan(formats=(fmt,), threads=1), ("convmixer",), log=lambda s: None)
    return ws, rows


def _check_records(ws: Workspace, rows: list, spec: str) -> None:
    assert [r["compression"] for r in rows] == [spec] and rows[0]["status"] == "ok", rows
    card = checkpoint.read_card(ws.checkpoint_dir("convmixer-deploy"))
    assert card["scale"] == "deploy" and card["weights"]["tensors_copied"] == card["weights"]["tensors"] - 2
    store = ws.store()
    recs = list(store.records())
    store.close()
    assert {r["scale"] for r in recs} == {"deploy"} and {r["paper"] for r in recs} == {"baselines"}
    assert all(r["accuracy"]["value"] is None and "not measured" in r["accuracy"]["dataset"] for r in recs)
    assert all(r["parity"]["criterion"] == "SQNR >= 20 dB" and r["parity"]["ok"] for r in recs)


def test_tiny_deploy_slice_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws, rows = _slice(tmp_path, monkeypatch, "torch", "none")
    _check_records(ws, rows, "none")
    logs: list[str] = []
    deploy.run(ws, RunPlan(formats=("torch",), threads=1), ("convmixer",), log=logs.append)
    store = ws.store()
    assert logs[0].startswith("reuse") and len(list(store.records())) == 1  # nothing rebuilt or remeasured
    store.close()


@pytest.mark.slow  # the first ONNX export in a process imports torch's exporter: ~30 s on a loaded 2-core machine
def test_tiny_deploy_slice_onnx_static_int8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws, rows = _slice(tmp_path, monkeypatch, "onnx", "int8-static")  # calibrated on the seeded inputs
    _check_records(ws, rows, "int8-static")


def _quick():
    from profiles.measure import Scenario

    return Scenario(warmup=1, min_iters=3, min_seconds=0.0, max_seconds=2.0)


@pytest.mark.parametrize("argv, mentions", [
    (["--models", "resnet"], "--models applies to --scale deploy only"),
    (["--scale", "huge"], "'huge' is not one of small, deploy"),
    (["--scale", "deploy", "--models", "nope"], "no deployment-scale model 'nope'"),
    (["--scale", "deploy", "--papers", "nope"], "no paper plug-in 'nope'"),
    (["--scale", "deploy", "--set", "epochs=1"], "--set does not apply to --scale deploy"),
    (["--scale", "deploy", "-f", "onnx,mlx"], "unknown format 'onnx,mlx'"),
])
def test_bad_deploy_flags_fail_cleanly(argv: list[str], mentions: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    ws = tmp_path / "ws"
    assert_clean_failure(["run", "--workspace", str(ws), *argv], capsys, ws, mentions=mentions)
