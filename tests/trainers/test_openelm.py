"""Byte-level LM data, recipe and training loop; the quick claim runs of cards 01 and 03."""

from __future__ import annotations

import math

import pytest
import torch

from models import checkpoint
from models.errors import RecipeError
from trainers.openelm.recipe import LMRecipe, load_lm_recipe
from trainers.openelm.train import evaluate_lm, lm_loss, lr_at, train_lm
from trainers.text import decode, encode, eval_windows, load_text, unigram_bpb


def test_corpus_split_is_fixed_and_recorded() -> None:
    c = load_text()
    assert c.n_bytes == len(c.train) + len(c.val) and 400_000 < c.n_bytes < 600_000
    assert len(c.val) == c.n_bytes - int(c.n_bytes * 0.9) and len(c.sha256) == 64
    assert load_text().sha256 == c.sha256
    assert decode(encode("héllo")) == "héllo"
    w = eval_windows(c.val, 32, 5)
    assert w.shape == (5, 33) and torch.equal(w[1, 0], w[0, -1])  # targets chain: every byte predicted once
    assert 4.0 < unigram_bpb(c.train, c.val) < 5.5


def test_loss_schedule_and_recipe() -> None:
    logits = torch.randn(2, 3, 256) * 5
    y = torch.randint(0, 256, (2, 3))
    total, ce = lm_loss(logits, y, 1e-2)
    assert total > ce and torch.isclose(lm_loss(logits, y, 0.0)[0], ce)
    r = LMRecipe(steps=100, warmup=10, lr=1.0, min_lr_ratio=0.1)
    assert lr_at(0, r) == pytest.approx(0.1) and lr_at(9, r) == pytest.approx(1.0)
    assert lr_at(99, r) == pytest.approx(0.1, abs=1e-3) and lr_at(50, r) < lr_at(20, r)
    with pytest.raises(RecipeError):
        load_lm_recipe("openelm_tiny", ["nope=1"])
    with pytest.raises(RecipeError):
        load_lm_recipe("openelm_tiny", ["model_args.depth=3"]).model_args_obj()
    assert load_lm_recipe("openelm_layerwise").model_args_obj().query_heads() == [4, 6, 6, 6, 8, 8]


def test_tiny_training_writes_lm_checkpoint(tmp_path) -> None:
    r = load_lm_recipe("openelm_tiny", ["steps=12", "eval_every=6", "eval_windows=16"])
    metrics = train_lm(r, tmp_path / "ck", progress=False)
    model, card = checkpoint.load(tmp_path / "ck")
    assert card["task"] == "lm" and card["dataset"]["tokenizer"] == "bytes" and len(card["history"]) == 2
    assert card["metrics"]["val_bpb"] == metrics["val_bpb"] and math.isfinite(metrics["val_bpb"])
    assert metrics["val_bpb"] < 8.0 and metrics["unigram_bpb"] > 4.0  # 8 bits = uniform over bytes
    again = evaluate_lm(model, load_text().val, r.context, r.eval_windows)
    assert again["bpb"] == pytest.approx(min(h["val_bpb"] for h in card["history"]), rel=1e-5)  # best is kept


@pytest.mark.slow
def test_quick_claims_run() -> None:
    from trainers.claims import reproduce

    for key in ("openelm", "seedlm"):
        res = reproduce(key, quick=True)
        assert res.verdict.endswith("(quick)") and res.measured
