"""Trainers shared by several paper plug-ins, in the `Trainer` shape of trainers.papers:
(recipe YAML, checkpoint dir, overrides, check_only) -> metrics. With check_only the recipe is loaded and
validated (every key, type and range) and nothing is trained. Heavy imports happen when a trainer runs."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable


def train_classifier(recipe: Path, out: Path, overrides: list[str], check_only: bool = False) -> dict[str, Any]:
    """A plain `Recipe` (model + model_args) through the one training loop (trainers/loop.py)."""
    from trainers.loop import train
    from trainers.recipe import load_recipe

    r = load_recipe(recipe, overrides)
    return {} if check_only else train(r, out)


def train_byte_lm(recipe: Path, out: Path, overrides: list[str], check_only: bool = False) -> dict[str, Any]:
    """An OpenELM byte LM recipe (trainers/openelm)."""
    from trainers.openelm.recipe import load_lm_recipe
    from trainers.openelm.train import train_lm

    r = load_lm_recipe(recipe, overrides)
    return {} if check_only else train_lm(r, out)


def recipe_module_trainer(module: str) -> Callable[..., dict[str, Any]]:
    """The trainer of a paper whose recipe module has `recipe_from_dict(data, where)` and `train(recipe, out)`."""
    def train(recipe: Path, out: Path, overrides: list[str], check_only: bool = False) -> dict[str, Any]:
        from trainers.recipe import read_recipe_yaml

        mod = importlib.import_module(module)
        data, path = read_recipe_yaml(recipe, overrides)
        r = mod.recipe_from_dict(data, str(path))
        return {} if check_only else mod.train(r, out)

    train.__module__, train.__qualname__ = module, "train"
    return train
