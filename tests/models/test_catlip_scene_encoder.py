"""The scene image encoder shared by CatLIP and CLIP with model-zoo experts (models/scene_encoder.py)."""

from __future__ import annotations

import pytest
import torch

from models.registry import build
from models.scene_encoder import SceneEncoderArgs


def test_default_size_embedding_and_feature_map() -> None:
    model = build("scene_encoder", SceneEncoderArgs()).eval()
    assert 90_000 < sum(p.numel() for p in model.parameters()) < 110_000
    x = torch.rand(2, 3, 32, 32)
    emb, fmap = model(x, return_map=True)
    assert emb.shape == (2, 96) and fmap.shape == (2, 96, 8, 8)
    assert torch.allclose(emb, fmap.mean((2, 3))) and torch.equal(model(x), emb)


def test_encoder_drops_the_head_and_keeps_the_embedding() -> None:
    torch.manual_seed(0)
    model = build("scene_encoder", SceneEncoderArgs(num_classes=40, embed_dim=24)).eval()
    x = torch.rand(3, 3, 32, 32)
    enc = model.encoder()
    assert not any(k.startswith("head.") for k in enc.state_dict()) and not enc.training
    assert model(x).shape == (3, 40) and torch.allclose(enc(x), model.embed(model.feature_map(x)))
    assert enc(x).shape == (3, 24)


def test_deploy_is_the_wide_headless_encoder() -> None:
    args = SceneEncoderArgs.deploy()
    model = build("scene_encoder", args)
    assert args.num_classes == 0 and args.image_size == 224
    assert 1.5e6 < sum(p.numel() for p in model.parameters()) < 1.6e6


@pytest.mark.parametrize("bad", [dict(channels=(8, 8), strides=(1,)), dict(norm="layer"), dict(num_classes=-1),
                                 dict(strides=(0, 2, 1, 1))])
def test_bad_args_are_errors(bad: dict) -> None:
    with pytest.raises(ValueError):
        build("scene_encoder", SceneEncoderArgs(**bad))
