"""Training FLOPs of masked audio-video pre-training, counted per token (card 12's pitfall: not per sample).

Every linear layer costs 2 * tokens * fan_in * fan_out; attention adds 2 * n_q * n_k * width for the scores and
as much again for the weighted sum of values. Norms, activations, softmax and gathers are not counted (as torch's
FlopCounterMode, which the tests check this count against on the real network). A training step costs three forward
passes (forward + backward at twice the forward), a convention that cancels in the ratios the claim reports.

Per sample and modality the token counts follow the masking: the encoder sees the n_vis visible tokens; the decoder
embeds them, and its n_mask queries are the masked positions; a self-attention decoder attends over n_vis + n_mask
tokens, a cross-attention one lets the n_mask queries attend to the n_vis visible tokens.
"""

from __future__ import annotations

from models.audio_video_mae import AudioVideoMAEArgs

TRAIN_FACTOR = 3          # forward + backward
TIME_FEATURES = 32        # models.audio_video_mae.TimestepEmbedding's sinusoidal features


def visible_count(tokens: int, ratio: float) -> int:
    """Visible tokens of `tokens` at masking ratio `ratio` (at least one, at least one masked)."""
    return min(tokens - 1, max(1, round(tokens * (1.0 - ratio))))


def linear(n: int, fan_in: int, fan_out: int) -> int:
    return 2 * n * fan_in * fan_out


def block(n_q: int, n_k: int, dim: int, hidden: int, context_dim: int | None = None) -> int:
    """One pre-norm transformer block (models/layers/transformer.py): q, kv and output projections, scores and
    weighted values, the two-layer MLP on the queries."""
    ctx = context_dim or dim
    projections = linear(n_q, dim, dim) + linear(n_k, ctx, 2 * dim) + linear(n_q, dim, dim)
    attention = 2 * (2 * n_q * n_k * dim)
    return projections + attention + linear(n_q, dim, hidden) + linear(n_q, hidden, dim)


def encoder(n_vis: int, a: AudioVideoMAEArgs) -> int:
    hidden = int(a.dim * a.mlp_ratio)
    return linear(n_vis, a.patch_dim, a.dim) + a.depth * block(n_vis, n_vis, a.dim, hidden)


def decoder(n_vis: int, n_mask: int, a: AudioVideoMAEArgs, attention: str) -> int:
    d, hidden = a.decoder_dim, int(a.decoder_dim * a.mlp_ratio)
    flops = linear(n_vis, a.dim, d) + linear(n_mask, d, a.patch_dim)          # embed visible, predict masked
    if a.decoder == "diffusion":
        flops += linear(n_mask, a.patch_dim, d) + linear(1, TIME_FEATURES, d) + linear(1, d, d)  # x_t, t
    if attention == "cross":
        return flops + a.decoder_depth * block(n_mask, n_vis, d, hidden, d)
    n = n_vis + n_mask
    return flops + a.decoder_depth * block(n, n, d, hidden)


def forward_per_sample(a: AudioVideoMAEArgs, audio_vis: int, video_vis: int) -> dict[str, int]:
    """Forward FLOPs of one sample by component, given its visible token counts."""
    n = audio_vis + video_vis
    hidden = int(a.dim * a.mlp_ratio)
    return {"audio_encoder": encoder(audio_vis, a), "video_encoder": encoder(video_vis, a),
            "fusion": a.fusion_depth * block(n, n, a.dim, hidden),
            "audio_decoder": decoder(audio_vis, a.audio_tokens - audio_vis, a, a.audio_decoder),
            "video_decoder": decoder(video_vis, a.video_tokens - video_vis, a, a.video_decoder),
            "contrastive": 2 * linear(1, a.dim, a.embed_dim)}


def step_forward(a: AudioVideoMAEArgs, batch: int, ratio: float) -> dict[str, int]:
    """Forward FLOPs of one step of `batch` samples at masking ratio `ratio`; the contrastive term adds the batch's
    (batch x batch) similarity matrix."""
    per = forward_per_sample(a, visible_count(a.audio_tokens, ratio), visible_count(a.video_tokens, ratio))
    out = {k: batch * v for k, v in per.items()}
    out["contrastive"] += 2 * batch * batch * a.embed_dim
    return out


def training_flops(a: AudioVideoMAEArgs, plan: list[tuple[int, float]]) -> dict[str, int]:
    """Training FLOPs of a whole run, `plan` its (batch, ratio) per step, by component and in total."""
    totals: dict[str, int] = {}
    for batch, ratio in plan:
        for k, v in step_forward(a, batch, ratio).items():
            totals[k] = totals.get(k, 0) + TRAIN_FACTOR * v
    totals["encoders"] = totals["audio_encoder"] + totals["video_encoder"] + totals["fusion"]
    totals["decoders"] = totals["audio_decoder"] + totals["video_decoder"]
    totals["total"] = totals["encoders"] + totals["decoders"] + totals["contrastive"]
    return totals
