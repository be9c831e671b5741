"""Hand-written `mlx.nn` versions of the zoo's CNNs (ResNet, MobileNetV2, ConvMixer), laid out like the torch
models (models/*.py) so that a torch state dict loads by name: the reference an exported .mlxfn is timed against.
They take NCHW input like the exported function and compute channels-last (NHWC) inside, as MLX convolutions want."""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import torch


def conv_bn_act(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1,
                act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm(cout)]
    return nn.Sequential(*layers, *([act()] if act else []))


def _nhwc(x: mx.array) -> mx.array:
    return mx.transpose(x, (0, 2, 3, 1))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv_bn_act(cin, cout, 3, stride)
        self.conv2 = conv_bn_act(cout, cout, 3, 1, act=None)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else conv_bn_act(cin, cout, 1, stride, act=None)

    def __call__(self, x: mx.array) -> mx.array:
        return nn.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, a: Any) -> None:
        super().__init__()
        self.stem = conv_bn_act(a.in_channels, a.widths[0], a.stem_kernel, a.stem_stride)
        if a.stem_pool:
            self.stem.layers.append(nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], a.widths[0]
        for i, width in enumerate(a.widths):
            for j in range(a.blocks_per_stage):
                blocks.append(BasicBlock(cin, width, 2 if (i > 0 and j == 0) else 1))
                cin = width
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, a.num_classes)

    def __call__(self, x: mx.array) -> mx.array:
        return self.fc(mx.mean(self.layers(self.stem(_nhwc(x))), axis=(1, 2)))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers = [conv_bn_act(cin, hidden, 1, act=nn.ReLU6)] if expand != 1 else []
        layers += [conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
                   conv_bn_act(hidden, cout, 1, act=None)]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def __call__(self, x: mx.array) -> mx.array:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, a: Any) -> None:
        super().__init__()
        blocks: list[nn.Module] = [conv_bn_act(a.in_channels, a.stem_width, 3, a.stem_stride, act=nn.ReLU6)]
        cin = a.stem_width
        for t, c, n, s in a.stages:
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        blocks.append(conv_bn_act(cin, a.head_width, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Linear(a.head_width, a.num_classes)

    def __call__(self, x: mx.array) -> mx.array:
        return self.classifier(mx.mean(self.features(_nhwc(x)), axis=(1, 2)))


class Residual(nn.Module):
    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def __call__(self, x: mx.array) -> mx.array:
        return self.fn(x) + x


class ConvMixer(nn.Module):
    def __init__(self, a: Any) -> None:
        super().__init__()
        d, k = a.dim, a.kernel_size
        self.stem = nn.Sequential(nn.Conv2d(a.in_channels, d, a.patch_size, a.patch_size), nn.GELU(), nn.BatchNorm(d))
        self.blocks = nn.Sequential(*[nn.Sequential(
            Residual(nn.Sequential(nn.Conv2d(d, d, k, padding=k // 2, groups=d), nn.GELU(), nn.BatchNorm(d))),
            nn.Conv2d(d, d, 1), nn.GELU(), nn.BatchNorm(d)) for _ in range(a.depth)])
        self.head = nn.Linear(d, a.num_classes)

    def __call__(self, x: mx.array) -> mx.array:
        return self.head(mx.mean(self.blocks(self.stem(_nhwc(x))), axis=(1, 2)))


MODELS = {"resnet": ResNet, "mobilenetv2": MobileNetV2, "convmixer": ConvMixer}


def mlx_name(model: torch.nn.Module, key: str) -> str:
    """A torch state-dict key as the mirrored mlx.nn model names it (nn.Sequential keeps its children in .layers)."""
    out, mod = [], model
    for part in key.split(".")[:-1]:
        if isinstance(mod, torch.nn.Sequential):
            out.append("layers")
        out.append(part)
        mod = mod[int(part)] if isinstance(mod, torch.nn.Sequential) else getattr(mod, part)
    return ".".join([*out, key.rsplit(".", 1)[-1]])


def from_torch(name: str, model: torch.nn.Module) -> nn.Module:
    """The mlx.nn version of registered torch model `name`, holding the same weights (eval mode)."""
    ref = MODELS[name](model.args)
    weights = []
    for key, t in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        a = t.detach().numpy().astype(np.float32)
        weights.append((mlx_name(model, key), mx.array(a.transpose(0, 2, 3, 1) if a.ndim == 4 else a)))
    ref.load_weights(weights, strict=True)
    ref.eval()
    return ref
