"""Latency and size of LCS exports across alpha vs the dense end, on onnxruntime and MLX (printed, not asserted).

Unstructured sparsity is stored dense by these exporters, so size and latency do not fall with alpha on dense
runtimes: the table shows it rather than assuming it."""

import pytest

from models import checkpoint
from profiles.measure import Scenario
from profiles.sweep import format_table, sweep_lcs
from trainers.data import load_dataset
from trainers.lcs.recipe import fit, recipe_from_dict


@pytest.mark.benchmark
def test_lcs_sweep(tmp_path):
    model = fit(recipe_from_dict({"arm": "lcs_l", "epochs": 6, "lr": 0.005}), load_dataset("digits"))
    checkpoint.save(model, tmp_path / "ck", {"dataset": "digits"})
    rows = sweep_lcs(tmp_path / "ck", (0.025, 0.25, 0.5, 1.0), ("onnx", "mlx"), tmp_path, threads=1,
                     scenario=Scenario(min_iters=200, min_seconds=0.5))
    print("\n" + format_table(rows))
    assert all(r["status"] == "ok" for r in rows), rows
