import random

import numpy as np
import torch

from models.layers.subspace import cos2
from trainers.data import load_dataset
from trainers.subspaces.recipe import fit, interpolate, logits_at, recipe_from_dict, sample_alpha, train_split
from models.registry import build


def test_train_split_size_and_noise():
    data = load_dataset("digits")
    clean = train_split(data, recipe_from_dict({"train_size": 500}))
    noisy = train_split(data, recipe_from_dict({"train_size": 500, "label_noise": 0.3}))
    assert len(clean.y) == 500 and np.bincount(clean.y).min() == 50
    changed = (clean.y != noisy.y).mean()
    assert 0.2 < changed < 0.35  # 30 % replaced, 1/10 of those keep their label


def test_simplex_alpha_on_simplex():
    m = build("lcs_cnn", {"subspace": "simplex", "points": 3, "norm": "batch"})
    z = sample_alpha(m, random.Random(0))
    assert len(z) == 3 and abs(sum(z) - 1) < 1e-9 and min(z) > 0


def test_line_trains_recalibrates_and_interpolates():
    data = load_dataset("digits")
    r = recipe_from_dict({"epochs": 3, "channels": [8, 16, 16]})
    split = train_split(data, r)
    line = fit(r, split)
    before = {k: v.clone() for k, v in line.state_dict().items()}
    mid = logits_at(line, 0.5, split.x, data.test.x)
    assert all(torch.equal(before[k], v) for k, v in line.state_dict().items())  # statistics restored
    assert (mid.argmax(1).numpy() == data.test.y).mean() > 0.3
    assert cos2(line).item() < 0.5
    a = fit(recipe_from_dict({"epochs": 1, "channels": [8, 16, 16], "subspace": "none"}), split)
    b = fit(recipe_from_dict({"epochs": 1, "channels": [8, 16, 16], "subspace": "none", "seed": 1}), split)
    d = interpolate(a, b)
    x = torch.from_numpy(data.test.x[:5])
    assert torch.allclose(logits_at(d, 1.0, split.x, data.test.x[:5]), logits_at(b, 1.0, split.x, data.test.x[:5]), atol=1e-5)
    assert x.shape[0] == 5


def test_quick_reproduce_subspaces():
    """`edgezoo reproduce subspaces --quick` end to end (two seeds, 4 epochs; seconds)."""
    from trainers.claims import label_verdict, reproduce
    from trainers.subspaces.claim import verdict

    r = reproduce("subspaces", quick=True)
    assert r.paper == "subspaces" and r.quick and r.seeds == [0, 1]
    assert r.verdict in ("pass (quick)", "fail (quick)", "inconclusive (quick)")
    assert r.verdict == label_verdict(verdict(r.measured)[0], True)
    for key in ("A_noisy", "B_mid_noisy", "A_clean", "B_mid_clean", "B_min_line", "D_mid", "B_ensemble"):
        assert len(r.measured[key]["per_seed"]) == 2 and 0.1 < r.measured[key]["mean"] <= 1.0, key
    assert r.measured["B_min_line"]["mean"] <= r.measured["B_min_end"]["mean"]  # a minimum over the line's alphas
    assert 0 <= r.measured["B_cos2"]["mean"] < 1 and "3b barrier" in r.reason
