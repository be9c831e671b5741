"""SALSA stages as checkpoints (recipe.py says which): base, SFT, soup, policy. Each card records its lineage (the
parents' checkpoint hashes), its metrics and `quality_eval`: how the LM profiler scores an exported artifact of it
(held-out reward, per-token KL to the arm's reference, win rate against the base; trainers/salsa/evaluate.py).

    python -m trainers.salsa.train trainers/salsa/configs/salsa_sft1.yaml OUT_DIR [key=value ...]
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models import checkpoint
from models.errors import CheckpointError, RecipeError
from trainers.salsa.recipe import SalsaRecipe, checkpoint_dir, load_recipe
from trainers.text import load_text

EVALUATOR = "trainers.salsa.evaluate.artifact_quality"


def rl_config(r: SalsaRecipe):
    from trainers.salsa.rl import RLConfig

    return RLConfig(updates=r.updates, batch=r.rl_batch, lr=r.rl_lr, beta=r.beta, temperature=r.temperature,
                    prompt_len=r.prompt_len, new_tokens=r.new_tokens, ckpt_every=r.ckpt_every,
                    curve_prompts=r.curve_prompts, keywords=r.keywords, seed=r.seed)


def _load(name: str, out_dir: Path, role: str) -> tuple[nn.Module, dict[str, Any], dict[str, str]]:
    path = checkpoint_dir(name, out_dir)
    try:
        model, card = checkpoint.load_lm(path)
    except CheckpointError as e:
        raise RecipeError(f"{role} {name!r}: {e.problem}", e.fix) from None
    return model, card, {"path": str(path), "checkpoint_sha256": checkpoint.checkpoint_hash(path)}


def _quality_eval(r: SalsaRecipe, reference: dict[str, str] | None, anchor: dict[str, str] | None) -> dict[str, Any]:
    """What the profiler needs to score this checkpoint's artifacts (reference None: the checkpoint itself, so the
    KL measures what export and compression changed)."""
    return {"function": EVALUATOR, "settings": {
        "keywords": r.keywords, "prompt_len": r.prompt_len, "new_tokens": r.new_tokens, "prompts": r.profile_prompts,
        "samples": r.profile_samples, "temperature": r.temperature, "seed": r.seed, "reference": reference,
        "anchor": anchor}}


def _check_context(limit: int, context: int) -> None:
    if context > limit:
        raise RecipeError(f"a context of {context} bytes exceeds the model's max_context_length {limit}",
                          "lower prompt_len + new_tokens (or sft_context), or pre-train with a longer context")


def train_base(r: SalsaRecipe, out: Path) -> dict[str, Any]:
    from trainers.openelm.recipe import recipe_from_dict
    from trainers.openelm.train import fit_lm

    lm = recipe_from_dict({"name": r.name, "seed": r.seed, "threads": r.threads, **r.pretrain}, "pretrain")
    _check_context(lm.model_args_obj().max_context_length, r.prompt_len + r.new_tokens)
    _, metrics = fit_lm(lm, out, progress=True)
    shutil.rmtree(out / "last", ignore_errors=True)
    checkpoint.annotate_card(out, salsa={"stage": "base"}, quality_eval=_quality_eval(r, None, None))
    return metrics


def train_sft(r: SalsaRecipe, out: Path) -> dict[str, Any]:
    from trainers.openelm.train import evaluate_lm
    from trainers.salsa.soup import sft, sft_bytes

    base, _, base_id = _load(str(r.base), out, "base")
    _check_context(base.args.max_context_length, r.sft_context)
    corpus = load_text()
    model = sft(base, sft_bytes(r.sft_topics), r.sft_steps, r.sft_lr, r.sft_batch, r.sft_context, r.data_seed,
                progress=True, desc=f"sft {r.name}")
    metrics = {"val_bpb": evaluate_lm(model, corpus.val, r.sft_context, 64)["bpb"],
               "sft_bpb": evaluate_lm(model, sft_bytes(r.sft_topics), r.sft_context, 64)["bpb"]}
    _save(model, out, r, {"stage": "sft", "base": base_id, "data_seed": r.data_seed}, metrics, None, base_id)
    return metrics


def train_soup(r: SalsaRecipe, out: Path) -> dict[str, Any]:
    from trainers.salsa.soup import barrier_curve, check_soup_parents, interpolate

    (a, card_a, id_a), (b, _, id_b) = (_load(p, out, f"soup parent {i + 1}") for i, p in enumerate(r.parents))
    check_soup_parents(a, b, (r.parents[0], r.parents[1]))
    soup = interpolate(a, b, r.alpha)
    curve = barrier_curve(a, b, load_text().val, r.sft_context, 64)
    mid = min(curve, key=lambda p: abs(p["alpha"] - r.alpha))
    metrics = {"val_bpb_soup": mid["val_bpb"], "val_bpb_parents_mean": (curve[0]["val_bpb"] + curve[-1]["val_bpb"]) / 2,
               "barrier": mid["barrier"]}
    anchor = (card_a.get("salsa") or {}).get("base")
    _save(soup, out, r, {"stage": "soup", "alpha": r.alpha, "parents": [id_a, id_b], "interpolation": curve,
                         "base": anchor}, metrics, None, anchor)
    return metrics


def train_policy(r: SalsaRecipe, out: Path) -> dict[str, Any]:
    from trainers.salsa.reward import heldout_prompts
    from trainers.salsa.rl import evaluate_policy, optimize, win_rate

    ref, ref_card, ref_id = _load(str(r.reference), out, "reference")
    _check_context(ref.args.max_context_length, r.prompt_len + r.new_tokens)
    corpus = load_text()
    t0 = time.perf_counter()
    policy, curve = optimize(ref, rl_config(r), corpus.train, corpus.val, state_dir=out, progress=True,
                             desc=f"policy {r.name}", ref_id=ref_id["checkpoint_sha256"])
    prompts = heldout_prompts(corpus.val, r.eval_prompts, r.prompt_len)
    args = (prompts, r.eval_samples, r.new_tokens, r.temperature, r.keywords, r.seed + 11)
    ev, ev_ref = evaluate_policy(policy, ref, *args), evaluate_policy(ref, ref, *args)
    metrics = {"reward": ev["reward"], "kl": ev["kl"], "reference_reward": ev_ref["reward"],
               "win_rate_vs_reference": win_rate(ev["per_prompt"], ev_ref["per_prompt"]),
               "train_seconds": time.perf_counter() - t0}
    anchor = (ref_card.get("salsa") or {}).get("base") or ref_id
    _save(policy, out, r, {"stage": "policy", "reference": ref_id, "beta": r.beta, "curve": curve,
                           "base": anchor}, metrics, ref_id, anchor)
    shutil.rmtree(out / "rl_state", ignore_errors=True)
    return metrics


def _save(model: nn.Module, out: Path, r: SalsaRecipe, lineage: dict[str, Any], metrics: dict[str, Any],
          reference: dict[str, str] | None, anchor: dict[str, str] | None) -> None:
    corpus = load_text()
    checkpoint.save(model, out, {"recipe": dataclasses.asdict(r), "recipe_hash": r.hash(), "dataset": corpus.info(),
                                 "data_split_hash": corpus.sha256, "salsa": lineage, "metrics": metrics,
                                 "quality_eval": _quality_eval(r, reference, anchor)})


STAGE_TRAINERS = {"base": train_base, "sft": train_sft, "soup": train_soup, "policy": train_policy}


def train(r: SalsaRecipe, out_dir: Path) -> dict[str, Any]:
    """Train one stage into `out_dir` (single-threaded unless the recipe says otherwise)."""
    torch.set_num_threads(r.threads)
    torch.manual_seed(r.seed)
    return STAGE_TRAINERS[r.stage](r, Path(out_dir))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        raise SystemExit("usage: python -m trainers.salsa.train RECIPE.yaml OUT_DIR [key=value ...]")
    print(train(load_recipe(argv[0], argv[2:]), Path(argv[1])))


if __name__ == "__main__":
    main()
