"""MobileNetV2-style CNN: inverted residuals with linear bottlenecks, sized for small inputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.layers import ConvBNAct
from models.registry import PaperCard, register

CARD = PaperCard(
    title="MobileNetV2: Inverted Residuals and Linear Bottlenecks",
    arxiv="1801.04381",
    code="https://github.com/pytorch/vision/blob/main/torchvision/models/mobilenetv2.py",
)


@dataclass
class MobileNetV2Args:
    in_channels: int = 1
    image_size: int = 8
    num_classes: int = 10
    stem_width: int = 16
    # (expansion t, output channels c, repeats n, first stride s), as in the paper's Table 2
    stages: tuple[tuple[int, int, int, int], ...] = ((1, 16, 1, 1), (4, 24, 2, 2), (4, 32, 2, 2))
    head_width: int = 128
    stem_stride: int = 1          # 2 at ImageNet resolution

    @classmethod
    def tiny(cls) -> "MobileNetV2Args":
        return cls(stem_width=8, stages=((1, 8, 1, 1), (2, 16, 1, 2)), head_width=32)

    @classmethod
    def deploy(cls) -> "MobileNetV2Args":
        """MobileNetV2-1.0 at 224x224 on ImageNet-1k, the paper's Table 2 (3.5M parameters, 0.3 GMACs)."""
        stages = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                  (6, 320, 1, 1))
        return cls(in_channels=3, image_size=224, num_classes=1000, stem_width=32, stages=stages, head_width=1280,
                   stem_stride=2)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(cin, hidden, 1, act=nn.ReLU6))
        layers += [
            ConvBNAct(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),  # depthwise
            ConvBNAct(hidden, cout, 1, act=None),  # linear bottleneck
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


@register("mobilenetv2", MobileNetV2Args, CARD)
class MobileNetV2(nn.Module):
    def __init__(self, args: MobileNetV2Args) -> None:
        super().__init__()
        self.args = args
        blocks: list[nn.Module] = [ConvBNAct(args.in_channels, args.stem_width, 3, args.stem_stride, act=nn.ReLU6)]
        cin = args.stem_width
        for t, c, n, s in args.stages:
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        blocks.append(ConvBNAct(cin, args.head_width, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(args.head_width, args.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))  # (B, head_width, 1, 1)
        return self.classifier(torch.flatten(x, 1))
