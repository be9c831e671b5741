"""Masked audio-video pre-training (MAViL / Diffusion MAViL, card 12), linear probes and the deployable.

One step: patchify both modalities, draw per-sample random masks at the step's ratio, encode the visible patches
(raw values), fuse, and reconstruct the masked patches, whose targets are normalised per patch (mean 0, variance 1
over the patch's values). The diffusion decoder gets x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps of those
normalised masked patches only (t ~ U{1..T} per sample, cosine abar) and predicts x0; visible patches are never
noised. Loss: MSE on the masked patches of both modalities + `contrastive_weight` * symmetric InfoNCE between the
pooled uni-modal embeddings (trainers/contrastive.py).

Batches: `batch_plan` fixes every step's (batch, ratio) before training: the ratio is linear in the fraction of
samples seen, the batch B0 (1 - r0) / (1 - r) with `adaptive_batch`, and batches never straddle an epoch, so every
arm sees each sample once per epoch in the same order (one permutation per (seed, epoch)). This is why the run does
not go through trainers.loop.fit_split, whose DataLoader has one batch size.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models import checkpoint
from models.audio_video_mae import AudioEncoderClassifier, AudioVideoMAE, patchify, patchify_video, take
from trainers.contrastive import LogitScale, symmetric_info_nce
from trainers.diffmavil.data import AVDigits, Clips, load_av_digits, subset
from trainers.diffmavil.flops import training_flops, visible_count
from trainers.diffmavil.recipe import DiffMAViLRecipe
from trainers.loop import seed_everything

COSINE_S = 0.008       # Nichol & Dhariwal's offset
MAX_BETA = 0.999
PATCH_EPS = 1e-6
DATASET = "av_digits_audio"  # trainers.data: the clips' spectrograms, what the deployed encoder classifies


def cosine_alpha_bar(timesteps: int) -> torch.Tensor:
    """(T + 1,) abar_t, abar_0 = 1: the cosine schedule with betas clipped at 0.999."""
    steps = torch.arange(timesteps + 1, dtype=torch.float64)
    f = torch.cos((steps / timesteps + COSINE_S) / (1 + COSINE_S) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=MAX_BETA)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)]).float()


def normalize_patches(patches: torch.Tensor) -> torch.Tensor:
    """Each patch (last dim) to mean 0, variance 1: the reconstruction target, and what is noised."""
    mean = patches.mean(-1, keepdim=True)
    var = patches.var(-1, keepdim=True, unbiased=False)
    return (patches - mean) / (var + PATCH_EPS).sqrt()


def noise_patches(x0: torch.Tensor, t: torch.Tensor, alpha_bar: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """x_t of (B, n, P) patches at per-sample timesteps t (B,)."""
    ab = alpha_bar[t][:, None, None]
    eps = torch.randn(x0.shape, generator=gen)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def random_masks(batch: int, tokens: int, ratio: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample random (visible, masked) token indices, (B, n_vis) and (B, tokens - n_vis)."""
    order = torch.rand(batch, tokens, generator=gen).argsort(dim=1)
    n_vis = visible_count(tokens, ratio)
    return order[:, :n_vis], order[:, n_vis:]


def ratio_at(recipe: DiffMAViLRecipe, progress: float) -> float:
    return recipe.mask_ratio + (recipe.mask_ratio_end - recipe.mask_ratio) * progress


def batch_plan(recipe: DiffMAViLRecipe, n_samples: int) -> list[tuple[int, float]]:
    """(batch, masking ratio) of every step: ratio linear in the samples seen so far, batch adapted to keep the
    visible tokens per step at B0 (1 - r0) when `adaptive_batch`, cut at each epoch's end."""
    total, seen, plan = recipe.epochs * n_samples, 0, []
    while seen < total:
        r = ratio_at(recipe, seen / total)
        b = recipe.batch_size
        if recipe.adaptive_batch:
            b = max(1, round(recipe.batch_size * (1 - recipe.mask_ratio) / (1 - r)))
        b = min(b, n_samples - seen % n_samples)
        plan.append((b, r))
        seen += b
    return plan


def step_lr(recipe: DiffMAViLRecipe, step: int, steps: int, batch: int) -> float:
    """Cosine decay over the run's steps from the recipe's LR; an adaptive batch rescales it only when
    `lr_batch_scaling: linear` says so (lr B(t) / B0), never silently."""
    lr = recipe.lr * (batch / recipe.batch_size if recipe.lr_batch_scaling == "linear" else 1.0)
    return 0.5 * lr * (1 + math.cos(math.pi * step / steps))


def step_loss(model: AudioVideoMAE, scale: LogitScale, audio: torch.Tensor, video: torch.Tensor, ratio: float,
              alpha_bar: torch.Tensor, weight: float, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """The pre-training loss of one batch at one masking ratio, with its parts."""
    a, b = model.args, len(audio)
    a_p, v_p = patchify(audio, a.patch_size), patchify_video(video, a.patch_size)   # (B, Na, P), (B, Nv, P)
    a_vis, a_mask = random_masks(b, a.audio_tokens, ratio, gen)
    v_vis, v_mask = random_masks(b, a.video_tokens, ratio, gen)
    a_tok, v_tok, a_emb, v_emb = model.encode(take(a_p, a_vis), a_vis, take(v_p, v_vis), v_vis)
    a_x0, v_x0 = normalize_patches(take(a_p, a_mask)), normalize_patches(take(v_p, v_mask))
    a_in = v_in = t = None
    if a.decoder == "diffusion":
        t = torch.randint(1, a.timesteps + 1, (b,), generator=gen)
        a_in, v_in = noise_patches(a_x0, t, alpha_bar, gen), noise_patches(v_x0, t, alpha_bar, gen)
    audio_rec = F.mse_loss(model.audio_decoder(a_tok, a_vis, a_mask, a_in, t), a_x0)
    video_rec = F.mse_loss(model.video_decoder(v_tok, v_vis, v_mask, v_in, t), v_x0)
    contrastive = symmetric_info_nce(a_emb, v_emb, scale())
    return {"loss": audio_rec + video_rec + weight * contrastive, "audio_rec": audio_rec, "video_rec": video_rec,
            "contrastive": contrastive}


def pretrain(recipe: DiffMAViLRecipe, train: Clips) -> tuple[AudioVideoMAE, dict[str, Any]]:
    """Pre-train one arm on the training clips; the log holds per-epoch losses, the plan's summary, the counted
    training FLOPs and the wall-clock of the steps."""
    torch.set_num_threads(recipe.threads)
    seed_everything(recipe.seed)
    model = AudioVideoMAE(recipe.model_args())
    scale = LogitScale()
    params = [*model.parameters(), *scale.parameters()]
    opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    n = len(train.y)
    plan = batch_plan(recipe, n)
    alpha_bar = cosine_alpha_bar(recipe.timesteps)
    gen = torch.Generator().manual_seed(recipe.seed + 1)             # masks, timesteps, noise
    order = torch.Generator().manual_seed(recipe.seed)               # data order, shared by the arms
    audio, video = torch.from_numpy(train.audio), torch.from_numpy(train.video)
    history, rows, perm, pos = [], [], None, n
    model.train()
    t0 = time.perf_counter()
    for step, (b, ratio) in enumerate(plan):
        if pos >= n:
            perm, pos = torch.randperm(n, generator=order), 0
        idx = perm[pos:pos + b]
        pos += b
        for group in opt.param_groups:
            group["lr"] = step_lr(recipe, step, len(plan), b)
        parts = step_loss(model, scale, audio[idx], video[idx], ratio, alpha_bar, recipe.contrastive_weight, gen)
        opt.zero_grad(set_to_none=True)
        parts["loss"].backward()
        opt.step()
        rows.append({k: v.item() for k, v in parts.items()} | {"ratio": ratio, "batch": b})
        if pos >= n:
            history.append(_epoch_row(len(history), rows))
            rows = []
    seconds = time.perf_counter() - t0
    flops = training_flops(model.args, plan)
    log = {"history": history, "pretrain_seconds": seconds, "steps": len(plan), "flops": flops,
           "mean_ratio": sum(b * r for b, r in plan) / sum(b for b, _ in plan),
           "batch_min": min(b for b, _ in plan), "batch_max": max(b for b, _ in plan)}
    return model.eval(), log


def _epoch_row(epoch: int, rows: list[dict[str, float]]) -> dict[str, float]:
    keys = ("loss", "audio_rec", "video_rec", "contrastive", "ratio", "batch")
    return {"epoch": epoch, "steps": len(rows), **{k: statistics.fmean(r[k] for r in rows) for k in keys}}


@torch.no_grad()
def embed(model: AudioVideoMAE, clips: Clips, chunk: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Frozen pooled (audio, video) embeddings of every clip, no masking."""
    parts = [model.embeddings(torch.from_numpy(clips.audio[i:i + chunk]), torch.from_numpy(clips.video[i:i + chunk]))
             for i in range(0, len(clips.y), chunk)]
    return tuple(torch.cat([p[k] for p in parts]).numpy() for k in (0, 1))  # type: ignore[return-value]


def linear_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                 c: float) -> dict[str, Any]:
    """Logistic regression on training embeddings standardised with their own mean and std, scored on the held-out
    test embeddings (standardised the same way); returns the accuracy, the standardisation and the weights."""
    from sklearn.linear_model import LogisticRegression

    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    clf = LogisticRegression(C=c, max_iter=3000).fit((x_train - mean) / std, y_train)
    return {"accuracy": float(clf.score((x_test - mean) / std, y_test)), "mean": mean.astype(np.float32),
            "inv_std": (1.0 / std).astype(np.float32), "weight": clf.coef_.astype(np.float32),
            "bias": clf.intercept_.astype(np.float32)}


def fit(recipe: DiffMAViLRecipe, data: AVDigits | None = None) -> tuple[AudioVideoMAE, dict[str, Any]]:
    """Pre-train one arm and probe its frozen encoders: train on the training clips, score on the test clips."""
    data = data or load_av_digits()
    if recipe.train_clips < len(data.train.y):
        data = subset(data, recipe.train_clips)
    model, log = pretrain(recipe, data.train)
    (a_tr, v_tr), (a_te, v_te) = embed(model, data.train), embed(model, data.test)
    audio = linear_probe(a_tr, data.train.y, a_te, data.test.y, recipe.probe_c)
    video = linear_probe(v_tr, data.train.y, v_te, data.test.y, recipe.probe_c)
    log.update(audio_probe=audio["accuracy"], video_probe=video["accuracy"], audio_head=audio, test_n=len(data.test.y))
    return model, log


def deployable(model: AudioVideoMAE, head: dict[str, Any]) -> AudioEncoderClassifier:
    """The pre-trained audio encoder with the audio probe (standardisation + linear layer) as its head."""
    out = AudioEncoderClassifier(model.args.audio_encoder(num_classes=head["weight"].shape[0]))
    out.encoder.load_state_dict(model.audio.state_dict())
    probe = {"embed_mean": "mean", "embed_inv_std": "inv_std", "head.weight": "weight", "head.bias": "bias"}
    out.load_state_dict({**out.state_dict(), **{k: torch.from_numpy(head[v]) for k, v in probe.items()}})
    return out.eval()


@torch.no_grad()
def save_deployable(recipe: DiffMAViLRecipe, out_dir: Path) -> dict[str, Any]:
    """Train one arm and save its deployable audio encoder; the card keeps the log (FLOPs, history, probes)."""
    t0 = time.perf_counter()
    data = load_av_digits()
    with torch.enable_grad():
        model, log = fit(recipe, data)
    net = deployable(model, log.pop("audio_head"))
    logits = net(torch.from_numpy(data.test.audio))
    metrics = {"test_accuracy": float((logits.argmax(1).numpy() == data.test.y).mean()),
               "audio_probe": log["audio_probe"], "video_probe": log["video_probe"], "test_n": log["test_n"],
               "train_flops": log["flops"]["total"], "pretrain_seconds": log["pretrain_seconds"],
               "mean_ratio": log["mean_ratio"], "steps": log["steps"], "train_seconds": time.perf_counter() - t0}
    checkpoint.save(net, out_dir, {"recipe": dataclasses.asdict(recipe), "dataset": DATASET,
                                   "data_split_hash": data.split_hash, "history": log["history"],
                                   "flops": log["flops"], "metrics": metrics})
    return metrics
