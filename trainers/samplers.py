"""Multi-scale data samplers (Nunez et al. 2023, arXiv 2309.04502; apple/corenet `data/sampler/`), usable by every
vision recipe through an optional `sampler:` section (trainers/loop.py):

- single:   single-scale, fixed batch (SSc-FBS): every step at the base size with the recipe's batch_size.
- fixed:    multi-scale, fixed batch (MSc-FBS): each step draws a size from the resolution set, batch_size everywhere.
- variable: multi-scale, variable batch (MSc-VBS): each step draws (h, w, b) with b = H0 W0 b0 / (h w), so pixels
            per step stay about constant (larger batches at small sizes, fewer optimizer steps per epoch).

Resolution set (corenet `image_batch_pairs`): linspace(min_size, max_size, scales) plus the base size, each made a
multiple of `divisor` (round to nearest, + divisor when that loses over 10 %); heights and widths are paired by rank
(square images here, so h == w). Batch per size: int(round(H0 W0 b0 / (h w), 2)); a size whose batch would be 0 is
an error (corenet silently uses 1). `curriculum: [s1, s2, ...]` splits the epochs into equal stages; stage k samples
only sizes <= s_k (the paper's resolution curriculum: low resolutions first, the full set last).

Each step consumes the next b indices of the epoch's shuffled list, wrapping to its start for the last batch.
Distributed (torchrun): the shuffle and the size draws are seeded by (seed, epoch) only, so every rank draws the same
(h, w, b) sequence and takes the same number of steps without communicating; rank r reads every world-th index of
the shuffled list (padded to a multiple of world by wrapping), so ranks see disjoint samples. b is per rank.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from models.errors import RecipeError

KINDS = ("single", "fixed", "variable")
MAX_SIZE = 1024
# (low, high, low is exclusive, an example), keyed as `--set` writes them
RANGES: dict[str, tuple[float | None, float | None, bool, Any]] = {
    "sampler.base_size": (1, MAX_SIZE, False, 32), "sampler.min_size": (1, MAX_SIZE, False, 16),
    "sampler.max_size": (1, MAX_SIZE, False, 48), "sampler.scales": (1, 64, False, 5),
    "sampler.divisor": (1, 256, False, 8), "sampler.crop_scale": (0.0, 1.0, True, 0.5),
}


@dataclass
class SamplerConfig:
    kind: str = "variable"      # single | fixed | variable
    base_size: int = 32         # H0 = W0: the size evaluated and exported first; must be the model's input size
    min_size: int = 16
    max_size: int = 48
    scales: int = 5             # sizes in linspace(min_size, max_size, scales) (duplicates collapse)
    divisor: int = 8            # every size a multiple of this
    curriculum: list[int] = field(default_factory=list)  # stage maxima, epochs split equally; [] = no curriculum
    crop_scale: float = 0.5     # random-resized crop: smallest area fraction kept (1.0: resize the whole image)


def make_divisible(v: float, divisor: int) -> int:
    """Nearest multiple of `divisor` (at least divisor), plus divisor when rounding down lost over 10 %."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def size_list(base: int, low: int, high: int, scales: int, divisor: int) -> list[int]:
    return sorted({make_divisible(v, divisor) for v in [*np.linspace(low, high, scales), base]})


def batch_for(base_h: int, base_w: int, base_batch: int, h: int, w: int) -> int:
    """Images per step at (h, w) for equal pixels per step, before the zero check: int(round(H0 W0 b0 / (h w), 2))."""
    return int(round(base_h * base_w * base_batch / (h * w), 2))


def resolution_pairs(base: tuple[int, int], heights: list[int], widths: list[int], base_batch: int,
                     variable: bool, where: str = "recipe") -> list[tuple[int, int, int]]:
    """Sorted (h, w, batch) triples: heights and widths zipped by rank (pairs, not a grid); batch from `batch_for`
    when `variable`, else base_batch everywhere. A batch that would be 0 raises."""
    out = set()
    for h, w in sorted(zip(heights, widths), key=lambda p: -p[0] * p[1]):  # an error names the largest size
        b = batch_for(*base, base_batch, h, w) if variable else base_batch
        if b < 1:
            need = math.ceil(h * w / (base[0] * base[1]) - 0.005)
            raise RecipeError(f"{where}: sampler batch at {h}x{w} would be 0 (batch_size {base_batch} at the base "
                              f"{base[0]}x{base[1]} holds fewer pixels than one {h}x{w} image)",
                              f"raise batch_size to at least {need} or lower sampler.max_size")
        out.add((h, w, b))
    return sorted(out)


@dataclass(frozen=True)
class Batch:
    h: int
    w: int
    indices: np.ndarray  # this rank's sample indices (len = the step's per-rank batch)


class MultiScaleSampler:
    """Per-epoch lists of (h, w, indices) batches for one rank; identical (h, w, len) sequences on every rank."""

    def __init__(self, cfg: SamplerConfig, base_batch: int, n: int, epochs: int, seed: int = 0,
                 rank: int = 0, world: int = 1) -> None:
        if not 0 <= rank < world:
            raise RecipeError(f"sampler: rank {rank} is outside world size {world}", "launch with torchrun")
        self.cfg, self.n, self.epochs, self.seed, self.rank, self.world = cfg, n, epochs, seed, rank, world
        self._steps: dict[int, list[tuple[int, int, int]]] = {}
        sizes = size_list(cfg.base_size, cfg.min_size, cfg.max_size, cfg.scales, cfg.divisor)
        base = (cfg.base_size, cfg.base_size)
        if cfg.kind == "single":
            self.pairs = [(cfg.base_size, cfg.base_size, base_batch)]
        else:
            self.pairs = resolution_pairs(base, sizes, sizes, base_batch, cfg.kind == "variable")
        self.sizes = sizes  # every size of the set: what the model is exported and profiled at
        self.per_rank = math.ceil(n / world)
        largest = max(b for _, _, b in self.pairs)
        if largest > self.per_rank:
            raise RecipeError(f"sampler: a step of {largest} images exceeds the {self.per_rank} training images per rank",
                              f"lower batch_size to at most {max(1, self.per_rank * base_batch // largest)} "
                              "or raise sampler.min_size")

    def stage(self, epoch: int) -> int:
        k = len(self.cfg.curriculum)
        return min(k - 1, epoch * k // self.epochs) if k else 0

    def choices(self, epoch: int) -> list[tuple[int, int, int]]:
        """The (h, w, b) triples sampled in this epoch (the curriculum stage's subset)."""
        if not self.cfg.curriculum:
            return self.pairs
        top = self.cfg.curriculum[self.stage(epoch)]
        return [p for p in self.pairs if max(p[0], p[1]) <= top]

    def _shard(self, epoch: int) -> np.ndarray:
        perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        padded = np.resize(perm, self.per_rank * self.world)  # wraps to the start when n % world != 0
        return padded[self.rank::self.world]

    def steps(self, epoch: int) -> list[tuple[int, int, int]]:
        """This epoch's (h, w, b) per step: drawn from (seed, epoch) only, so every rank gets the same list."""
        if epoch not in self._steps:
            rng = np.random.default_rng([self.seed, epoch, 1])
            choices, out, start = self.choices(epoch), [], 0
            while start < self.per_rank:
                h, w, b = choices[int(rng.integers(len(choices)))]
                out.append((h, w, b))
                start += b
            self._steps[epoch] = out
        return list(self._steps[epoch])

    def epoch(self, epoch: int) -> Iterator[Batch]:
        shard, start = self._shard(epoch), 0
        for h, w, b in self.steps(epoch):
            yield Batch(h, w, shard[np.arange(start, start + b) % self.per_rank])
            start += b

    def total_steps(self) -> int:
        return sum(len(self.steps(e)) for e in range(self.epochs))

    def stats(self) -> dict[str, Any]:
        """Optimizer steps, images and the pixel-compute proxy sum(b h w) over training (per rank)."""
        steps = [s for e in range(self.epochs) for s in self.steps(e)]
        return {"kind": self.cfg.kind, "optimizer_steps": len(steps), "samples": sum(b for _, _, b in steps),
                "pixels": sum(b * h * w for h, w, b in steps), "pairs": [list(p) for p in self.pairs],
                "mean_batch": sum(b for _, _, b in steps) / max(1, len(steps))}


# ------------------------------------------------------------------------------------------------------ recipes


def config_from_dict(data: Any, where: str = "recipe") -> SamplerConfig:
    """The `sampler:` recipe section, every key, type and range checked."""
    from trainers.recipe import check_field, strict_fields

    if not isinstance(data, dict):
        raise RecipeError(f"{where}: sampler must be a mapping", "write it as `sampler:` with keys such as kind: variable")
    cfg = strict_fields(SamplerConfig, data, f"{where}: sampler")
    hints = typing.get_type_hints(SamplerConfig)
    for f in dataclasses.fields(SamplerConfig):
        check_field(where, f"sampler.{f.name}", getattr(cfg, f.name), hints[f.name], RANGES)
    if cfg.kind not in KINDS:
        raise RecipeError(f"{where}: sampler.kind {cfg.kind!r} is unknown", f"use one of: {', '.join(KINDS)}")
    if cfg.min_size > cfg.max_size:
        raise RecipeError(f"{where}: sampler.min_size={cfg.min_size} is above max_size={cfg.max_size}",
                          "set min_size <= max_size, e.g. --set sampler.min_size=16 --set sampler.max_size=48")
    if cfg.base_size % cfg.divisor:
        raise RecipeError(f"{where}: sampler.base_size={cfg.base_size} is not a multiple of divisor={cfg.divisor}",
                          f"use e.g. base_size={make_divisible(cfg.base_size, cfg.divisor)} or divisor=1")
    _check_curriculum(cfg, where)
    return cfg


def _check_curriculum(cfg: SamplerConfig, where: str) -> None:
    if not cfg.curriculum:
        return
    sizes = size_list(cfg.base_size, cfg.min_size, cfg.max_size, cfg.scales, cfg.divisor)
    fix = f"list stage maxima from the resolution set {sizes}, non-decreasing, e.g. [{sizes[min(1, len(sizes) - 1)]}, " \
          f"{sizes[-1]}]"
    if cfg.kind == "single":
        raise RecipeError(f"{where}: sampler.curriculum needs a multi-scale sampler", "set kind: variable or fixed")
    if any(s not in sizes for s in cfg.curriculum) or cfg.curriculum != sorted(cfg.curriculum):
        raise RecipeError(f"{where}: sampler.curriculum={cfg.curriculum} is not non-decreasing sizes of the set", fix)


def check_recipe(recipe: Any, image_size: int | None, where: str) -> SamplerConfig:
    """A recipe's sampler section against its model: the base size must be the model's input size."""
    cfg = config_from_dict(recipe.sampler, where)
    if image_size is not None and image_size != cfg.base_size:
        raise RecipeError(f"{where}: sampler.base_size={cfg.base_size} differs from the model's image_size={image_size}",
                          f"set model_args.image_size={cfg.base_size} (the model is exported at the base size)")
    sizes = size_list(cfg.base_size, cfg.min_size, cfg.max_size, cfg.scales, cfg.divisor)
    resolution_pairs((cfg.base_size, cfg.base_size), sizes, sizes, recipe.batch_size, cfg.kind == "variable", where)
    if cfg.curriculum and len(cfg.curriculum) > recipe.epochs:
        raise RecipeError(f"{where}: sampler.curriculum has {len(cfg.curriculum)} stages for {recipe.epochs} epochs",
                          "use at most one stage per epoch")
    return cfg


# ------------------------------------------------------------------------------------------------------ batches


def random_resized_crop(x, h: int, w: int, gen, min_area: float = 0.5):
    """A random window of each image (area fraction U(min_area, 1), aspect ratio log-uniform in [3/4, 4/3]) resized
    to (h, w): bilinear, half-pixel centres, edges clamped. min_area == 1 resizes the whole image. x: (B, C, H, W)."""
    import torch
    from torch import nn

    b, c, sh, sw = x.shape
    area = min_area + (1 - min_area) * torch.rand(b, generator=gen)
    ratio = torch.exp((torch.rand(b, generator=gen) * 2 - 1) * math.log(4 / 3)) if min_area < 1 else torch.ones(b)
    cw = torch.clamp(torch.sqrt(area * ratio), max=1.0)  # crop size as a fraction of the image side
    ch = torch.clamp(torch.sqrt(area / ratio), max=1.0)
    cx = (torch.rand(b, generator=gen) * 2 - 1) * (1 - cw)  # crop centre, normalised to [-1, 1]
    cy = (torch.rand(b, generator=gen) * 2 - 1) * (1 - ch)
    theta = torch.zeros(b, 2, 3)  # output grid -> input coords
    theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = cw, ch, cx, cy
    grid = nn.functional.affine_grid(theta, [b, c, h, w], align_corners=False)  # (B, h, w, 2)
    return nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class SampledBatches:
    """What trainers.loop iterates when a recipe has a `sampler:` section: (x, y) tensors cropped to each step's
    size, per rank."""

    def __init__(self, cfg: SamplerConfig, x: np.ndarray, y: np.ndarray, base_batch: int, epochs: int, seed: int,
                 rank: int = 0, world: int = 1) -> None:
        import torch

        if x.shape[-1] != cfg.base_size or x.shape[-2] != cfg.base_size:
            raise RecipeError(f"sampler.base_size={cfg.base_size} but the dataset's images are "
                              f"{x.shape[-2]}x{x.shape[-1]}", "use a dataset at the base size (e.g. digits32) or "
                              "set base_size to the image size")
        self.sampler = MultiScaleSampler(cfg, base_batch, len(y), epochs, seed, rank, world)
        self.x, self.y, self.cfg = torch.from_numpy(x), torch.from_numpy(y), cfg
        self.gen = torch.Generator().manual_seed(seed * 1000 + rank)

    def epoch(self, epoch: int):
        import torch

        for batch in self.sampler.epoch(epoch):
            idx = torch.from_numpy(batch.indices)
            yield random_resized_crop(self.x[idx], batch.h, batch.w, self.gen, self.cfg.crop_scale), self.y[idx]

    def total_steps(self) -> int:
        return self.sampler.total_steps()

    def card(self) -> dict[str, Any]:
        """Card fields: the sizes the model is exported and profiled at, and the sampler's step/pixel counts."""
        return {"input_sizes": list(self.sampler.sizes), "sampler": self.sampler.stats()}
