"""`edgezoo reproduce catlip`: card 07's small-scale claim on procedural captioned scenes (10k training scenes with
training glyphs, 2k held-out scenes with test glyphs), seeds 0, 1, 2. Both arms of a seed share the encoder's
initial conv weights, the data order, the steps and the batch (256).

1. Speed: median time per training step, CatLIP (B) < CLIP (A), both measured in this process after warm-up on the
   same batch, the arms alternating (trainers/catlip/speed.py).
2. Representation: linear-probe accuracy on shape, colour and digit of held-out scenes, averaged: B >= A - 2 points.
3. Transfer init: a 10-way digit head on the frozen CatLIP encoder (glyphs pasted on blank canvases), trained 100
   full-batch steps on 5 shots per class (validation glyphs), initialised from CatLIP's rows for "zero" ... "nine"
   beats a randomly initialised head by >= 5 points on the test glyphs.
Recorded on the first seed: CatLIP with the per-element `mean` BCE at the same LR (V times smaller loss), and
CatLIP with upstream's labeller (part of speech ignored, so colour words become labels).
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models.scene_encoder import SceneEncoder
from trainers.catlip.labeller import Labeller
from trainers.catlip.recipe import CatLIPRecipe, SceneData, fit, pooled_features, probes, scene_data
from trainers.catlip.speed import step_times, summary
from trainers.claims import ClaimResult, combine, compare, seed_summary
from trainers.loop import seed_everything
from trainers.scenes import DIGIT_WORDS, digit_canvases

PROBE_MARGIN = -0.02    # condition 2: B >= A - 2 points
TRANSFER_MARGIN = 0.05  # condition 3: row init beats random init by >= 5 points
SHOTS, TRANSFER_STEPS, TRANSFER_LR = 5, 100, 0.01
PAPER = {
    "pretraining_speed": "2.7x faster than CLIP on DataComp-1.3B (same GPUs and image encoder)",
    "imagenet_top1_finetuned": "ViT-B/16 84.3 vs CLIP 84.4; ViT-H/16 86.7 vs 86.9",
    "released": "ImageNet ViT-B/L/H 84.2 / 86.8 / 87.1 (224 px); COCO multi-label mAP B 88.06, L 90.75",
    "transfer_init": "downstream head initialised from the CatLIP rows of the target synsets (data-efficient "
                     "transfer; not in the released code)",
}
PAPER_CLAIM = ("CatLIP pre-training steps are faster than CLIP's, its linear probes are within 2 points of CLIP's, "
               "and a 5-shot digit head initialised from its rows beats random init by >= 5 points")


def settings(quick: bool) -> dict[str, Any]:
    """Recipe values of the claim (quick: a labelled smoke test of a few steps on few scenes)."""
    if quick:
        return {"n_train": 256, "n_test": 128, "n_probe": 256, "epochs": 1}
    return {"n_train": 10_000, "n_test": 2000, "n_probe": 10_000, "epochs": 8}


def transfer(encoder: SceneEncoder, labeller: Labeller, seed: int) -> dict[str, float]:
    """5-shot 10-way digit head on the frozen encoder: CatLIP-row init vs random init, test accuracy of each after
    TRANSFER_STEPS full-batch AdamW steps, and each one's accuracy before training."""
    rows = [labeller.row_of(w) for w in DIGIT_WORDS]
    if any(r is None for r in rows):
        raise ValueError(f"the vocabulary lacks digit words: {[w for w, r in zip(DIGIT_WORDS, rows) if r is None]}")
    pool_x, pool_y = digit_canvases("val", seed=seed)
    rng = np.random.default_rng(seed)
    pick = np.concatenate([rng.choice(np.flatnonzero(pool_y == d), SHOTS, replace=False) for d in range(10)])
    test_x, test_y = digit_canvases("test", seed=0)
    f_train = torch.from_numpy(pooled_features(encoder, pool_x[pick]))
    f_test = torch.from_numpy(pooled_features(encoder, test_x))
    y_train, y_test = torch.from_numpy(pool_y[pick]), torch.from_numpy(test_y)
    seed_everything(seed)
    random_head = torch.nn.Linear(f_train.shape[1], 10)
    row_head = torch.nn.Linear(f_train.shape[1], 10)
    with torch.no_grad():
        row_head.weight.copy_(encoder.head.weight[rows])
        row_head.bias.copy_(encoder.head.bias[rows])
    out = {}
    for name, head in (("row_init", row_head), ("random_init", random_head)):
        out[f"{name}_step0"] = _accuracy(head, f_test, y_test)
        opt = torch.optim.AdamW(head.parameters(), lr=TRANSFER_LR, weight_decay=0.0)
        for _ in range(TRANSFER_STEPS):
            loss = F.cross_entropy(head(f_train), y_train)
            opt.zero_grad()
            loss.backward()
            opt.step()
        out[name] = _accuracy(head, f_test, y_test)
    return out


@torch.no_grad()
def _accuracy(head: torch.nn.Module, f: torch.Tensor, y: torch.Tensor) -> float:
    return (head(f).argmax(1) == y).float().mean().item()


def run_seed(seed: int, s: dict[str, Any], quick: bool, records: bool) -> dict[str, dict[str, float]]:
    """Both arms of one seed: probes (and transfer for CatLIP) and the step times; with `records`, also CatLIP with
    the `mean` BCE and with upstream's labeller (part of speech ignored: colours become labels)."""
    base = CatLIPRecipe(**s, seed=seed)
    data = scene_data(base)
    arms = {"A_clip": dataclasses.replace(base, arm="clip"), "B_catlip": base}
    if records:
        arms.update(B_catlip_mean_bce=dataclasses.replace(base, bce="mean"),
                    B_catlip_upstream_labeller=dataclasses.replace(base, respect_pos=False))
    out = {arm: run_arm(recipe, data if recipe.respect_pos else scene_data(recipe), arm == "B_catlip")
           for arm, recipe in arms.items()}
    speed = summary(step_times(base, data, **({"rounds": 2, "steps": 2, "warmup": 1} if quick else {})))
    out["A_clip"]["step_ms"], out["B_catlip"]["step_ms"] = speed["clip_ms"], speed["catlip_ms"]
    out["B_catlip"]["speedup_vs_clip"] = speed["speedup"]
    return out


def run_arm(recipe: CatLIPRecipe, data: SceneData, with_transfer: bool) -> dict[str, float]:
    """Pre-train one arm, then its probes on held-out scenes (and, for CatLIP, the transfer-init check)."""
    _, encoder, log = fit(recipe, data)
    found = probes(encoder, data, recipe.n_probe)
    row = {f"probe_{a}": p.accuracy for a, p in found.items()}
    row.update(probe_mean=statistics.fmean(row.values()), final_loss=log["losses"][-1],
               train_seconds=log["train_seconds"], vocab_size=len(data.labeller))
    if with_transfer:
        row.update(transfer(encoder, data.labeller, recipe.seed))
        row["transfer_gain"] = row["row_init"] - row["random_init"]
    return row


def verdict(measured: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """The card's three conditions on the means over seeds; a single seed is inconclusive."""
    def get(key: str) -> dict[str, Any]:
        return measured[key]

    checks = {
        "1 step time B < A": _compared(get("B_catlip/step_ms"), get("A_clip/step_ms"), 0.0, higher=False),
        "2 probe mean B >= A - 2 points": _compared(get("B_catlip/probe_mean"), get("A_clip/probe_mean"),
                                                    PROBE_MARGIN),
        "3 row init >= random init + 5 points": _compared(get("B_catlip/row_init"), get("B_catlip/random_init"),
                                                          TRANSFER_MARGIN),
    }
    if len(get("B_catlip/probe_mean")["per_seed"]) < 2:
        checks = {k: ("inconclusive", v) for k, (_, v) in checks.items()}
    return combine(v for v, _ in checks.values()), "; ".join(f"{k}: {v} ({t})" for k, (v, t) in checks.items())


def _compared(a: dict[str, Any], b: dict[str, Any], margin: float, higher: bool = True) -> tuple[str, str]:
    """'a beats b by margin' on the means (the card allows no inconclusive band); a tie at margin 0 fails."""
    outcome = compare(a, b, higher_is_better=higher, allow_inconclusive=False, margin=margin)
    if margin == 0.0 and a["mean"] == b["mean"]:
        outcome = "fail"
    return outcome, f"{a['mean']:.4f} +- {a['std']:.4f} vs {b['mean']:.4f} +- {b['std']:.4f}"


def reproduce(quick: bool = False, seeds: list[int] | None = None) -> ClaimResult:
    seeds = seeds or ([0] if quick else [0, 1, 2])
    s = settings(quick)
    runs = [run_seed(seed, s, quick, records=i == 0) for i, seed in enumerate(seeds)]
    measured = {f"{arm}/{metric}": seed_summary([r[arm][metric] for r in runs if arm in r])
                for arm in runs[0] for metric in runs[0][arm]}
    outcome, reason = verdict(measured)
    return ClaimResult(paper="catlip", claim=PAPER_CLAIM, paper_numbers=PAPER, measured=measured, verdict=outcome,
                       reason=reason, quick=quick, seeds=list(seeds))
