"""Byte-level LM training: AdamW, linear warm-up + cosine, z-loss, gradient clipping, validation bpb every
`eval_every` steps, safetensors checkpoints (models/checkpoint.save). Under torchrun (gloo or nccl) the model is
replicated (DDP) or sharded (FSDP2 `fully_shard`, `parallel: fsdp`); every rank draws the same global batch of
`batch_size` windows and trains on its slice, so a run on N ranks follows the single-process run on the same data.
Checkpoints are one safetensors file whatever the number of ranks."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from models import checkpoint
from models.errors import RecipeError
from models.openelm import OpenELM
from trainers.loop import _dist_setup, seed_everything
from trainers.openelm.recipe import LMRecipe
from trainers.text import bits_per_byte, eval_windows, load_text, random_windows, unigram_bpb


def lm_loss(logits: torch.Tensor, target: torch.Tensor, z_loss: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(total loss, cross-entropy) with the PaLM z-loss z_loss * mean(logsumexp(logits)^2)."""
    flat = logits.reshape(-1, logits.shape[-1]).float()
    ce = F.cross_entropy(flat, target.reshape(-1))
    return (ce + z_loss * flat.logsumexp(-1).pow(2).mean() if z_loss else ce), ce


def lr_at(step: int, r: LMRecipe) -> float:
    if step < r.warmup:
        return r.lr * (step + 1) / r.warmup
    p = (step - r.warmup) / max(1, r.steps - r.warmup)
    return r.lr * (r.min_lr_ratio + (1 - r.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))


@torch.no_grad()
def evaluate_lm(model: nn.Module, data: np.ndarray, context: int, max_windows: int | None = None,
                batch: int = 32) -> dict[str, float]:
    """Mean next-byte NLL over non-overlapping windows of held-out bytes -> bpb and byte perplexity."""
    model.eval()
    w = eval_windows(data, context, max_windows)
    total, n = 0.0, 0
    for i in range(0, len(w), batch):
        chunk = w[i:i + batch]
        logits = model(chunk[:, :-1])
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), chunk[:, 1:].reshape(-1), reduction="sum").item()
        n += chunk[:, 1:].numel()
    nll = total / n
    return {"nll": nll, "bpb": bits_per_byte(nll), "perplexity": math.exp(nll), "n_bytes": n}


def _optimizer(model: nn.Module, r: LMRecipe) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]  # no decay on norms
    rest = [p for n, p in model.named_parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": r.weight_decay}, {"params": rest, "weight_decay": 0.0}],
                             lr=r.lr, betas=(0.9, r.beta2))


def train_lm(recipe: LMRecipe, out_dir: Path | None, progress: bool = True) -> dict[str, Any]:
    """Train; write `out_dir` (best val bpb) and `out_dir/last` when given. Returns the metrics."""
    return fit_lm(recipe, out_dir, progress)[1]


def fit_lm(recipe: LMRecipe, out_dir: Path | None = None, progress: bool = False) -> tuple[OpenELM, dict[str, Any]]:
    """The training run; returns (final model in eval mode, metrics)."""
    rank, world = _dist_setup()
    torch.set_num_threads(recipe.threads)
    seed_everything(recipe.seed)
    corpus = load_text()
    check_batch_split(recipe.batch_size, world)
    model = OpenELM(recipe.model_args_obj())
    net = _parallel(model, recipe.parallel, world)
    opt = _optimizer(net, recipe)
    gen = torch.Generator().manual_seed(recipe.seed * 1000)  # the same global batches on every rank
    history: list[dict[str, float]] = []
    best, t0 = math.inf, time.perf_counter()
    bar = tqdm(range(recipe.steps), desc=f"train {recipe.name}", disable=not progress or rank != 0, unit="step")
    running = 0.0
    for step in bar:
        net.train()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, recipe)
        x, y = random_windows(corpus.train, recipe.batch_size, recipe.context, gen)
        x, y = x.chunk(world)[rank], y.chunk(world)[rank]  # this rank's slice of the global batch
        loss, ce = lm_loss(net(x), y, recipe.z_loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), recipe.grad_clip)
        opt.step()
        running += _global_mean(ce.detach(), world)
        if (step + 1) % recipe.eval_every == 0 or step + 1 == recipe.steps:
            val = evaluate_lm(net, corpus.val, recipe.context, recipe.eval_windows)  # every rank: FSDP gathers
            n_steps = (step % recipe.eval_every) + 1
            history.append({"step": step + 1, "train_bpb": bits_per_byte(running / n_steps), "val_bpb": val["bpb"],
                            "val_perplexity": val["perplexity"]})
            running = 0.0
            bar.set_postfix(val_bpb=f"{val['bpb']:.3f}")
            full = _full_model(net, model, recipe, world) if out_dir is not None else None  # collective
            if rank == 0 and full is not None:
                card = _card(recipe, corpus, history, world, time.perf_counter() - t0)
                checkpoint.save(full, Path(out_dir) / "last", card)
                if val["bpb"] < best:
                    checkpoint.save(full, Path(out_dir), {**card, "best_step": step + 1})
            best = min(best, val["bpb"])
    metrics = {"val_bpb": history[-1]["val_bpb"], "best_val_bpb": best, "val_perplexity": history[-1]["val_perplexity"],
               "unigram_bpb": unigram_bpb(corpus.train, corpus.val), "params": sum(p.numel() for p in model.parameters()),
               "train_seconds": time.perf_counter() - t0, "steps": recipe.steps, "world_size": world}
    if rank == 0 and out_dir is not None:
        _, card = checkpoint.load(Path(out_dir))
        card["metrics"] = metrics
        checkpoint.save(checkpoint.load(Path(out_dir))[0], Path(out_dir),
                        {k: v for k, v in card.items() if k not in ("model", "args", "paper", "task", "weights_sha256")})
    model = _full_model(net, model, recipe, world)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return model.eval(), metrics


def check_batch_split(batch_size: int, world: int) -> None:
    """Every rank trains on an equal slice of the global batch."""
    if batch_size % world:
        raise RecipeError(f"batch_size = {batch_size} does not split over {world} ranks",
                          f"use a multiple of {world}, e.g. --set batch_size={world * max(1, batch_size // world)}")


def _parallel(model: OpenELM, parallel: str, world: int) -> nn.Module:
    """The module the steps run through: the model itself on one process, DDP or FSDP2 under torchrun."""
    if world == 1:
        return model
    if parallel == "ddp":
        return nn.parallel.DistributedDataParallel(model)
    from torch.distributed.fsdp import fully_shard

    for layer in model.transformer.layers:  # one all-gather per decoder layer; the root holds embeddings + norm
        fully_shard(layer)
    return fully_shard(model)


def _full_model(net: nn.Module, model: OpenELM, recipe: LMRecipe, world: int) -> OpenELM:
    """A plain, unsharded OpenELM with the current weights (FSDP: gathered on every rank, a collective call)."""
    if world == 1 or recipe.parallel == "ddp":
        return model
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(net, options=StateDictOptions(full_state_dict=True))  # on every rank
    full = OpenELM(recipe.model_args_obj())
    full.load_state_dict(state)
    return full


def _global_mean(value: torch.Tensor, world: int) -> float:
    """The mean over ranks of a per-rank scalar (equal slices: the global batch's value)."""
    if world > 1:
        value = value.clone()
        dist.all_reduce(value)
        value /= world
    return value.item()


def _card(recipe: LMRecipe, corpus, history: list[dict[str, float]], world: int, seconds: float) -> dict[str, Any]:
    return {"recipe": dataclasses.asdict(recipe), "recipe_hash": recipe.hash(), "dataset": corpus.info(),
            "data_split_hash": corpus.sha256, "history": history, "world_size": world, "train_seconds": seconds}


def main() -> None:  # `torchrun --nproc-per-node 2 -m trainers.openelm.train RECIPE OUT [key=value ...]`
    import sys

    from trainers.openelm.recipe import load_lm_recipe

    recipe = load_lm_recipe(sys.argv[1], sys.argv[3:])
    print(train_lm(recipe, Path(sys.argv[2])))


if __name__ == "__main__":
    main()
