"""Label Refinery (card 16, arXiv 1805.02641) on digits: a student trained on a frozen refinery's soft labels,
computed on the same augmented crop, with no ground truth; generation 1 trains on ground truth.

Loss per batch: L = -sum_c p_R(c | x~) log softmax(z_S(x~))_c, p_R = softmax(z_R(x~)) at T = 1, which is
KL(p_R || p_S) + H(p_R). The refinery is frozen (no gradient) and in eval mode unless `refinery_mode: train`
(the released code's behaviour: BatchNorm batch statistics and running-stat updates). `image_level: true` is the
ablation with soft labels computed once on the un-augmented image.

Data (card section 5): a seeded stratified split of sklearn digits: 400 training images (drawn from the
standard training split, so the standard test split the profiler scores stays unseen), 300 validation, the
remaining 1,097 test. Augmentation per batch: a random 5x5 crop resized back to 8x8 plus random erasing; the
refinery sees the same augmented batch as the student.

    python -m trainers.label_refinery.recipe trainers/label_refinery/configs/refinery_gen1.yaml --out zoo/refinery_gen1
    python -m trainers.label_refinery.recipe trainers/label_refinery/configs/refinery_gen2.yaml --out zoo/refinery_gen2
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from models import checkpoint
from models.errors import CheckpointError, RecipeError
from models.registry import build
from trainers.data import ImageDataset, Split, load_digits
from trainers.loop import fit_split, seed_everything
from trainers.recipe import check_field, read_recipe_yaml, strict_fields

MODEL = "lcs_cnn"  # a plain BatchNorm CNN (3 convs, global pooling, linear head)
MODES = ("eval", "train")
ECE_BINS = 15
# fields trainers.recipe.RANGES does not cover: (low, high, an example)
RANGES: dict[str, tuple[float, float | None, Any]] = {
    "momentum": (0.0, 0.999, 0.9), "lr_decay": (1e-6, 1.0, 0.1), "crop": (1, 8, 5), "crop_max": (1, 8, 8), "erase_prob": (0.0, 1.0, 0.5),
    "erase_size": (0, 8, 4), "train_size": (10, 1000, 400), "val_size": (10, 500, 300), "split_seed": (0, 2**32 - 1, 0),
}


@dataclass
class RefineryRecipe:
    name: str = "refinery"
    channels: list[int] = field(default_factory=lambda: [16, 32, 48])  # ~20k parameters; the strong refinery: 4x
    refinery: str | None = None     # None: ground truth (generation 1); a zoo folder name (next to out_dir) or a path
    refinery_mode: str = "eval"     # eval (default) | train (released code: BN batch stats + running-stat updates)
    image_level: bool = False       # ablation 2: soft labels once per un-augmented image, not per crop
    epochs: int = 60
    batch_size: int = 32
    lr: float = 0.05                # SGD, piecewise constant: x lr_decay at each fraction of training in lr_steps
    lr_steps: list[float] = field(default_factory=lambda: [0.7, 0.85])
    lr_decay: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    crop: int = 5                   # random crop side, resized back to 8x8 (the smallest side when crop_max > crop)
    crop_max: int = 8               # the largest crop side: sides drawn from crop..crop_max (RandomResizedCrop-like)
    erase_prob: float = 0.5         # random erasing: probability per image
    erase_size: int = 4             # largest erased rectangle side (pixels)
    train_size: int = 400
    val_size: int = 300
    split_seed: int = 0
    seed: int = 0
    threads: int = 1                # tiny convs: one thread avoids oversubscription on shared cores

    def model_args(self) -> dict[str, Any]:
        return {"channels": list(self.channels), "norm": "batch"}


def recipe_from_dict(data: dict[str, Any], where: str = "label-refinery recipe") -> RefineryRecipe:
    """Every key, type and range checked; the refinery checkpoint itself is checked when training starts (in the
    main job it is trained by the job before)."""
    from app.workspace import WorkspaceError, safe_name

    recipe = strict_fields(RefineryRecipe, data, where)
    hints = typing.get_type_hints(RefineryRecipe)
    for f in dataclasses.fields(RefineryRecipe):
        value = getattr(recipe, f.name)
        check_field(where, f.name, value, hints[f.name])
        if f.name in RANGES:
            low, high, example = RANGES[f.name]
            if value < low or (high is not None and value > high):
                raise RecipeError(f"{where}: {f.name}={value!r} is out of range",
                                  f"use a value in [{low}, {high}], e.g. --set {f.name}={example}")
    try:
        safe_name(recipe.name, "recipe name")
    except WorkspaceError as e:
        raise RecipeError(f"{where}: {e.problem}", f"set `name:` (it names the checkpoint folder): {e.fix}") from None
    if not recipe.channels or any(c < 1 for c in recipe.channels):
        raise RecipeError(f"{where}: channels={recipe.channels!r} must be positive widths", "e.g. --set channels=[16,32,48]")
    if recipe.refinery_mode not in MODES:
        raise RecipeError(f"{where}: refinery_mode {recipe.refinery_mode!r} is unknown", f"use one of: {', '.join(MODES)}")
    if any(not 0.0 < s < 1.0 for s in recipe.lr_steps) or list(recipe.lr_steps) != sorted(recipe.lr_steps):
        raise RecipeError(f"{where}: lr_steps={recipe.lr_steps!r} must be increasing fractions in (0, 1)",
                          "e.g. --set lr_steps=[0.7,0.85]")
    if recipe.crop_max < recipe.crop:
        raise RecipeError(f"{where}: crop_max={recipe.crop_max} is below crop={recipe.crop}",
                          f"set crop_max between {recipe.crop} and 8")
    if recipe.image_level and recipe.refinery is None:
        raise RecipeError(f"{where}: image_level needs a refinery", "set `refinery:` or drop image_level")
    if recipe.refinery == "":
        raise RecipeError(f"{where}: refinery is empty", "use null (ground truth) or a checkpoint name or path")
    return recipe


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> RefineryRecipe:
    data, p = read_recipe_yaml(path, overrides)
    return recipe_from_dict(data, str(p))


# ----------------------------------------------------------------------------------------------------- data

def refinery_split(seed: int = 0, train_size: int = 400, val_size: int = 300) -> ImageDataset:
    """Seeded stratified split of digits: `train_size` images from the standard training split, `val_size` from
    the rest of the standard training and validation splits, every other image (the standard test split
    included) for test."""
    from sklearn.model_selection import train_test_split

    std = load_digits()
    x = np.concatenate([std.train.x, std.val.x, std.test.x])
    y = np.concatenate([std.train.y, std.val.y, std.test.y])
    n_tr, n_va = len(std.train.y), len(std.val.y)
    tr, rest = train_test_split(np.arange(n_tr), train_size=train_size, stratify=y[:n_tr], random_state=seed)
    pool = np.concatenate([rest, np.arange(n_tr, n_tr + n_va)])
    va, rest = train_test_split(pool, train_size=val_size, stratify=y[pool], random_state=seed)
    te = np.concatenate([rest, np.arange(n_tr + n_va, len(y))])
    tr, va, te = np.sort(tr), np.sort(va), np.sort(te)
    h = hashlib.sha256(std.split_hash.encode())
    for arr in (tr, va, te):
        h.update(np.ascontiguousarray(arr).tobytes())
    return ImageDataset("digits", Split(x[tr], y[tr]), Split(x[va], y[va]), Split(x[te], y[te]), std.num_classes,
                        h.hexdigest())


def augment(x: torch.Tensor, gen: torch.Generator, crop: int = 5, erase_prob: float = 0.5,
            erase_size: int = 4, crop_max: int | None = None) -> torch.Tensor:
    """A random square window of each image (side drawn from crop..crop_max, default crop only), resized
    (bilinear) back to the image size, then a random rectangle (sides 1..erase_size) set to 0 with probability
    erase_prob. x: (B, C, H, W), H == W."""
    b, _, h, w = x.shape
    top = crop if crop_max is None else crop_max
    side = torch.randint(crop, top + 1, (b,), generator=gen).float()
    oy = (torch.rand(b, generator=gen) * (h - side + 1)).floor()
    ox = (torch.rand(b, generator=gen) * (w - side + 1)).floor()
    theta = torch.zeros(b, 2, 3)  # output grid -> input coords, normalised to [-1, 1] (align_corners=False)
    theta[:, 0, 0], theta[:, 1, 1] = side / w, side / h
    theta[:, 0, 2], theta[:, 1, 2] = (ox + side / 2) * 2 / w - 1, (oy + side / 2) * 2 / h - 1
    grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    out = nn.functional.grid_sample(x, grid, mode="bilinear", align_corners=False)
    if erase_size and erase_prob:
        eh = torch.randint(1, erase_size + 1, (b,), generator=gen)
        ew = torch.randint(1, erase_size + 1, (b,), generator=gen)
        ey = (torch.rand(b, generator=gen) * (h - eh + 1)).long()
        ex = (torch.rand(b, generator=gen) * (w - ew + 1)).long()
        on = torch.rand(b, generator=gen) < erase_prob
        r, c = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
        box = (r >= ey[:, None, None]) & (r < (ey + eh)[:, None, None]) & \
              (c >= ex[:, None, None]) & (c < (ex + ew)[:, None, None]) & on[:, None, None]  # (B, H, W)
        out = out.masked_fill(box[:, None], 0.0)
    return out


# ----------------------------------------------------------------------------------------------------- loss

def soft_cross_entropy(student_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-sum_c p_R(c) log softmax(z_S)_c, averaged over the batch (= KL(p_R || p_S) + H(p_R))."""
    return -(target * nn.functional.log_softmax(student_logits, dim=1)).sum(1).mean()


def freeze(refinery: nn.Module, mode: str = "eval") -> nn.Module:
    """No gradient into the refinery; eval mode (running BN statistics) unless mode == "train"."""
    refinery.requires_grad_(False)
    return refinery.train(mode == "train")


def piecewise_lr(recipe: RefineryRecipe, step: int, total: int) -> float:
    return recipe.lr * recipe.lr_decay ** sum(step >= s * total for s in recipe.lr_steps)


def fit(recipe: RefineryRecipe, data: ImageDataset, refinery: nn.Module | None = None) -> nn.Module:
    """Train one student (ground truth when `refinery` is None); returns it in eval mode. The refinery is frozen
    and put in `recipe.refinery_mode`; in train mode its BN running statistics change (as in the released code)."""
    torch.set_num_threads(recipe.threads)
    seed_everything(recipe.seed)
    model = build(MODEL, recipe.model_args())
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          weight_decay=recipe.weight_decay)
    gen = torch.Generator().manual_seed(recipe.seed)
    labels = torch.from_numpy(data.train.y)
    if refinery is not None:
        freeze(refinery, recipe.refinery_mode)
        if recipe.image_level:
            with torch.no_grad():
                image_targets = nn.functional.softmax(refinery(torch.from_numpy(data.train.x)), dim=1)

    def loss_fn(step: int, total: int, xb: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        for g in opt.param_groups:
            g["lr"] = piecewise_lr(recipe, step, total)
        crops = augment(xb, gen, recipe.crop, recipe.erase_prob, recipe.erase_size, recipe.crop_max)
        logits = model(crops)
        if refinery is None:
            return nn.functional.cross_entropy(logits, labels[idx])
        if recipe.image_level:
            return soft_cross_entropy(logits, image_targets[idx])
        with torch.no_grad():
            target = nn.functional.softmax(refinery(crops), dim=1)  # the same crop, T = 1
        return soft_cross_entropy(logits, target)

    indexed = Split(data.train.x, np.arange(len(data.train.y)))  # the loop yields sample indices as labels
    return fit_split(model, indexed, opt, recipe.epochs, recipe.batch_size, recipe.seed, loss_fn, cosine=False)


# ----------------------------------------------------------------------------------------------------- metrics

def ece(probs: torch.Tensor, target: torch.Tensor, bins: int = ECE_BINS) -> float:
    """Expected calibration error: equal-width confidence bins, |accuracy - confidence| weighted by bin size."""
    conf, pred = probs.max(1)
    correct = (pred == target).float()
    which = torch.clamp((conf * bins).long(), max=bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.float().mean().item() * abs(correct[sel].mean().item() - conf[sel].mean().item())
    return total


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageDataset) -> dict[str, float]:
    """Test accuracy, training accuracy on the un-augmented training images, their gap, test ECE (15 bins)."""
    model.eval()
    out: dict[str, float] = {}
    for split_name in ("train", "val", "test"):
        split = getattr(data, split_name)
        probs = nn.functional.softmax(model(torch.from_numpy(split.x)), dim=1)
        target = torch.from_numpy(split.y)
        out[f"{split_name}_accuracy"] = (probs.argmax(1) == target).float().mean().item()
        if split_name == "test":
            out["ece"] = ece(probs, target)
    out["gap"] = out["train_accuracy"] - out["test_accuracy"]
    return out


# ----------------------------------------------------------------------------------------------------- checkpoints

def refinery_dir(recipe: RefineryRecipe, out_dir: Path) -> Path:
    """A plain name is a checkpoint folder next to `out_dir` (the same zoo); anything else is a path."""
    name = str(recipe.refinery)
    if Path(name).is_absolute() or "/" in name or "\\" in name or name.startswith("."):
        return Path(name).resolve()
    return Path(out_dir).resolve().parent / name


def load_refinery(path: Path, data: ImageDataset) -> tuple[nn.Module, dict[str, Any]]:
    """The refinery checkpoint, checked to classify the same images into the same classes."""
    model, card = checkpoint.load(path)
    fix = "train the refinery with this paper's recipes (same split_seed) or set `refinery:` to such a checkpoint"
    if card["model"] != MODEL:
        raise RecipeError(f"refinery {path} is a {card['model']!r} model, not the student's family {MODEL!r}", fix)
    args = card["args"]
    if args.get("num_classes") != data.num_classes:
        raise RecipeError(f"refinery {path} has {args.get('num_classes')} classes, the data {data.num_classes}", fix)
    if card.get("data_split_hash") != data.split_hash:
        raise RecipeError(f"refinery {path} was trained on another data split (its test images may be in ours)", fix)
    return model, card


def train(recipe: RefineryRecipe, out_dir: Path) -> dict[str, Any]:
    """Train one generation and save it with its lineage: `generation` (1 on ground truth, else the refinery's
    + 1) and the refinery's checkpoint hash."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    data = refinery_split(recipe.split_seed, recipe.train_size, recipe.val_size)
    refinery, lineage = None, {"generation": 1, "refinery": None}
    if recipe.refinery is not None:
        path = refinery_dir(recipe, out_dir)
        try:
            refinery, card = load_refinery(path, data)
        except CheckpointError as e:
            raise RecipeError(f"refinery: {e.problem}", e.fix) from None
        lineage = {"generation": int(card.get("generation", 1)) + 1,
                   "refinery": {"path": str(path), "checkpoint_hash": checkpoint.checkpoint_hash(path),
                                "generation": int(card.get("generation", 1)), "mode": recipe.refinery_mode,
                                "image_level": recipe.image_level}}
    model = fit(recipe, data, refinery)
    metrics = {**evaluate(model, data), "test_n": len(data.test.y), "train_seconds": time.perf_counter() - t0}
    checkpoint.save(model, out_dir, {"recipe": dataclasses.asdict(recipe), "dataset": "digits",
                                     "data_split_hash": data.split_hash, "metrics": metrics, **lineage})
    return metrics


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit("usage: python -m trainers.label_refinery.recipe CONFIG.yaml [--out DIR]")
    recipe = load_recipe(argv[0])
    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else Path("edgezoo-workspace/zoo") / recipe.name
    print(yaml.safe_dump(train(recipe, out), sort_keys=False))


if __name__ == "__main__":
    main()
