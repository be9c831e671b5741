"""The one training loop: seeding, progress, eval every epoch, best/last safetensors checkpoints, DDP under torchrun."""

from __future__ import annotations

import dataclasses
import os
import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
from tqdm import tqdm

from models import checkpoint
from models.registry import build
from trainers.data import load_dataset
from trainers.recipe import Recipe


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _dist_setup() -> tuple[int, int]:
    """(rank, world size); initialises gloo when launched by torchrun with more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


@torch.no_grad()
def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 512) -> dict[str, float]:
    model.eval()
    logits = torch.cat([model(torch.from_numpy(x[i:i + batch])) for i in range(0, len(x), batch)])
    target = torch.from_numpy(y)
    return {"accuracy": (logits.argmax(1) == target).float().mean().item(),
            "loss": nn.functional.cross_entropy(logits, target).item(), "n": len(y)}


LossFn = Callable[[int, int, torch.Tensor, torch.Tensor], torch.Tensor]


def fit_split(model: nn.Module, split, opt: torch.optim.Optimizer, epochs: int, batch_size: int, seed: int,
              loss_fn: LossFn | None = None, cosine: bool = True) -> nn.Module:
    """Single-process minibatch training over a data split (x, y arrays): the step shared by fine-tuning and the
    paper trainers. `loss_fn(step, total_steps, xb, yb)` defaults to cross-entropy; cosine LR decay over all
    steps unless `cosine=False`. Returns the model in eval mode."""
    loader = DataLoader(TensorDataset(torch.from_numpy(split.x), torch.from_numpy(split.y)), batch_size=batch_size,
                        shuffle=True, generator=torch.Generator().manual_seed(seed))
    total = epochs * len(loader)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total) if cosine else None
    loss_fn = loss_fn or (lambda _step, _total, xb, yb: nn.functional.cross_entropy(model(xb), yb))
    model.train()
    step = 0
    for _ in range(epochs):
        for xb, yb in loader:
            loss = loss_fn(step, total, xb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
    return model.eval()


def finetune(model: nn.Module, split, epochs: int, lr: float = 1e-3, batch_size: int = 64, seed: int = 0) -> None:
    """A short AdamW fine-tune at a constant LR, e.g. after pruning; leaves the model in eval mode."""
    seed_everything(seed)
    fit_split(model, split, torch.optim.AdamW(model.parameters(), lr=lr), epochs, batch_size, seed, cosine=False)


def _optimizer(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=0.9, weight_decay=recipe.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)


def train(recipe: Recipe, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Train `recipe`, write `out_dir` (best checkpoint) and `out_dir/last`; returns the card's metrics."""
    rank, world = _dist_setup()
    torch.set_num_threads(recipe.threads)
    seed_everything(recipe.seed)
    data = load_dataset(recipe.dataset)
    model = build(recipe.model, recipe.model_args)
    net: nn.Module = nn.parallel.DistributedDataParallel(model) if world > 1 else model

    train_set = TensorDataset(torch.from_numpy(data.train.x), torch.from_numpy(data.train.y))
    sampler = DistributedSampler(train_set, world, rank, seed=recipe.seed) if world > 1 else None
    g = torch.Generator().manual_seed(recipe.seed)
    loader = DataLoader(train_set, batch_size=recipe.batch_size, shuffle=sampler is None, sampler=sampler, generator=g)
    scaled = _multiscale(recipe, data, rank, world)  # a `sampler:` section: sizes and batches per step
    opt = _optimizer(recipe, net)
    steps = scaled.total_steps() if scaled else recipe.epochs * len(loader)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, recipe.lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)

    history: list[dict[str, float]] = []
    best_acc, best_epoch, t0 = -1.0, -1, time.perf_counter()
    out_dir = Path(out_dir)
    bar = tqdm(range(recipe.epochs), desc=f"train {recipe.name}", disable=not progress or rank != 0, unit="epoch")
    for epoch in bar:
        if sampler is not None:
            sampler.set_epoch(epoch)
        net.train()
        total, count = 0.0, 0
        for xb, yb in (scaled.epoch(epoch) if scaled else loader):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            sched.step()
            total, count = total + loss.item() * len(yb), count + len(yb)
        val = evaluate(model, data.val.x, data.val.y)
        history.append({"epoch": epoch, "train_loss": total / count, "val_loss": val["loss"], "val_accuracy": val["accuracy"]})
        bar.set_postfix(loss=f"{total / count:.3f}", val_acc=f"{val['accuracy']:.3f}")
        if rank == 0:
            card = {**_card(recipe, data.split_hash, history, world, time.perf_counter() - t0),
                    **(scaled.card() if scaled else {})}
            checkpoint.save(model, out_dir / "last", card)
            if val["accuracy"] > best_acc:
                best_acc, best_epoch = val["accuracy"], epoch
                checkpoint.save(model, out_dir, {**card, "best_epoch": epoch})
    metrics: dict[str, Any] = {}
    if rank == 0:
        best, card = checkpoint.load(out_dir)
        test = evaluate(best, data.test.x, data.test.y)  # once, on the selected model: held out from selection
        card["metrics"] = {"best_epoch": best_epoch, "val_accuracy": best_acc, "test_accuracy": test["accuracy"],
                           "test_n": test["n"], "train_seconds": time.perf_counter() - t0}
        checkpoint.save(best, out_dir, {k: v for k, v in card.items() if k not in ("model", "args", "paper", "task", "weights_sha256")})
        metrics = card["metrics"]
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return metrics


def _multiscale(recipe: Recipe, data, rank: int, world: int):
    """The recipe's multi-scale sampler over the training split (trainers/samplers.py), or None without one."""
    if recipe.sampler is None:
        return None
    from trainers.samplers import SampledBatches, config_from_dict

    return SampledBatches(config_from_dict(recipe.sampler), data.train.x, data.train.y, recipe.batch_size,
                          recipe.epochs, recipe.seed, rank, world)


def _card(recipe: Recipe, split_hash: str, history: list[dict[str, float]], world: int, seconds: float) -> dict[str, Any]:
    return {"recipe": dataclasses.asdict(recipe), "recipe_hash": recipe.hash(), "dataset": recipe.dataset,
            "data_split_hash": split_hash, "history": history, "world_size": world, "train_seconds": seconds}
