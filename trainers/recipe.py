"""Recipes: YAML files validated strictly (an unknown key is an error, not a silent default)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from models.errors import RecipeError

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class Recipe:
    name: str
    model: str
    dataset: str = "digits"
    model_args: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    optimizer: str = "adamw"  # adamw | sgd
    label_smoothing: float = 0.0
    seed: int = 0
    threads: int = 2

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def _coerce(value: str) -> Any:
    """`--set key=value`: parse the value as YAML so numbers, lists and booleans keep their types."""
    return yaml.safe_load(value)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"override {item!r} is not key=value", "write it like --set epochs=3 or --set model_args.dim=32")
        key, value = item.split("=", 1)
        target = data
        *parents, leaf = key.split(".")
        for p in parents:
            target = target.setdefault(p, {})
            if not isinstance(target, dict):
                raise RecipeError(f"override {key!r} goes through a non-mapping", "set a leaf key of a mapping")
        target[leaf] = _coerce(value)
    return data


def resolve_path(name_or_path: str | Path, config_dir: Path = CONFIG_DIR) -> Path:
    p = Path(name_or_path)
    if p.exists():
        return p
    bundled = config_dir / f"{name_or_path}.yaml"
    if bundled.exists():
        return bundled
    available = ", ".join(sorted(q.stem for q in config_dir.glob("*.yaml")))
    raise RecipeError(f"recipe {name_or_path} not found", f"pass a YAML path or one of: {available}")


def read_recipe_yaml(name_or_path: str | Path, overrides: list[str] | None = None,
                     config_dir: Path = CONFIG_DIR) -> tuple[dict[str, Any], Path]:
    """A recipe file (path or bundled name) as a mapping, `name` defaulting to the file stem, overrides applied."""
    path = resolve_path(name_or_path, config_dir)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise RecipeError(f"recipe {path} is not valid YAML ({str(e).splitlines()[0]})", "fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {path} is not a mapping", "write the recipe as key: value lines")
    data.setdefault("name", path.stem)
    return apply_overrides(data, overrides or []), path


def strict_fields(cls: type, data: dict[str, Any], where: str) -> Any:
    """cls(**data) for a recipe dataclass, with unknown keys an error rather than a silent default."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RecipeError(f"{where}: unknown keys {unknown}", f"use only: {', '.join(sorted(known))}")
    try:
        return cls(**data)
    except TypeError as e:
        raise RecipeError(f"{where}: {e}", "add the missing keys") from None


def load_recipe(name_or_path: str | Path, overrides: list[str] | None = None) -> Recipe:
    data, path = read_recipe_yaml(name_or_path, overrides)
    return recipe_from_dict(data, str(path))


def recipe_from_dict(data: dict[str, Any], where: str = "recipe") -> Recipe:
    recipe = strict_fields(Recipe, data, where)
    from models.registry import args_from_dict, get

    try:
        args_from_dict(get(recipe.model).args_cls, recipe.model_args)
    except (KeyError, ValueError) as e:
        raise RecipeError(f"{where}: {str(e).strip(chr(34))}", "fix model / model_args in the recipe") from None
    if recipe.optimizer not in ("adamw", "sgd"):
        raise RecipeError(f"{where}: optimizer {recipe.optimizer!r} is unknown", "use adamw or sgd")
    return recipe
