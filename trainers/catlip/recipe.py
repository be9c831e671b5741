"""CatLIP (card 07, arXiv 2404.15653) at small scale: the scene encoder (models/scene_encoder.py, ~98k parameters)
pre-trained on captioned 32x32 scenes (trainers/scenes.py), in one of two arms sharing the encoder's
initialisation, the data order, the steps and the batch:

- `arm: catlip`: captions -> multi-hot targets over the top-V noun synsets (trainers/catlip/labeller.py), a V-way
  linear head, binary cross-entropy summed over classes and averaged over the batch (`bce: batch_mean`, upstream's
  `batch_mean`); `bce: mean` is the per-element mean, V times smaller at the same LR (recorded by the claim).
- `arm: clip`: a bag-of-words caption encoder (models/text_bow.py), projections to a joint space and symmetric
  InfoNCE with a learnable, clipped temperature (trainers/contrastive.py).

Both train on the shared loop (trainers.loop.fit_split): AdamW, no weight decay on norms and biases, cosine LR.
`train()` (the main job's trainer) then fits a linear probe for one scene attribute on the frozen pooled features
and saves the encoder with the probe as its head (the V-way head and CLIP's projection are dropped), so the exported
encoder's records carry probe accuracy on held-out scenes as their quality.

    edgezoo train catlip --set epochs=2
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models import checkpoint
from models.errors import RecipeError
from models.registry import build
from models.scene_encoder import SceneEncoder, SceneEncoderArgs
from models.text_bow import BagOfWordsArgs, BagOfWordsEncoder, WordTokenizer
from trainers.catlip.labeller import NOUN_OFFSETS, Labeller, build_vocabulary
from trainers.contrastive import LogitScale, symmetric_info_nce
from trainers.data import Split
from trainers.loop import fit_split, seed_everything
from trainers.recipe import checked_fields
from trainers.scenes import ATTRIBUTES, Scenes, attribute_labels, split_scenes

MODEL = "scene_encoder"
ARMS = ("catlip", "clip")
REDUCTIONS = ("batch_mean", "mean")
MAX_WORDS = 16  # caption words the CLIP text encoder reads
# recipe fields beyond trainers.recipe.RANGES: (low, high, low is exclusive, an example)
RANGES: dict[str, tuple[float | None, float | None, bool, Any]] = {
    "vocab_size": (1, len(NOUN_OFFSETS), False, 32), "n_train": (64, 50_000, False, 10_000),
    "n_test": (16, 20_000, False, 2000), "n_probe": (16, 50_000, False, 4000), "epochs": (1, 1000, False, 8),
    "batch_size": (2, 4096, False, 256), "lr": (0.0, 1.0, True, 0.002), "weight_decay": (0.0, 1.0, False, 0.05),
    "embed_dim": (1, 4096, False, 64), "text_dim": (1, 4096, False, 64), "threads": (1, 256, False, 1),
}


@dataclass
class CatLIPRecipe:
    name: str = "catlip"
    arm: str = "catlip"            # catlip (multi-hot BCE) | clip (InfoNCE with a bag-of-words text encoder)
    bce: str = "batch_mean"        # catlip: batch_mean (sum over classes / B, the card's) | mean (per element)
    respect_pos: bool = True       # the labeller keeps nouns only (False: upstream, every word with a noun sense)
    vocab_size: int = 32           # V: top synsets by caption count (the scenes name 23 of the table's 35)
    channels: list[int] = field(default_factory=lambda: [32, 48, 64, 96])  # ~98k parameters
    embed_dim: int = 64            # clip: the joint embedding space
    text_dim: int = 64             # clip: word-embedding width
    n_train: int = 10_000          # training scenes (split "train", training glyphs)
    n_test: int = 2000             # held-out scenes for the probes (split "test", test glyphs)
    n_probe: int = 4000            # training scenes the linear probes are fitted on
    probe: str = "digit"           # the attribute whose probe becomes the saved model's head (shape|colour|digit)
    epochs: int = 8
    batch_size: int = 256
    lr: float = 0.002              # AdamW, cosine-annealed over all steps
    weight_decay: float = 0.05     # conv/linear weights only; norms, biases and the temperature are exempt
    seed: int = 0
    threads: int = 1               # small convs: one thread avoids oversubscription on shared cores

    def encoder_args(self, **extra: Any) -> SceneEncoderArgs:
        return SceneEncoderArgs(channels=tuple(self.channels), **extra)


def recipe_from_dict(data: dict[str, Any], where: str = "catlip recipe") -> CatLIPRecipe:
    """Every key, type and range checked before anything is trained or written."""
    recipe = checked_fields(CatLIPRecipe, data, where, RANGES)
    for key, value, allowed in (("arm", recipe.arm, ARMS), ("bce", recipe.bce, REDUCTIONS),
                                ("probe", recipe.probe, tuple(ATTRIBUTES))):
        if value not in allowed:
            raise RecipeError(f"{where}: {key} {value!r} is unknown", f"use one of: {', '.join(allowed)}")
    if len(recipe.channels) != 4 or any(c < 1 or c > 4096 for c in recipe.channels):
        raise RecipeError(f"{where}: channels={recipe.channels!r} must be 4 block widths in 1..4096",
                          "e.g. --set channels=[32,48,64,96]")
    return recipe


# ----------------------------------------------------------------------------------------------------------- data

@dataclass(frozen=True)
class SceneData:
    """Training scenes with both arms' targets, and the held-out scenes of the probes."""
    train: Scenes
    test: Scenes
    labeller: Labeller
    targets: np.ndarray           # (n_train, V) float32 multi-hot (CatLIP)
    tokenizer: WordTokenizer
    token_ids: np.ndarray         # (n_train, MAX_WORDS) int64 caption word ids (CLIP)


def scene_data(recipe: CatLIPRecipe) -> SceneData:
    """The recipe's scenes (cached per split and size), its vocabulary from the training captions, both targets."""
    train, test = split_scenes("train", recipe.n_train), split_scenes("test", recipe.n_test)
    labeller = Labeller(build_vocabulary(train.captions, recipe.vocab_size, recipe.respect_pos), recipe.respect_pos)
    tokenizer = WordTokenizer.from_texts(train.captions)
    return SceneData(train, test, labeller, labeller.targets(train.captions), tokenizer,
                     tokenizer.encode(list(train.captions), MAX_WORDS).numpy())


# ------------------------------------------------------------------------------------------------------- training

def catlip_bce(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "batch_mean") -> torch.Tensor:
    """CatLIP's loss: BCE-with-logits summed over the V classes and averaged over the batch (`batch_mean`), or the
    per-element mean (`mean`), which is exactly V times smaller."""
    if reduction == "batch_mean":
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / logits.shape[0]
    if reduction == "mean":
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="mean")
    raise ValueError(f"reduction {reduction!r} is unknown; use one of {REDUCTIONS}")


class ClipParts(nn.Module):
    """CLIP's trainable parts: the image encoder (with its projection), the caption encoder, the temperature."""

    def __init__(self, recipe: CatLIPRecipe, vocab_words: int) -> None:
        super().__init__()
        self.image = build(MODEL, recipe.encoder_args(embed_dim=recipe.embed_dim))
        self.text = BagOfWordsEncoder(BagOfWordsArgs(vocab_words, recipe.text_dim, recipe.embed_dim))
        self.scale = LogitScale()


def build_arm(recipe: CatLIPRecipe, data: SceneData) -> tuple[nn.Module, SceneEncoder]:
    """(every trainable part, the image encoder); the encoder's conv blocks are built first, so both arms of a
    seed start from the same conv weights."""
    seed_everything(recipe.seed)
    if recipe.arm == "catlip":
        model = build(MODEL, recipe.encoder_args(num_classes=len(data.labeller)))
        return model, model
    parts = ClipParts(recipe, len(data.tokenizer))
    return parts, parts.image


def loss_fn(recipe: CatLIPRecipe, model: nn.Module) -> Callable[[int, int, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The arm's loss on one batch (images, CatLIP targets or CLIP caption ids): the shared loop's loss_fn."""
    if recipe.arm == "catlip":
        return lambda _step, _total, xb, yb: catlip_bce(model(xb), yb, recipe.bce)
    return lambda _step, _total, xb, yb: symmetric_info_nce(model.image(xb), model.text(yb), model.scale())


def optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW; norms, biases and the 0-d temperature (every parameter of fewer than 2 dimensions) without decay."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=lr)


def arm_split(recipe: CatLIPRecipe, data: SceneData) -> Split:
    """The training split the loop iterates: images with the arm's targets (same images and order in both arms)."""
    return Split(data.train.images, data.targets if recipe.arm == "catlip" else data.token_ids)


def fit(recipe: CatLIPRecipe, data: SceneData) -> tuple[nn.Module, SceneEncoder, dict[str, Any]]:
    """Pre-train one arm; returns (all parts, the image encoder, a log with the loss curve and the time)."""
    torch.set_num_threads(recipe.threads)
    model, encoder = build_arm(recipe, data)
    losses: list[float] = []
    step = loss_fn(recipe, model)

    def logged(i: int, total: int, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        loss = step(i, total, xb, yb)
        losses.append(loss.item())
        return loss

    t0 = time.perf_counter()
    fit_split(model, arm_split(recipe, data), optimizer(model, recipe.lr, recipe.weight_decay), recipe.epochs,
              recipe.batch_size, recipe.seed, logged)
    return model, encoder.eval(), {"losses": losses, "steps": len(losses), "train_seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------------------------------------- evaluation

@torch.no_grad()
def pooled_features(encoder: SceneEncoder, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    """(N, channels[-1]) globally pooled features of the frozen encoder (before any projection or head)."""
    encoder.eval()
    x = torch.from_numpy(images)
    return torch.cat([torch.flatten(encoder.pool(encoder.feature_map(x[i:i + batch])), 1)
                      for i in range(0, len(x), batch)]).numpy()


@dataclass(frozen=True)
class Probe:
    mean: np.ndarray              # (features,) standardisation of the pooled features
    std: np.ndarray
    weight: np.ndarray            # (classes, features), on standardised features
    bias: np.ndarray              # (classes,)
    accuracy: float               # on the held-out scenes

    def logits(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.std) @ self.weight.T + self.bias


def linear_probe(train_f: np.ndarray, train_y: np.ndarray, test_f: np.ndarray, test_y: np.ndarray,
                 classes: int, l2: float = 1e-3) -> Probe:
    """Multinomial logistic regression on standardised features (full-batch L-BFGS, a small L2 penalty)."""
    mu, sd = train_f.mean(0), train_f.std(0) + 1e-6
    x, y = torch.from_numpy((train_f - mu) / sd), torch.from_numpy(train_y)
    w = torch.zeros(classes, x.shape[1], requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=60, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x @ w.t() + b, y) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    probe = Probe(mu, sd, w.detach().numpy(), b.detach().numpy(), 0.0)
    return dataclasses.replace(probe, accuracy=float((probe.logits(test_f).argmax(1) == test_y).mean()))


def probes(encoder: SceneEncoder, data: SceneData, n_probe: int) -> dict[str, Probe]:
    """A linear probe per attribute (shape, colour, digit), fitted on the first n_probe training scenes and scored
    on the held-out scenes."""
    n = min(n_probe, len(data.train))
    train_f = pooled_features(encoder, data.train.images[:n])
    test_f = pooled_features(encoder, data.test.images)
    return {a: linear_probe(train_f, attribute_labels(data.train, a)[:n], test_f, attribute_labels(data.test, a),
                            classes) for a, classes in ATTRIBUTES.items()}


def _f32(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, np.float32))


def with_probe_head(encoder: SceneEncoder, probe: Probe) -> SceneEncoder:
    """The encoder's conv blocks, the probe's standardisation as its projection (a diagonal linear layer) and the
    probe as its head; the pre-training head and CLIP's projection are dropped. Keeping the standardisation apart
    leaves the head's weights evenly scaled, which weight quantization (int4 RTN) needs."""
    c = encoder.args.channels[-1]
    model = SceneEncoder(dataclasses.replace(encoder.args, num_classes=len(probe.bias), embed_dim=c))
    blocks = {k: v for k, v in encoder.state_dict().items() if k.startswith("blocks.")}
    model.load_state_dict({**blocks, "proj.weight": torch.diag(_f32(1.0 / probe.std)),
                           "proj.bias": _f32(-probe.mean / probe.std), "head.weight": _f32(probe.weight),
                           "head.bias": _f32(probe.bias)}, strict=True)
    return model.eval()


def train(recipe: CatLIPRecipe, out_dir: Path) -> dict[str, Any]:
    """The main job's trainer: pre-train the arm, fit the probes, save the encoder with the recipe's probe as head
    (dataset `scenes_<probe>`: its held-out split scores every exported artifact)."""
    t0 = time.perf_counter()
    data = scene_data(recipe)
    _, encoder, log = fit(recipe, data)
    found = probes(encoder, data, recipe.n_probe)
    model = with_probe_head(encoder, found[recipe.probe])
    metrics = {**{f"probe_{a}": p.accuracy for a, p in found.items()},
               "probe_mean": float(np.mean([p.accuracy for p in found.values()])), "test_accuracy":
               found[recipe.probe].accuracy, "test_n": len(data.test), "steps": log["steps"],
               "final_loss": log["losses"][-1], "vocab_size": len(data.labeller),
               "train_seconds": time.perf_counter() - t0}
    checkpoint.save(model, Path(out_dir), {"recipe": dataclasses.asdict(recipe), "dataset": f"scenes_{recipe.probe}",
                                           "vocabulary": data.labeller.vocabulary, "losses": log["losses"],
                                           "metrics": metrics})
    return metrics


def steps_of(recipe: CatLIPRecipe) -> int:
    return recipe.epochs * math.ceil(recipe.n_train / recipe.batch_size)
