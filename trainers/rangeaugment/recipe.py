"""RangeAugment (card 09, arXiv 2212.10553) on 16x16 digits: the `range_augment_cnn` classifier trained with
L = CE(f(x'), y) + L_NA, x' the batch after the learnable augmentor (models/layers/range_augment.py).

The training method gives the loop prepare / step / finalize (`RangeAugmentTraining`): prepare seeds the
augmentor's generator and builds the optimizer (the augmentor's 0-d range parameters in a group of their own: no
weight decay, Adam beta2 0.99, a constant LR of `aug_lr_multiplier` x lr while the CNN's LR decays); step
computes the loss with the curriculum target (cosine in MSE space from `start_psnr` to `target_psnr` over the first
`curriculum` fraction of the steps, then constant) and logs the measured PSNR (from the batch's median per-sample
MSE: untouched samples have infinite PSNR) and the ranges; finalize returns the per-epoch history and the summary
the claim checks. `augment: []` trains without the augmentor (arm A), `alpha: 0` without L_NA (arm C).

Data: digits upsampled to 16x16 (trainers.data "digits16"), 1,200 / 300 / 297 stratified split. The final model
is evaluated on the clean test split and on four photometric corruptions of it (`CORRUPTIONS`).

    edgezoo train rangeaugment --set target_psnr=10
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from models import checkpoint
from models.errors import RecipeError
from models.layers.range_augment import (OPS, brightness, contrast, cosine_curriculum, mse_to_psnr, na_loss,
                                         noise, per_sample_mse)
from models.registry import build
from trainers.data import ImageDataset, load_dataset
from trainers.loop import fit_split, seed_everything
from trainers.recipe import checked_fields

MODEL = "range_augment_cnn"
DATASET = "digits16"
NORMS = ("batch", "group", "instance")
MAX_PSNR = 100.0  # dB; 8-bit images differing in one pixel of 16x16 by one level are at ~72 dB
# recipe fields beyond trainers.recipe.RANGES: (low, high, low is exclusive, an example)
RANGES: dict[str, tuple[float | None, float | None, bool, Any]] = {
    "target_psnr": (0.0, MAX_PSNR, True, 20), "start_psnr": (0.0, MAX_PSNR, True, 40),
    "curriculum": (0.0, 1.0, True, 1.0), "alpha": (0.0, 1e6, False, 100), "epochs": (1, 1000, False, 30),
    "batch_size": (1, 1200, False, 64), "lr": (0.0, 1.0, True, 0.002), "weight_decay": (0.0, 1.0, False, 0.0),
    "threads": (1, 256, False, 1), "aug_lr_multiplier": (0.0, 1e4, False, 25),
}
# corrupted test sets (card section 5): the augmentor's own operations at fixed magnitudes, clipped to [0, 1]
CORRUPTIONS: dict[str, tuple[Callable[..., torch.Tensor], float]] = {
    "brightness_x0.3": (brightness, 0.3), "brightness_x3": (brightness, 3.0), "contrast_0.3": (contrast, 0.3),
    "noise_0.2": (noise, 0.2)}
NOISE_SEED = 1234  # the noise corruption is drawn once, the same for every model
# Adam for the 0-d range parameters: a short memory, so that the large gradients of the first steps (the initial
# ranges are far from 40 dB) do not freeze the ranges for the rest of a short run
AUG_BETAS = (0.9, 0.99)


@dataclass
class RangeAugmentRecipe:
    name: str = "rangeaugment"
    channels: list[int] = field(default_factory=lambda: [32, 64, 64])  # ~56k parameters
    norm: str = "batch"
    augment: list[str] = field(default_factory=lambda: list(OPS))      # [] : no augmentor (arm A)
    target_psnr: float = 20.0      # dB, the end of the curriculum (card: 20 for the small CNN)
    start_psnr: float = 40.0       # dB, the start of the curriculum
    curriculum: float = 1.0        # fraction of the steps the cosine curriculum spans (upstream: all of training)
    alpha: float = 100.0           # L_NA weight (divided by 65025); 0: the augmentor learns from the task alone
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.002              # Adam(W), cosine-annealed over all steps
    weight_decay: float = 0.0      # the CNN's weights only: the range parameters are exempt
    aug_lr_multiplier: float = 25.0  # the range parameters' LR / lr (upstream's lr_multiplier, there unused)
    seed: int = 0
    threads: int = 1               # tiny convs: one thread avoids oversubscription on shared cores

    def model_args(self) -> dict[str, Any]:
        return {"channels": list(self.channels), "norm": self.norm, "augment": list(self.augment)}


def recipe_from_dict(data: dict[str, Any], where: str = "rangeaugment recipe") -> RangeAugmentRecipe:
    """Every key, type and range checked before anything is trained or written."""
    recipe = checked_fields(RangeAugmentRecipe, data, where, RANGES)
    if not recipe.channels or any(c < 1 or c > 4096 for c in recipe.channels):
        raise RecipeError(f"{where}: channels={recipe.channels!r} must be widths in 1..4096",
                          "e.g. --set channels=[32,64,64]")
    if recipe.norm not in NORMS:
        raise RecipeError(f"{where}: norm {recipe.norm!r} is unknown", f"use one of: {', '.join(NORMS)}")
    if any(op not in OPS for op in recipe.augment) or len(set(recipe.augment)) != len(recipe.augment):
        raise RecipeError(f"{where}: augment={recipe.augment!r} must list distinct operations from {list(OPS)}",
                          "e.g. --set augment=[brightness,contrast,noise], or [] for no augmentor")
    if recipe.target_psnr > recipe.start_psnr:
        raise RecipeError(f"{where}: target_psnr={recipe.target_psnr} is above start_psnr={recipe.start_psnr} "
                          "(the curriculum goes from mild to strong augmentation)",
                          f"set target_psnr <= {recipe.start_psnr} or raise start_psnr")
    return recipe


# ----------------------------------------------------------------------------------------------------- training

class RangeAugmentTraining:
    """prepare / step / finalize for one training run. `step` is the loop's loss function (trainers.loop.fit_split);
    it logs per step the measured PSNR, the target PSNR and, per epoch, the ranges."""

    def __init__(self, recipe: RangeAugmentRecipe, steps_per_epoch: int) -> None:
        self.recipe, self.steps_per_epoch = recipe, steps_per_epoch
        self.model: nn.Module | None = None
        self.opt: torch.optim.Optimizer | None = None
        self.targets: torch.Tensor | None = None  # target MSE per step, built at the first step
        self.steps: list[dict[str, float]] = []   # per step: task loss, L_NA, measured and target PSNR
        self.epochs: list[dict[str, float]] = []  # per epoch: means of the steps + the ranges at its end

    def prepare(self, model: nn.Module) -> torch.optim.Optimizer:
        """Seed the augmentor's draws; the optimizer: AdamW, the range parameters in a group of their own without
        weight decay."""
        self.model = model
        groups = [{"params": list(model.backbone.parameters()), "weight_decay": self.recipe.weight_decay}]
        if (aug := model.neural_augmentor) is not None:
            aug.generator = torch.Generator().manual_seed(self.recipe.seed + 1)
            groups.append({"params": list(aug.parameters()), "weight_decay": 0.0, "betas": AUG_BETAS})
        self.opt = torch.optim.AdamW(groups, lr=self.recipe.lr)
        return self.opt

    def target_mse(self, step: int, total: int) -> float:
        if self.targets is None:
            self.targets = cosine_curriculum(self.recipe.start_psnr, self.recipe.target_psnr,
                                             max(1, round(self.recipe.curriculum * total)))
        return float(self.targets[min(step, len(self.targets) - 1)])

    def set_lr(self, opt: torch.optim.Optimizer, step: int, total: int) -> None:
        """The CNN's LR decays (cosine over all steps); the ranges train at a constant LR so that they can follow
        the curriculum to its end."""
        opt.param_groups[0]["lr"] = 0.5 * self.recipe.lr * (1.0 + math.cos(math.pi * step / total))
        for group in opt.param_groups[1:]:
            group["lr"] = self.recipe.lr * self.recipe.aug_lr_multiplier

    def step(self, step: int, total: int, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        model = self.model
        if self.opt is not None:
            self.set_lr(self.opt, step, total)
        x_aug = model.augment(xb)
        task = nn.functional.cross_entropy(model.backbone(x_aug), yb)
        row = {"task_loss": task.item()}
        loss = task
        if model.neural_augmentor is not None:
            mse = per_sample_mse(xb, x_aug)
            target = self.target_mse(step, total)
            aux = na_loss(mse, target, self.recipe.alpha)
            loss = task + aux
            row.update(na_loss=aux.item(), measured_psnr=mse_to_psnr(mse.detach().median().item()),
                       target_psnr=mse_to_psnr(target))
        self.steps.append(row)
        if (step + 1) % self.steps_per_epoch == 0 or step + 1 == total:
            self._close_epoch()
        return loss

    def _close_epoch(self) -> None:
        rows = self.steps[len(self.epochs) * self.steps_per_epoch:]
        summary = {"epoch": len(self.epochs), "train_loss": statistics.fmean(r["task_loss"] for r in rows)}
        for key in ("na_loss", "measured_psnr", "target_psnr"):
            values = [r[key] for r in rows if key in r and math.isfinite(r[key])]
            if values:
                summary[key] = statistics.fmean(values)
        if rows and "target_psnr" in rows[-1]:
            summary["target_psnr_end"] = rows[-1]["target_psnr"]
        if self.model.neural_augmentor is not None:
            summary.update(self.model.neural_augmentor.ranges())
        self.epochs.append(summary)

    def finalize(self) -> dict[str, Any]:
        """The per-epoch history and the card's checks: mean |measured - target PSNR| over the last half of the
        steps, the final ranges and the brightness range width."""
        out: dict[str, Any] = {"history": self.epochs}
        late = [r for r in self.steps[len(self.steps) // 2:] if "measured_psnr" in r]
        if late:
            out["psnr_gap"] = statistics.fmean(abs(r["measured_psnr"] - r["target_psnr"]) for r in late)
            final = self.model.neural_augmentor.ranges()
            out["ranges"] = final
            if "brightness_lo" in final:
                out["brightness_width"] = final["brightness_hi"] - final["brightness_lo"]
        return out


def fit(recipe: RangeAugmentRecipe, data: ImageDataset) -> tuple[nn.Module, dict[str, Any]]:
    """Train one model (the same initialisation and batch order for every arm of a seed); returns it in eval mode
    with `RangeAugmentTraining.finalize()`."""
    torch.set_num_threads(recipe.threads)
    seed_everything(recipe.seed)
    model = build(MODEL, recipe.model_args())
    method = RangeAugmentTraining(recipe, math.ceil(len(data.train.y) / recipe.batch_size))
    opt = method.prepare(model)
    fit_split(model, data.train, opt, recipe.epochs, recipe.batch_size, recipe.seed, method.step, cosine=False)
    return model.eval(), method.finalize()


# ----------------------------------------------------------------------------------------------------- evaluation

def corrupt(x: torch.Tensor, name: str) -> torch.Tensor:
    """One of the corrupted test sets: the operation at a fixed magnitude, clipped to [0, 1]."""
    op, m = CORRUPTIONS[name]
    return op(x, torch.tensor(m), torch.Generator().manual_seed(NOISE_SEED)).clamp(0.0, 1.0)


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageDataset) -> dict[str, float]:
    """Clean validation and test accuracy, test accuracy under each corruption and their mean."""
    model.eval()

    def acc(x: torch.Tensor, y: np.ndarray) -> float:
        return (model(x).argmax(1) == torch.from_numpy(y)).float().mean().item()

    x_test = torch.from_numpy(data.test.x)
    out = {"val_accuracy": acc(torch.from_numpy(data.val.x), data.val.y), "test_accuracy": acc(x_test, data.test.y)}
    for name in CORRUPTIONS:
        out[f"test_{name}"] = acc(corrupt(x_test, name), data.test.y)
    out["corrupted_accuracy"] = statistics.fmean(out[f"test_{name}"] for name in CORRUPTIONS)
    return out


def train(recipe: RangeAugmentRecipe, out_dir: Path) -> dict[str, Any]:
    """Train, evaluate and save one checkpoint; its card holds the per-epoch history (measured and target PSNR,
    ranges) the dashboard plots."""
    t0 = time.perf_counter()
    data = load_dataset(DATASET)
    model, log = fit(recipe, data)
    metrics = {**evaluate(model, data), "test_n": len(data.test.y),
               **{k: v for k, v in log.items() if k != "history"}, "train_seconds": time.perf_counter() - t0}
    checkpoint.save(model, Path(out_dir), {"recipe": dataclasses.asdict(recipe), "dataset": DATASET,
                                           "data_split_hash": data.split_hash, "history": log["history"],
                                           "metrics": metrics})
    return metrics
