"""The digits CNN of the LCS and Learning-Subspaces claims: 3 conv layers (32-64 channels), a norm after each,
global average pooling and a linear (or bias-free 1x1 conv) head.

`subspace="line"|"bezier"|"simplex"` builds the same network with every conv/linear/affine norm on a subspace
(models/layers/subspace.py); `bake(model, alpha)` returns the plain network at one point (weights w(alpha),
LCS top-k mask applied when `alpha_sparsity`), which exports like any other registered model.

`compression="width"` (LCS structured, InstanceNorm): conv/linear weights are one shared point, norm affine
parameters lie on the subspace, and alpha uses the first ceil(f C) filters, f = 0.25 + 0.75 alpha; `bake` returns
a really narrower plain model. `compression="bits"`: alpha maps to 3..8 bit weights in 6 equal bins; `bake`
stores weights on that bit width's grid (fp32 values) and records the width in `args.bits`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from models.layers.subspace import KINDS, bake_, set_alpha, slim_channels, subspace_layers, to_subspace
from models.registry import PaperCard, register

CARD = PaperCard(
    title="LCS: Learning Compressible Subspaces for Adaptive Network Compression at Inference Time",
    arxiv="2110.04252",
    code="https://github.com/apple/learning-compressible-subspaces",
    key="lcs",
)
LCS_MIN_ALPHA = 0.025  # the sparse end: 2.5 % of the weights kept
COMPRESSIONS = ("unstructured", "width", "bits")
BIT_ALPHAS = tuple(k / 6 for k in range(1, 7))  # LCS quantized: one alpha per bit width 3..8


@dataclass
class LCSCNNArgs:
    in_channels: int = 1
    image_size: int = 8
    num_classes: int = 10
    channels: tuple[int, ...] = (32, 64, 64)
    norm: str = "group"          # group (LCS) | batch (negative control, Learning Subspaces) | instance
    groups: int = 8              # GroupNorm groups
    head: str = "linear"         # linear | conv (bias-free 1x1 conv classifier, as in Learning Subspaces)
    subspace: str = "none"       # none | point (one masked weight set: LCS+P, baselines) | line | bezier | simplex
    points: int = 2              # simplex vertices (line: 2, Bezier: 3)
    alpha_sparsity: bool = True  # LCS+L: alpha also sets the kept fraction (unstructured, first conv exempt)
    compression: str = "unstructured"  # unstructured (top-k) | width (first filters) | bits (3-8 bit weights)
    bits: int = 0                # baked quantized models: the bit width their weights lie on (0: float)

    @classmethod
    def tiny(cls) -> "LCSCNNArgs":
        return cls(channels=(8, 16, 16), groups=4)

    @classmethod
    def deploy(cls) -> "LCSCNNArgs":
        """This topology (one conv per stage, GroupNorm) at ImageNet's input and ResNet-18's stage widths, the
        network LCS compresses on ImageNet; not the ResNet-18 itself."""
        return cls(in_channels=3, image_size=224, num_classes=1000, channels=(64, 128, 256, 512), groups=32)


def _norm(args: LCSCNNArgs, c: int) -> nn.Module:
    if args.norm == "group":
        return nn.GroupNorm(min(args.groups, c), c)
    if args.norm == "batch":
        return nn.BatchNorm2d(c)
    if args.norm == "instance":
        return nn.InstanceNorm2d(c, affine=True)
    raise ValueError(f"unknown norm {args.norm!r}; use group, batch or instance")


@register("lcs_cnn", LCSCNNArgs, CARD)
class LCSCNN(nn.Module):
    def __init__(self, args: LCSCNNArgs) -> None:
        super().__init__()
        self.args = args
        layers: list[nn.Module] = []
        cin = args.in_channels
        for i, c in enumerate(args.channels):
            layers += [nn.Conv2d(cin, c, 3, stride=1 if i == 0 else 2, padding=1, bias=False), _norm(args, c), nn.ReLU()]
            cin = c
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(cin, args.num_classes) if args.head == "linear" else \
            nn.Conv2d(cin, args.num_classes, 1, bias=False)
        self.features[0].sparsify = False  # LCS: the first conv is never sparsified
        self.head.slim = False  # LCS width: the classifier keeps all its outputs
        if args.compression not in COMPRESSIONS:
            raise ValueError(f"unknown compression {args.compression!r}; use one of {COMPRESSIONS}")
        if args.compression == "width" and args.norm != "instance":
            raise ValueError("LCS width models need norm='instance' (per-channel statistics at every width)")
        if args.subspace != "none":
            if args.subspace not in KINDS:
                raise ValueError(f"unknown subspace {args.subspace!r}; use none, point, line, bezier or simplex")
            if args.compression == "width":  # norms on the subspace, conv/linear weights one shared point
                to_subspace(self, args.subspace, args.points, only=(nn.InstanceNorm2d,))
                to_subspace(self, "point")
            else:
                to_subspace(self, args.subspace, args.points)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))  # (B, C, 1, 1)
        if self.args.head == "conv":
            return torch.flatten(self.head(x), 1)
        return self.head(torch.flatten(x, 1))


def lcs_keep(alpha: float, df: float = 0.0) -> float:
    """Fraction of weights kept at alpha: topk(alpha) = alpha + (1 - alpha) * df(t); df = 0 after warmup."""
    return alpha + (1.0 - alpha) * df


def width_factor(alpha: float) -> float:
    """LCS width: f = 0.25 + 0.75 alpha."""
    return 0.25 + 0.75 * float(alpha)


def lcs_bits(alpha: float) -> int:
    """LCS quantized: 6 equal alpha bins -> 3..8 bits ((0, 1/6] -> 3, ..., (5/6, 1] -> 8)."""
    return min(8, max(3, 2 + math.ceil(6 * float(alpha) - 1e-6)))


def baked_channels(args: LCSCNNArgs, alpha: float) -> tuple[int, ...]:
    """Channels of the model baked at alpha (narrower for width models)."""
    if args.compression != "width":
        return tuple(args.channels)
    return tuple(slim_channels(c, width_factor(alpha)) for c in args.channels)


def set_level(model: LCSCNN, alpha, df: float = 0.0) -> set_alpha:
    """Put the model at alpha (LCS sparsity: kept fraction topk(alpha); width: f(alpha); bits: bits(alpha))."""
    if model.args.compression == "width":
        return set_alpha(model, alpha, 1.0, width=width_factor(alpha))
    if model.args.compression == "bits":
        return set_alpha(model, alpha, 1.0, bits=lcs_bits(alpha))
    keep = lcs_keep(float(alpha), df) if model.args.alpha_sparsity and model.args.subspace in ("line", "point") else 1.0
    return set_alpha(model, alpha, keep)


@torch.no_grad()
def bake(model: LCSCNN, alpha) -> LCSCNN:
    """A plain `lcs_cnn` (subspace='none') holding the subspace model's point at alpha (masked, df = 0; width
    models: the first filters only; bits models: weights on the bits(alpha) grid)."""
    work = copy.deepcopy(model)
    set_level(work, alpha)
    bake_(work)
    bits = lcs_bits(alpha) if model.args.compression == "bits" else 0
    plain = LCSCNN(replace(model.args, subspace="none", channels=baked_channels(model.args, alpha), bits=bits))
    full, target = work.state_dict(), plain.state_dict()
    plain.load_state_dict({k: v[tuple(slice(0, n) for n in target[k].shape)] for k, v in full.items()}, strict=True)
    return plain.eval()


def is_subspace_model(model: nn.Module) -> bool:
    return any(True for _ in subspace_layers(model))
