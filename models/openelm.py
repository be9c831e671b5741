"""OpenELM (Mehta et al., 2024): decoder-only LM with layer-wise scaling of heads and FFN width.

Follows apple/corenet `general_gpt.py` and the Hugging Face `modeling_openelm.py`: pre-norm blocks, one fused
QKV projection, per-head q/k RMSNorm (before RoPE), NeoX RoPE, grouped-query attention, SwiGLU, tied embeddings,
no biases. Attribute names match the upstream checkpoints (`transformer.layers.N.attn.qkv_proj`, ...).

Differences from the HF reference (card pitfalls 4-5): the cache holds *rotated* keys, positions come from an
explicit per-sequence left-pad count, and masks are built from lengths (no 2048x2048 buffer).

Architecture only: sampling and generation live in `models/generation/`, upstream checkpoint folders in
`models/openelm_upstream.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.generation.cache import KVCache
from models.registry import PaperCard, register

CARD = PaperCard(
    title="OpenELM: An Efficient Language Model Family with Open Training and Inference Framework",
    arxiv="2404.14619",
    code="https://github.com/apple/corenet/blob/main/corenet/modeling/models/language_modeling/general_gpt.py",
    key="openelm",
)
MASK_VALUE = -3.0e4  # finite: fully masked rows (left padding) stay NaN-free, and fp16 does not overflow


def make_divisible(v: float, divisor: int) -> int:
    """Upstream `make_divisible`: nearest multiple of `divisor`, at least `divisor`, never below 0.9 v."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return int(new_v + divisor if new_v < 0.9 * v else new_v)


def _per_layer(mult: Sequence[float] | float, n: int) -> list[float]:
    """Endpoints (a, b) -> linspace over layers rounded to 2 decimals (pitfall 2); a length-n list is kept."""
    if isinstance(mult, (int, float)):
        return [float(mult)] * n
    mult = list(mult)
    if len(mult) == n and n != 2:
        return [float(m) for m in mult]
    return [round(float(v), 2) for v in np.linspace(mult[0], mult[1], num=n, dtype=float)]


@dataclass
class ModelArgs:
    """Upstream field names. Defaults: the card's section-5 layer-wise byte LM (931,648 parameters)."""
    vocab_size: int = 256
    model_dim: int = 128
    num_transformer_layers: int = 6
    head_dim: int = 16
    num_gqa_groups: int = 2          # query heads per KV head (upstream name; pitfall 1)
    qkv_multipliers: tuple[float, ...] = (0.5, 1.0)
    ffn_multipliers: tuple[float, ...] = (0.5, 4.0)
    ffn_dim_divisor: int = 32
    max_context_length: int = 128
    rope_freq_constant: int = 10000
    norm_eps: float = 1e-6
    num_query_heads: tuple[int, ...] | None = None  # explicit per-layer override (from an upstream config.json)
    bos_token_id: int = 1
    eos_token_id: int = 2

    # --- published configurations (HF apple/OpenELM-*, corenet openelm_*.yaml)
    @classmethod
    def openelm_270m(cls) -> "ModelArgs":
        return cls(32000, 1280, 16, 64, 4, ffn_dim_divisor=256, max_context_length=2048)

    @classmethod
    def openelm_450m(cls) -> "ModelArgs":
        return cls(32000, 1536, 20, 64, 4, ffn_dim_divisor=256, max_context_length=2048)

    @classmethod
    def openelm_1_1b(cls) -> "ModelArgs":
        return cls(32000, 2048, 28, 64, 4, ffn_dim_divisor=256, max_context_length=2048)

    @classmethod
    def openelm_3b(cls) -> "ModelArgs":
        return cls(32000, 3072, 36, 128, 4, ffn_dim_divisor=256, max_context_length=2048)

    @classmethod
    def deploy(cls) -> "ModelArgs":
        """The deployment-scale profile: OpenELM-270M."""
        return cls.openelm_270m()

    @classmethod
    def isotropic(cls) -> "ModelArgs":
        """The card's control: 8 query / 4 KV heads and FFN 256 in every layer (919,360 parameters)."""
        return cls(qkv_multipliers=(1.0, 1.0), ffn_multipliers=(2.0, 2.0))

    @classmethod
    def tiny(cls) -> "ModelArgs":
        """Small but still layer-wise (query heads [2,4,4], FFN [32,96,128]): pitfall 3 says rounding can erase it."""
        return cls(vocab_size=256, model_dim=32, num_transformer_layers=3, head_dim=8, num_gqa_groups=2,
                   ffn_dim_divisor=32, max_context_length=64)

    # --- derived per-layer widths
    def query_heads(self) -> list[int]:
        if self.num_query_heads is not None:
            return [int(h) for h in self.num_query_heads]
        q = _per_layer(self.qkv_multipliers, self.num_transformer_layers)
        return [make_divisible(self.model_dim * m, self.head_dim * self.num_gqa_groups) // self.head_dim for m in q]

    def kv_heads(self) -> list[int]:
        return [h // self.num_gqa_groups for h in self.query_heads()]

    def ffn_dims(self) -> list[int]:
        f = _per_layer(self.ffn_multipliers, self.num_transformer_layers)
        return [make_divisible(m * self.model_dim, self.ffn_dim_divisor) for m in f]


class RMSNorm(nn.Module):
    """RMSNorm computed in fp32 (card: fp16 squares overflow), cast back, then scaled."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def rope(x: torch.Tensor, pos: torch.Tensor, base: float) -> torch.Tensor:
    """Rotate-half (NeoX) RoPE. x: (B, H, T, D); pos: (B, T) absolute positions."""
    d = x.shape[-1]
    inv = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float32, device=x.device) / d))  # (D/2,)
    ang = pos.to(torch.float32)[..., None] * inv  # (B, T, D/2)
    emb = torch.cat([ang, ang], -1)[:, None]  # (B, 1, T, D)
    x1, x2 = x.float().chunk(2, -1)
    rotated = torch.cat([-x2, x1], -1)
    return (x.float() * emb.cos() + rotated * emb.sin()).type_as(x)


class Attention(nn.Module):
    def __init__(self, a: ModelArgs, n_q: int, n_kv: int) -> None:
        super().__init__()
        self.n_q, self.n_kv, self.d_head, self.base = n_q, n_kv, a.head_dim, a.rope_freq_constant
        self.qkv_proj = nn.Linear(a.model_dim, (n_q + 2 * n_kv) * a.head_dim, bias=False)
        self.q_norm = RMSNorm(a.head_dim, a.norm_eps)
        self.k_norm = RMSNorm(a.head_dim, a.norm_eps)
        self.out_proj = nn.Linear(n_q * a.head_dim, a.model_dim, bias=False)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor,
                past: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        b, t, _ = x.shape
        qkv = self.qkv_proj(x).reshape(b, t, self.n_q + 2 * self.n_kv, self.d_head).transpose(1, 2)  # (B, H, T, D)
        q, k, v = qkv.split([self.n_q, self.n_kv, self.n_kv], dim=1)
        q = rope(self.q_norm(q), pos, self.base)
        k = rope(self.k_norm(k), pos, self.base)
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)  # (B, n_kv, L + T, D)
        g = self.n_q // self.n_kv
        kr, vr = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)  # query head h uses KV head h // g
        out = F.scaled_dot_product_attention(q, kr, vr, attn_mask=mask, scale=1.0 / math.sqrt(self.d_head))
        return self.out_proj(out.transpose(1, 2).reshape(b, t, self.n_q * self.d_head)), (k, v)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.proj_1 = nn.Linear(dim, 2 * hidden, bias=False)  # [gate | up]
        self.proj_2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.proj_1(x).chunk(2, -1)
        return self.proj_2(F.silu(a) * b)


class DecoderLayer(nn.Module):
    def __init__(self, a: ModelArgs, n_q: int, n_kv: int, ffn: int) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(a.model_dim, a.norm_eps)
        self.attn = Attention(a, n_q, n_kv)
        self.ffn_norm = RMSNorm(a.model_dim, a.norm_eps)
        self.ffn = FeedForward(a.model_dim, ffn)

    def forward(self, x, pos, mask, past):
        h, kv = self.attn(self.attn_norm(x), pos, mask, past)
        x = x + h
        return x + self.ffn(self.ffn_norm(x)), kv


class Transformer(nn.Module):
    def __init__(self, a: ModelArgs) -> None:
        super().__init__()
        self.token_embeddings = nn.Embedding(a.vocab_size, a.model_dim)
        self.layers = nn.ModuleList(DecoderLayer(a, q, kv, f) for q, kv, f in zip(a.query_heads(), a.kv_heads(), a.ffn_dims()))
        self.norm = RMSNorm(a.model_dim, a.norm_eps)


def build_mask(t: int, past_len: int, pad: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive mask (B, 1, T, L + T) from lengths: causal, and keys inside a sequence's left padding hidden."""
    q_abs = past_len + torch.arange(t, device=pad.device)[:, None]  # (T, 1)
    k_abs = torch.arange(past_len + t, device=pad.device)[None, :]  # (1, L + T)
    ok = (k_abs <= q_abs)[None] & (k_abs[None] >= pad[:, None, None])  # (B, T, L + T)
    return torch.where(ok, 0.0, MASK_VALUE).to(dtype)[:, None]


@register("openelm", ModelArgs, CARD, task="lm")
class OpenELM(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        self.transformer = Transformer(args)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Card init: linear N(0, fan_in^-1/2), embedding N(0, d^-1/2), out_proj/proj_2 times (2N)^-1/2."""
        extra = (2 * self.args.num_transformer_layers) ** -0.5
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear):
                std = m.in_features ** -0.5 * (extra if name.endswith(("out_proj", "proj_2")) else 1.0)
                nn.init.normal_(m.weight, 0.0, std)
        nn.init.normal_(self.transformer.token_embeddings.weight, 0.0, self.args.model_dim ** -0.5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) int64 -> logits (B, T, V)."""
        return self.forward_cached(tokens, None)[0]

    def forward_cached(self, tokens: torch.Tensor, cache: KVCache | None, pad: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, KVCache]:
        """One prefill or decode step. `cache` holds rotated keys; `pad` (B,) counts each row's left padding,
        so row b's token at absolute index j sits at position j - pad[b]."""
        b, t = tokens.shape
        past_len = 0 if not cache else cache[0][0].shape[2]
        pad = torch.zeros(b, dtype=torch.long, device=tokens.device) if pad is None else pad
        pos = (past_len + torch.arange(t, device=tokens.device))[None] - pad[:, None]  # (B, T)
        x = self.transformer.token_embeddings(tokens)
        mask = build_mask(t, past_len, pad, x.dtype)
        new: KVCache = []
        for i, layer in enumerate(self.transformer.layers):
            x, kv = layer(x, pos.clamp_min(0), mask, cache[i] if cache else None)
            new.append(kv)
        h = self.transformer.norm(x)
        return (h @ self.transformer.token_embeddings.weight.T)[..., : self.args.vocab_size], new

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor, ...]:
        return (torch.randint(0, self.args.vocab_size, (batch, min(16, self.args.max_context_length))),)


def param_count(args: ModelArgs) -> int:
    """Exact parameter count from the derived widths, without allocating the model."""
    d, hd = args.model_dim, args.head_dim
    total = args.vocab_size * d + d  # tied embedding + final norm
    for q, kv, f in zip(args.query_heads(), args.kv_heads(), args.ffn_dims()):
        total += d * (q + 2 * kv) * hd + q * hd * d + 2 * hd + d * 2 * f + f * d + 2 * d
    return total
