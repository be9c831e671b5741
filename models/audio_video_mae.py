"""Masked audio-video autoencoder (MAViL, arXiv 2212.08071) with the diffusion decoders of Diffusion MAViL
(Nunez et al., arXiv 2310.03937; DiffMAE, arXiv 2304.03283). Architecture only: masking, noising, the curriculum and
the losses live in trainers/diffmavil.

- `PatchEncoder`: a ViT over p x p patches (pre-norm blocks of models/layers/transformer.py, learned positions,
  final LayerNorm). The patch embedding is a stride-p Conv2d, applied as a linear map to the visible patches only in
  pre-training (`embed_patches`) and as the convolution over the whole input at inference (`embed_all`): the same
  weights, so the exported encoder sees every token of a fixed-size input.
- `AudioVideoMAE`: audio and video encoders over their visible tokens, a joint fusion encoder, and one decoder per
  modality. `decoder="mask"` (MAViL): a learned [MASK] token at masked positions, self-attention over visible +
  masked tokens. `decoder="diffusion"` (DiffMAViL): the masked positions get the embedded noised patches x_t, and a
  timestep embedding is added to the decoder tokens before every decoder layer; `video_decoder="cross"` makes the
  video decoder's masked queries attend to the visible tokens instead of to every token.
- `AudioEncoderClassifier` (registered `av_audio_encoder`): the deployable audio encoder over all tokens, mean
  pooled, with the linear probe as its head: (B, 1, F, T) spectrogram -> (B, classes) logits.

Token layout: audio (B, 1, F, T) -> (F/p)(T/p) patches of p*p values, row-major over (frequency, time); video
(B, frames, H, W) -> frames (H/p)(W/p) patches, frame-major. Masked-position tensors hold patch indices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.layers.transformer import TransformerBlock
from models.registry import PaperCard, register

CARD = PaperCard(
    title="Diffusion Models as Masked Audio-Video Learners",
    arxiv="2310.03937",
    code="https://arxiv.org/abs/2310.03937",  # no public implementation; parents MAViL and DiffMAE
    key="diffmavil",
)
DECODERS = ("mask", "diffusion")
ATTENTION = ("self", "cross")


@dataclass
class AudioEncoderArgs:
    in_channels: int = 1
    freq_bins: int = 16
    time_frames: int = 32
    patch_size: int = 4
    dim: int = 64
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    num_classes: int = 10

    @classmethod
    def tiny(cls) -> "AudioEncoderArgs":
        return cls(dim=16, depth=1, heads=2)

    @classmethod
    def deploy(cls) -> "AudioEncoderArgs":
        """MAViL / AudioMAE's ViT-B audio encoder: 12 layers, width 768, 12 heads, a 128-bin x 1024-frame log-mel
        spectrogram in 16x16 patches (8 x 64 = 512 tokens), an AudioSet-2M head (527 classes); 86M parameters."""
        return cls(freq_bins=128, time_frames=1024, patch_size=16, dim=768, depth=12, heads=12, num_classes=527)

    @property
    def grid(self) -> tuple[int, int]:
        return self.freq_bins // self.patch_size, self.time_frames // self.patch_size

    @property
    def tokens(self) -> int:
        return math.prod(self.grid)


@dataclass
class AudioVideoMAEArgs:
    freq_bins: int = 16
    time_frames: int = 32
    frames: int = 4
    frame_size: int = 16
    patch_size: int = 4
    dim: int = 64                # encoder width (audio, video, fusion)
    depth: int = 2               # layers per modality encoder
    heads: int = 4
    mlp_ratio: float = 4.0
    fusion_depth: int = 1
    decoder_dim: int = 64
    decoder_depth: int = 1
    decoder_heads: int = 4
    embed_dim: int = 64          # contrastive projection width
    decoder: str = "mask"        # mask (MAViL) | diffusion (DiffMAViL)
    video_decoder: str = "self"  # self | cross (cross-attention: masked queries attend to visible tokens)
    audio_decoder: str = "self"
    timesteps: int = 100

    @classmethod
    def tiny(cls) -> "AudioVideoMAEArgs":
        return cls(dim=16, depth=1, heads=2, decoder_dim=16, decoder_heads=2, embed_dim=8)

    @property
    def patch_dim(self) -> int:
        return self.patch_size ** 2

    @property
    def audio_grid(self) -> tuple[int, int]:
        return self.freq_bins // self.patch_size, self.time_frames // self.patch_size

    @property
    def video_grid(self) -> tuple[int, int, int]:
        return self.frames, self.frame_size // self.patch_size, self.frame_size // self.patch_size

    @property
    def audio_tokens(self) -> int:
        return math.prod(self.audio_grid)

    @property
    def video_tokens(self) -> int:
        return math.prod(self.video_grid)

    def audio_encoder(self, num_classes: int = 10) -> AudioEncoderArgs:
        """The deployable audio encoder's args (the same widths as the pre-trained one)."""
        return AudioEncoderArgs(1, self.freq_bins, self.time_frames, self.patch_size, self.dim, self.depth,
                                self.heads, self.mlp_ratio, num_classes)


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, (H/p)(W/p), C p p), patches row-major, values in (c, i, j) order (a Conv2d's weight
    layout, so `F.linear` with the flattened kernel equals the stride-p convolution)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)  # (B, H/p, W/p, C, p, p)
    return x.reshape(b, (h // p) * (w // p), c * p * p)


def patchify_video(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, frames, H, W) -> (B, frames (H/p)(W/p), p p), frame-major."""
    b, f, h, w = x.shape
    return patchify(x.reshape(b * f, 1, h, w), p).reshape(b, f * (h // p) * (w // p), p * p)


def sincos_positions(grid: tuple[int, ...], dim: int) -> torch.Tensor:
    """(1, prod(grid), dim) fixed sine-cosine positions (MAE / AudioMAE), tokens row-major over `grid`: each axis
    gets an even share of the channels (sin and cos of its coordinate at geometric frequencies), the rest zeros."""
    share = dim // len(grid) // 2 * 2
    coords = torch.stack(torch.meshgrid(*(torch.arange(n, dtype=torch.float32) for n in grid), indexing="ij"))
    coords = coords.reshape(len(grid), -1)                                      # (axes, N)
    freqs = 1.0 / 10_000 ** (torch.arange(share // 2, dtype=torch.float32) / max(1, share // 2))
    parts = [torch.cat([(c[:, None] * freqs).sin(), (c[:, None] * freqs).cos()], dim=1) for c in coords]
    out = torch.cat(parts, dim=1)                                                # (N, axes * share)
    return F.pad(out, (0, dim - out.shape[1]))[None]


def take(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows of x (B or 1, N, D) at token indices idx (B, n) -> (B, n, D)."""
    x = x.expand(idx.shape[0], -1, -1)
    return torch.gather(x, 1, idx[..., None].expand(-1, -1, x.shape[-1]))


class PatchEncoder(nn.Module):
    def __init__(self, grid: tuple[int, ...], in_channels: int, patch_size: int, dim: int, depth: int, heads: int,
                 mlp_ratio: float) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.patch = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.register_buffer("pos", sincos_positions(grid, dim))                # fixed, (1, N, dim)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def embed_patches(self, patches: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """(B, n, C p p) patches at token indices idx (B, n) -> (B, n, dim) tokens."""
        return F.linear(patches, self.patch.weight.flatten(1), self.patch.bias) + take(self.pos, idx)

    def embed_all(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, N, dim): every patch, through the convolution (the exported path)."""
        return self.patch(x).flatten(2).transpose(1, 2) + self.pos

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(self.embed_all(x))


class TimestepEmbedding(nn.Module):
    """t (B,) integer -> (B, dim): sinusoidal features of t through a two-layer MLP (DDPM's)."""

    def __init__(self, dim: int, features: int = 32) -> None:
        super().__init__()
        self.features = features
        self.mlp = nn.Sequential(nn.Linear(features, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.features // 2
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32) / half)
        angles = t.float()[:, None] * freqs[None]                       # (B, features / 2)
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=-1))


class Decoder(nn.Module):
    """Predicts the masked patches of one modality from its visible (encoded, fused) tokens."""

    def __init__(self, grid: tuple[int, ...], patch_dim: int, enc_dim: int, dim: int, depth: int, heads: int,
                 mlp_ratio: float, kind: str, attention: str) -> None:
        super().__init__()
        if kind not in DECODERS or attention not in ATTENTION:
            raise ValueError(f"decoder {kind!r} / attention {attention!r}: use {DECODERS} / {ATTENTION}")
        self.kind, self.attention = kind, attention
        self.embed = nn.Linear(enc_dim, dim)
        self.register_buffer("pos", sincos_positions(grid, dim))
        if kind == "mask":
            self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        else:
            self.noisy_embed = nn.Linear(patch_dim, dim)
            self.time = TimestepEmbedding(dim)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_ratio, cross=attention == "cross")
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, patch_dim)

    def forward(self, visible: torch.Tensor, vis_idx: torch.Tensor, masked_idx: torch.Tensor,
                noisy: torch.Tensor | None = None, t: torch.Tensor | None = None) -> torch.Tensor:
        """visible (B, nv, enc_dim), vis_idx (B, nv), masked_idx (B, nm); diffusion: noisy (B, nm, patch_dim) x_t
        and t (B,). Returns (B, nm, patch_dim) predictions at the masked positions."""
        ctx = self.embed(visible) + take(self.pos, vis_idx)
        queries = take(self.pos, masked_idx)
        if self.kind == "mask":
            queries = queries + self.mask_token
            temb = torch.zeros_like(queries[:, :1])
        else:
            if noisy is None or t is None:
                raise ValueError("a diffusion decoder needs the noised patches and their timesteps")
            queries = queries + self.noisy_embed(noisy)
            temb = self.time(t)[:, None]                                 # (B, 1, dim), added before every layer
        nv = ctx.shape[1]
        if self.attention == "cross":
            for block in self.blocks:
                queries = block(queries + temb, ctx)
            return self.head(self.norm(queries))
        x = torch.cat([ctx, queries], dim=1)                             # (B, nv + nm, dim)
        for block in self.blocks:
            x = block(x + temb)
        return self.head(self.norm(x[:, nv:]))


class AudioVideoMAE(nn.Module):
    """The pre-training network; trainers/diffmavil drives it (masks, noise, losses)."""

    def __init__(self, args: AudioVideoMAEArgs) -> None:
        super().__init__()
        self.args = a = args
        for size, name in ((a.freq_bins, "freq_bins"), (a.time_frames, "time_frames"), (a.frame_size, "frame_size")):
            if size % a.patch_size:
                raise ValueError(f"{name}={size} must be a multiple of patch_size={a.patch_size}")
        self.audio = PatchEncoder(a.audio_grid, 1, a.patch_size, a.dim, a.depth, a.heads, a.mlp_ratio)
        self.video = PatchEncoder(a.video_grid, 1, a.patch_size, a.dim, a.depth, a.heads, a.mlp_ratio)
        self.modality = nn.Parameter(torch.zeros(2, 1, a.dim))  # audio / video type embeddings for the fusion
        self.fusion = nn.ModuleList(TransformerBlock(a.dim, a.heads, a.mlp_ratio) for _ in range(a.fusion_depth))
        self.fusion_norm = nn.LayerNorm(a.dim)
        decoder = (a.patch_dim, a.dim, a.decoder_dim, a.decoder_depth, a.decoder_heads, a.mlp_ratio, a.decoder)
        self.audio_decoder = Decoder(a.audio_grid, *decoder, a.audio_decoder)
        self.video_decoder = Decoder(a.video_grid, *decoder, a.video_decoder)
        self.audio_proj = nn.Linear(a.dim, a.embed_dim, bias=False)  # bias-free (CLIP): a bias alone collapses
        self.video_proj = nn.Linear(a.dim, a.embed_dim, bias=False)

    def encode(self, a_patches: torch.Tensor, a_idx: torch.Tensor, v_patches: torch.Tensor, v_idx: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Visible patches and their indices per modality -> (fused audio, fused video) tokens and the contrastive
        embeddings (B, embed_dim) of the mean-pooled uni-modal encoder outputs."""
        a = self.audio.encode(self.audio.embed_patches(a_patches, a_idx))   # (B, na, dim)
        v = self.video.encode(self.video.embed_patches(v_patches, v_idx))   # (B, nv, dim)
        x = torch.cat([a + self.modality[0], v + self.modality[1]], dim=1)
        for block in self.fusion:
            x = block(x)
        x = self.fusion_norm(x)
        na = a.shape[1]
        return x[:, :na], x[:, na:], self.audio_proj(a.mean(1)), self.video_proj(v.mean(1))

    @torch.no_grad()
    def embeddings(self, audio: torch.Tensor, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen, unmasked, mean-pooled (B, dim) uni-modal embeddings for the linear probes."""
        v_patches = patchify_video(video, self.args.patch_size)
        v_idx = torch.arange(v_patches.shape[1]).expand(len(video), -1)
        return self.audio(audio).mean(1), self.video.encode(self.video.embed_patches(v_patches, v_idx)).mean(1)


@register("av_audio_encoder", AudioEncoderArgs, CARD, task="audio_classification")
class AudioEncoderClassifier(nn.Module):
    """The deployable: the pre-trained audio encoder over every token (no masking, a static token count), mean
    pooled, standardised and classified by the linear probe: (B, 1, F, T) -> (B, classes)."""

    def __init__(self, args: AudioEncoderArgs) -> None:
        super().__init__()
        self.args = a = args
        if a.freq_bins % a.patch_size or a.time_frames % a.patch_size:
            raise ValueError(f"freq_bins={a.freq_bins} and time_frames={a.time_frames} must be multiples of "
                             f"patch_size={a.patch_size}")
        self.encoder = PatchEncoder(a.grid, a.in_channels, a.patch_size, a.dim, a.depth, a.heads, a.mlp_ratio)
        # the probe standardises the pooled embedding before its linear layer: kept as an elementwise step (not
        # folded into the weights) so that the layer's input stays at unit scale for int8 / int4 quantization
        self.register_buffer("embed_mean", torch.zeros(a.dim))
        self.register_buffer("embed_inv_std", torch.ones(a.dim))
        self.head = nn.Linear(a.dim, a.num_classes)

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor]:
        a = self.args
        return (torch.randn(batch, a.in_channels, a.freq_bins, a.time_frames),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head((self.encoder(x).mean(1) - self.embed_mean) * self.embed_inv_std)
