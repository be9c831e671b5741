"""A pre-norm transformer block with masked multi-head attention, self or cross, for the byte, image-patch and
audio-video encoders (ByteFormer, DiffMAViL) and the CLIP-style text tower.

Export-friendly on purpose: attention is written as matmul + softmax (no fused SDPA kernel, which some converters
lack), masks are float multipliers rather than boolean indexing, and nothing edits its inputs in place.

Masks: `mask` is broadcastable to (B, heads, Nq, Nk), 1 where a query may attend to a key and 0 where it may not.
A query row whose keys are all masked attends to nothing and returns zeros, never NaN (ByteFormer's windows of pure
padding, card 06).
"""

from __future__ import annotations

import torch
from torch import nn

MASKED_SCORE = -1e4  # finite, so fp16 exports stay finite and a fully masked row softmaxes to uniform, then zeroed


class MultiHeadAttention(nn.Module):
    def __init__(self, dim: int, heads: int, kv_dim: int | None = None) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim or dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, Nq, dim) queries; context: (B, Nk, kv_dim) keys/values (x itself when None)."""
        context = x if context is None else context
        b, nq, d = x.shape
        nk = context.shape[1]
        q = self.q(x).reshape(b, nq, self.heads, self.head_dim).transpose(1, 2)         # (B, h, Nq, hd)
        kv = self.kv(context).reshape(b, nk, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]                                                            # (B, h, Nk, hd)
        scores = q @ k.transpose(-2, -1) * self.head_dim ** -0.5                       # (B, h, Nq, Nk)
        if mask is not None:
            mask = mask.to(scores.dtype)
            scores = scores + (1.0 - mask) * MASKED_SCORE
        out = torch.softmax(scores, dim=-1) @ v                                        # (B, h, Nq, hd)
        if mask is not None:
            out = out * mask.amax(dim=-1, keepdim=True)  # rows with no valid key -> zeros
        return self.proj(out.transpose(1, 2).reshape(b, nq, d))


def feed_forward(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class TransformerBlock(nn.Module):
    """x <- x + Attn(LN(x)[, LN(context)]); x <- x + FFN(LN(x)). With `cross=True` the queries attend to a
    separate context (DiffMAViL's cross-attention decoder) instead of to themselves."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, cross: bool = False,
                 context_dim: int | None = None) -> None:
        super().__init__()
        self.cross = cross
        self.norm1 = nn.LayerNorm(dim)
        self.context_norm = nn.LayerNorm(context_dim or dim) if cross else None
        self.attn = MultiHeadAttention(dim, heads, kv_dim=context_dim if cross else None)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = feed_forward(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.cross:
            if context is None:
                raise ValueError("a cross-attention block needs a context")
            x = x + self.attn(self.norm1(x), self.context_norm(context), mask)
        else:
            x = x + self.attn(self.norm1(x), None, mask)
        return x + self.ffn(self.norm2(x))


def key_padding_mask(valid: torch.Tensor) -> torch.Tensor:
    """(B, N) 1/0 validity of tokens -> (B, 1, 1, N) attention mask: every query may attend to valid keys only."""
    return valid.to(torch.float32)[:, None, None, :]
