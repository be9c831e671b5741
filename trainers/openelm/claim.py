"""Claims of card 01 (OpenELM layer-wise scaling) and card 03 (SeedLM), run on the pydoc byte corpus.

`edgezoo reproduce openelm|seedlm [--quick]`. Quick variants are smoke runs (seconds, one seed, a few steps):
their verdicts say nothing about the papers: with one seed the comparisons are inconclusive (trainers.claims.compare)
and every quick verdict is labelled "(quick)" by trainers.claims.ClaimResult.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import torch

from trainers.claims import ClaimResult, combine, compare, seed_summary
from trainers.openelm.recipe import LMRecipe
from trainers.openelm.train import evaluate_lm, fit_lm
from trainers.text import load_text, unigram_bpb

FULL = dict(steps=800, batch_size=16, context=128, lr=3e-3, warmup=50, eval_every=200)
QUICK = dict(steps=15, batch_size=8, context=32, lr=3e-3, warmup=3, eval_every=15, eval_windows=32)


def _recipe(preset: str, seed: int, quick: bool) -> LMRecipe:
    return LMRecipe(name=f"claim_{preset}_s{seed}", preset=preset, seed=seed, **(QUICK if quick else FULL))


def claim_cache_dir() -> Path:
    return Path(os.environ.get("EDGEZOO_CACHE", Path.home() / ".cache" / "edgezoo")) / "claims"


def cached_fit(recipe: LMRecipe) -> tuple[torch.nn.Module, dict[str, Any]]:
    """fit_lm, reusing a finished run of the identical recipe (keyed by its hash): the OpenELM, SeedLM and
    QuantSpec claims share their isotropic models. Returns the final (not best) weights and their metrics."""
    from models import checkpoint

    out = claim_cache_dir() / f"{recipe.name}-{recipe.hash()}"
    if (out / "card.json").exists() and (out / "last" / "card.json").exists():
        card = checkpoint.read_card(out)
        if "metrics" in card:
            return checkpoint.load(out / "last")[0], card["metrics"]
    _, metrics = fit_lm(recipe, out, progress=True)
    return checkpoint.load(out / "last")[0], metrics


def reproduce_openelm(quick: bool = False, seeds: list[int] | None = None) -> ClaimResult:
    """Layer-wise (931,648 params) vs isotropic (919,360) byte LMs at the same budget: validation bpb."""
    seeds = seeds or ([0] if quick else [0, 1, 2])
    bpb: dict[str, list[float]] = {"layerwise": [], "isotropic": []}
    for seed in seeds:
        for arm in bpb:
            bpb[arm].append(cached_fit(_recipe(arm, seed, quick))[1]["val_bpb"])
    corpus = load_text()
    measured = {arm: seed_summary(v) for arm, v in bpb.items()}
    measured["unigram_baseline"] = seed_summary([unigram_bpb(corpus.train, corpus.val)] * len(seeds))
    outcome, reason = verdict_openelm(measured)
    return ClaimResult(paper="openelm", claim="layer-wise scaling gives lower validation bpb than an isotropic stack at "
                       "~equal parameters (N=6, d=128, context 128, batch 16, 800 steps)" + (" [quick smoke run]" if quick else ""),
                       paper_numbers={"OpenELM-1.1B avg (OpenLLM)": 45.93, "OLMo-1.2B avg": 43.57, "270M params": 271_527_168},
                       measured=measured, verdict=outcome, reason=reason, quick=quick, seeds=seeds)


def verdict_openelm(measured: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """Layer-wise beats isotropic in mean validation bpb (lower is better), by more than the pooled std."""
    outcome = compare(measured["layerwise"], measured["isotropic"], higher_is_better=False)
    reason = (f"mean val bpb layer-wise {measured['layerwise']['mean']:.4f} vs isotropic "
              f"{measured['isotropic']['mean']:.4f} over {len(measured['layerwise']['per_seed'])} seed(s) "
              "(pass needs <=, gap above the pooled std; one seed is inconclusive)")
    return outcome, reason


# ----------------------------------------------------------------------------- SeedLM (card 03)

ARMS = ("fp32", "seedlm4", "seedlm3", "rtn3_g32", "rtn2_g32", "rtn4_g128")


def _apply(model: torch.nn.Module, arm: str, names: list[str]) -> dict[str, Any]:
    from exporters.compression.rtn_groups import rtn_
    from exporters.compression.seedlm import compress_seedlm_, default_cache_dir

    if arm.startswith("seedlm"):
        return compress_seedlm_(model, int(arm[-1]), names, default_cache_dir(), reconstructed=True)
    if arm.startswith("rtn"):
        bits, group = int(arm[3]), int(arm.split("_g")[1])
        return rtn_(model, bits, group, symmetric=False, names=names)  # asymmetric, fp16 scale + zero
    return {"bits_per_weight": 32.0, "tensors": {n: {"rel_error": 0.0} for n in names}}


def reproduce_seedlm(quick: bool = False, seeds: list[int] | None = None) -> ClaimResult:
    """SeedLM-4/3 vs RTN at exactly matched bits on card 01's isotropic byte LM; encodings are cached on disk.

    Quick: a 15-step model and only `transformer.layers.0.attn.qkv_proj` compressed (seconds, not the claim)."""
    from exporters.compression.rtn_groups import lm_linear_names

    seeds = seeds or ([0] if quick else [0, 1, 2])
    corpus = load_text()
    bpb: dict[str, list[float]] = {a: [] for a in ARMS}
    bits: dict[str, float] = {}
    rel_wins: list[bool] = []
    for seed in seeds:
        base, _ = cached_fit(_recipe("isotropic", seed, quick))
        names = ["transformer.layers.0.attn.qkv_proj"] if quick else lm_linear_names(base)
        errs = {}
        for arm in ARMS:
            m = copy.deepcopy(base)
            rep = _apply(m, arm, names)
            bits[arm] = rep["bits_per_weight"]
            errs[arm] = {n: t["rel_error"] for n, t in rep["tensors"].items()}
            ctx = QUICK["context"] if quick else FULL["context"]
            bpb[arm].append(evaluate_lm(m, corpus.val, ctx, QUICK["eval_windows"] if quick else None)["bpb"])
        rel_wins += [errs["seedlm4"][n] < errs["rtn3_g32"][n] for n in names]
    measured = {a: {**seed_summary(v), "bits_per_weight": bits[a]} for a, v in bpb.items()}
    outcome, reason = verdict_seedlm(measured, rel_wins)
    return ClaimResult(paper="seedlm", claim="at exactly matched bits/weight SeedLM beats group-wise RTN in validation bpb "
                       "and per-tensor error" + (" [quick: one tensor, 15-step model]" if quick else ""),
                       paper_numbers={"Llama-2-7B rel. error SeedLM-4": 0.123, "block-FP 4.125 b/w": 0.102,
                                      "Gaussian rel. error SeedLM-4 vs RTN-3/g32": "~0.12 vs ~0.17"},
                       measured=measured, verdict=outcome, reason=reason, quick=quick, seeds=seeds)


def verdict_seedlm(measured: dict[str, dict[str, Any]], rel_wins: list[bool]) -> tuple[str, str]:
    """SeedLM-4 beats RTN-3/g32 and SeedLM-3 beats RTN-2/g32 in bpb (lower is better), and SeedLM-4's relative
    error is below RTN-3/g32's on every compressed tensor (`rel_wins`, one bool per tensor and seed)."""
    v4 = compare(measured["seedlm4"], measured["rtn3_g32"], higher_is_better=False)
    v3 = compare(measured["seedlm3"], measured["rtn2_g32"], higher_is_better=False)
    rel = "inconclusive" if not rel_wins else "pass" if all(rel_wins) else "fail"
    outcome = combine([v4, v3, rel])
    reason = (f"bpb SeedLM-4 {measured['seedlm4']['mean']:.4f} vs RTN-3/g32 {measured['rtn3_g32']['mean']:.4f} ({v4}); "
              f"SeedLM-3 {measured['seedlm3']['mean']:.4f} vs RTN-2/g32 {measured['rtn2_g32']['mean']:.4f} ({v3}); "
              f"SeedLM-4 rel. error below RTN-3/g32 on {sum(rel_wins)}/{len(rel_wins)} tensors; "
              f"RTN-4/g128 ({measured['rtn4_g128'].get('bits_per_weight', float('nan')):.3g} b/w, reference) "
              f"{measured['rtn4_g128']['mean']:.4f}")
    return outcome, reason
