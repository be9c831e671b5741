"""`edgezoo reproduce multiscale`: card 11's small-scale claim. Digits upsampled to 32x32 (1200 / 300 / 297), a
4-conv BatchNorm CNN with global average pooling, AdamW with a one-cycle LR, 30 epochs, seeds 0-4, each arm trained
by the one training loop (trainers/loop.py) from its recipe in configs/ with the seed overridden: the same split,
initialisation and per-epoch shuffle for every arm (paired differences).

Arms: ssc_fbs (32x32, batch 64), msc_fbs (sizes {16, 24, 32, 40, 48}, batch 64), msc_vbs (batch 64 x 32^2 / size^2)
and msc_vbs_curriculum (epochs in thirds on sizes <= 24, <= 32, all). Metrics on the held-out test split at the
best-validation epoch: top-1 at 32 and at {16, 24, 40, 48} (the test images resized bilinearly), ECE at 32 (15
bins, recorded, not judged), optimizer steps, the pixel-compute proxy sum(b h w) and training wall time.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainers.claims import ClaimResult, combine, compare, seed_summary

BASE = 32
OFF_BASE = (16, 24, 40, 48)
ARMS = {"ssc_fbs": "ms_ssc_fbs", "msc_fbs": "ms_msc_fbs", "msc_vbs": "ms_msc_vbs",
        "msc_vbs_curriculum": "ms_msc_vbs_curriculum"}
STEP_RATIO_MAX = 0.75   # condition 1: MSc-VBS steps <= 0.75 x SSc-FBS
PIXEL_RATIO_MAX = 0.8   # condition 4: curriculum pixels <= 0.8 x MSc-VBS
POINT = 0.01            # one accuracy point
QUICK_EPOCHS = 3        # the curriculum's three stages need three epochs
PAPER = {
    "accuracy": "ResNet-101 and other ImageNet models: multi-scale samplers keep or improve top-1, improve "
                "calibration and robustness to resolution and distribution shift",
    "optimizer_steps": "ResNet-50 recipe (b0 = 128 at 224, sizes 128-320): mean batch ~169, ~24 % fewer steps per epoch",
    "curriculum": "a resolution curriculum cuts training compute by more than 30 %",
    "detection": "Mask R-CNN on MS-COCO: 37 % fewer training FLOPs and +3-4 % mAP (not checked here)",
}
CLAIM = ("MSc-VBS takes <= 0.75x SSc-FBS's optimizer steps, beats it on mean accuracy at the off-base sizes and stays "
         "within 1 point at 32; the curriculum uses <= 0.8x MSc-VBS's pixel compute within 1 point at 32")


def accuracy_at(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, size: int) -> tuple[float, torch.Tensor]:
    """Top-1 of `model` on images resized (bilinear) to size x size, and the softmax probabilities."""
    from trainers.data import resize_bilinear

    xs = x if x.shape[-1] == size else resize_bilinear(x, size)
    with torch.no_grad():
        probs = torch.softmax(model.eval()(torch.from_numpy(xs)), dim=1)
    return float((probs.argmax(1).numpy() == y).mean()), probs


def run_arm(arm: str, seed: int, quick: bool, folder: Path) -> dict[str, float]:
    """Train one arm for one seed through trainers.loop and measure it on the test split."""
    from models import checkpoint
    from trainers.data import load_dataset
    from trainers.label_refinery.recipe import ece
    from trainers.loop import train
    from trainers.recipe import load_recipe

    overrides = [f"seed={seed}"] + ([f"epochs={QUICK_EPOCHS}"] if quick else [])
    recipe = load_recipe(Path(__file__).parent / "configs" / f"{ARMS[arm]}.yaml", overrides)
    out = folder / f"{arm}-{seed}"
    t0 = time.perf_counter()
    train(recipe, out, progress=False)
    seconds = time.perf_counter() - t0
    model, card = checkpoint.load(out)
    test = load_dataset(recipe.dataset).test
    row = {"train_seconds": seconds, "optimizer_steps": float(card["sampler"]["optimizer_steps"]),
           "pixels": float(card["sampler"]["pixels"])}
    for size in (BASE, *OFF_BASE):
        row[f"acc{size}"], probs = accuracy_at(model, test.x, test.y, size)
        if size == BASE:
            row["ece"] = ece(probs, torch.from_numpy(test.y))
    row["acc_off_base"] = statistics.fmean(row[f"acc{s}"] for s in OFF_BASE)
    return row


def verdict(measured: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """The card's four conditions. Ratios are counts (pass/fail on the mean); accuracy conditions compare paired
    per-seed differences with zero and are inconclusive within their spread (trainers.claims.compare)."""
    def diff(key: str, margin: float) -> tuple[str, float, float]:
        d = measured[key]
        zero = seed_summary([0.0] * len(d["per_seed"]))
        return compare(d, zero, margin=margin), d["mean"], d["std"]

    steps = measured["ratio/steps_vbs_over_ssc"]["mean"]
    pixels = measured["ratio/pixels_curriculum_over_vbs"]["mean"]
    robust, base, cur = (diff("diff/vbs-ssc/acc_off_base", 0.0), diff("diff/vbs-ssc/acc32", -POINT),
                         diff("diff/curriculum-vbs/acc32", -POINT))
    checks = {
        f"1 steps VBS/SSc {steps:.3f} <= {STEP_RATIO_MAX}": "pass" if steps <= STEP_RATIO_MAX else "fail",
        f"2 off-base accuracy VBS > SSc (paired diff {robust[1]:+.4f} +- {robust[2]:.4f})": robust[0],
        f"3 accuracy at 32 VBS >= SSc - 1 point (paired diff {base[1]:+.4f} +- {base[2]:.4f})": base[0],
        f"4a pixels curriculum/VBS {pixels:.3f} <= {PIXEL_RATIO_MAX}": "pass" if pixels <= PIXEL_RATIO_MAX else "fail",
        f"4b accuracy at 32 curriculum >= VBS - 1 point (paired diff {cur[1]:+.4f} +- {cur[2]:.4f})": cur[0],
    }
    return combine(checks.values()), "; ".join(f"{k}: {v}" for k, v in checks.items())


def summarize(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Per arm and metric over seeds, plus the paired differences and ratios the verdict reads."""
    measured = {f"{arm}/{m}": seed_summary([r[arm][m] for r in runs]) for arm in runs[0] for m in runs[0][arm]}
    pairs = {"vbs-ssc": ("msc_vbs", "ssc_fbs"), "curriculum-vbs": ("msc_vbs_curriculum", "msc_vbs"),
             "fbs-ssc": ("msc_fbs", "ssc_fbs")}
    for name, (a, b) in pairs.items():
        for m in ("acc32", "acc_off_base"):
            measured[f"diff/{name}/{m}"] = seed_summary([r[a][m] - r[b][m] for r in runs])
    measured["ratio/steps_vbs_over_ssc"] = seed_summary([r["msc_vbs"]["optimizer_steps"] / r["ssc_fbs"]["optimizer_steps"]
                                                         for r in runs])
    measured["ratio/pixels_vbs_over_ssc"] = seed_summary([r["msc_vbs"]["pixels"] / r["ssc_fbs"]["pixels"] for r in runs])
    measured["ratio/pixels_curriculum_over_vbs"] = seed_summary(
        [r["msc_vbs_curriculum"]["pixels"] / r["msc_vbs"]["pixels"] for r in runs])
    return measured


def reproduce(quick: bool = False, seeds: list[int] | None = None) -> ClaimResult:
    seeds = seeds or ([0, 1] if quick else [0, 1, 2, 3, 4])
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="edgezoo-multiscale-") as tmp:
        runs = [{arm: run_arm(arm, seed, quick, Path(tmp)) for arm in ARMS} for seed in seeds]
    measured = summarize(runs)
    outcome, reason = verdict(measured)
    return ClaimResult(paper="multiscale", claim=CLAIM, paper_numbers=PAPER, measured=measured, verdict=outcome,
                       reason=reason, quick=quick, seeds=list(seeds))
