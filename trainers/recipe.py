"""Recipes: YAML files validated strictly (an unknown key is an error, not a silent default)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from models.errors import RecipeError

CONFIG_DIR = Path(__file__).parent / "baselines" / "configs"


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
    sampler: dict[str, Any] | None = None  # multi-scale sampler section (trainers/samplers.py); None: plain batches

    def hash(self) -> str:
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k != "sampler" or v is not None}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _coerce(key: str, value: str) -> Any:
    """`--set key=value`: parse the value as YAML so numbers, lists and booleans keep their types."""
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        raise RecipeError(f"override {key}={value!r} is not a YAML value",
                          "quote it or fix the brackets, e.g. --set model_args.widths=[8,16]") from None


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
        target[leaf] = _coerce(key, value)
    return data


def resolve_path(name_or_path: str | Path, config_dir: Path | None = None) -> Path:
    """A recipe YAML path, or a bundled name looked up in `config_dir` (default: every paper plug-in's configs/)."""
    p = Path(name_or_path)
    if p.is_dir():
        raise RecipeError(f"recipe {p} is a folder", "pass a recipe YAML file or a bundled recipe name")
    if p.exists():
        return p
    if config_dir is None:
        from trainers.papers import config_dirs

        dirs = config_dirs()
    else:
        dirs = [config_dir]
    for d in dirs:
        if (bundled := d / f"{name_or_path}.yaml").exists():
            return bundled
    available = ", ".join(sorted(q.stem for d in dirs for q in d.glob("*.yaml")))
    raise RecipeError(f"recipe {name_or_path} not found", f"pass a YAML path or one of: {available}")


def read_recipe_yaml(name_or_path: str | Path, overrides: list[str] | None = None,
                     config_dir: Path | None = None) -> tuple[dict[str, Any], Path]:
    """A recipe file (path or bundled name) as a mapping, `name` defaulting to the file stem, overrides applied."""
    path = resolve_path(name_or_path, config_dir)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise RecipeError(f"recipe {path} is not valid YAML ({str(e).splitlines()[0]})", "fix the YAML syntax") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError(f"recipe {path} cannot be read as text ({e.__class__.__name__})",
                          "pass a readable recipe YAML file") from None
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


# numeric fields: (low, high, low is exclusive, an example); None = unbounded
RANGES: dict[str, tuple[float | None, float | None, bool, Any]] = {
    "epochs": (1, None, False, 10), "batch_size": (1, None, False, 64), "lr": (0.0, None, True, 0.003),
    "weight_decay": (0.0, None, False, 0.0005), "label_smoothing": (0.0, 1.0, False, 0.1),
    "seed": (0, 2**32 - 1, False, 0), "threads": (1, None, False, 2),
}
CHOICES: dict[str, tuple[str, ...]] = {"optimizer": ("adamw", "sgd")}


def check_field(where: str, key: str, value: Any, hint: Any,
                ranges: dict[str, tuple[float | None, float | None, bool, Any]] | None = None) -> None:
    """One recipe value: its type, then its range or choices; the error names the key and a value that works.
    `ranges` adds a recipe's own fields to (or overrides) RANGES."""
    from models.checkpoint import type_fits, type_name

    low, high, open_low, example = {**RANGES, **(ranges or {})}.get(key, (None, None, False, None))
    if not type_fits(value, hint):
        eg = f", e.g. --set {key}={example}" if example is not None else ""
        raise RecipeError(f"{where}: {key}={value!r} is not {type_name(hint)}", f"set {key} to {type_name(hint)}{eg}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecipeError(f"{where}: {key}={value!r} is not a finite number", f"use a finite number, e.g. --set {key}={example}")
    too_low = low is not None and (value <= low if open_low else value < low)
    if too_low or (high is not None and value > high):
        lo = "" if low is None else f"{'>' if open_low else '>='} {low}"
        hi = "" if high is None else f"<= {high}"
        raise RecipeError(f"{where}: {key}={value!r} is out of range",
                          f"use a value {' and '.join(filter(None, (lo, hi)))}, e.g. --set {key}={example}")
    if key in CHOICES and value not in CHOICES[key]:
        raise RecipeError(f"{where}: {key} {value!r} is unknown", f"use one of: {', '.join(CHOICES[key])}")


def checked_fields(cls: type, data: dict[str, Any], where: str,
                   ranges: dict[str, tuple[float | None, float | None, bool, Any]] | None = None) -> Any:
    """A paper's recipe dataclass from plain data: unknown keys refused, every field's type and range checked
    (check_field with the paper's own `ranges`), and `name` a plain folder name (it names the checkpoint folder)."""
    from app.workspace import WorkspaceError, safe_name

    recipe = strict_fields(cls, data, where)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        check_field(where, f.name, getattr(recipe, f.name), hints[f.name], ranges)
    try:
        safe_name(recipe.name, "recipe name")
    except WorkspaceError as e:
        raise RecipeError(f"{where}: {e.problem}", f"set `name:` (it names the checkpoint folder): {e.fix}") from None
    return recipe


def recipe_from_dict(data: dict[str, Any], where: str = "recipe") -> Recipe:
    """A Recipe with every field checked (type, range, a plain `name`, a registered model, model_args that build
    and run it) before anything is trained or written."""
    import torch

    from app.workspace import WorkspaceError, safe_name
    from models.checkpoint import mismatched_fields
    from models.registry import args_from_dict, build, example_inputs, get, names
    from trainers.data import DATASETS

    recipe = strict_fields(Recipe, data, where)
    hints = typing.get_type_hints(Recipe)
    for f in dataclasses.fields(Recipe):
        check_field(where, f.name, getattr(recipe, f.name), hints[f.name])
    try:
        safe_name(recipe.name, "recipe name")
    except WorkspaceError as e:
        raise RecipeError(f"{where}: {e.problem}", f"set `name:` (it names the checkpoint folder): {e.fix}") from None
    if recipe.dataset not in DATASETS:
        raise RecipeError(f"{where}: dataset {recipe.dataset!r} is unknown", f"use one of: {', '.join(DATASETS)}")
    if recipe.model not in names():
        raise RecipeError(f"{where}: model {recipe.model!r} is not an image classifier this loop trains",
                          f"use one of: {', '.join(names())}")
    fix = "fix model_args in the recipe (see the model's ModelArgs)"
    args_cls = get(recipe.model).args_cls
    try:
        args_from_dict(args_cls, recipe.model_args)
    except ValueError as e:
        raise RecipeError(f"{where}: {e}", fix) from None
    bad = mismatched_fields(args_cls, recipe.model_args)
    if bad:
        raise RecipeError(f"{where}: model_args {', '.join(bad)}", fix)
    try:  # a model that cannot be built or run fails here, before data is loaded or anything written
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # torch's warnings about zero-size layers: the error says it better
            model = build(recipe.model, recipe.model_args).eval()
            model(*example_inputs(model, 1))
    except (TypeError, ValueError, RuntimeError, ZeroDivisionError, IndexError) as e:
        raise RecipeError(f"{where}: model_args do not give a working {recipe.model} "
                          f"({str(e).strip(chr(34)).splitlines()[0][:160]})", fix) from None
    if recipe.sampler is not None:
        from trainers.samplers import check_recipe

        check_recipe(recipe, getattr(getattr(model, "args", None), "image_size", None), where)
    return recipe
