"""Language-model checkpoints through the `exporters` command (the same export_checkpoint as vision ones), and the
export-time verification of LM ONNX and MLX artifacts: prefill logits and greedy tokens against torch on a fixed
byte prompt (exporters.lm.parity), run through the format's own library."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from exporters.artifact import MANIFEST, export_checkpoint
from models import checkpoint
from models.openelm import ModelArgs, OpenELM
from tests.app.cli_harness import invoke


@pytest.fixture(scope="module")
def lm_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return checkpoint.save(OpenELM(ModelArgs.tiny()), tmp_path_factory.mktemp("lm") / "ckpt", {"tokenizer": "bytes"})


def _exported(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[dict, dict]:
    """(printed summary, manifest on disk) of a successful `exporters ...` run."""
    res = invoke(argv, capsys, prog="exporters")
    assert res.code == 0, res.err
    summary = json.loads(res.out)
    return summary, json.loads((Path(summary["artifact"]) / MANIFEST).read_text())


def test_exporters_cli_onnx_lm_verified(lm_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    summary, manifest = _exported(["onnx", str(lm_ckpt), "--workspace", str(tmp_path / "ws")], capsys)
    assert set(summary) == {"artifact", "size_bytes", "bits_per_weight", "verification"}
    assert Path(summary["artifact"]).is_relative_to(tmp_path / "ws" / "artifacts")
    assert manifest["task"] == "lm" and manifest["format"] == "onnx" and (Path(summary["artifact"]) / "onnx").is_dir()
    v = manifest["verification"]
    assert summary["verification"] == v
    assert v["kind"] == "numeric" and v["ok"] is True and v["runtime"].startswith("onnxruntime")
    assert v["greedy_match"] is True and v["greedy_exact_required"] is True and v["top1_agreement"] == 1.0
    assert v["max_abs_err"] < 1e-3 and len(v["greedy_tokens"]) == len(v["torch_tokens"]) > 0


def test_exporters_cli_mlx_int4_lm(lm_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "mlx-int4"
    summary, manifest = _exported(["mlx", str(lm_ckpt), "-c", "int4", "--out", str(out)], capsys)
    assert Path(summary["artifact"]) == out.resolve() and (out / "mlx" / "config.json").is_file()
    assert manifest["compression"]["method"] == "int4" and 4 < summary["bits_per_weight"] < 8
    v = manifest["verification"]
    assert v["kind"] == "numeric" and v["runtime"] == "mlx-lm" and v["greedy_exact_required"] is False
    assert 0.0 <= v["greedy_agreement"] <= 1.0 and isinstance(v["ok"], bool) and v["sqnr_db"] > 0
    # the same --out again is the same export (reused); a folder holding someone's files is never replaced
    again, _ = _exported(["mlx", str(lm_ckpt), "-c", "int4", "--out", str(out)], capsys)
    assert again["artifact"] == str(out.resolve())
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    for extra in ([], ["--force"]):
        res = invoke(["mlx", str(lm_ckpt), "-c", "int4", "--out", str(theirs), *extra], capsys, prog="exporters")
        assert res.code != 0 and "not empty" in res.err
    assert [p.name for p in theirs.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("fmt", ["onnx", "mlx"])
def test_lm_export_manifest_numeric_for_none(fmt: str, lm_ckpt: Path, tmp_path: Path) -> None:
    art = export_checkpoint(lm_ckpt, fmt, "none", out_dir=tmp_path / fmt)
    v = json.loads((art.path / MANIFEST).read_text())["verification"]
    assert v["kind"] == "numeric" and v["ok"] is True and v["greedy_match"] is True
    assert v["sqnr_db"] > 40 and v["prompt"].startswith("def ")
