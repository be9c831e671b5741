"""SALSA recipes: one strict YAML per stage of card 05's pipeline, every value type- and range-checked before
anything is trained or written.

    stage: base    pre-train the byte LM (`pretrain:` holds trainers/openelm/recipe.py LMRecipe fields)
    stage: sft     fine-tune `base` on the first `sft_topics` pydoc topics, data order from `data_seed`
    stage: soup    the plain state-dict average alpha * parents[0] + (1 - alpha) * parents[1]
    stage: policy  KL-shaped policy optimization against `reference`, the policy initialized from it

Checkpoint names (`base`, `parents`, `reference`) are zoo folders next to the output folder, or paths.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.errors import RecipeError
from trainers.recipe import check_field, read_recipe_yaml, strict_fields
from trainers.salsa.reward import keyword_list

STAGES = ("base", "sft", "soup", "policy")
BETA_MAX = 10.0


@dataclass
class SalsaRecipe:
    name: str = "salsa"
    stage: str = "policy"
    pretrain: dict[str, Any] = field(default_factory=dict)  # stage base: LMRecipe fields
    base: str | None = None           # stage sft: the checkpoint it starts from
    sft_steps: int = 300
    sft_lr: float = 3e-4              # lower than pre-training (3e-3)
    sft_batch: int = 16
    sft_context: int = 128
    sft_topics: int = 40              # the alphabetically first N topic texts
    data_seed: int = 0                # stage sft: the data order (SFT-1 and SFT-2 differ only here)
    parents: list[str] = field(default_factory=list)  # stage soup: two SFT checkpoints
    alpha: float = 0.5
    reference: str | None = None      # stage policy: the KL reference, and the policy's start
    updates: int = 200
    rl_batch: int = 32
    rl_lr: float = 3e-4
    beta: float = 0.05
    temperature: float = 1.0
    prompt_len: int = 32
    new_tokens: int = 64
    ckpt_every: int = 20              # a resumable checkpoint and a reward-KL curve point every this many updates
    curve_prompts: int = 64           # held-out prompts (1 sample each) per curve point
    eval_prompts: int = 200
    eval_samples: int = 4
    keywords: str = "python"          # the reward's keyword list (trainers/salsa/reward.py)
    profile_prompts: int = 32         # held-out prompts x samples the profiler scores each exported artifact on
    profile_samples: int = 2
    seed: int = 0
    threads: int = 1

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:16]


# numeric fields: (low, high, low excluded, an example)
RANGES: dict[str, tuple[float, float | None, bool, Any]] = {
    "sft_steps": (1, None, False, 300), "sft_lr": (0.0, 1.0, True, 3e-4), "sft_batch": (1, 4096, False, 16),
    "sft_context": (2, 4096, False, 128), "sft_topics": (1, None, False, 40), "data_seed": (0, 2**31 - 1, False, 1),
    "alpha": (0.0, 1.0, False, 0.5), "updates": (1, None, False, 200), "rl_batch": (2, 4096, False, 32),
    "rl_lr": (0.0, 1.0, True, 3e-4), "beta": (0.0, BETA_MAX, False, 0.05), "temperature": (1e-3, 10.0, False, 1.0),
    "prompt_len": (1, 4096, False, 32), "new_tokens": (1, 4096, False, 64), "ckpt_every": (1, None, False, 20),
    "curve_prompts": (1, 10_000, False, 64), "eval_prompts": (1, 10_000, False, 200),
    "eval_samples": (1, 64, False, 4), "profile_prompts": (1, 10_000, False, 32),
    "profile_samples": (1, 64, False, 2), "seed": (0, 2**31 - 1, False, 0), "threads": (1, 256, False, 1)}


def _check_range(where: str, key: str, value: float) -> None:
    low, high, open_low, example = RANGES[key]
    if (value <= low if open_low else value < low) or (high is not None and value > high) or not math.isfinite(value):
        lo = f"{'>' if open_low else '>='} {low}"
        hi = "" if high is None else f" and <= {high}"
        raise RecipeError(f"{where}: {key}={value!r} is out of range", f"use a value {lo}{hi}, e.g. --set {key}={example}")


def _check_stage(r: SalsaRecipe, where: str) -> None:
    if r.stage not in STAGES:
        raise RecipeError(f"{where}: stage {r.stage!r} is unknown", f"use one of: {', '.join(STAGES)}")
    if r.stage == "base":
        from trainers.openelm.recipe import recipe_from_dict

        recipe_from_dict({"name": r.name, **r.pretrain}, f"{where}: pretrain")
    need = {"sft": ("base", r.base), "policy": ("reference", r.reference)}.get(r.stage)
    if need and not need[1]:
        raise RecipeError(f"{where}: stage {r.stage} needs `{need[0]}`", f"set {need[0]}: to a checkpoint name or path")
    if r.stage == "soup" and (len(r.parents) != 2 or not all(r.parents)):
        raise RecipeError(f"{where}: a soup needs exactly two parents, got {r.parents!r}",
                          "set parents: [sft_a, sft_b] (two SFT checkpoints from one base)")


def recipe_from_dict(data: dict[str, Any], where: str = "salsa recipe") -> SalsaRecipe:
    from app.workspace import WorkspaceError, safe_name

    r = strict_fields(SalsaRecipe, data, where)
    hints = typing.get_type_hints(SalsaRecipe)
    for f in dataclasses.fields(SalsaRecipe):
        value = getattr(r, f.name)
        check_field(where, f.name, value, hints[f.name])
        if f.name in RANGES:
            _check_range(where, f.name, value)
    try:
        safe_name(r.name, "recipe name")
    except WorkspaceError as e:
        raise RecipeError(f"{where}: {e.problem}", f"set `name:` (it names the checkpoint folder): {e.fix}") from None
    try:
        keyword_list(r.keywords)
    except RecipeError as e:
        raise RecipeError(f"{where}: {e.problem}", e.fix) from None
    _check_stage(r, where)
    return r


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> SalsaRecipe:
    data, p = read_recipe_yaml(path, overrides)
    return recipe_from_dict(data, str(p))


def checkpoint_dir(name: str, out_dir: Path) -> Path:
    """A plain name is a checkpoint folder next to `out_dir` (the same zoo); anything else is a path."""
    if Path(name).is_absolute() or "/" in name or "\\" in name or name.startswith("."):
        return Path(name).resolve()
    return Path(out_dir).resolve().parent / name


def train(recipe: SalsaRecipe, out_dir: Path) -> dict[str, Any]:
    """The stage's trainer (trainers/salsa/train.py), imported when a recipe is trained."""
    from trainers.salsa.train import train as train_stage

    return train_stage(recipe, out_dir)
