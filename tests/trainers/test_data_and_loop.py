from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from models import checkpoint
from tests.conftest import tiny_recipe
from trainers.data import load_digits
from trainers.loop import train

ROOT = Path(__file__).resolve().parents[2]


def test_digits_split_fixed_disjoint_and_hashed() -> None:
    a, b = load_digits(), load_digits()
    assert a.split_hash == b.split_hash
    n = len(a.train.y) + len(a.val.y) + len(a.test.y)
    assert n == 1797
    assert a.train.x.shape[1:] == (1, 8, 8) and a.train.x.max() <= 1.0
    assert set(np.unique(a.test.y)) == set(range(10))  # stratified


def test_train_writes_best_and_last_with_card(tiny_checkpoints) -> None:
    ck = tiny_checkpoints["resnet"]
    card = json.loads((ck / "card.json").read_text())
    assert (ck / "last" / checkpoint.WEIGHTS).exists()
    assert card["data_split_hash"] == load_digits().split_hash
    assert len(card["history"]) == 2 and "val_accuracy" in card["history"][0]
    assert 0.0 <= card["metrics"]["test_accuracy"] <= 1.0 and card["metrics"]["test_n"] == 270


def test_training_learns_and_is_seeded(tmp_path) -> None:
    r = tiny_recipe("resnet", epochs=3)
    m1 = train(r, tmp_path / "a", progress=False)
    m2 = train(r, tmp_path / "b", progress=False)
    assert m1["val_accuracy"] > 0.5  # far above chance (0.1) after 3 epochs
    assert m1["val_accuracy"] == m2["val_accuracy"]


def test_torchrun_ddp_two_processes(tmp_path) -> None:
    """Two gloo processes train one recipe; rank 0 writes the checkpoint."""
    script = tmp_path / "ddp.py"
    script.write_text(
        "import sys; sys.path.insert(0, %r)\n"
        "from tests.conftest import tiny_recipe\n"
        "from trainers.loop import train\n"
        "train(tiny_recipe('resnet', epochs=1), %r, progress=False)\n" % (str(ROOT), str(tmp_path / "ddp"))
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                           str(script)], capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    card = json.loads((tmp_path / "ddp" / "card.json").read_text())
    assert card["world_size"] == 2
