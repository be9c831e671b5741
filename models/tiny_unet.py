"""A tiny U-Net for 32x32 scenes: the deliberately imperfect segmentation "expert" of CLIP with model-zoo experts
(card 08). Trained on a few hundred labelled scenes, it pseudo-labels the student's image-caption set; it is a
training-time tool, never deployed, so it is not registered.

Two levels: 32x32 -> 16x16 -> 8x8 bottleneck -> back up with skip connections (concatenation), per-pixel logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class TinyUNetArgs:
    in_channels: int = 3
    num_classes: int = 4   # background + circle, square, triangle
    width: int = 16        # channels at full resolution; 2x and 4x below (~30k parameters at 8, ~118k at 16)

    @classmethod
    def tiny(cls) -> "TinyUNetArgs":
        return cls(width=4)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TinyUNet(nn.Module):
    def __init__(self, args: TinyUNetArgs) -> None:
        super().__init__()
        if min(args.in_channels, args.num_classes, args.width) < 1:
            raise ValueError(f"TinyUNetArgs sizes must be >= 1, got {args}")
        self.args = args
        w = args.width
        self.down1, self.down2, self.mid = _block(args.in_channels, w), _block(w, 2 * w), _block(2 * w, 4 * w)
        self.pool = nn.MaxPool2d(2, 2)
        self.up2, self.dec2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2), _block(4 * w, 2 * w)
        self.up1, self.dec1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2), _block(2 * w, w)
        self.head = nn.Conv2d(w, args.num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) with H, W divisible by 4 -> (B, num_classes, H, W) logits."""
        s1 = self.down1(x)                                   # (B, w, H, W)
        s2 = self.down2(self.pool(s1))                       # (B, 2w, H/2, W/2)
        m = self.mid(self.pool(s2))                          # (B, 4w, H/4, W/4)
        d2 = self.dec2(torch.cat([self.up2(m), s2], 1))      # (B, 2w, H/2, W/2)
        d1 = self.dec1(torch.cat([self.up1(d2), s1], 1))     # (B, w, H, W)
        return self.head(d1)
