"""The student of card 08: CLIP on captioned scenes, with or without light dense heads trained on the experts'
pseudo-labels, and its evaluation (frozen-encoder linear per-pixel probes, zero-shot classification from prompts).

Loss: L = L_CLIP + seg_weight * CE(seg head, pseudo classes; unconfident pixels ignored)
            + depth_weight * L_ssi(depth head, pseudo depth; confident pixels only),
L_CLIP the symmetric InfoNCE with the learnable clipped logit scale (trainers/contrastive.py) and L_ssi the scale- and
shift-invariant depth loss: both maps standardised per image over the valid pixels, then their mean squared
difference (= 2 (1 - Pearson r)), so a relative pseudo-depth teaches only the ordering and contrast (pitfall 3).
Every batch is flipped horizontally at random, image and maps alike (pitfall 2). Training runs on the shared loop
(trainers/loop.fit_split) over scene indices, so arms of a seed share initialisation and batch order.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.scene_clip import SceneCLIP, SceneCLIPArgs
from models.text_bow import WordTokenizer
from trainers.clip_experts.expert import IGNORE, NUM_CLASSES, PseudoLabels, confusion, flip_batch, miou
from trainers.contrastive import LogitScale, symmetric_info_nce
from trainers.data import ImageDataset, Split
from trainers.loop import fit_split, seed_everything
from trainers.scenes import COLOURS, SHAPES, Scenes, make_scenes

CAPTION_WORDS = (*COLOURS, *SHAPES, "a", "an", "in", "front", "of", "and")  # every word a depth-style caption uses
MAX_WORDS = 16
PROMPTS = tuple(f"a {c} {s}" for c in COLOURS for s in SHAPES)               # class k = colour * 3 + shape
SCENE_SEEDS = {"expert": 8001, "student": 8002, "probe": 8003, "test": 8004}  # disjoint generator seeds
STD_EPS = 1e-3   # an image whose valid pseudo-depth is flat (std below this) carries no relative-depth signal


@lru_cache(maxsize=8)
def scenes(part: str, n: int) -> Scenes:
    """The first `n` scenes of one part (fixed generator seed): depth-style captions, no digit glyphs, sample-image
    backgrounds. Cached per process: every arm and seed reads the same scenes."""
    return make_scenes(n, SCENE_SEEDS[part], style="depth", digit_prob=0.0, texture=True)


def tokenizer() -> WordTokenizer:
    return WordTokenizer(CAPTION_WORDS)


def front_class(s: Scenes) -> np.ndarray:
    """The zero-shot label of each scene: its front shape's prompt index, colour * len(SHAPES) + shape."""
    return s.colour * len(SHAPES) + s.shape


@dataclass(frozen=True)
class StudentConfig:
    channels: tuple[int, ...] = (32, 48, 64, 96)
    embed_dim: int = 64
    epochs: int = 6
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seg_weight: float = 1.0
    depth_weight: float = 1.0


def ssi_depth_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Scale- and shift-invariant depth loss over (B, H, W) maps: per image, prediction and target standardised over
    the valid pixels, then their mean squared difference; images with a flat valid target are left out."""
    m = valid.to(pred.dtype).flatten(1)
    n = m.sum(1).clamp(min=1.0)

    def standardise(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = t.flatten(1)
        mean = (t * m).sum(1, keepdim=True) / n[:, None]
        std = (((t - mean) ** 2 * m).sum(1, keepdim=True) / n[:, None] + 1e-12).sqrt()  # finite gradient at 0
        return (t - mean) / (std + 1e-6), std[:, 0]

    p, _ = standardise(pred)
    t, t_std = standardise(target)
    per_image = ((p - t) ** 2 * m).sum(1) / n
    keep = (t_std > STD_EPS).to(pred.dtype)
    return (per_image * keep).sum() / keep.sum().clamp(min=1.0)


def ignoring_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel cross-entropy over the pixels whose target is not IGNORE; 0 (not NaN) when a batch has none."""
    per_pixel = F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="sum")
    return per_pixel / (target != IGNORE).sum().clamp(min=1)


class StudentTraining:
    """The loss function for trainers.loop.fit_split over scene indices; logs the loss terms per step."""

    def __init__(self, model: SceneCLIP, scale: LogitScale, images: np.ndarray, ids: torch.Tensor,
                 labels: PseudoLabels | None, config: StudentConfig, seed: int) -> None:
        self.model, self.scale, self.config, self.ids = model, scale, config, ids
        self.images = torch.from_numpy(images)
        self.labels = None if labels is None else (torch.from_numpy(labels.seg), torch.from_numpy(labels.depth),
                                                   torch.from_numpy(labels.valid))
        self.generator = torch.Generator().manual_seed(seed + 11)
        self.log: list[dict[str, float]] = []

    def step(self, _step: int, _total: int, idx: torch.Tensor, _unused: torch.Tensor) -> torch.Tensor:
        x, ids = self.images[idx], self.ids[idx]
        if self.labels is None:
            (x,) = flip_batch(self.generator, x)
            out = self.model(x, ids)
            loss = clip = symmetric_info_nce(out["image"], out["text"], self.scale())
            self.log.append({"clip": clip.item()})
            return loss
        seg, depth, valid = (t[idx] for t in self.labels)
        x, seg, depth, valid = flip_batch(self.generator, x, seg, depth, valid)
        out = self.model(x, ids)
        clip = symmetric_info_nce(out["image"], out["text"], self.scale())
        seg_loss = ignoring_cross_entropy(out["seg"], seg)
        depth_loss = ssi_depth_loss(out["depth"], depth, valid)
        self.log.append({"clip": clip.item(), "seg": seg_loss.item(), "depth": depth_loss.item()})
        return clip + self.config.seg_weight * seg_loss + self.config.depth_weight * depth_loss

    def epoch_history(self, steps_per_epoch: int) -> list[dict[str, float]]:
        rows = []
        for e in range(0, len(self.log), steps_per_epoch):
            chunk = self.log[e:e + steps_per_epoch]
            rows.append({"epoch": e // steps_per_epoch,
                         **{k: statistics.fmean(r[k] for r in chunk) for k in chunk[0]}})
        return rows


def fit_student(train: Scenes, labels: PseudoLabels | None, config: StudentConfig, seed: int
                ) -> tuple[SceneCLIP, LogitScale, list[dict[str, float]]]:
    """One student: CLIP only when `labels` is None (arm A), else CLIP + heads on the pseudo-labels (arm B). The
    initialisation (heads aside) and batch order depend on `seed` only."""
    seed_everything(seed)
    tok = tokenizer()
    heads = labels is not None  # built after the shared weights: arms A and B start from the same encoder
    model = SceneCLIP(SceneCLIPArgs(channels=list(config.channels), embed_dim=config.embed_dim,
                                    vocab_size=len(tok), text_dim=config.embed_dim,
                                    seg_classes=NUM_CLASSES if heads else 0, depth_head=heads))
    scale = LogitScale()
    method = StudentTraining(model, scale, train.images, tok.encode(train.captions, MAX_WORDS), labels, config, seed)
    opt = torch.optim.AdamW([*model.parameters(), *scale.parameters()], lr=config.lr,
                            weight_decay=config.weight_decay)
    index = Split(np.arange(len(train), dtype=np.int64), np.zeros(len(train), np.int64))
    fit_split(model, index, opt, config.epochs, config.batch_size, seed, method.step)
    steps_per_epoch = -(-len(train) // config.batch_size)
    return model.eval(), scale, method.epoch_history(steps_per_epoch)


# ----------------------------------------------------------------------------------------------------- evaluation

@torch.no_grad()
def feature_maps(model: SceneCLIP, images: np.ndarray, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen encoder: (N, C, h, w) feature maps and (N, D) pooled embeddings."""
    model.eval()
    maps, embs = [], []
    for i in range(0, len(images), batch):
        emb, fmap = model.image(torch.from_numpy(images[i:i + batch]), return_map=True)
        maps.append(fmap)
        embs.append(emb)
    return torch.cat(maps), torch.cat(embs)


RIDGE = 1e-3        # the depth probe's L2 penalty per pixel row
PROBE_PIXELS = 96    # pixels per probe-set image the probes are fitted on (drawn once, the same for every model)


def upsampled(feats: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, size, size) bilinear, as the dense heads upsample."""
    return F.interpolate(feats, size=(size, size), mode="bilinear", align_corners=False)


@dataclass
class PixelProbes:
    """Linear per-pixel probes on the frozen feature map: standardised features, upsampled bilinearly to the
    image, then one linear map per task (segmentation logits over NUM_CLASSES, depth)."""
    mean: torch.Tensor       # (1, C, 1, 1)
    std: torch.Tensor
    seg: torch.Tensor        # (C + 1, NUM_CLASSES): weights and bias
    depth: torch.Tensor      # (C + 1, 1)

    @torch.no_grad()
    def predict(self, feats: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, h, w) -> (N, size, size) classes and (N, size, size) depth. The linear maps run on the low-res map
        and are upsampled after: the same numbers as upsampling first, since both steps are linear."""
        z = ((feats - self.mean) / self.std).permute(0, 2, 3, 1)                   # (N, h, w, C)
        z = torch.cat([z, torch.ones_like(z[..., :1])], -1)
        seg = upsampled((z @ self.seg).permute(0, 3, 1, 2), size)                   # (N, K, size, size)
        depth = upsampled((z @ self.depth).permute(0, 3, 1, 2), size)               # (N, 1, size, size)
        return seg.argmax(1), depth[:, 0]


def pixel_rows(feats: torch.Tensor, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """PROBE_PIXELS random pixels of each image: their upsampled standardised features with a bias column
    (N * PROBE_PIXELS, C + 1) and their flat indices into (N, size, size)."""
    g = torch.Generator().manual_seed(seed)
    n = feats.shape[0]
    flat = torch.randint(0, size * size, (n, PROBE_PIXELS), generator=g) + torch.arange(n)[:, None] * size * size
    u = upsampled(feats, size).permute(0, 2, 3, 1).reshape(-1, feats.shape[1])[flat.ravel()]
    return torch.cat([u, torch.ones_like(u[:, :1])], 1), flat.ravel()


def fit_probes(feats: torch.Tensor, masks: np.ndarray, depth: np.ndarray, seed: int = 0,
               steps: int = 200, lr: float = 0.05) -> PixelProbes:
    """Segmentation: multinomial logistic regression (full-batch Adam, `steps` steps); depth: ridge regression (closed form); both on
    the probe set's true labels at the sampled pixels."""
    mean, std = feats.mean((0, 2, 3), keepdim=True), feats.std((0, 2, 3), keepdim=True) + 1e-5
    size = masks.shape[-1]
    rows, flat = pixel_rows((feats - mean) / std, size, seed)
    y_seg, y_depth = torch.from_numpy(masks).reshape(-1)[flat], torch.from_numpy(depth).reshape(-1)[flat]
    w = torch.zeros(rows.shape[1], NUM_CLASSES, requires_grad=True)
    opt = torch.optim.Adam([w], lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(rows @ w, y_seg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    x = rows.double()
    gram = x.t() @ x + RIDGE * len(x) * torch.eye(x.shape[1], dtype=x.dtype)  # features are standardised
    d = torch.linalg.solve(gram, x.t() @ y_depth.double()[:, None]).float()
    return PixelProbes(mean, std, w.detach(), d)


@torch.no_grad()
def zero_shot(model: SceneCLIP, scale: float, image_emb: torch.Tensor, s: Scenes) -> dict[str, float]:
    """Front-object classification from the prompts "a {colour} {shape}": joint top-1, and shape and colour top-1
    from the logits marginalised (logsumexp) over the other attribute; `zero_shot` is their mean."""
    text = model.text(tokenizer().encode(PROMPTS, MAX_WORDS))
    logits = scale * F.normalize(image_emb, dim=-1) @ F.normalize(text, dim=-1).t()   # (N, K)
    grid = logits.view(-1, len(COLOURS), len(SHAPES))
    shape = (grid.logsumexp(1).argmax(1).numpy() == s.shape).mean()
    colour = (grid.logsumexp(2).argmax(1).numpy() == s.colour).mean()
    joint = (logits.argmax(1).numpy() == front_class(s)).mean()
    return {"zs_shape": float(shape), "zs_colour": float(colour), "zs_joint": float(joint),
            "zero_shot": float((shape + colour) / 2)}


def evaluate(model: SceneCLIP, scale: float, probe: Scenes, test: Scenes, seed: int = 0) -> dict[str, float]:
    """Frozen encoder: linear per-pixel probes trained on `probe` with true labels, scored on `test` (mIoU over
    background + 3 shapes; depth RMSE), and zero-shot accuracy on `test`."""
    f_probe, _ = feature_maps(model, probe.images)
    f_test, e_test = feature_maps(model, test.images)
    probes = fit_probes(f_probe, probe.masks, probe.depth, seed=seed)
    pred, depth = probes.predict(f_test, test.masks.shape[-1])
    rmse = float(((depth - torch.from_numpy(test.depth)) ** 2).mean().sqrt())
    return {"miou": miou(confusion(pred.numpy(), test.masks)), "depth_rmse": rmse,
            **zero_shot(model, scale, e_test, test)}


def front_object_dataset() -> ImageDataset:
    """trainers.data's "scenes_front": zero-shot labels (front object's prompt index) of the probe scenes (train and
    validation: static-quantization calibration reads these) and of the 1,000 test scenes (what artifacts are
    scored on)."""
    import hashlib

    probe, test = scenes("probe", 500), scenes("test", 1000)
    h = hashlib.sha256()
    for arr in (probe.images, front_class(probe), test.images, front_class(test)):
        h.update(np.ascontiguousarray(arr).tobytes())
    train = Split(probe.images, front_class(probe))
    return ImageDataset("scenes_front", train, train, Split(test.images, front_class(test)), len(PROMPTS),
                        h.hexdigest())
