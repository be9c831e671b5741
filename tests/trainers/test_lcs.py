import random

import pytest

from trainers.claims import reproducible, resolve
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
    assert {"lcs", "subspaces"} <= set(reproducible())
    assert callable(resolve("lcs")) and callable(resolve("subspaces"))


@pytest.mark.slow
def test_quick_claim_runs():
    from trainers.claims import label_verdict
    from trainers.lcs.claim import verdict

    r = resolve("lcs")(quick=True)
    assert r.verdict in ("pass (quick)", "fail (quick)", "inconclusive (quick)") and r.quick
    assert "lcs_l@0" in r.measured and len(r.seeds) >= 2
    assert r.verdict == label_verdict(verdict(r.measured)[0], True)


def test_width_and_bits_mappings():
    from models.lcs_cnn import BIT_ALPHAS, lcs_bits, width_factor
    from trainers.lcs.recipe import sandwich_alphas, step_alphas
    assert width_factor(0.0) == 0.25 and width_factor(1.0) == 1.0
    assert [lcs_bits(a) for a in BIT_ALPHAS] == [3, 4, 5, 6, 7, 8] and lcs_bits(0.025) == 3 and lcs_bits(0.5) == 5
    rng = random.Random(0)
    s = sandwich_alphas(rng)
    assert len(s) == 4 and s[:2] == [0.0, 1.0] and all(0.0 <= a <= 1.0 for a in s[2:])
    w = recipe_from_dict({"arm": "lcs_l", "compression": "width", "norm": "instance"})
    assert len(step_alphas(w, rng, 0.0)) == 4
    q = recipe_from_dict({"arm": "lcs_l", "compression": "bits"})
    assert {sample_alpha(q, rng, 0.0) for _ in range(300)} == set(BIT_ALPHAS)
    with pytest.raises(RecipeError):
        recipe_from_dict({"compression": "width"})  # GroupNorm cannot be sliced per channel
    with pytest.raises(RecipeError):
        recipe_from_dict({"compression": "pixels"})


def _tiny(compression, norm, epochs=3):
    r = {"arm": "lcs_l", "compression": compression, "norm": norm, "epochs": epochs, "lr": 0.005, "channels": [8, 16, 16]}
    return fit(recipe_from_dict(r), load_dataset("digits"))


def test_width_sandwich_trains_and_bakes_narrow(tmp_path):
    import torch
    from exporters.artifact import export_checkpoint
    from models import checkpoint
    from models.layers.subspace import SubspaceConv2d
    from models.lcs_cnn import bake
    from trainers.lcs.recipe import evaluate_levels

    m = _tiny("width", "instance", epochs=4)
    convs = [l for l in m.modules() if isinstance(l, SubspaceConv2d)]
    assert all(c.n_points == 1 for c in convs) and m.features[1].n_points == 2  # shared weights, norms on a line
    acc = evaluate_levels(m, load_dataset("digits").test)
    assert acc["a1"] > 0.3
    narrow, full = bake(m, 0.025), bake(m, 1.0)
    assert tuple(narrow.args.channels) == (3, 5, 5) and tuple(full.args.channels) == (8, 16, 16)  # ceil(0.269 C)
    x = torch.from_numpy(load_dataset("digits").test.x[:32])
    from models.lcs_cnn import set_level
    with torch.no_grad(), set_level(m, 0.025):
        assert torch.allclose(narrow(x), m(x), atol=1e-5)  # the narrow plain model is the subspace model at alpha
    checkpoint.save(m, tmp_path / "ck", {"dataset": "digits"})
    arts = {a: export_checkpoint(tmp_path / "ck", "onnx", f"lcs:alpha={a}", workspace=tmp_path) for a in (0.025, 1.0)}
    assert all(a.manifest["verification"]["ok"] for a in arts.values())
    assert arts[0.025].manifest["size_bytes"] < 0.6 * arts[1.0].manifest["size_bytes"]
    flops = {a: art.manifest["cost"]["flops"] for a, art in arts.items()}
    assert flops[0.025] < 0.3 * flops[1.0]


def test_bits_trains_and_bakes_on_the_grid():
    from models.lcs_cnn import bake
    from trainers.lcs.recipe import evaluate_levels

    m = _tiny("bits", "group")
    acc = evaluate_levels(m, load_dataset("digits").test)
    assert list(acc) == [f"{b}bit" for b in range(3, 9)] and acc["8bit"] > 0.3
    for alpha, bits in ((1 / 6, 3), (0.5, 5), (1.0, 8)):
        plain = bake(m, alpha)
        assert plain.args.bits == bits
        layers = [l for l in plain.modules() if hasattr(l, "weight") and l.weight is not None and l.weight.dim() > 1]
        assert len(layers) == 4
        for layer in layers:  # one scale per layer: at most 2^b grid values
            w = layer.weight.detach()
            assert 2 <= w.unique().numel() <= 2 ** bits
            step = w.abs().max() / (2 ** (bits - 1) - 1)
            assert (w / step - (w / step).round()).abs().max() < 1e-3
