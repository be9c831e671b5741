import random

import pytest

from trainers.claims import REPRODUCERS, resolve
from trainers.data import load_dataset
from trainers.lcs.recipe import df, evaluate_grid, fit, recipe_from_dict, sample_alpha
from models.errors import RecipeError


def test_schedule_and_sampling():
    assert df(0, 100, 0.8) == 1.0 and df(40, 100, 0.8) == pytest.approx(0.5) and df(80, 100, 0.8) == 0.0
    rng = random.Random(0)
    r = recipe_from_dict({"arm": "lcs_l"})
    draws = [sample_alpha(r, rng, 0.0) for _ in range(4000)]
    ends = sum(a in (0.025, 1.0) for a in draws) / len(draws)
    assert 0.45 < ends < 0.55 and min(draws) >= 0.025
    p = recipe_from_dict({"arm": "lcs_p"})
    assert sample_alpha(p, rng, 0.5) == 1.0   # dense during warmup
    with pytest.raises(RecipeError):
        recipe_from_dict({"arm": "lcs_l", "bogus": 1})


def test_lcs_line_trains_and_degrades_with_sparsity():
    data = load_dataset("digits")
    m = fit(recipe_from_dict({"arm": "lcs_l", "epochs": 6, "lr": 0.005, "channels": [8, 16, 16]}), data)
    acc = evaluate_grid(m, data.test, (0.0, 0.975))
    assert acc["0"] > 0.3 and acc["0"] >= acc["0.975"]


def test_reproducers_registered():
    assert "lcs" in REPRODUCERS and "subspaces" in REPRODUCERS
    assert callable(resolve("lcs")) and callable(resolve("subspaces"))


@pytest.mark.slow
def test_quick_claim_runs():
    r = resolve("lcs")(quick=True)
    assert r.verdict in ("pass", "fail", "inconclusive") and "lcs_l@0" in r.measured and len(r.seeds) >= 2
