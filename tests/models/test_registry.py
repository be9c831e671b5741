"""Every registered model: forward shapes, backward, export hook, checkpoint round-trip."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import models
from models import checkpoint
from models.registry import args_from_dict, build, example_inputs, exportable


@pytest.mark.parametrize("name", models.names())
def test_forward_backward_tiny(name: str) -> None:
    spec = models.get(name)
    model = build(name, spec.args_cls.tiny())
    x = example_inputs(model, 3)
    out = model(*x)
    assert out.shape == (3, model.args.num_classes)
    out.logsumexp(-1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", models.names())
@pytest.mark.parametrize("size", [8, 16, 32])
def test_input_sizes(name: str, size: int) -> None:
    args = dataclasses.replace(models.get(name).args_cls.tiny(), image_size=size, in_channels=3)
    model = build(name, args).eval()
    assert model(*example_inputs(model, 2)).shape == (2, args.num_classes)


@pytest.mark.parametrize("name", models.names())
def test_export_hook_traces(name: str) -> None:
    model = exportable(build(name, models.get(name).args_cls.tiny()))
    assert not model.training
    program = torch.export.export(model, example_inputs(model, 1))
    assert program.module()(*example_inputs(model, 1)).shape[-1] == model.args.num_classes


def test_paper_cards_complete() -> None:
    for name in models.names():
        card = models.get(name).card
        assert card.title and card.arxiv and card.code.startswith("https://")


def test_unknown_model_and_args_are_errors() -> None:
    with pytest.raises(KeyError, match="registered models"):
        models.get("nope")
    with pytest.raises(ValueError, match="unknown"):
        args_from_dict(models.get("resnet").args_cls, {"depth": 3})


def test_checkpoint_round_trip(tmp_path) -> None:
    model = build("resnet", models.get("resnet").args_cls.tiny()).eval()
    checkpoint.save(model, tmp_path / "ck", {"note": "x"})
    loaded, card = checkpoint.load(tmp_path / "ck")
    x = example_inputs(model, 2)
    assert torch.equal(model(*x), loaded(*x))
    assert card["model"] == "resnet" and card["note"] == "x" and len(card["weights_sha256"]) == 64
