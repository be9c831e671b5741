"""CatLIP vs CLIP time per training step, measured in one process after warm-up (card 07, pass condition 1).

Each arm's full step (forward, loss, backward, AdamW step) runs on the same fixed batch of training scenes; after
`warmup` steps per arm the arms alternate in rounds, the order flipped every round, so that a change of machine load
hits both. Used by the claim and by tests/benchmarks/test_catlip_step_time.py; never asserted on time.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Callable

import torch

from trainers.catlip.recipe import ARMS, CatLIPRecipe, SceneData, arm_split, build_arm, loss_fn, optimizer


def step_fn(recipe: CatLIPRecipe, data: SceneData) -> Callable[[], None]:
    """One full training step of the recipe's arm on the first batch_size training scenes."""
    model, _ = build_arm(recipe, data)
    model.train()
    opt = optimizer(model, recipe.lr, recipe.weight_decay)
    loss = loss_fn(recipe, model)
    split = arm_split(recipe, data)
    xb, yb = torch.from_numpy(split.x[:recipe.batch_size]), torch.from_numpy(split.y[:recipe.batch_size])

    def step() -> None:
        value = loss(0, 1, xb, yb)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()

    return step


def step_times(recipe: CatLIPRecipe, data: SceneData, rounds: int = 6, steps: int = 3,
               warmup: int = 3) -> dict[str, list[float]]:
    """Seconds per step of each arm (ARMS order), `rounds * steps` samples each, after `warmup` steps per arm."""
    if min(rounds, steps) < 1 or warmup < 0:
        raise ValueError(f"rounds={rounds} and steps={steps} must be >= 1, warmup={warmup} >= 0")
    torch.set_num_threads(recipe.threads)
    fns = {arm: step_fn(dataclasses.replace(recipe, arm=arm), data) for arm in ARMS}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for r in range(rounds):
        for arm in ARMS if r % 2 == 0 else ARMS[::-1]:
            for _ in range(steps):
                t0 = time.perf_counter()
                fns[arm]()
                times[arm].append(time.perf_counter() - t0)
    return times


def summary(times: dict[str, list[float]]) -> dict[str, float]:
    """Median milliseconds per step of each arm and the speed-up CLIP / CatLIP."""
    out = {f"{arm}_ms": 1000 * statistics.median(t) for arm, t in times.items()}
    out["speedup"] = out["clip_ms"] / out["catlip_ms"]
    return out
