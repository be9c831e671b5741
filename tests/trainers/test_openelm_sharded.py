"""The OpenELM trainer under torchrun: 2 gloo processes with DDP and with FSDP2 (`fully_shard`) follow the
single-process run on the same global batches, and save one safetensors checkpoint whatever the number of ranks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from models import checkpoint
from trainers.openelm.recipe import load_lm_recipe
from trainers.openelm.train import train_lm

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ["steps=6", "eval_every=2", "eval_windows=4", "batch_size=4", "context=32", "warmup=2", "threads=1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(out: Path, parallel: str, settings: list[str] = SETTINGS) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "trainers.openelm.train", "openelm_tiny", str(out),
           *settings, f"parallel={parallel}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("single") / "ckpt"
    train_lm(load_lm_recipe("openelm_tiny", SETTINGS), out, progress=False)
    return out, json.loads((out / "last" / "card.json").read_text())


@pytest.mark.parametrize("parallel", ["fsdp", "ddp"])
def test_two_ranks_follow_the_single_process_run(tmp_path, single, parallel) -> None:
    proc = _torchrun(tmp_path / "ckpt", parallel)
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = json.loads((tmp_path / "ckpt" / "last" / "card.json").read_text())
    ref = single[1]
    assert card["world_size"] == 2 and card["recipe"]["parallel"] == parallel
    assert [h["step"] for h in card["history"]] == [h["step"] for h in ref["history"]]
    for got, want in zip(card["history"], ref["history"]):
        assert got["train_bpb"] == pytest.approx(want["train_bpb"], rel=1e-4)
        assert got["val_bpb"] == pytest.approx(want["val_bpb"], rel=1e-4)
    # one file, unsharded, loadable without torch.distributed; weights match the single-process ones
    files = sorted(p.name for p in (tmp_path / "ckpt" / "last").iterdir())
    assert files == ["card.json", "model.safetensors"]
    model, _ = checkpoint.load(tmp_path / "ckpt" / "last")
    ref_model, _ = checkpoint.load(single[0] / "last")
    for (name, p), (_, q) in zip(model.state_dict().items(), ref_model.state_dict().items()):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4, msg=name)


def test_batch_that_does_not_split_over_ranks_is_refused() -> None:
    from models.errors import RecipeError
    from trainers.openelm.train import check_batch_split

    check_batch_split(4, 2)
    with pytest.raises(RecipeError, match="batch_size = 3 does not split over 2 ranks"):
        check_batch_split(3, 2)
