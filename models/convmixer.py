"""ConvMixer: patch embedding then isotropic depthwise (spatial) + pointwise (channel) mixing."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.registry import PaperCard, register

CARD = PaperCard(
    title="Patches Are All You Need?",
    arxiv="2201.09792",
    code="https://github.com/locuslab/convmixer",
)


@dataclass
class ConvMixerArgs:
    in_channels: int = 1
    image_size: int = 8
    num_classes: int = 10
    dim: int = 64
    depth: int = 4
    kernel_size: int = 3
    patch_size: int = 1

    @classmethod
    def tiny(cls) -> "ConvMixerArgs":
        return cls(dim=16, depth=2)

    @classmethod
    def deploy(cls) -> "ConvMixerArgs":
        """ConvMixer-768/32 at 224x224 as SPIN trains it (patch 14, kernel 3; ImageNet-1k; 20.6M parameters)."""
        return cls(in_channels=3, image_size=224, num_classes=1000, dim=768, depth=32, kernel_size=3, patch_size=14)


class Residual(nn.Module):
    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) + x


def mixer_layer(dim: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        Residual(nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size, groups=dim, padding=kernel_size // 2),  # depthwise
            nn.GELU(),
            nn.BatchNorm2d(dim),
        )),
        nn.Conv2d(dim, dim, 1),  # pointwise: the weight SPIN shares across layers
        nn.GELU(),
        nn.BatchNorm2d(dim),
    )


@register("convmixer", ConvMixerArgs, CARD)
class ConvMixer(nn.Module):
    def __init__(self, args: ConvMixerArgs) -> None:
        super().__init__()
        self.args = args
        self.stem = nn.Sequential(
            nn.Conv2d(args.in_channels, args.dim, args.patch_size, stride=args.patch_size),
            nn.GELU(),
            nn.BatchNorm2d(args.dim),
        )
        self.blocks = nn.Sequential(*[mixer_layer(args.dim, args.kernel_size) for _ in range(args.depth)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(args.dim, args.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.blocks(self.stem(x)))  # (B, dim, 1, 1)
        return self.head(torch.flatten(x, 1))
