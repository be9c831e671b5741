"""The small scene image encoder of the image-text papers (CatLIP card 07, CLIP with model-zoo experts card 08):
4 conv blocks (3x3 conv, norm, ReLU), global average pooling, an optional linear projection and an optional linear
head. About 98k parameters at the default widths on 3x32x32 scenes.

forward(x) -> (B, num_classes) logits with a head, else the (B, embed_dim or channels[-1]) pooled embedding;
forward(x, return_map=True) also returns the last block's feature map (B, channels[-1], H / s, W / s), s the
product of the strides (4 by default: an 8x8 map on 32x32 scenes), for dense heads (segmentation, depth).
`encoder()` is the same network with the head dropped (CatLIP's V-way tagger is a training-time head).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch
from torch import nn

from models.registry import PaperCard, register

CARD = PaperCard(
    title="CatLIP: CLIP-level Visual Recognition Accuracy with 2.7x Faster Pre-training on Web-scale Image-text Data",
    arxiv="2404.15653",
    code="https://github.com/apple/corenet/tree/main/projects/catlip",
    key="catlip",
)
NORMS = ("batch", "group")


@dataclass
class SceneEncoderArgs:
    in_channels: int = 3
    image_size: int = 32
    num_classes: int = 0                      # > 0: a linear head on the embedding; 0: the encoder alone
    channels: tuple[int, ...] = (32, 48, 64, 96)
    strides: tuple[int, ...] = (2, 2, 1, 1)   # 32x32 -> 8x8 feature map
    embed_dim: int = 0                        # > 0: a linear projection of the pooled features; 0: none
    norm: str = "batch"                       # batch | group (GroupNorm, groups of 8 channels at most)

    @classmethod
    def tiny(cls) -> "SceneEncoderArgs":
        return cls(in_channels=1, image_size=16, num_classes=10, channels=(8, 8, 16, 16))

    @classmethod
    def deploy(cls) -> "SceneEncoderArgs":
        """The same plain 4-block CNN at ImageNet's input with ResNet-18's stage widths (64-512, stride 2 per
        block: a 14x14 map; 1.6M parameters, ~0.7 GMACs), head dropped. Not CatLIP's ViT-B/16: deploy() returns
        this model's own Args (the deploy run builds the registered name with it); models/vit.py holds the ViT."""
        return cls(in_channels=3, image_size=224, num_classes=0, channels=(64, 128, 256, 512), strides=(2, 2, 2, 2))


def _check(args: SceneEncoderArgs) -> None:
    if len(args.channels) != len(args.strides) or not args.channels:
        raise ValueError(f"channels {args.channels} and strides {args.strides} must be non-empty and equally long")
    if min(*args.channels, *args.strides, args.in_channels, args.image_size) < 1:
        raise ValueError(f"channels, strides, in_channels and image_size must be >= 1, got {args}")
    if args.num_classes < 0 or args.embed_dim < 0:
        raise ValueError(f"num_classes={args.num_classes} and embed_dim={args.embed_dim} must be >= 0")
    if args.norm not in NORMS:
        raise ValueError(f"unknown norm {args.norm!r}; use one of {NORMS}")


def _norm(kind: str, c: int) -> nn.Module:
    return nn.BatchNorm2d(c) if kind == "batch" else nn.GroupNorm(max(1, c // 8), c)


@register("scene_encoder", SceneEncoderArgs, CARD)
class SceneEncoder(nn.Module):
    def __init__(self, args: SceneEncoderArgs) -> None:
        super().__init__()
        _check(args)
        self.args = args
        blocks, cin = [], args.in_channels
        for c, s in zip(args.channels, args.strides):
            blocks.append(nn.Sequential(nn.Conv2d(cin, c, 3, stride=s, padding=1, bias=False), _norm(args.norm, c),
                                        nn.ReLU()))
            cin = c
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.proj = nn.Linear(cin, args.embed_dim) if args.embed_dim else nn.Identity()
        self.head = nn.Linear(self.embedding_dim, args.num_classes) if args.num_classes else nn.Identity()

    @property
    def embedding_dim(self) -> int:
        return self.args.embed_dim or self.args.channels[-1]

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)  # (B, channels[-1], H / s, W / s)

    def embed(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.flatten(self.pool(fmap), 1))  # (B, embedding_dim)

    def forward(self, x: torch.Tensor, return_map: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        fmap = self.feature_map(x)
        out = self.head(self.embed(fmap))
        return (out, fmap) if return_map else out

    def encoder(self) -> "SceneEncoder":
        """A copy without the head: forward gives the pooled embedding (what CatLIP deploys)."""
        plain = SceneEncoder(replace(self.args, num_classes=0))
        state = {k: v for k, v in copy.deepcopy(self.state_dict()).items() if not k.startswith("head.")}
        plain.load_state_dict(state, strict=True)
        return plain.train(self.training)
