"""DynaMoE conversion recipe (card 04): a dense OpenELM byte LM (trained here from `dense`, or an existing checkpoint
`dense_checkpoint`) becomes nested experts with per-layer routers. Strict YAML: unknown keys, wrong types and values
out of range are errors before anything is trained or written.

    edgezoo train trainers/dynamoe/configs/dynamoe_main.yaml --out zoo/dynamoe
    python -m trainers.dynamoe.convert trainers/dynamoe/configs/dynamoe_main.yaml OUT [key=value ...]
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.errors import RecipeError
from trainers.openelm.recipe import _out_of_range as _bad_number
from trainers.recipe import strict_fields


@dataclass
class DynaMoERecipe:
    name: str = "dynamoe"
    dense: dict[str, Any] = field(default_factory=dict)  # an OpenELM LM recipe (trainers/openelm/recipe.py)
    dense_checkpoint: str | None = None  # convert this dense OpenELM checkpoint instead of training `dense`
    expert_fractions: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0])
    calib_bytes: int = 65536             # training bytes that score the hidden units (neuron reordering)
    finetune_steps: int = 300            # loss summed over every expert size
    finetune_lr: float = 1e-3
    warmup: int = 20
    batch_size: int = 16
    context: int = 64
    label_bytes: int = 65536             # training bytes labelled with token difficulty
    label_rule: str = "loss_increase"    # loss_increase | relative_error (card 04 section 2, step 4)
    tau: float = 0.1                     # label: smallest expert whose loss increase (nats) / relative error <= tau
    router_steps: int = 300              # per layer, backbone frozen
    router_lr: float = 1e-2
    router_batch: int = 512
    theta: float = 0.5                   # the sensitivity the checkpoint routes with (exports can set their own)
    save_every: int = 50                 # steps between resumable checkpoints (fine-tune and routers)
    eval_windows: int = 128
    seed: int = 0
    threads: int = 1

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:16]


LABEL_RULES = ("loss_increase", "relative_error")
# field: (integer?, low, high, low excluded)
LIMITS = {"calib_bytes": (True, 256, None, False), "finetune_steps": (True, 0, None, False),
          "finetune_lr": (False, 0.0, 1.0, True), "warmup": (True, 0, None, False), "batch_size": (True, 1, 4096, False),
          "context": (True, 2, 4096, False), "label_bytes": (True, 256, None, False), "tau": (False, 0.0, 10.0, True),
          "router_steps": (True, 1, None, False), "router_lr": (False, 0.0, 10.0, True),
          "router_batch": (True, 1, None, False), "theta": (False, 0.0, 1.0, False),
          "save_every": (True, 1, None, False), "eval_windows": (True, 1, None, False),
          "seed": (True, 0, 2**32 - 1, False), "threads": (True, 1, 256, False)}


def check_recipe(r: DynaMoERecipe, where: str) -> DynaMoERecipe:
    from app.workspace import safe_name

    safe_name(r.name, f"{where}: recipe name")
    for key, (integer, low, high, strict) in LIMITS.items():
        value = getattr(r, key)
        if _bad_number(value, integer, low, high, strict):
            rng = f"{'>' if strict else '>='} {low}" + (f" and <= {high}" if high is not None else "")
            default = DynaMoERecipe.__dataclass_fields__[key].default
            raise RecipeError(f"{where}: {key} = {value!r} is not {'an integer' if integer else 'a number'} {rng}",
                              f"e.g. --set {key}={default}")
    if r.label_rule not in LABEL_RULES:
        raise RecipeError(f"{where}: label_rule {r.label_rule!r} is unknown", f"use one of: {', '.join(LABEL_RULES)}")
    fr = r.expert_fractions
    if not isinstance(fr, list) or not fr or any(_bad_number(f, False, 0.0, 1.0, True) for f in fr):
        raise RecipeError(f"{where}: expert_fractions = {fr!r} is not a list of numbers in (0, 1]",
                          "e.g. --set expert_fractions=[0.25,0.5,0.75,1.0]")
    try:
        _increasing(fr)
    except ValueError as e:
        raise RecipeError(f"{where}: {e}", "e.g. --set expert_fractions=[0.25,0.5,0.75,1.0]") from None
    if r.dense_checkpoint is not None and not isinstance(r.dense_checkpoint, str):
        raise RecipeError(f"{where}: dense_checkpoint = {r.dense_checkpoint!r} is not a path",
                          "set it to a dense OpenELM checkpoint folder, or null to train `dense`")
    if r.dense_checkpoint is None:
        dense_recipe(r, where)
    else:  # its card and weight shapes, before anything is trained or written
        from trainers.dynamoe.convert import check_dense

        check_dense(Path(r.dense_checkpoint), tuple(fr))
    return r


def _increasing(fractions: list[float]) -> None:
    if fractions[-1] != 1.0 or any(b <= a for a, b in zip(fractions, fractions[1:])):
        raise ValueError(f"expert_fractions {fractions} must increase and end at 1.0 (the full FFN)")


def dense_recipe(r: DynaMoERecipe, where: str = "recipe"):
    """The OpenELM recipe of the dense model (`dense`), checked like any LM recipe."""
    from trainers.openelm.recipe import recipe_from_dict as lm_recipe

    if not isinstance(r.dense, dict):
        raise RecipeError(f"{where}: dense = {r.dense!r} is not a mapping", "write dense: as an OpenELM LM recipe")
    data = {"name": f"{r.name}_dense", "seed": r.seed, "threads": r.threads, **r.dense}
    return lm_recipe(data, f"{where}: dense")


def recipe_from_dict(data: dict[str, Any], where: str = "recipe") -> DynaMoERecipe:
    return check_recipe(strict_fields(DynaMoERecipe, data, where), where)


def train(recipe: DynaMoERecipe, out: Path) -> dict[str, Any]:
    from trainers.dynamoe.convert import convert

    return convert(recipe, Path(out))
