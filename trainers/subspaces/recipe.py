"""Learning Neural Network Subspaces on digits (card 14): a line (or curve / simplex) of networks in one run.

Per batch: alpha ~ U(0, 1) (simplex: z = normalised Exp(1) draws), forward at w(alpha), loss = CE +
beta cos^2(w_i, w_j) for a random pair of points over all subspace conv/linear weights. Evaluation at an alpha
recalibrates BatchNorm there first (reset, cumulative average, one pass over the training split).

    python -m trainers.subspaces.recipe trainers/subspaces/configs/line.yaml --out zoo/subspace_line
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
from models.layers.subspace import cos2, recalibrate_bn, set_alpha
from models.lcs_cnn import LCSCNN
from models.registry import build
from trainers.data import ImageDataset, Split, load_dataset
from trainers.loop import fit_split, seed_everything
from trainers.recipe import strict_fields


@dataclass
class SubspaceRecipe:
    name: str = "subspace"
    subspace: str = "line"          # none (standard training) | line | bezier | simplex
    points: int = 2                 # simplex vertices
    channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    epochs: int = 60
    batch_size: int = 64
    lr: float = 0.05                # SGD momentum 0.9, cosine
    weight_decay: float = 5e-4
    beta: float = 1.0
    train_size: int = 500           # stratified subset of the training split (0 = all)
    label_noise: float = 0.0        # fraction of training labels replaced uniformly at random (fixed per seed)
    seed: int = 0
    threads: int = 1
    dataset: str = "digits"

    def model_args(self) -> dict[str, Any]:
        return {"channels": list(self.channels), "norm": "batch", "head": "conv", "subspace": self.subspace,
                "points": self.points, "alpha_sparsity": False}


def recipe_from_dict(data: dict[str, Any], where: str = "subspace recipe") -> SubspaceRecipe:
    return strict_fields(SubspaceRecipe, data, where)


def train_split(data: ImageDataset, recipe: SubspaceRecipe) -> Split:
    """Stratified subset of `train_size` images, with symmetric label noise (seeded by the recipe's seed)."""
    rng = np.random.default_rng(recipe.seed)
    x, y = data.train.x, data.train.y
    if recipe.train_size and recipe.train_size < len(y):
        per = recipe.train_size // data.num_classes
        idx = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per] for c in range(data.num_classes)]))
        x, y = x[idx], y[idx]
    y = y.copy()
    noisy = rng.random(len(y)) < recipe.label_noise
    y[noisy] = rng.integers(0, data.num_classes, int(noisy.sum()))
    return Split(x, y)


def sample_alpha(model: LCSCNN, rng: random.Random) -> Any:
    if model.args.subspace == "simplex":
        z = [rng.expovariate(1.0) for _ in range(model.args.points)]
        return [v / sum(z) for v in z]
    return rng.random()


def fit(recipe: SubspaceRecipe, split: Split) -> LCSCNN:
    torch.set_num_threads(recipe.threads)
    seed_everything(recipe.seed)
    model = build("lcs_cnn", recipe.model_args())
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=0.9, weight_decay=recipe.weight_decay)
    rng = random.Random(recipe.seed)
    n = model.features[0].n_points if recipe.subspace != "none" else 1

    def loss_fn(_step: int, _total: int, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(model(xb), yb) if n == 1 else _subspace_loss(model, xb, yb, recipe, rng, n)

    fit_split(model, split, opt, recipe.epochs, recipe.batch_size, recipe.seed, loss_fn)
    return model.eval()


def _subspace_loss(model: LCSCNN, xb, yb, recipe: SubspaceRecipe, rng: random.Random, n: int) -> torch.Tensor:
    set_alpha(model, sample_alpha(model, rng))  # one alpha per batch, for every layer
    loss = nn.functional.cross_entropy(model(xb), yb)
    if recipe.beta:
        i, j = rng.sample(range(n), 2)
        loss = loss + recipe.beta * cos2(model, i, j)
    return loss


@torch.no_grad()
def logits_at(model: LCSCNN, alpha: Any, train_x: np.ndarray, x: np.ndarray) -> torch.Tensor:
    """Logits at alpha after BatchNorm recalibration there (the model's statistics are restored after)."""
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with set_alpha(model, alpha):
        recalibrate_bn(model, torch.from_numpy(train_x))
        out = model(torch.from_numpy(x))
    model.load_state_dict(saved)
    return out


def interpolate(a: LCSCNN, b: LCSCNN) -> LCSCNN:
    """Two independently trained plain models as the endpoints of a line model (arm D)."""
    line = build("lcs_cnn", {**dataclasses.asdict(a.args), "subspace": "line"})
    state = dict(a.state_dict())
    for k, v in b.state_dict().items():
        if k.endswith(("weight", "bias")) and f"{k}_1" in line.state_dict():
            state[f"{k}_1"] = v
    line.load_state_dict(state, strict=True)
    return line.eval()


def train(recipe: SubspaceRecipe, out_dir: Path) -> dict[str, Any]:
    """Train a line (or a standard network), evaluate on the test split at its ends and midpoint, save a checkpoint
    (exportable at any point with `--compress lcs:alpha=A`)."""
    data = load_dataset(recipe.dataset)
    split = train_split(data, recipe)
    model = fit(recipe, split)
    acc = {f"{a:g}": float((logits_at(model, a, split.x, data.test.x).argmax(1).numpy() == data.test.y).mean())
           for a in ((0.0, 0.5, 1.0) if recipe.subspace in ("line", "bezier") else (1.0,))}
    metrics = {"test_accuracy_by_alpha": acc, "test_n": len(data.test.y)}
    checkpoint.save(model, Path(out_dir), {"recipe": dataclasses.asdict(recipe), "dataset": recipe.dataset,
                                           "data_split_hash": data.split_hash, "metrics": metrics})
    return metrics


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit("usage: python -m trainers.subspaces.recipe CONFIG.yaml [--out DIR]")
    data_yaml = yaml.safe_load(Path(argv[0]).read_text()) or {}
    recipe = recipe_from_dict({"name": Path(argv[0]).stem, **data_yaml}, argv[0])
    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else Path("edgezoo-workspace/zoo") / recipe.name
    print(yaml.safe_dump(train(recipe, out)))


if __name__ == "__main__":
    main()
