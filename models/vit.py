"""A small ViT for 8x8 images with optional SPIN cross-layer sharing of the MLP weights.

Pre-norm blocks: x <- x + Attn_i(LN_i(x)); x <- x + MLP_{map[i]}(LN'_i(x)). With `share` > 0 the model holds
`share` unique MLPs (`self.mlps`) and layer i calls the very same module `self.mlps[self.layer_map[i]]`;
attention and LayerNorms stay per layer (SPIN shares the heavy weights, never norms). Mean-pooled tokens,
no class token. Note: SPIN's ViT sharing results are not released upstream; only ConvMixer is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.layers.sharing import layer_map, unique_count
from models.registry import PaperCard, register

CARD = PaperCard(
    title="An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale (SPIN MLP sharing)",
    arxiv="2010.11929",
    code="https://github.com/google-research/vision_transformer",
    key="spin",
)


@dataclass
class ViTArgs:
    in_channels: int = 1
    image_size: int = 8
    num_classes: int = 10
    patch_size: int = 2
    dim: int = 64
    depth: int = 6
    heads: int = 4
    mlp_ratio: int = 2
    share: int = 0                # unique MLPs; 0 = one per layer (unshared)
    mapping: str = "sequential"   # sequential | strided | random
    mapping_seed: int = 0

    @classmethod
    def tiny(cls) -> "ViTArgs":
        return cls(dim=16, depth=2, heads=2, share=1)

    @classmethod
    def deploy(cls) -> "ViTArgs":
        """ViT-Ti/16 at 224x224 (dim 192, depth 12, 3 heads, MLP 4x; 5.7M parameters) in this file's layout
        (mean-pooled tokens, no class token)."""
        return cls(in_channels=3, image_size=224, num_classes=1000, patch_size=16, dim=192, depth=12, heads=3,
                   mlp_ratio=4)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (3, B, h, N, d/h)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.softmax(q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5, dim=-1)  # (B, h, N, N)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))


def mlp(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.attn, self.norm2 = nn.LayerNorm(dim), Attention(dim, heads), nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, mlp_module: nn.Module) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + mlp_module(self.norm2(x))


@register("vit", ViTArgs, CARD)
class ViT(nn.Module):
    shared_attr = "mlps"

    def __init__(self, args: ViTArgs) -> None:
        super().__init__()
        if args.image_size % args.patch_size:
            raise ValueError(f"image_size={args.image_size} must be a multiple of patch_size={args.patch_size}")
        self.args = args
        self.layer_map = layer_map(args.depth, args.share, args.mapping, args.mapping_seed)
        tokens = (args.image_size // args.patch_size) ** 2
        self.patch = nn.Conv2d(args.in_channels, args.dim, args.patch_size, stride=args.patch_size)
        self.pos = nn.Parameter(torch.randn(1, tokens, args.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(args.dim, args.heads) for _ in range(args.depth))
        self.mlps = nn.ModuleList(mlp(args.dim, args.dim * args.mlp_ratio)
                                  for _ in range(unique_count(args.depth, args.share)))
        self.norm = nn.LayerNorm(args.dim)
        self.head = nn.Linear(args.dim, args.num_classes)

    def shared_module(self, layer: int) -> nn.Module:
        return self.mlps[self.layer_map[layer]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2) + self.pos  # (B, N, dim)
        for i, block in enumerate(self.blocks):
            x = block(x, self.shared_module(i))
        return self.head(self.norm(x).mean(1))  # (B, classes)
