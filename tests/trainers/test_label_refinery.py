"""Label Refinery plug-in (card 16): frozen refinery in eval/train mode, the soft loss, crop-wise vs image-level
labels, lineage in card.json, recipe errors, the verdict table, and the main job on ONNX."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from models.errors import RecipeError
from trainers.claims import seed_summary
from trainers.label_refinery import claim
from trainers.label_refinery.recipe import (MODEL, augment, fit, freeze, recipe_from_dict, refinery_split,
                                            soft_cross_entropy, train)
from models.registry import build

TINY = {"channels": [4, 8, 8], "epochs": 1, "batch_size": 64}


@pytest.fixture(scope="module")
def data():
    return refinery_split(0)


def _bn_stats(model: nn.Module) -> list[torch.Tensor]:
    return [b.running_mean.clone() for b in model.modules() if isinstance(b, nn.BatchNorm2d)]


@pytest.mark.parametrize("mode,changes", [("eval", False), ("train", True)])
def test_refinery_frozen_and_mode(data, mode, changes) -> None:
    refinery = build(MODEL, {"channels": [4, 8, 8], "norm": "batch"})
    before = [p.clone() for p in refinery.parameters()]
    stats = _bn_stats(refinery)
    recipe = recipe_from_dict({**TINY, "refinery": "r", "refinery_mode": mode})
    fit(recipe, data, refinery)
    assert all(not p.requires_grad and p.grad is None for p in refinery.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, refinery.parameters()))  # no step reaches it
    assert refinery.training == (mode == "train")
    moved = any(not torch.equal(a, b) for a, b in zip(stats, _bn_stats(refinery)))
    assert moved == changes


def test_freeze_default_is_eval() -> None:
    m = freeze(build(MODEL, {"channels": [4, 8, 8], "norm": "batch"}).train())
    assert not m.training and not any(p.requires_grad for p in m.parameters())


def test_loss_is_kl_plus_entropy() -> None:
    torch.manual_seed(0)
    zs, zr = torch.randn(6, 10), torch.randn(6, 10)
    p_r = zr.softmax(1)
    kl = nn.functional.kl_div(zs.log_softmax(1), p_r, reduction="batchmean")
    entropy = -(p_r * p_r.log()).sum(1).mean()
    assert soft_cross_entropy(zs, p_r).item() == pytest.approx((kl + entropy).item(), rel=1e-5)
    onehot = nn.functional.one_hot(torch.tensor([1, 2, 3, 4, 5, 6]), 10).float()
    assert soft_cross_entropy(zs, onehot).item() == pytest.approx(
        nn.functional.cross_entropy(zs, torch.tensor([1, 2, 3, 4, 5, 6])).item(), rel=1e-5)


def test_crop_labels_differ_from_image_labels(data) -> None:
    torch.manual_seed(0)
    refinery = fit(recipe_from_dict({**TINY, "epochs": 3}), data)
    x = torch.from_numpy(data.train.x[:64])
    with torch.no_grad():
        image = refinery(x).softmax(1)
        crops = refinery(augment(x, torch.Generator().manual_seed(1), 5, 0.5, 4, 8)).softmax(1)
    assert (crops - image).abs().sum(1).mean() > 0.05
    same = augment(x, torch.Generator().manual_seed(1), 8, 0.0, 0, 8)  # full-size window, no erasing: identity
    assert torch.allclose(same, x, atol=1e-5)


def test_split_sizes(data) -> None:
    assert (len(data.train.y), len(data.val.y), len(data.test.y)) == (400, 300, 1097)
    assert refinery_split(0).split_hash == data.split_hash != refinery_split(1).split_hash


def test_lineage_in_card(tmp_path) -> None:
    zoo = tmp_path / "zoo"
    train(recipe_from_dict({**TINY, "name": "g1"}), zoo / "g1")
    m2 = train(recipe_from_dict({**TINY, "name": "g2", "refinery": "g1"}), zoo / "g2")
    train(recipe_from_dict({**TINY, "name": "g3", "refinery": str(zoo / "g2")}), zoo / "g3")
    from models.checkpoint import checkpoint_hash

    cards = {g: json.loads((zoo / g / "card.json").read_text()) for g in ("g1", "g2", "g3")}
    assert cards["g1"]["generation"] == 1 and cards["g1"]["refinery"] is None
    assert cards["g2"]["generation"] == 2 and cards["g3"]["generation"] == 3
    assert cards["g2"]["refinery"]["checkpoint_hash"] == checkpoint_hash(zoo / "g1")
    assert cards["g3"]["refinery"]["checkpoint_hash"] == checkpoint_hash(zoo / "g2")
    assert {"test_accuracy", "train_accuracy", "gap", "ece"} <= set(m2)


@pytest.mark.parametrize("bad,message", [
    ({"bogus": 1}, "unknown keys"),
    ({"epochs": "ten"}, "epochs='ten' is not an int"),
    ({"epochs": 0}, "epochs=0 is out of range"),
    ({"lr": -1.0}, "lr=-1.0 is out of range"),
    ({"crop": 9}, "crop=9 is out of range"),
    ({"crop": 6, "crop_max": 5}, "crop_max=5 is below crop=6"),
    ({"erase_prob": 1.5}, "erase_prob=1.5 is out of range"),
    ({"refinery_mode": "frozen"}, "refinery_mode 'frozen' is unknown"),
    ({"image_level": True}, "image_level needs a refinery"),
    ({"lr_steps": [0.9, 0.5]}, "lr_steps"),
    ({"image_level": "yes", "refinery": "x"}, "image_level='yes' is not a bool"),
    ({"name": "../out"}, "not a plain folder name"),
])
def test_recipe_bad_inputs(bad, message) -> None:
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace("[", r"\[")):
        recipe_from_dict(bad, "r.yaml")


def test_refinery_of_other_architecture_or_classes(tmp_path, data) -> None:
    from models import checkpoint

    zoo = tmp_path / "zoo"
    for name, model in (("res", build("resnet", {"widths": [4]})),
                        ("c5", build(MODEL, {"channels": [4, 8, 8], "norm": "batch", "num_classes": 5}))):
        checkpoint.save(model, zoo / name, {"data_split_hash": data.split_hash})
    checkpoint.save(build(MODEL, {"channels": [4, 8, 8], "norm": "batch"}), zoo / "split", {"data_split_hash": "x"})
    for name, message in (("res", "'resnet' model, not the student's family"), ("c5", "has 5 classes"),
                          ("split", "another data split"), ("missing", "does not exist")):
        with pytest.raises(RecipeError, match=message) as e:
            train(recipe_from_dict({**TINY, "refinery": name}), zoo / "student")
        assert "\n" not in str(e.value)
    assert not (zoo / "student").exists()


def _measured(diffs: dict[tuple[str, str, str], list[float]]) -> dict:
    base = {(a, b, m): [0.02, 0.021, 0.019] if h else [-0.02, -0.021, -0.019]
            for _, a, b, m, h in claim.CONDITIONS}
    base.update(diffs)
    return {claim.diff_key(a, b, m): seed_summary(v) for (a, b, m), v in base.items()}


ACC = ("m2", "m1", "test_accuracy")
GAP = ("m2", "m1", "gap")
CROP = ("m2", "abl2_image_level", "test_accuracy")
STRONG = ("strong", "m2", "test_accuracy")


@pytest.mark.parametrize("diffs,expected", [
    ({}, "pass"),
    ({ACC: [-0.02, -0.021, -0.019]}, "fail"),                  # refined M2 less accurate
    ({GAP: [0.01, 0.011, 0.009]}, "fail"),                     # gap grows
    ({CROP: [-0.01, -0.011, -0.012]}, "fail"),                 # image-level labels better
    ({STRONG: [-0.03, -0.031, -0.029]}, "fail"),               # wide refinery's student worse
    ({ACC: [0.01, -0.01, 0.002]}, "inconclusive"),             # within noise
    ({GAP: [0.01, -0.012, -0.001]}, "inconclusive"),
    ({ACC: [0.02]}, "inconclusive"),                           # one seed: no spread
])
def test_verdict_table(diffs, expected) -> None:
    outcome, reason = claim.verdict(_measured(diffs))
    assert outcome == expected and "1 accuracy" in reason


def test_main_job_onnx(tmp_path, capsys) -> None:
    from tests.app.cli_harness import invoke

    ws = tmp_path / "ws"
    out = invoke(["run", "--papers", "label-refinery", "-f", "onnx", "-w", str(ws), "--set", "epochs=2"], capsys)
    assert out.code == 0, out.err
    from profiles.store import Store

    rows = Store(ws / "results.db", read_only=True).rows()
    assert len(rows) == 4 and {r["paper"] for r in rows} == {"label-refinery"}
    assert {r["status"] for r in rows} == {"ok"}, [r.get("status_message") for r in rows]
    cards = {g: json.loads((ws / "zoo" / g / "card.json").read_text()) for g in ("refinery_gen1", "refinery_gen2")}
    assert cards["refinery_gen2"]["generation"] == 2
    assert cards["refinery_gen2"]["refinery"]["path"] == str((ws / "zoo" / "refinery_gen1").resolve())
