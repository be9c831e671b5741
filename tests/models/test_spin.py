"""SPIN sharing: one module object per unique weight, the card's mappings, checkpoints, weight fusion."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from safetensors import safe_open

from models import checkpoint
from models.layers.sharing import groups, layer_map, unique_parameters
from models.registry import build
from trainers.spin import fusion


def test_mappings_as_specified() -> None:
    assert layer_map(8, 4, "sequential") == (0, 0, 1, 1, 2, 2, 3, 3)
    assert layer_map(8, 4, "strided") == (0, 1, 2, 3, 0, 1, 2, 3)
    rand = layer_map(8, 4, "random", seed=3)
    assert Counter(rand) == {u: 2 for u in range(4)} and rand == layer_map(8, 4, "random", seed=3)
    assert len({layer_map(8, 4, "random", seed=s) for s in range(6)}) > 1  # really shuffled
    assert layer_map(6, 0, "random") == layer_map(6, 6, "strided") == tuple(range(6))  # unshared: identity
    assert groups(layer_map(8, 4, "strided")) == [[0, 4], [1, 5], [2, 6], [3, 7]]
    with pytest.raises(ValueError, match="divide"):
        layer_map(8, 3)
    with pytest.raises(ValueError, match="mapping"):
        layer_map(8, 4, "zigzag")


@pytest.mark.parametrize("mapping", ["sequential", "strided", "random"])
def test_convmixer_shares_one_module_object(mapping: str) -> None:
    model = build("spin_convmixer", {"dim": 16, "depth": 8, "share": 4, "mapping": mapping})
    for u, layers in enumerate(groups(model.layer_map)):
        assert len(layers) == 2
        a, b = (model.shared_module(i) for i in layers)
        assert a is b is model.pointwise[u] and a.weight is b.weight
    pw_keys = [k for k in model.state_dict() if k.startswith("pointwise.") and k.endswith(".weight")]
    assert len(pw_keys) == 4  # card pass condition 4
    unshared = build("spin_convmixer", {"dim": 16, "depth": 8, "share": 0})
    assert unique_parameters(unshared) - unique_parameters(model) == 4 * (16 * 16 + 16)


def test_shared_weight_gets_gradient_from_every_layer() -> None:
    model = build("spin_convmixer", {"dim": 8, "depth": 4, "share": 1})
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    grad_all = model.pointwise[0].weight.grad.clone()
    model.zero_grad()
    model.layer_map = (0,)  # the same forward with only the first block's use of the weight
    model.blocks = model.blocks[:1]
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    assert not torch.allclose(grad_all, model.pointwise[0].weight.grad)


def test_vit_shares_mlp() -> None:
    model = build("vit", {"dim": 16, "depth": 4, "heads": 2, "share": 2, "mapping": "strided"})
    assert model.shared_module(0) is model.shared_module(2) is model.mlps[0]
    assert model.shared_module(0) is not model.shared_module(1)
    assert len([k for k in model.state_dict() if k.startswith("mlps.")]) == 2 * 4  # 2 MLPs x (2 weights + 2 biases)
    assert model.blocks[0].norm2 is not model.blocks[2].norm2  # norms stay per layer


def test_checkpoint_stores_each_shared_tensor_once(tmp_path) -> None:
    model = build("spin_convmixer", {"dim": 16, "depth": 8, "share": 4, "mapping": "random", "mapping_seed": 5}).eval()
    checkpoint.save(model, tmp_path / "ck", {})
    with safe_open(str(tmp_path / "ck" / checkpoint.WEIGHTS), "pt") as f:
        keys = list(f.keys())
    assert sum(k.startswith("pointwise.") for k in keys) == 8  # 4 weights + 4 biases, not 16
    loaded, _ = checkpoint.load(tmp_path / "ck")
    assert loaded.layer_map == model.layer_map
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(loaded(x), model(x))


def _trained_like_unshared(name: str, **args) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build(name, {"share": 0, **args})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


@pytest.mark.parametrize("reduction", fusion.REDUCTIONS)
@pytest.mark.parametrize("mapping", ["sequential", "strided"])
def test_fusion_groups_follow_mapping(reduction: str, mapping: str) -> None:
    src = _trained_like_unshared("spin_convmixer", dim=8, depth=8)
    model = fusion.prepare(src, share=4, mapping=mapping, reduction=reduction).eval()
    x = torch.randn(2, 1, 8, 8)
    before = model(x)
    fusion.fuse(model)
    assert torch.allclose(before, model(x), atol=1e-5)
    assert len([k for k in model.state_dict() if k.startswith("pointwise.")]) == 8
    for u, layers in enumerate(groups(model.layer_map)):  # strided: layers {u, u + 4}, not {2u, 2u + 1}
        ws = torch.stack([src.pointwise[i].weight for i in layers])
        bs = torch.stack([src.pointwise[i].bias for i in layers])
        want_w, want_b = (ws[0], bs[0]) if reduction == "first" else (ws.mean(0), bs.mean(0))
        assert torch.allclose(model.pointwise[u].weight, want_w) and torch.allclose(model.pointwise[u].bias, want_b)
    assert torch.equal(model.blocks[5].depthwise.weight, src.blocks[5].depthwise.weight)  # per-layer parts copied


def test_fusion_finetune_reaches_every_original_and_weights_learn() -> None:
    src = _trained_like_unshared("spin_convmixer", dim=8, depth=4)
    model = fusion.prepare(src, share=2, reduction="channel").train()
    model(torch.randn(4, 1, 8, 8)).square().sum().backward()
    for group in model.pointwise:
        assert group.stacked[0].grad.abs().sum(dim=(1, 2, 3, 4)).gt(0).all()  # both members of the group
        assert group.scales["0"].grad is not None and group.scales["0"].shape == (2, 8)
    with pytest.raises(ValueError, match="unshared"):
        fusion.prepare(build("spin_convmixer", {"dim": 8, "depth": 4, "share": 2}), share=1)


def test_fusion_vit() -> None:
    src = _trained_like_unshared("vit", dim=16, depth=4, heads=2)
    model = fusion.prepare(src, share=2, reduction="scalar").eval()
    x = torch.randn(2, 1, 8, 8)
    before = model(x)
    assert torch.allclose(before, fusion.fuse(model)(x), atol=1e-5)
    assert isinstance(model.mlps[0], torch.nn.Sequential)
