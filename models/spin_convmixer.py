"""SPIN ConvMixer: ConvMixer whose 1x1 pointwise convs are shared across layers (Lin et al., ECCV 2022).

Block as released by SPIN (both sub-blocks residual, unlike the original ConvMixer, see models/convmixer.py):
    x <- x + BN_i(act(DWConv_i(x)))
    x <- x + BN'_i(act(PW_{map[i]}(x)))
Only the pointwise conv (weight + bias) is shared: `self.pointwise` holds the `share` unique convs and layer i
calls the very same nn.Conv2d object `self.pointwise[self.layer_map[i]]`, so state_dict, safetensors and the
exporters see one tensor per unique weight. Depthwise convs and every BatchNorm stay per layer.
`share=0` (or `share=depth`) is the unshared model with the same block, the baseline and the fusion source.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.layers.sharing import layer_map, unique_count
from models.registry import PaperCard, register

CARD = PaperCard(
    title="SPIN: An Empirical Evaluation on Sharing Parameters of Isotropic Networks",
    arxiv="2207.10237",
    code="https://github.com/apple/ml-spin",
    key="spin",
)
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


@dataclass
class SpinConvMixerArgs:
    in_channels: int = 1
    image_size: int = 8
    num_classes: int = 10
    dim: int = 64
    depth: int = 8
    kernel_size: int = 3
    patch_size: int = 1
    activation: str = "relu"      # SPIN's recipes use ReLU
    share: int = 4                # unique pointwise weights; 0 = one per layer (unshared)
    mapping: str = "sequential"   # sequential | strided | random
    mapping_seed: int = 0         # seed of the random mapping

    @classmethod
    def tiny(cls) -> "SpinConvMixerArgs":
        return cls(dim=16, depth=4, share=2)

    @classmethod
    def deploy(cls) -> "SpinConvMixerArgs":
        """SPIN's released ConvMixer-768/32 (patch 14, kernel 3, ReLU), pointwise weights shared r=2 sequentially
        (16 unique; 43 MB published) at 224x224 on ImageNet-1k."""
        return cls(in_channels=3, image_size=224, num_classes=1000, dim=768, depth=32, kernel_size=3, patch_size=14,
                   share=16)


class MixerBlock(nn.Module):
    """Per-layer parts of a block; the (shared) pointwise conv is passed in by the model."""

    def __init__(self, dim: int, kernel_size: int, act: type[nn.Module]) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(dim, dim, kernel_size, groups=dim, padding=kernel_size // 2)
        self.act1, self.norm1 = act(), nn.BatchNorm2d(dim)
        self.act2, self.norm2 = act(), nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor, pointwise: nn.Module) -> torch.Tensor:
        x = x + self.norm1(self.act1(self.depthwise(x)))
        return x + self.norm2(self.act2(pointwise(x)))


@register("spin_convmixer", SpinConvMixerArgs, CARD)
class SpinConvMixer(nn.Module):
    shared_attr = "pointwise"  # the ModuleList of unique shared modules (used by trainers/spin/fusion.py)

    def __init__(self, args: SpinConvMixerArgs) -> None:
        super().__init__()
        if args.activation not in ACTIVATIONS:
            raise ValueError(f"activation {args.activation!r} is unknown; use one of {', '.join(ACTIVATIONS)}")
        act = ACTIVATIONS[args.activation]
        self.args = args
        self.layer_map = layer_map(args.depth, args.share, args.mapping, args.mapping_seed)
        self.stem = nn.Sequential(
            nn.Conv2d(args.in_channels, args.dim, args.patch_size, stride=args.patch_size), act(), nn.BatchNorm2d(args.dim))
        self.blocks = nn.ModuleList(MixerBlock(args.dim, args.kernel_size, act) for _ in range(args.depth))
        self.pointwise = nn.ModuleList(nn.Conv2d(args.dim, args.dim, 1)
                                       for _ in range(unique_count(args.depth, args.share)))
        for conv in self.pointwise:  # upstream init of the pointwise weights
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(args.dim, args.num_classes)

    def shared_module(self, layer: int) -> nn.Module:
        """The module layer `layer` uses: the same object for every layer mapped to the same unique weight."""
        return self.pointwise[self.layer_map[layer]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, dim, H/p, W/p)
        for i, block in enumerate(self.blocks):
            x = block(x, self.shared_module(i))
        return self.head(torch.flatten(self.pool(x), 1))  # (B, classes)
