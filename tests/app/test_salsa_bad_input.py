"""SALSA bad input through the real CLI: an unknown reward keyword list, beta out of range and soup parents of
different shapes are one-line errors, and nothing is written."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest

from models import checkpoint
from models.openelm import ModelArgs, OpenELM
from tests.app.cli_harness import assert_clean_failure

CONFIGS = Path(__file__).resolve().parents[2] / "trainers" / "salsa" / "configs"


@pytest.fixture(autouse=True)
def own_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Temp files of this test only: other jobs on the machine may leave theirs in the shared one meanwhile."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))


@pytest.mark.parametrize("override,mentions", [
    ("keywords=rust", "keyword list 'rust'"), ("beta=-0.5", "beta"), ("beta=100", "beta"), ("beta=nan", "beta"),
    ("updates=0", "updates"), ("reference=null", "reference")])
def test_policy_recipe_bad_values(tmp_path: Path, capsys: pytest.CaptureFixture, override: str, mentions: str) -> None:
    out = tmp_path / "policy"
    assert_clean_failure(["train", str(CONFIGS / "salsa_policy_soup.yaml"), "--set", override, "--out", str(out),
                          "-w", str(tmp_path)], capsys, tmp_path, mentions=mentions)
    assert not out.exists()


def test_soup_of_parents_with_different_shapes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tiny = dataclasses.replace(ModelArgs.tiny(), max_context_length=128)
    checkpoint.save(OpenELM(tiny), tmp_path / "zoo" / "a", {})
    checkpoint.save(OpenELM(dataclasses.replace(tiny, model_dim=48)), tmp_path / "zoo" / "b", {})
    out = tmp_path / "zoo" / "soup"
    assert_clean_failure(["train", str(CONFIGS / "salsa_soup.yaml"), "--set", "parents=[a,b]", "--out", str(out),
                          "-w", str(tmp_path)], capsys, tmp_path, mentions="soup parents")
    assert not out.exists()


def test_soup_of_a_missing_parent(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "zoo" / "soup"
    assert_clean_failure(["train", str(CONFIGS / "salsa_soup.yaml"), "--out", str(out), "-w", str(tmp_path)],
                         capsys, tmp_path, mentions="salsa_sft1")
    assert not out.exists()
