"""A small CIFAR-style ResNet (basic blocks), sized for 8x8 to 32x32 inputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.layers import ConvBNAct
from models.registry import PaperCard, register

CARD = PaperCard(
    title="Deep Residual Learning for Image Recognition",
    arxiv="1512.03385",
    code="https://github.com/pytorch/vision/blob/main/torchvision/models/resnet.py",
)


@dataclass
class ResNetArgs:
    in_channels: int = 1
    image_size: int = 8
    num_classes: int = 10
    widths: tuple[int, ...] = (16, 32, 64)
    blocks_per_stage: int = 1
    stem_kernel: int = 3          # 7 with stride 2 and a 3x3/2 max-pool: the ImageNet stem
    stem_stride: int = 1
    stem_pool: bool = False

    @classmethod
    def tiny(cls) -> "ResNetArgs":
        return cls(widths=(8, 16), blocks_per_stage=1)

    @classmethod
    def deploy(cls) -> "ResNetArgs":
        """ResNet-18 at 224x224 on ImageNet-1k (11.7M parameters, 1.8 GFLOPs)."""
        return cls(in_channels=3, image_size=224, num_classes=1000, widths=(64, 128, 256, 512), blocks_per_stage=2,
                   stem_kernel=7, stem_stride=2, stem_pool=True)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(cin, cout, 3, stride)
        self.conv2 = ConvBNAct(cout, cout, 3, 1, act=None)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else ConvBNAct(cin, cout, 1, stride, act=None)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


@register("resnet", ResNetArgs, CARD)
class ResNet(nn.Module):
    def __init__(self, args: ResNetArgs) -> None:
        super().__init__()
        self.args = args
        self.stem = ConvBNAct(args.in_channels, args.widths[0], args.stem_kernel, args.stem_stride)
        if args.stem_pool:  # explicit stride: Core ML's converter needs it
            self.stem.append(nn.MaxPool2d(3, stride=2, padding=1))
        layers, cin = [], args.widths[0]
        for i, width in enumerate(args.widths):
            for j in range(args.blocks_per_stage):
                layers.append(BasicBlock(cin, width, 2 if (i > 0 and j == 0) else 1))
                cin = width
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, args.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.layers(self.stem(x)))  # (B, C, 1, 1)
        return self.fc(torch.flatten(x, 1))
