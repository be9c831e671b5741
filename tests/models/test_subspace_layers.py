import pytest
import torch
from torch import nn

from models import checkpoint
from models.layers.subspace import (SubspaceConv2d, bake_, coefficients, cos2, set_alpha, to_subspace,
                                    topk_mask)
from models.lcs_cnn import bake, set_level
from models.registry import build


def _line(**kw):
    return build("lcs_cnn", {**vars(build("lcs_cnn").args.tiny()), "subspace": "line", **kw})


def test_coefficients_line_bezier_simplex():
    assert coefficients("line", 0.25, 2) == [0.75, 0.25]
    assert coefficients("bezier", 0.5, 3) == [0.25, 0.25, 0.5]
    assert coefficients("simplex", [0.2, 0.3, 0.5], 3) == [0.2, 0.3, 0.5]
    with pytest.raises(ValueError):
        coefficients("simplex", [0.5, 0.5], 3)


def test_to_subspace_keeps_names_and_point0():
    plain = nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4), nn.Flatten(), nn.Linear(4 * 36, 3))
    ref = {k: v.clone() for k, v in plain.state_dict().items()}
    to_subspace(plain, "line")
    assert isinstance(plain[0], SubspaceConv2d) and "0.weight_1" in plain.state_dict()
    assert torch.equal(plain.state_dict()["0.weight"], ref["0.weight"])
    assert not torch.equal(plain[0].weight, plain[0].weight_1)  # endpoints initialised independently


def test_line_endpoints_and_midpoint():
    m = _line(alpha_sparsity=False).eval()
    x = torch.randn(3, 1, 8, 8)
    conv = m.features[3]
    with set_alpha(m, 0.5):
        w = conv.at("weight")
    assert torch.allclose(w, (conv.weight + conv.weight_1) / 2)
    with set_alpha(m, 0.0):
        y0 = m(x)
    baked = bake(m, 0.0)
    assert torch.allclose(baked(x), y0, atol=1e-6)
    assert m.features[3].alpha == 1.0  # context manager restored it


def test_topk_mask_per_layer_and_first_conv_dense():
    w = torch.arange(100.0).view(10, 10)
    assert int(topk_mask(w, 0.1).sum()) == 10 and topk_mask(w, 0.1)[-1].all()
    m = _line().eval()
    p = bake(m, 0.1)
    assert (p.features[0].weight != 0).all()          # first conv never sparsified
    kept = (p.features[3].weight != 0).float().mean().item()
    assert kept == pytest.approx(0.1, abs=0.01)


def test_mask_gives_zero_gradient_to_pruned_weights():
    m = _line().train()
    set_level(m, 0.2)
    m(torch.randn(4, 1, 8, 8)).sum().backward()
    conv = m.features[3]
    with torch.no_grad():
        mask = topk_mask(conv.at("weight"), 0.2)
    assert (conv.weight.grad[mask == 0] == 0).all() and conv.weight.grad[mask == 1].abs().sum() > 0


def test_cos2_global_and_differentiable():
    m = _line()
    c = cos2(m)
    assert 0 <= c.item() < 0.05
    c.backward()
    assert m.features[3].weight.grad is not None
    conv = m.features[3]
    with torch.no_grad():
        conv.weight_1.copy_(conv.weight)
    assert cos2(nn.Sequential(conv)).item() == pytest.approx(1.0)


def test_bake_generic_and_checkpoint_roundtrip(tmp_path):
    m = _line(norm="batch")
    checkpoint.save(m, tmp_path / "ck", {})
    loaded, _ = checkpoint.load(tmp_path / "ck")
    assert "features.1.weight_1" in loaded.state_dict()
    x = torch.randn(2, 1, 8, 8)
    with set_alpha(loaded, 0.3, keep=1.0):
        y = loaded(x)
        bake_(loaded)
    assert not any(isinstance(mod, SubspaceConv2d) for mod in loaded.modules())
    assert torch.allclose(loaded(x), y, atol=1e-6)
