"""LM recipes: strict YAML (unknown keys are errors), like trainers/recipe.py but step-based."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from models.errors import RecipeError
from models.openelm import ModelArgs
from trainers.recipe import read_recipe_yaml, strict_fields

CONFIG_DIR = Path(__file__).parent / "configs"
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

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def model_args_obj(self) -> ModelArgs:
        if self.preset not in PRESETS:
            raise RecipeError(f"unknown preset {self.preset!r}", f"use one of {sorted(PRESETS)}")
        base = dataclasses.asdict(PRESETS[self.preset]())
        known = set(base)
        bad = sorted(set(self.model_args) - known)
        if bad:
            raise RecipeError(f"unknown model_args {bad}", f"known: {sorted(known)}")
        return ModelArgs(**{**base, **self.model_args, "max_context_length": max(self.context, base["max_context_length"])})


def recipe_from_dict(data: dict[str, Any], where: str = "recipe") -> LMRecipe:
    return strict_fields(LMRecipe, data, where)


def load_lm_recipe(name_or_path: str | Path, overrides: list[str] | None = None) -> LMRecipe:
    data, path = read_recipe_yaml(name_or_path, overrides, CONFIG_DIR)
    return recipe_from_dict(data, str(path))
