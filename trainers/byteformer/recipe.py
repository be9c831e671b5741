"""ByteFormer (card 06) on digit file bytes: one recipe = one encoding (raw / png / tiff / jpeg) under one byte
transform, a BF-nano-shaped model, AdamW with cosine decay on the shared loop step (trainers.loop.fit_split: the
loss function cuts each batch to its longest sample). Strict YAML: unknown keys, wrong types and out-of-range values
are errors before anything is trained or written.

    edgezoo train trainers/byteformer/configs/byteformer_jpeg.yaml --out zoo/byteformer_jpeg
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from models import checkpoint
from models.errors import RecipeError
from trainers.byteformer.data import ENCODINGS, TRANSFORMS, ByteDataset, ByteSplit, arm_data, trim
from trainers.recipe import checked_fields

MODEL = "byteformer"
EVAL_BATCH = 100
# recipe fields beyond trainers.recipe.RANGES: (low, high, low is exclusive, an example)
RANGES: dict[str, tuple[float | None, float | None, bool, Any]] = {
    "epochs": (1, 1000, False, 20), "batch_size": (1, 1200, False, 64), "lr": (0.0, 1.0, True, 0.001),
    "weight_decay": (0.0, 1.0, False, 0.05), "keep": (0.0, 1.0, True, 0.5), "threads": (1, 256, False, 1),
}


@dataclass
class ByteFormerRecipe:
    name: str = "byteformer"
    encoding: str = "jpeg"           # raw | png | tiff | jpeg
    transform: str = "none"          # none | permute | shuffle | reverse | keep
    keep: float = 1.0                # kept fraction of positions for transform `keep`
    model_args: dict[str, Any] = field(default_factory=dict)  # models/byteformer.py ModelArgs fields
    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.001
    weight_decay: float = 0.05
    label_smoothing: float = 0.0
    seed: int = 0
    threads: int = 1


def recipe_from_dict(data: dict[str, Any], where: str = "byteformer recipe") -> ByteFormerRecipe:
    from models.byteformer import ModelArgs
    from models.registry import args_from_dict

    recipe = checked_fields(ByteFormerRecipe, data, where, RANGES)
    if recipe.encoding not in ENCODINGS:
        raise RecipeError(f"{where}: encoding {recipe.encoding!r} is unknown", f"use one of: {', '.join(ENCODINGS)}")
    if recipe.transform not in TRANSFORMS:
        raise RecipeError(f"{where}: transform {recipe.transform!r} is unknown",
                          f"use one of: {', '.join(TRANSFORMS)}")
    if recipe.transform == "keep" and recipe.encoding != "raw":
        raise RecipeError(f"{where}: transform keep needs fixed-length raw bytes", "set encoding: raw")
    try:
        args_from_dict(ModelArgs, recipe.model_args)
    except (ValueError, TypeError) as e:
        raise RecipeError(f"{where}: model_args: {e}", "fix model_args (see models/byteformer.py ModelArgs)") from None
    return recipe


def data_of(recipe: ByteFormerRecipe) -> ByteDataset:
    """The recipe's bytes; every sample must fit the model's exported length `max_bytes`."""
    from models.byteformer import ModelArgs
    from models.registry import args_from_dict

    data = arm_data(recipe.encoding, recipe.transform, recipe.seed, recipe.keep)
    limit = args_from_dict(ModelArgs, recipe.model_args).max_bytes
    longest = max(s.x.shape[1] for s in (data.train, data.val, data.test))
    if longest > limit:
        raise RecipeError(f"{data.name}: the longest sample has {longest} bytes, more than max_bytes={limit}",
                          f"raise model_args.max_bytes to at least {longest} (and max_tokens to match)")
    return data


@torch.no_grad()
def logits(model: nn.Module, x: np.ndarray) -> torch.Tensor:
    model.eval()
    return torch.cat([model(torch.from_numpy(trim(x[i:i + EVAL_BATCH]))) for i in range(0, len(x), EVAL_BATCH)])


def accuracy(model: nn.Module, split: ByteSplit | Any) -> float:
    return float((logits(model, split.x).argmax(1).numpy() == split.y).mean())


def fit_model(model: nn.Module, train: Any, recipe: ByteFormerRecipe, prepare=lambda xb: xb) -> nn.Module:
    """AdamW + cosine decay over the loop's seeded batches; `prepare` turns a batch of the split into model input."""
    from trainers.loop import fit_split

    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)

    def loss_fn(_step: int, _total: int, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(model(prepare(xb)), yb, label_smoothing=recipe.label_smoothing)

    return fit_split(model, train, opt, recipe.epochs, recipe.batch_size, recipe.seed, loss_fn)


def fit(recipe: ByteFormerRecipe, data: ByteDataset | None = None) -> nn.Module:
    """One trained ByteFormer (eval mode); the same initialisation and batch order for every arm of a seed."""
    from models.registry import build
    from trainers.loop import seed_everything

    data = data or data_of(recipe)
    torch.set_num_threads(recipe.threads)
    seed_everything(recipe.seed)
    model = build(MODEL, recipe.model_args)
    return fit_model(model, data.train, recipe, lambda xb: torch.from_numpy(trim(xb.numpy())))


def train(recipe: ByteFormerRecipe, out_dir: Path) -> dict[str, Any]:
    """Train, evaluate on validation and test bytes, save; the card names the bytes the exporters evaluate on."""
    t0 = time.perf_counter()
    data = data_of(recipe)
    model = fit(recipe, data)
    metrics = {"val_accuracy": accuracy(model, data.val), "test_accuracy": accuracy(model, data.test),
               "test_n": len(data.test.y), "train_seconds": time.perf_counter() - t0}
    checkpoint.save(model, Path(out_dir), {
        "recipe": dataclasses.asdict(recipe), "dataset": data.name, "data_split_hash": data.split_hash,
        "eval_inputs": "trainers.byteformer.data:eval_inputs", "metrics": metrics})
    return metrics
