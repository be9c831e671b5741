"""`edgezoo lm import`: an upstream-layout folder (config.json + safetensors, upstream tensor names) enters the zoo,
then exports and profiles like a trained checkpoint; bad folders give one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from app.cli import app
from models import checkpoint
from models.openelm import ModelArgs, OpenELM
from models.openelm_upstream import save_upstream


def test_import_upstream_folder_then_export(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = OpenELM(ModelArgs.tiny()).eval()
    save_upstream(model, tmp_path / "OpenELM-tiny")
    ws = tmp_path / "ws"
    res = CliRunner().invoke(app, ["lm", "import", str(tmp_path / "OpenELM-tiny"), "-w", str(ws)])
    assert res.exit_code == 0, res.output
    loaded, card = checkpoint.load(ws / "zoo" / "OpenELM-tiny")
    x = torch.randint(0, 256, (1, 9))
    assert card["task"] == "lm" and card["source"]["upstream_folder"].endswith("OpenELM-tiny")
    assert torch.equal(loaded(x), model(x))
    out = tmp_path / "art"
    res = CliRunner().invoke(app, ["lm", "export", str(ws / "zoo" / "OpenELM-tiny"), "-f", "torch", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "lm_manifest.json").read_text())["vocab_size"] == 256


def test_import_rejects_bad_folders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(app, ["lm", "import", str(tmp_path / "empty"), "-w", str(tmp_path / "ws")])
    assert res.exit_code == 2 and "no config.json" in res.output and "->" in res.output
    bad = tmp_path / "bad"
    save_upstream(OpenELM(ModelArgs.tiny()), bad)
    (bad / "model.safetensors").write_bytes(b"\x00" * 64)  # truncated weights
    res = CliRunner().invoke(app, ["lm", "import", str(bad), "-w", str(tmp_path / "ws")])
    assert res.exit_code == 2 and "not a loadable OpenELM checkpoint" in res.output
    assert not (tmp_path / "ws" / "zoo" / "bad").exists()
