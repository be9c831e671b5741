"""`edgezoo reproduce rangeaugment`: card 09's small-scale claim on 16x16 digits (1,200 / 300 / 297 split),
seeds 0-4. Every arm of a seed shares the split, the CNN's initialisation and the batch order.

Arms: A (no augmentor), B (RangeAugment, curriculum 40 -> 20 dB, alpha 100), C (B with L_NA weight 0).
Exploratory, recorded only (on the first seed): the end-PSNR sweep {30, 20, 10, 5} for the CNN, {20, 5} for a wider
one (2x the channels).
"""

from __future__ import annotations

from typing import Any

from trainers.claims import ClaimResult, combine, compare, seed_summary
from trainers.data import load_dataset
from trainers.rangeaugment.recipe import CORRUPTIONS, DATASET, evaluate, fit, recipe_from_dict

ARMS = {"A_none": {"augment": []}, "B_rangeaugment": {}, "C_no_na": {"alpha": 0.0}}
METRICS = ("test_accuracy", "corrupted_accuracy", *(f"test_{c}" for c in CORRUPTIONS), "psnr_gap",
           "brightness_width", "brightness_lo", "brightness_hi", "contrast_lo", "contrast_hi", "noise_lo", "noise_hi")
SWEEP_METRICS = ("test_accuracy", "corrupted_accuracy", "psnr_gap", "brightness_width")
PSNR_TOLERANCE = 2.0  # dB, condition 1
CLEAN_MARGIN = -0.01  # condition 3: clean accuracy of B at least A's minus one point
SWEEP_PSNR = (30.0, 20.0, 10.0, 5.0)
WIDE_PSNR = (20.0, 5.0)  # the wider CNN costs 4x: its two ends of the sweep only
WIDE = [64, 128, 128]  # 2x the channels (4x the parameters and FLOPs) of [32, 64, 64]
PAPER = {
    "imagenet_top1": "MobileNetV2 73.0 (AutoAugment 72.7, RandAugment 72.1); ResNet-101 81.9 (AA 81.4, RA 81.5)",
    "ade20k_miou": "MobileNetV2 38.0 -> 38.6; ResNet-101 45.7 -> 46.5",
    "operations": "competitive with AutoAugment / RandAugment with 4-5x fewer augmentation operations",
    "released": "ResNet-50 80.2, EfficientNet-B3 81.9, Swin-S 82.8 top-1",
}
PAPER_CLAIM = ("the measured PSNR tracks the target within 2 dB, the brightness range is narrower without L_NA, and "
               "RangeAugment beats no augmentation on corrupted digits with clean accuracy within 1 point")


def _settings(quick: bool) -> dict[str, Any]:
    return {"epochs": 1} if quick else {"epochs": 30}


def _run(overrides: dict[str, Any], data) -> dict[str, float]:
    model, log = fit(recipe_from_dict(overrides), data)
    return {**evaluate(model, data), **{k: v for k, v in log.items() if isinstance(v, float)}, **log.get("ranges", {})}


def _sweep(seed: int, s: dict[str, Any], data, b_run: dict[str, float]) -> dict[str, dict[str, float]]:
    """End-PSNR sweep for the CNN (20 dB is arm B) and, at 20 and 5 dB, the wider CNN."""
    out = {}
    for tag, channels, targets in (("cnn", None, SWEEP_PSNR), ("wide", WIDE, WIDE_PSNR)):
        for psnr in targets:
            extra = {"channels": channels} if channels else {}
            out[f"sweep_{tag}_{psnr:g}dB"] = b_run if tag == "cnn" and psnr == 20.0 else \
                _run({**s, **extra, "seed": seed, "target_psnr": psnr}, data)
    return out


def verdict(measured: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """The card's conditions on means over seeds. A single seed has no spread: its verdict is inconclusive."""
    def get(arm: str, metric: str) -> dict[str, Any]:
        return measured[f"{arm}/{metric}"]

    gap = get("B_rangeaugment", "psnr_gap")
    one_seed = len(gap["per_seed"]) < 2
    checks = {
        f"1 |measured - target PSNR| of B <= {PSNR_TOLERANCE:g} dB": (
            "pass" if gap["mean"] <= PSNR_TOLERANCE else "fail", f"{gap['mean']:.2f} +- {gap['std']:.2f} dB"),
        "2 brightness width C < B": _compared(get("B_rangeaugment", "brightness_width"),
                                              get("C_no_na", "brightness_width"), 0.0),
        "3 corrupted accuracy B > A": _compared(get("B_rangeaugment", "corrupted_accuracy"),
                                                get("A_none", "corrupted_accuracy"), 0.0),
        "3 clean accuracy B >= A - 1 point": _compared(get("B_rangeaugment", "test_accuracy"),
                                                       get("A_none", "test_accuracy"), CLEAN_MARGIN),
    }
    if one_seed:
        checks = {k: ("inconclusive", v) for k, (_, v) in checks.items()}
    reason = "; ".join(f"{k}: {v} ({text})" for k, (v, text) in checks.items())
    return combine(v for v, _ in checks.values()), reason


def _compared(a: dict[str, Any], b: dict[str, Any], margin: float) -> tuple[str, str]:
    """'a beats b by margin' on the means (the card allows no inconclusive band); 'pass' needs a strict win when
    the margin is 0."""
    outcome = compare(a, b, allow_inconclusive=False, margin=margin)
    if margin == 0.0 and a["mean"] == b["mean"]:
        outcome = "fail"
    return outcome, f"{a['mean']:.4f} +- {a['std']:.4f} vs {b['mean']:.4f} +- {b['std']:.4f}"


def reproduce(quick: bool = False, seeds: list[int] | None = None) -> ClaimResult:
    seeds = seeds or ([0] if quick else [0, 1, 2, 3, 4])
    s = _settings(quick)
    data = load_dataset(DATASET)
    runs = []
    for i, seed in enumerate(seeds):
        run = {arm: _run({**s, **over, "seed": seed}, data) for arm, over in ARMS.items()}
        if i == 0 and not quick:
            run.update(_sweep(seed, s, data, run["B_rangeaugment"]))
        runs.append(run)
    measured = {}
    for arm in runs[0]:
        with_arm = [r[arm] for r in runs if arm in r]
        for metric in SWEEP_METRICS if arm.startswith("sweep_") else METRICS:
            if metric in with_arm[0]:
                measured[f"{arm}/{metric}"] = seed_summary([r[metric] for r in with_arm])
    outcome, reason = verdict(measured)
    return ClaimResult(paper="rangeaugment", claim=PAPER_CLAIM, paper_numbers=PAPER, measured=measured,
                       verdict=outcome, reason=reason, quick=quick, seeds=list(seeds))
