"""Benchmark: the OpenELM trainer on one process vs two gloo processes (DDP, FSDP2) on the same global batches, in
one run: final train/val bpb of each and mean seconds per step (the train_seconds its card records / steps).
Two ranks on one 2-core CPU share the cores, so the step-time ratio shows communication overhead, not a speed-up.

Run: `make bench` or `python -m tests.benchmarks.test_sharded_training`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from tests.trainers.test_openelm_sharded import _torchrun
from trainers.openelm.recipe import load_lm_recipe
from trainers.openelm.train import train_lm

pytestmark = pytest.mark.benchmark
SETTINGS = ["steps=40", "eval_every=20", "eval_windows=16", "batch_size=8", "context=64", "warmup=5", "threads=1"]


def _summary(card: dict) -> dict[str, float]:
    last = card["history"][-1]
    return {"train_bpb": last["train_bpb"], "val_bpb": last["val_bpb"],
            "s_per_step": card["train_seconds"] / card["recipe"]["steps"]}


def run() -> dict[str, dict[str, float]]:
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "single"
        train_lm(load_lm_recipe("openelm_tiny", SETTINGS), out, progress=False)
        rows["single process"] = _summary(json.loads((out / "last" / "card.json").read_text()))
        for parallel in ("ddp", "fsdp"):
            out = Path(tmp) / parallel
            proc = _torchrun(out, parallel, SETTINGS)
            assert proc.returncode == 0, proc.stderr[-2000:]
            rows[f"2 ranks, {parallel}"] = _summary(json.loads((out / "last" / "card.json").read_text()))
    base = rows["single process"]["s_per_step"]
    for name, r in rows.items():
        print(f"{name:16s} train bpb {r['train_bpb']:.4f}  val bpb {r['val_bpb']:.4f}  "
              f"{r['s_per_step'] * 1000:7.1f} ms/step  ({r['s_per_step'] / base:.2f}x single)")
    return rows


def test_sharded_training_benchmark() -> None:
    rows = run()
    assert len(rows) == 3


if __name__ == "__main__":
    run()
