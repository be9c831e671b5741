"""LM recipes: strict YAML (unknown keys are errors), like trainers/recipe.py but step-based."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from models.errors import RecipeError
from models.openelm import ModelArgs
from models.openelm_upstream import unbuildable
from trainers.recipe import read_recipe_yaml, strict_fields

CONFIG_DIR = Path(__file__).parent / "configs"
PARALLEL = ("ddp", "fsdp")
PRESETS = {"layerwise": ModelArgs, "isotropic": ModelArgs.isotropic, "tiny": ModelArgs.tiny}


@dataclass
class LMRecipe:
    name: str = "openelm_layerwise"
    preset: str = "layerwise"            # layerwise | isotropic | tiny (card 01 section 5)
    model_args: dict[str, Any] = field(default_factory=dict)  # ModelArgs overrides on top of the preset
    steps: int = 800
    batch_size: int = 16
    context: int = 128
    lr: float = 3e-3
    min_lr_ratio: float = 0.1            # cosine to lr * ratio (the paper: 5.3e-3 -> 5.3e-4)
    warmup: int = 50
    weight_decay: float = 0.1
    beta2: float = 0.95
    grad_clip: float = 1.0
    z_loss: float = 1e-4                 # coefficient of log(Z)^2
    eval_every: int = 200                # an "epoch": validation bpb / perplexity after every this many steps
    eval_windows: int | None = None      # None: the whole validation split
    seed: int = 0
    threads: int = 2
    parallel: str = "ddp"                # under torchrun: ddp (replicated) | fsdp (fully_shard: sharded weights)

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def model_args_obj(self) -> ModelArgs:
        if not isinstance(self.preset, str) or self.preset not in PRESETS:
            raise RecipeError(f"unknown preset {self.preset!r}", f"use one of {sorted(PRESETS)}")
        base = dataclasses.asdict(PRESETS[self.preset]())
        known = set(base)
        bad = sorted(set(self.model_args) - known)
        if bad:
            raise RecipeError(f"unknown model_args {bad}", f"known: {sorted(known)}")
        ctx = max(self.context, base["max_context_length"])
        args = ModelArgs(**{**base, **self.model_args, "max_context_length": ctx})
        bad = unbuildable(args)
        if bad:
            raise RecipeError(f"model_args give sizes no OpenELM can have: {bad}", "use positive integer sizes")
        return args


# field: (integer?, low, high, low excluded); a value outside is an error before any training starts
LIMITS = {"steps": (True, 1, None, False), "batch_size": (True, 1, None, False),
          "context": (True, 2, 4096, False), "lr": (False, 0.0, None, True),
          "min_lr_ratio": (False, 0.0, 1.0, False), "warmup": (True, 0, None, False),
          "weight_decay": (False, 0.0, None, False), "beta2": (False, 0.0, 0.9999, False),
          "grad_clip": (False, 0.0, None, True), "z_loss": (False, 0.0, None, False),
          "eval_every": (True, 1, None, False), "eval_windows": (True, 1, None, False),
          "seed": (True, 0, 2**32 - 1, False), "threads": (True, 1, None, False)}


def _out_of_range(value: Any, integer: bool, low: float, high: float | None, strict: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)) or not math.isfinite(value):
        return True
    return (value <= low if strict else value < low) or (high is not None and value > high)


def _default(key: str) -> str:
    value = LMRecipe.__dataclass_fields__[key].default
    return "null" if value is None else str(value)


def check_recipe(r: LMRecipe, where: str) -> LMRecipe:
    """Types and ranges of every field, the name as a plain folder name, and model args that build a model."""
    from app.workspace import safe_name

    safe_name(r.name, f"{where}: recipe name")
    for key, (integer, low, high, strict) in LIMITS.items():
        value = getattr(r, key)
        if (key != "eval_windows" or value is not None) and _out_of_range(value, integer, low, high, strict):
            kind = "an integer" if integer else "a finite number"
            rng = f"{'>' if strict else '>='} {low}" + (f" and <= {high}" if high is not None else "")
            raise RecipeError(f"{where}: {key} = {value!r} is not {kind} {rng}",
                              f"e.g. --set {key}={_default(key)}")
    if r.parallel not in PARALLEL:
        raise RecipeError(f"{where}: parallel = {r.parallel!r} is not one of {PARALLEL}", "e.g. --set parallel=fsdp")
    if not isinstance(r.model_args, dict):
        raise RecipeError(f"{where}: model_args = {r.model_args!r} is not a mapping",
                          "e.g. --set model_args.model_dim=64")
    r.model_args_obj()
    return r


def recipe_from_dict(data: dict[str, Any], where: str = "recipe") -> LMRecipe:
    return check_recipe(strict_fields(LMRecipe, data, where), where)


def load_lm_recipe(name_or_path: str | Path, overrides: list[str] | None = None) -> LMRecipe:
    data, path = read_recipe_yaml(name_or_path, overrides, CONFIG_DIR)
    return recipe_from_dict(data, str(path))
