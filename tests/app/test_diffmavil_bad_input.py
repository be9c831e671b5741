"""Diffusion MAViL bad input through the CLI: a spectrogram of the wrong size for the exported audio encoder (the
profile command's --input check against the artifact's declared inputs), bad recipe values at `edgezoo train`;
each one `error:` line, nothing written. The fixture trains a tiny arm-C checkpoint through `edgezoo train` (its
audio probe on held-out clips lands in the card) and exports it to ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.app.cli_harness import assert_clean_failure

TINY = ["dim=16", "depth=1", "heads=2", "decoder_dim=16", "embed_dim=8", "epochs=1", "batch_size=64", "train_clips=300"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(workspace, ONNX artifact folder) of a tiny trained audio encoder."""
    from exporters.artifact import export_checkpoint
    from trainers.papers import recipe_trainer

    ws = tmp_path_factory.mktemp("diffmavil-ws")
    ckpt = ws / "zoo" / "diffmavil_c"
    path, trainer, _ = recipe_trainer("diffmavil_c")
    metrics = trainer(path, ckpt, TINY)
    assert 0.0 <= metrics["audio_probe"] <= 1.0 and metrics["test_n"] == 1000
    return ws, export_checkpoint(ckpt, "onnx", "none", workspace=ws).path


def test_card_carries_probe_accuracy_and_flops(exported: tuple[Path, Path]) -> None:
    ws, art = exported
    card = json.loads((ws / "zoo" / "diffmavil_c" / "card.json").read_text())
    assert card["model"] == "av_audio_encoder" and card["dataset"] == "av_digits_audio"
    assert card["metrics"]["test_accuracy"] == pytest.approx(card["metrics"]["audio_probe"], abs=0.005)
    assert card["flops"]["total"] == card["metrics"]["train_flops"] > 0
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["inputs"][0]["shape"][1:] == [1, 16, 32] and manifest["verification"]["ok"]


def test_wrong_spectrogram_size_for_the_exported_encoder(exported: tuple[Path, Path],
                                                         capsys: pytest.CaptureFixture) -> None:
    ws, art = exported
    res = assert_clean_failure(["profile", str(art), "--input", "input=1x1x16x16:float32", "-w", str(ws)], capsys,
                               ws, mentions="exported for inputs")
    assert "1x16x32" in res.err


@pytest.mark.parametrize("override,mentions", [("mask_ratio_end=0.5", "mask_ratio_end"),
                                               ("lr_batch_scaling=sqrt", "lr_batch_scaling"),
                                               ("timesteps=-3", "timesteps")])
def test_bad_recipe_values_through_the_cli(override: str, mentions: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    ws = tmp_path / "ws"
    assert_clean_failure(["train", "diffmavil_c", "--set", override, "-w", str(ws)], capsys, ws, mentions=mentions)
    assert not (ws / "zoo" / "diffmavil_c").exists()


def _papers_section(artifact: str) -> None:
    import pandas as pd

    from trainers.diffmavil.dashboard import section

    section(pd.DataFrame({"artifact.path": [artifact]}) if artifact else pd.DataFrame())


@pytest.mark.parametrize("with_records", [True, False])
def test_dashboard_section_renders(with_records: bool, exported: tuple[Path, Path]) -> None:
    """The Papers-page section on the real trained checkpoint found through its artifact: the cost table and the
    FLOPs-vs-probe chart; a hint and no chart without records."""
    from streamlit.testing.v1 import AppTest

    _, art = exported
    at = AppTest.from_function(_papers_section, args=(str(art) if with_records else "",), default_timeout=60).run()
    assert not at.exception
    charts = at.get("plotly_chart")
    if with_records:
        assert len(charts) == 1 and at.dataframe[0].value["audio probe"].between(0, 1).all()
    else:
        assert not charts and at.info
