"""Bad `sampler:` recipe values fail with one line naming the problem and the fix, before anything is trained or
written: a batch that would be 0 at the largest size, out-of-range and unknown values, a curriculum outside the
resolution set, a base size the model or dataset does not have, and steps larger than the training split."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.app.cli_harness import assert_clean_failure

CASES = [
    (["batch_size=1", "sampler.max_size=64"], "batch at 64x64 would be 0"),
    (["sampler.scales=0"], "sampler.scales=0 is out of range"),
    (["sampler.divisor=1000"], "sampler.divisor=1000 is out of range"),
    (["sampler.crop_scale=0"], "sampler.crop_scale=0 is out of range"),
    (["sampler.max_size=5000"], "sampler.max_size=5000 is out of range"),
    (["sampler.kind=huge"], "sampler.kind 'huge' is unknown"),
    (["sampler.min_size=64"], "min_size=64 is above max_size"),
    (["sampler.base_size=28"], "not a multiple of divisor"),
    (["sampler.curriculum=[20,48]"], "curriculum"),
    (["sampler.curriculum=[48,24]"], "curriculum"),
    (["sampler.kind=single", "sampler.curriculum=[24,48]"], "needs a multi-scale sampler"),
    (["sampler.bogus=1"], "unknown keys ['bogus']"),
    (["sampler.scales=two"], "sampler.scales='two' is not an int"),
    (["sampler=5"], "sampler=5 is not"),
    (["model_args.image_size=40"], "differs from the model's image_size"),
    (["sampler.base_size=8", "model_args.image_size=8", "sampler.min_size=8"], "dataset's images are 32x32"),
    (["batch_size=400"], "exceeds the 1200 training images"),
]


@pytest.mark.parametrize("sets,mentions", CASES, ids=[c[1][:32] for c in CASES])
def test_bad_sampler_values_fail_cleanly(sets: list[str], mentions: str, capsys, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "tmp").mkdir()  # a temp folder of our own: other processes' edgezoo-* temp dirs are not ours
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    argv = ["train", "ms_msc_vbs", "-w", str(tmp_path / "ws"), "--set", "epochs=1"]
    for s in sets:
        argv += ["--set", s]
    res = assert_clean_failure(argv, capsys, tmp_path / "ws", mentions=mentions)
    assert "->" in res.err  # the fix follows the problem on the same line
    assert not (tmp_path / "ws" / "zoo").exists() or not any((tmp_path / "ws" / "zoo").iterdir())
