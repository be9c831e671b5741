"""LCS unstructured-sparsity training on digits (card 13): LCS+L (a line), LCS+P (one network at random levels),
and independent per-sparsity baselines, all with the same gradual sparsity warmup.

Per step t of T: df(t) = max(0, 1 - t / T_warm), T_warm = 80 % of T; a layer keeps topk(alpha) = alpha +
(1 - alpha) df(t) of its weights (per-layer magnitude top-k of w(alpha), no gradient; first conv dense).
LCS+L draws alpha with the endpoint bias (p = 0.5: 0.025 or 1; else U(0.025, 1)) and adds beta cos^2(w0, w1)
over the line layers. Evaluation maps alpha to sparsity with df = 0: alpha = 1 - sparsity.

`compression: width` (InstanceNorm): alpha sets the width f = 0.25 + 0.75 alpha; LCS+L uses the sandwich rule
(4 forward passes per step at alpha in {0, 1, U, U}, losses summed; weights are one shared point, norms on the
line, so no cos^2). `compression: bits`: alpha in {1/6, .., 6/6} maps to 3..8 bit weights (fake-quantized,
straight-through); LCS+L draws it uniformly from that set. LCS+P runs at the top level during warmup.

    python -m trainers.lcs.recipe trainers/lcs/configs/lcs_l.yaml --out zoo/lcs_l
    python -m trainers.lcs.recipe trainers/lcs/configs/lcs_w.yaml --out zoo/lcs_w
    python -m trainers.lcs.recipe trainers/lcs/configs/lcs_q.yaml --out zoo/lcs_q
"""

from __future__ import annotations

import dataclasses
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from models import checkpoint
from models.errors import RecipeError
from models.layers.subspace import cos2
from models.lcs_cnn import BIT_ALPHAS, COMPRESSIONS, LCS_MIN_ALPHA, LCSCNN, lcs_bits, set_level
from models.registry import build
from trainers.data import ImageDataset, load_dataset
from trainers.loop import fit_split, seed_everything
from trainers.recipe import strict_fields

ARMS = ("lcs_l", "lcs_p", "indep")
SPARSITY_GRID = (0.0, 0.5, 0.8, 0.9, 0.95, 0.975)
WIDTH_GRID = (0.0, 0.025, 0.25, 0.5, 0.75, 1.0)  # alphas (width f = 0.25 + 0.75 alpha)


@dataclass
class LCSRecipe:
    name: str = "lcs"
    arm: str = "lcs_l"              # lcs_l | lcs_p | indep
    norm: str = "group"             # group | batch (negative control, evaluated without recalibration) | instance
    compression: str = "unstructured"  # unstructured (top-k sparsity) | width (needs norm: instance) | bits
    channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    sparsity: float = 0.0           # indep: the target sparsity of this model
    epochs: int = 40
    batch_size: int = 64
    lr: float = 2e-3                # Adam, cosine-annealed
    warm_fraction: float = 0.8      # T_warm as a fraction of training
    beta: float = 1.0               # cos^2 regulariser weight (LCS+L)
    min_alpha: float = LCS_MIN_ALPHA
    endpoint_prob: float = 0.5      # biased endpoint sampling (LCS+L)
    seed: int = 0
    threads: int = 1               # tiny convs: one thread avoids oversubscription on shared cores
    dataset: str = "digits"

    def model_args(self) -> dict[str, Any]:
        subspace = "line" if self.arm == "lcs_l" else "point"
        return {"channels": list(self.channels), "norm": self.norm, "subspace": subspace,
                "compression": self.compression}


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> LCSRecipe:
    data = yaml.safe_load(Path(path).read_text()) or {}
    data.setdefault("name", Path(path).stem)
    return recipe_from_dict({**data, **(overrides or {})}, str(path))


def recipe_from_dict(data: dict[str, Any], where: str = "lcs recipe") -> LCSRecipe:
    recipe = strict_fields(LCSRecipe, data, where)
    if recipe.arm not in ARMS:
        raise RecipeError(f"{where}: arm {recipe.arm!r} is unknown", f"use one of {', '.join(ARMS)}")
    if recipe.compression not in COMPRESSIONS:
        raise RecipeError(f"{where}: compression {recipe.compression!r} is unknown",
                          f"use one of {', '.join(COMPRESSIONS)}")
    if recipe.compression == "width" and recipe.norm != "instance":
        raise RecipeError(f"{where}: compression width needs per-channel norms", "set norm: instance")
    return recipe


def df(step: int, total: int, warm_fraction: float) -> float:
    """Compression phase-in: 1 at the start, 0 from T_warm on."""
    return max(0.0, 1.0 - step / max(warm_fraction * total, 1e-9))


def sample_alpha(recipe: LCSRecipe, rng: random.Random, warm: float) -> float:
    if recipe.arm == "indep":
        return 1.0 - recipe.sparsity
    if recipe.compression == "bits":  # one of the 6 bit widths (LCS+P: max bits during warmup)
        return 1.0 if recipe.arm == "lcs_p" and warm > 0 else rng.choice(BIT_ALPHAS)
    if recipe.compression == "width":  # LCS+L trains with sandwich_alphas instead
        return 1.0 if warm > 0 else rng.uniform(0.0, 1.0)
    if recipe.arm == "lcs_p":  # dense while warming up, then uniform levels (no endpoint bias)
        return 1.0 if warm > 0 else rng.uniform(recipe.min_alpha, 1.0)
    if rng.random() < recipe.endpoint_prob:
        return rng.choice((recipe.min_alpha, 1.0))
    return rng.uniform(recipe.min_alpha, 1.0)


def sandwich_alphas(rng: random.Random) -> list[float]:
    """LCS width, sandwich rule: both ends and two uniform draws."""
    return [0.0, 1.0, rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0)]


def step_alphas(recipe: LCSRecipe, rng: random.Random, warm: float) -> list[float]:
    if recipe.compression == "width" and recipe.arm == "lcs_l":
        return sandwich_alphas(rng)
    return [sample_alpha(recipe, rng, warm)]


def fit(recipe: LCSRecipe, data: ImageDataset | None = None) -> LCSCNN:
    """Train one arm; returns the model in eval mode."""
    torch.set_num_threads(recipe.threads)
    seed_everything(recipe.seed)
    data = data or load_dataset(recipe.dataset)
    model = build("lcs_cnn", recipe.model_args())
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    rng = random.Random(recipe.seed)

    def loss_fn(step: int, total: int, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        warm = df(step, total, recipe.warm_fraction)
        loss = torch.zeros(())
        for alpha in step_alphas(recipe, rng, warm):
            # LCS+P is dense during warmup: its kept fraction ignores df; the others phase sparsity in
            set_level(model, alpha, 0.0 if recipe.arm == "lcs_p" else warm)
            loss = loss + nn.functional.cross_entropy(model(xb), yb)
        if recipe.arm == "lcs_l" and recipe.beta and recipe.compression != "width":
            loss = loss + recipe.beta * cos2(model, 0, 1)
        return loss

    fit_split(model, data.train, opt, recipe.epochs, recipe.batch_size, recipe.seed, loss_fn)
    return model.eval()


@torch.no_grad()
def accuracy_at(model: LCSCNN, x: np.ndarray, y: np.ndarray, sparsity: float) -> float:
    """Test accuracy at a sparsity level (alpha = 1 - sparsity, df = 0), no recalibration."""
    return accuracy_at_alpha(model, x, y, max(1.0 - sparsity, 0.0))


@torch.no_grad()
def accuracy_at_alpha(model: LCSCNN, x: np.ndarray, y: np.ndarray, alpha: float) -> float:
    model.eval()
    with set_level(model, alpha):
        logits = model(torch.from_numpy(x))
    return (logits.argmax(1) == torch.from_numpy(y)).float().mean().item()


def evaluate_grid(model: LCSCNN, split, grid: tuple[float, ...] = SPARSITY_GRID) -> dict[str, float]:
    return {f"{s:g}": accuracy_at(model, split.x, split.y, s) for s in grid}


def evaluate_levels(model: LCSCNN, split) -> dict[str, float]:
    """Width models: accuracy by alpha over WIDTH_GRID; bits models: by bit width 3..8 (no recalibration)."""
    if model.args.compression == "bits":
        return {f"{lcs_bits(a)}bit": accuracy_at_alpha(model, split.x, split.y, a) for a in BIT_ALPHAS}
    return {f"a{a:g}": accuracy_at_alpha(model, split.x, split.y, a) for a in WIDTH_GRID}


def train(recipe: LCSRecipe, out_dir: Path) -> dict[str, Any]:
    """Train, evaluate on the test split across the sparsity grid, save a checkpoint (loadable and exportable
    with `--compress lcs:alpha=A`)."""
    data = load_dataset(recipe.dataset)
    model = fit(recipe, data)
    if recipe.compression != "unstructured":
        key = "test_accuracy_by_bits" if recipe.compression == "bits" else "test_accuracy_by_alpha"
        metrics = {key: evaluate_levels(model, data.test), "test_n": len(data.test.y)}
    else:
        grid = (recipe.sparsity,) if recipe.arm == "indep" else SPARSITY_GRID
        metrics = {"test_accuracy_by_sparsity": evaluate_grid(model, data.test, grid), "test_n": len(data.test.y)}
    checkpoint.save(model, Path(out_dir), {"recipe": dataclasses.asdict(recipe), "dataset": recipe.dataset,
                                           "data_split_hash": data.split_hash, "metrics": metrics})
    return metrics


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit("usage: python -m trainers.lcs.recipe CONFIG.yaml [--out DIR]")
    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else Path("edgezoo-workspace/zoo") / Path(argv[0]).stem
    print(yaml.safe_dump(train(load_recipe(argv[0]), out), sort_keys=False))


if __name__ == "__main__":
    main()
