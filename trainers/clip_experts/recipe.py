"""CLIP meets model-zoo experts (card 08, arXiv 2310.14108) on procedural 32x32 scenes: one recipe trains one arm.

    arm clip:    CLIP only (symmetric InfoNCE, bag-of-words text encoder).
    arm experts: CLIP + a segmentation head and a depth head on pseudo-labels from an imperfect expert (a tiny U-Net
                 trained on `expert_scenes` labelled scenes with `noise` label noise, plus the "larger is nearer"
                 depth heuristic), weights `seg_weight`, `depth_weight`; unconfident pixels (< `threshold`) ignored.

The checkpoint is the deployable zero-shot classifier (models/scene_clip.ZeroShotScene): the image encoder with the
text embeddings of the 18 prompts "a {colour} {shape}" stored as a constant matrix; its dataset "scenes_front" (the
1,000 test scenes labelled by their front object) scores every exported artifact. The card's metrics (probe mIoU,
depth RMSE, zero-shot shape / colour accuracy, pseudo-label quality) and a few test scenes for the dashboard
(`examples.npz`: image, true mask, expert pseudo-label, probe prediction) are stored beside it.

    edgezoo train clip_experts --set noise=0.3
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models import checkpoint
from models.errors import RecipeError
from models.scene_clip import ZeroShotScene, ZeroShotSceneArgs
from trainers.clip_experts import expert as E
from trainers.clip_experts import student as S
from trainers.recipe import checked_fields

ARMS = ("clip", "experts")
PROBE_SCENES, TEST_SCENES = 500, 1000   # card 08: probe set with true labels, test set
DATASET = "scenes_front"
EXAMPLES = "examples.npz"
N_EXAMPLES = 4
# recipe fields beyond trainers.recipe.RANGES: (low, high, low is exclusive, an example)
RANGES: dict[str, tuple[float | None, float | None, bool, Any]] = {
    "noise": (0.0, 1.0, False, 0.1), "threshold": (0.0, 1.0, False, 0.7), "seg_weight": (0.0, 100.0, False, 1.0),
    "depth_weight": (0.0, 100.0, False, 1.0), "student_scenes": (2, 100_000, False, 8000),
    "expert_scenes": (1, 10_000, False, 300), "expert_epochs": (1, 1000, False, 30),
    "expert_batch_size": (1, 10_000, False, 32),
    "expert_width": (1, 256, False, 8), "embed_dim": (1, 4096, False, 64), "epochs": (1, 1000, False, 4),
    "batch_size": (2, 100_000, False, 256), "lr": (0.0, 1.0, True, 0.003), "weight_decay": (0.0, 1.0, False, 1e-4),
    "threads": (1, 256, False, 1),
}


@dataclass
class CLIPExpertsRecipe:
    name: str = "clip_experts"
    arm: str = "experts"             # clip | experts
    noise: float = 0.1               # the expert's training-label noise (card: 0.1; ablation 0.3)
    threshold: float = 0.7           # pseudo-label confidence below which a pixel is ignored; < 1
    seg_weight: float = 1.0          # lambda of the segmentation loss
    depth_weight: float = 1.0        # lambda of the scale- and shift-invariant depth loss
    student_scenes: int = 8000
    expert_scenes: int = 300
    expert_epochs: int = 30
    expert_batch_size: int = 32
    expert_width: int = 8            # U-Net channels at full resolution
    channels: list[int] = field(default_factory=lambda: [32, 48, 64, 96])   # ~98k-parameter scene encoder
    embed_dim: int = 64
    epochs: int = 4                  # 125 steps of batch 256 on 8,000 scenes, every arm
    batch_size: int = 256
    lr: float = 0.003
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 1

    def student(self) -> S.StudentConfig:
        return S.StudentConfig(channels=tuple(self.channels), embed_dim=self.embed_dim, epochs=self.epochs,
                               batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                               seg_weight=self.seg_weight, depth_weight=self.depth_weight)

    def expert(self) -> E.ExpertConfig:
        return E.ExpertConfig(width=self.expert_width, epochs=self.expert_epochs, batch_size=self.expert_batch_size,
                              threshold=self.threshold)


def recipe_from_dict(data: dict[str, Any], where: str = "clip_experts recipe") -> CLIPExpertsRecipe:
    """Every key, type and range checked before anything is trained or written."""
    recipe = checked_fields(CLIPExpertsRecipe, data, where, RANGES)
    if recipe.arm not in ARMS:
        raise RecipeError(f"{where}: arm {recipe.arm!r} is unknown", f"use one of: {', '.join(ARMS)}")
    if recipe.threshold >= 1.0:
        raise RecipeError(f"{where}: threshold={recipe.threshold} would ignore every pixel",
                          "use a confidence threshold below 1, e.g. --set threshold=0.7")
    if len(recipe.channels) != 4 or any(c < 1 or c > 4096 for c in recipe.channels):
        raise RecipeError(f"{where}: channels={recipe.channels!r} must be 4 block widths in 1..4096",
                          "e.g. --set channels=[32,48,64,96]")
    return recipe


# ----------------------------------------------------------------------------------------------------- one arm

def pseudo_labels(recipe: CLIPExpertsRecipe) -> tuple[E.PseudoLabels, E.TinyUNet, float]:
    """Train the expert of (seed, noise) and label the student set once; returns labels, expert, seconds."""
    t0 = time.perf_counter()
    ex, st = S.scenes("expert", recipe.expert_scenes), S.scenes("student", recipe.student_scenes)
    unet = E.train_expert(ex.images, ex.masks, recipe.noise, recipe.seed, recipe.expert())
    return E.pseudo_label(unet, st.images, recipe.threshold), unet, time.perf_counter() - t0


def run_arm(recipe: CLIPExpertsRecipe, labels: E.PseudoLabels | None = None) -> tuple[Any, Any, dict[str, Any]]:
    """Train and evaluate one arm; `labels` (the experts arm's pseudo-labels) are made here unless given, so the
    claim can reuse one labelling per (seed, noise). Returns the student, its logit scale and the metrics."""
    torch.set_num_threads(recipe.threads)
    train = S.scenes("student", recipe.student_scenes)
    out: dict[str, Any] = {}
    if recipe.arm == "experts" and labels is None:
        labels, _, out["expert_seconds"] = pseudo_labels(recipe)
    if recipe.arm == "experts":
        out.update(E.expert_quality(labels, train.masks, train.depth))
    t0 = time.perf_counter()
    model, scale, history = S.fit_student(train, labels if recipe.arm == "experts" else None, recipe.student(),
                                          recipe.seed)
    out["student_seconds"] = time.perf_counter() - t0
    out.update(S.evaluate(model, float(scale().detach()), S.scenes("probe", PROBE_SCENES),
                          S.scenes("test", TEST_SCENES), seed=recipe.seed))
    out["steps"] = recipe.epochs * -(-recipe.student_scenes // recipe.batch_size)
    out["history"] = history
    return model, scale, out


def zero_shot_model(model: Any, scale: Any) -> ZeroShotScene:
    """The deployable: the student's image encoder and the prompt embeddings as a constant matrix."""
    cfg = model.args
    args = ZeroShotSceneArgs(image_size=cfg.image_size, channels=list(cfg.channels), strides=list(cfg.strides),
                             embed_dim=cfg.embed_dim, num_classes=len(S.PROMPTS))
    out = ZeroShotScene(args)
    out.image.load_state_dict(model.image.state_dict(), strict=True)
    with torch.no_grad():
        prompts = model.text(S.tokenizer().encode(S.PROMPTS, S.MAX_WORDS))
    return out.set_prompts(prompts, float(scale().detach())).eval()


def examples(model: Any, recipe: CLIPExpertsRecipe, unet: E.TinyUNet | None) -> dict[str, np.ndarray]:
    """The first N_EXAMPLES test scenes: image, true mask and depth, the expert's pseudo-label (IGNORE where
    unconfident; empty for the CLIP-only arm) and the frozen-encoder probes' predictions."""
    probe, test = S.scenes("probe", PROBE_SCENES), S.scenes("test", TEST_SCENES)
    f_probe, _ = S.feature_maps(model, probe.images)
    probes = S.fit_probes(f_probe, probe.masks, probe.depth, seed=recipe.seed)
    x = test.images[:N_EXAMPLES]
    seg, depth = probes.predict(S.feature_maps(model, x)[0], x.shape[-1])
    pseudo = E.pseudo_label(unet, x, recipe.threshold).seg if unet is not None else np.zeros((0,) + x.shape[2:])
    return {"image": x, "mask": test.masks[:N_EXAMPLES], "depth": test.depth[:N_EXAMPLES], "pseudo": pseudo,
            "probe_seg": seg.numpy(), "probe_depth": depth.numpy()}


def train(recipe: CLIPExpertsRecipe, out_dir: Path) -> dict[str, Any]:
    """The main job's trainer: one arm trained and evaluated, saved as the zero-shot deployable."""
    t0 = time.perf_counter()
    torch.set_num_threads(recipe.threads)
    labels, unet = None, None
    if recipe.arm == "experts":
        labels, unet, _ = pseudo_labels(recipe)
    model, scale, metrics = run_arm(recipe, labels)
    history = metrics.pop("history")
    metrics.update(test_accuracy=metrics["zs_joint"], test_n=TEST_SCENES, train_seconds=time.perf_counter() - t0)
    deployable = zero_shot_model(model, scale)
    checkpoint.save(deployable, Path(out_dir), {"recipe": dataclasses.asdict(recipe), "dataset": DATASET,
                                                "prompts": list(S.PROMPTS), "history": history, "metrics": metrics})
    np.savez_compressed(Path(out_dir) / EXAMPLES, **examples(model, recipe, unet))
    return metrics
