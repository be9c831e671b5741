"""Model registry: name -> (ModelArgs dataclass, Model class, paper card)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn


@dataclass(frozen=True)
class PaperCard:
    title: str
    arxiv: str
    code: str
    key: str = ""  # short paper key used by `edgezoo reproduce`


@dataclass(frozen=True)
class ModelSpec:
    name: str
    args_cls: type
    model_cls: type
    card: PaperCard
    task: str = "classification"


REGISTRY: dict[str, ModelSpec] = {}
BUILTIN_MODULES = ("models.resnet", "models.mobilenetv2", "models.convmixer", "models.lcs_cnn",
                   "models.spin_convmixer", "models.vit", "models.openelm", "models.dynamoe",
                   "models.range_augment_cnn", "models.byteformer", "models.scene_encoder",
                   "models.audio_video_mae", "models.scene_clip")


def _load_builtin() -> None:
    import importlib

    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def register(name: str, args_cls: type, card: PaperCard, task: str = "classification") -> Callable[[type], type]:
    """Class decorator: `@register("resnet", ResNetArgs, CARD)`."""

    def wrap(model_cls: type) -> type:
        if name in REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        REGISTRY[name] = ModelSpec(name, args_cls, model_cls, card, task)
        model_cls.registry_name = name
        return model_cls

    return wrap


def names(task: str | None = "classification") -> list[str]:
    """Registered names for one task (the image pipeline iterates these); task=None lists every model."""
    _load_builtin()
    return sorted(n for n, s in REGISTRY.items() if task is None or s.task == task)


def get(name: str) -> ModelSpec:
    _load_builtin()
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(names(None))}")
    return REGISTRY[name]


def args_from_dict(args_cls: type, values: dict[str, Any]) -> Any:
    """Build a ModelArgs from plain data, rejecting unknown keys."""
    known = {f.name for f in dataclasses.fields(args_cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {args_cls.__name__} fields {sorted(unknown)}; known: {sorted(known)}")
    return args_cls(**values)


def build(name: str, args: Any | dict[str, Any] | None = None) -> nn.Module:
    spec = get(name)
    if args is None:
        args = spec.args_cls()
    elif isinstance(args, dict):
        args = args_from_dict(spec.args_cls, args)
    return spec.model_cls(args)


def example_inputs(model: nn.Module, batch: int = 1) -> tuple[torch.Tensor, ...]:
    """Inputs for tracing/export: the model's own hook, else an image batch from its args."""
    if hasattr(model, "example_inputs"):
        return model.example_inputs(batch)
    a = model.args
    return (torch.randn(batch, a.in_channels, a.image_size, a.image_size),)


def exportable(model: nn.Module) -> nn.Module:
    """Eval-mode model with whatever folding the model defines before export."""
    model = model.eval()
    return model.exportable() if hasattr(model, "exportable") else model

