"""Diffusion MAViL recipes (card 12): one recipe is one arm of the small-scale claim.

    decoder: mask | diffusion          MAViL's learned [MASK] tokens (A) or noised masked patches x_t (B, C)
    video_decoder: self | cross        self-attention over every token (A) or masked queries -> visible tokens
    mask_ratio, mask_ratio_end         the masking ratio at the start and the end of training (linear in the
                                       fraction of samples seen); equal: a fixed ratio (A, B); 0.75 -> 0.90 (C)
    adaptive_batch                     B(t) = batch_size (1 - r0) / (1 - r(t)): visible tokens per step constant
    lr_batch_scaling: none | linear    adaptive batches keep the LR unless this says otherwise (linear: lr B(t)/B0)

`edgezoo train trainers/diffmavil/configs/diffmavil_c.yaml --set epochs=5`
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.audio_video_mae import ATTENTION, DECODERS, AudioVideoMAEArgs
from models.errors import RecipeError
from trainers.recipe import checked_fields

LR_SCALING = ("none", "linear")
MAX_RATIO = 0.97  # at least one visible audio patch of 32 must remain
# recipe fields beyond trainers.recipe.RANGES: (low, high, low is exclusive, an example)
RANGES: dict[str, tuple[float | None, float | None, bool, Any]] = {
    "mask_ratio": (0.0, MAX_RATIO, False, 0.75), "mask_ratio_end": (0.0, MAX_RATIO, False, 0.9),
    "timesteps": (1, 10_000, False, 100), "contrastive_weight": (0.0, 100.0, False, 0.1),
    "epochs": (1, 1000, False, 20), "batch_size": (2, 3000, False, 64), "lr": (0.0, 1.0, True, 0.001),
    "weight_decay": (0.0, 1.0, False, 0.05), "threads": (1, 256, False, 1), "dim": (4, 4096, False, 64),
    "depth": (1, 48, False, 2), "heads": (1, 64, False, 4), "fusion_depth": (0, 48, False, 1),
    "decoder_dim": (4, 4096, False, 64), "decoder_depth": (1, 48, False, 1), "embed_dim": (1, 4096, False, 64),
    "probe_c": (0.0, 1e6, True, 1.0), "train_clips": (100, 3000, False, 3000),
}


@dataclass
class DiffMAViLRecipe:
    name: str = "diffmavil_c"
    decoder: str = "diffusion"
    video_decoder: str = "cross"
    mask_ratio: float = 0.75
    mask_ratio_end: float = 0.90
    adaptive_batch: bool = True
    lr_batch_scaling: str = "none"
    timesteps: int = 100            # T, cosine alpha-bar schedule, x0 prediction
    contrastive_weight: float = 0.1
    dim: int = 64
    depth: int = 2
    heads: int = 4
    fusion_depth: int = 1
    decoder_dim: int = 64
    decoder_depth: int = 1
    embed_dim: int = 64
    epochs: int = 8
    batch_size: int = 32            # B0: the batch at the starting ratio
    lr: float = 0.002               # AdamW, cosine-annealed over the run's steps
    weight_decay: float = 0.05
    probe_c: float = 1.0            # inverse L2 strength of the logistic-regression probes
    train_clips: int = 3000         # pre-train and fit the probes on the first this many training clips
    seed: int = 0
    threads: int = 1

    def model_args(self) -> AudioVideoMAEArgs:
        return AudioVideoMAEArgs(dim=self.dim, depth=self.depth, heads=self.heads, fusion_depth=self.fusion_depth,
                                 decoder_dim=self.decoder_dim, decoder_depth=self.decoder_depth,
                                 decoder_heads=self.heads, embed_dim=self.embed_dim, decoder=self.decoder,
                                 video_decoder=self.video_decoder, timesteps=self.timesteps)


def recipe_from_dict(data: dict[str, Any], where: str = "diffmavil recipe") -> DiffMAViLRecipe:
    """Every key, type, range and combination checked before anything is trained or written."""
    recipe = checked_fields(DiffMAViLRecipe, data, where, RANGES)
    for key, value, allowed in (("decoder", recipe.decoder, DECODERS), ("video_decoder", recipe.video_decoder,
                                                                          ATTENTION),
                                ("lr_batch_scaling", recipe.lr_batch_scaling, LR_SCALING)):
        if value not in allowed:
            raise RecipeError(f"{where}: {key} {value!r} is unknown", f"use one of: {', '.join(allowed)}")
    for key, width in (("dim", recipe.dim), ("decoder_dim", recipe.decoder_dim)):
        if width % recipe.heads:
            raise RecipeError(f"{where}: {key}={width} is not divisible by heads={recipe.heads}",
                              f"pick {key} a multiple of heads, e.g. --set {key}={recipe.heads * 16}")
    if recipe.mask_ratio_end < recipe.mask_ratio:
        raise RecipeError(f"{where}: mask_ratio_end={recipe.mask_ratio_end} is below mask_ratio={recipe.mask_ratio}",
                          "the curriculum raises the ratio: set mask_ratio_end >= mask_ratio")
    return recipe


def train(recipe: DiffMAViLRecipe, out_dir: Path) -> dict[str, Any]:
    """Pre-train one arm, fit the probes, save the deployable audio encoder (registered `av_audio_encoder`, the audio
    probe as its head) with the training log in its card."""
    from trainers.diffmavil.train import save_deployable

    return save_deployable(recipe, Path(out_dir))
