"""The RangeAugment digits classifier (card 09): the plain digits CNN (`lcs_cnn`, BatchNorm) with RangeAugment's
learnable augmentor (models/layers/range_augment.py) in front of it, applied in training mode only.

`exportable()` returns the CNN without the augmentor: eval returns a plain logits tensor (never the upstream dict
with `augmented_tensor: None`), and exported graphs hold no augmentor parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.layers.range_augment import OPS, RangeAugmentor
from models.lcs_cnn import LCSCNN, LCSCNNArgs
from models.registry import PaperCard, register

CARD = PaperCard(
    title="RangeAugment: Efficient Online Augmentation with Range Learning",
    arxiv="2212.10553",
    code="https://github.com/apple/corenet/tree/main/projects/range_augment",
    key="rangeaugment",
)


@dataclass
class RangeAugmentCNNArgs:
    in_channels: int = 1
    image_size: int = 16
    num_classes: int = 10
    channels: tuple[int, ...] = (32, 64, 64)  # ~56k parameters
    norm: str = "batch"                        # batch | group | instance (see models/lcs_cnn.py)
    augment: tuple[str, ...] = OPS             # the augmentor's operations; empty: no augmentor

    @classmethod
    def tiny(cls) -> "RangeAugmentCNNArgs":
        return cls(channels=(8, 16, 16))


@register("range_augment_cnn", RangeAugmentCNNArgs, CARD)
class RangeAugmentCNN(nn.Module):
    def __init__(self, args: RangeAugmentCNNArgs) -> None:
        super().__init__()
        self.args = args
        self.backbone = LCSCNN(LCSCNNArgs(in_channels=args.in_channels, image_size=args.image_size,
                                          num_classes=args.num_classes, channels=tuple(args.channels), norm=args.norm))
        self.neural_augmentor = RangeAugmentor(tuple(args.augment)) if args.augment else None

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """The augmented batch in training mode; x itself in eval mode or without an augmentor."""
        return self.neural_augmentor(x) if self.training and self.neural_augmentor is not None else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.augment(x))  # (B, num_classes) logits

    def exportable(self) -> nn.Module:
        """The CNN alone, in eval mode: what is exported and profiled."""
        return self.backbone.eval()
