"""The model-zoo "experts" of card 08 at small scale, and the pseudo-labels they give the student set.

- Segmentation expert: a tiny U-Net (models/tiny_unet.py) trained on a few hundred labelled scenes, disjoint from
  the student set, whose object labels carry `noise` label noise: each annotated object (a connected region of one
  class in the true mask) has its class replaced, with probability `noise`, by a different class drawn uniformly
  (background included: a missed object).
- Depth expert: a heuristic on the segmentation expert's output, "larger objects are nearer": every connected
  predicted object gets the relative depth 1 - sqrt(area) / 32, background 1. It is relative only (pitfall 3).

Pseudo-labels are made once per (expert seed, noise) over the student images; pixels whose segmentation confidence
(max softmax) is below `threshold` are marked invalid and ignored by both task losses (pitfall 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from models.tiny_unet import TinyUNet, TinyUNetArgs
from trainers.data import Split
from trainers.loop import fit_split, seed_everything

IGNORE = -1          # segmentation target of an ignored pixel
NUM_CLASSES = 4      # background + the three shapes (the scenes carry no digit glyphs here)


def flip_batch(generator: torch.Generator, x: torch.Tensor, *maps: torch.Tensor) -> list[torch.Tensor]:
    """A random horizontal flip per sample, applied to the image and to every dense map of it alike (pitfall 2:
    labels follow the augmented view). Maps are (B, H, W) or (B, C, H, W); captions name no left or right."""
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    out = []
    for t in (x, *maps):
        t = t.clone()
        t[flip] = t[flip].flip(-1)
        out.append(t)
    return out


def noisy_masks(masks: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """The expert's training labels: each object region's class replaced with probability `noise` by another class
    (uniform over the other NUM_CLASSES - 1, background included)."""
    if not 0 <= noise <= 1:
        raise ValueError(f"noise={noise} must be in [0, 1]")
    rng = np.random.default_rng(seed)
    out = masks.copy()
    for i, m in enumerate(masks):
        for cls in range(1, NUM_CLASSES):
            regions, n = ndimage.label(m == cls)
            for r in range(1, n + 1):
                if rng.random() < noise:
                    out[i][regions == r] = (cls + rng.integers(1, NUM_CLASSES)) % NUM_CLASSES
    return out


@dataclass(frozen=True)
class ExpertConfig:
    width: int = 8
    epochs: int = 30
    batch_size: int = 32
    lr: float = 3e-3
    threshold: float = 0.7   # pseudo-label confidence below which a pixel is ignored


def train_expert(images: np.ndarray, masks: np.ndarray, noise: float, seed: int,
                 config: ExpertConfig = ExpertConfig()) -> TinyUNet:
    """The U-Net on `images` with `noise`-corrupted masks (corruption drawn from `seed`), on the shared loop."""
    seed_everything(seed)
    model = TinyUNet(TinyUNetArgs(num_classes=NUM_CLASSES, width=config.width))
    labels = noisy_masks(masks, noise, seed)
    g = torch.Generator().manual_seed(seed + 7)

    def loss(_step: int, _total: int, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        xb, yb = flip_batch(g, xb, yb)
        return F.cross_entropy(model(xb), yb)

    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    return fit_split(model, Split(images, labels), opt, config.epochs, config.batch_size, seed, loss)


def depth_proxy(seg: np.ndarray) -> np.ndarray:
    """(N, H, W) predicted classes -> (N, H, W) relative depth: each connected non-background region at
    1 - sqrt(area) / W (larger is nearer), background at 1."""
    out = np.ones(seg.shape, np.float32)
    width = seg.shape[-1]
    for i, s in enumerate(seg):
        for cls in range(1, NUM_CLASSES):
            regions, n = ndimage.label(s == cls)
            if n:
                areas = np.bincount(regions.ravel())
                near = 1.0 - np.sqrt(areas) / width
                out[i][regions > 0] = near[regions[regions > 0]]
    return out


@dataclass(frozen=True)
class PseudoLabels:
    seg: np.ndarray      # (N, H, W) int64, IGNORE where not confident
    depth: np.ndarray    # (N, H, W) float32 relative depth (meaningful where valid)
    valid: np.ndarray    # (N, H, W) bool: confidence >= threshold

    def coverage(self) -> float:
        return float(self.valid.mean())


@torch.no_grad()
def pseudo_label(expert: TinyUNet, images: np.ndarray, threshold: float, batch: int = 500) -> PseudoLabels:
    """Run the expert once over `images`; keep its confident pixels."""
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold={threshold} must be in [0, 1)")
    expert.eval()
    probs = torch.cat([F.softmax(expert(torch.from_numpy(images[i:i + batch])), 1)
                       for i in range(0, len(images), batch)])
    conf, cls = probs.max(1)
    seg, valid = cls.numpy().astype(np.int64), (conf >= threshold).numpy()
    return PseudoLabels(np.where(valid, seg, IGNORE), depth_proxy(seg), valid)


def confusion(pred: np.ndarray, true: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """(C, C) pixel counts, rows = true class, columns = predicted; pixels with a true IGNORE are skipped."""
    keep = true >= 0
    return np.bincount(num_classes * true[keep] + pred[keep], minlength=num_classes ** 2).reshape(num_classes, -1)


def miou(conf: np.ndarray) -> float:
    """Mean over classes of IoU = TP / (TP + FP + FN) from a dataset-level confusion matrix (classes absent from
    both prediction and truth are skipped)."""
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    present = union > 0
    return float((tp[present] / union[present]).mean())


def expert_quality(labels: PseudoLabels, true_masks: np.ndarray, true_depth: np.ndarray) -> dict[str, float]:
    """How good the pseudo-labels are on the student set (known here because the scenes are procedural; the student
    never sees this): mIoU of the confident pixels, their coverage, and the depth proxy's rank correlation with
    the true depth there."""
    from scipy.stats import spearmanr

    v = labels.valid
    if not v.any():
        return {"pseudo_miou": 0.0, "pseudo_coverage": 0.0, "pseudo_depth_spearman": 0.0}
    flat = np.ptp(labels.depth[v]) == 0  # only one depth among the confident pixels (e.g. background only): 0
    return {"pseudo_miou": miou(confusion(labels.seg[v], true_masks[v])), "pseudo_coverage": labels.coverage(),
            "pseudo_depth_spearman": 0.0 if flat else float(spearmanr(labels.depth[v], true_depth[v]).statistic)}
