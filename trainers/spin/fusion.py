"""SPIN weight fusion (WF): initialise a shared model from a trained unshared one.

1. Load the D trained shared-able modules (pointwise convs / MLPs) of an unshared model.
2. Each unique weight u of the target map is a reduction over its group {i : map[i] == u} computed in the
   forward pass, so fine-tuning reaches all D originals: mean, first (choose-first), scalar (a learnable scalar
   per member, init 1) or channel (a learnable per-output-channel vector per member, init 1). Weighted:
   W_u = mean_k(a_k * W_k), as upstream. Biases (and other rank-1 parameters) are averaged, except `first`.
3. Fine-tune (any loop: the fused model is a plain nn.Module).
4. `fuse(model)` computes each reduction once and puts a plain module back: D/r weights, a normal checkpoint.

Groups follow the target's mapping, not consecutive layers (upstream fuses consecutive layers whatever the
mapping: wrong for strided and random).
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn
from torch.func import functional_call

from models.layers.sharing import groups
from models.registry import build

REDUCTIONS = ("mean", "first", "scalar", "channel")


class FusedGroup(nn.Module):
    """Stand-in for one shared module: holds the r trained members' parameters stacked, reduces them per call."""

    def __init__(self, members: list[nn.Module], reduction: str) -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"unknown fusion reduction {reduction!r}; use one of {', '.join(REDUCTIONS)}")
        self.reduction = reduction
        self._template = [copy.deepcopy(members[0])]  # in a list: not a submodule, its parameters stay unused
        self.names = [n for n, _ in members[0].named_parameters()]
        self.stacked = nn.ParameterList(
            nn.Parameter(torch.stack([dict(m.named_parameters())[n].detach().clone() for m in members]))
            for n in self.names)  # each (r, *shape)
        # learnable member weights, init 1, for weights only (rank >= 2): (r,) scalar or (r, out) channel
        self.scales = nn.ParameterDict({
            str(j): nn.Parameter(torch.ones(len(members), *([w.shape[1]] if reduction == "channel" else [])))
            for j, w in enumerate(self.stacked) if w.ndim >= 3 and reduction in ("scalar", "channel")})

    def reduced(self) -> dict[str, torch.Tensor]:
        out = {}
        for j, (name, w) in enumerate(zip(self.names, self.stacked)):
            if self.reduction == "first":
                out[name] = w[0]
            elif self.reduction == "mean" or w.ndim < 3:  # biases / rank-1: plain mean
                out[name] = w.mean(0)
            else:  # scale (r,) or (r, out) broadcast over (r, out, ...)
                a = self.scales[str(j)]
                a = a.reshape(*a.shape, *([1] * (w.ndim - a.ndim)))
                out[name] = (a * w).mean(0)
        return out

    def plain(self) -> nn.Module:
        """A plain module holding the reduced parameters (step 4)."""
        module = copy.deepcopy(self._template[0])
        with torch.no_grad():
            for name, value in self.reduced().items():
                module.get_parameter(name).copy_(value)
        return module

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return functional_call(self._template[0], self.reduced(), args)


def prepare(source: nn.Module, share: int, mapping: str = "sequential", reduction: str = "mean",
            mapping_seed: int = 0) -> nn.Module:
    """A shared model (same class and args as the unshared `source`, with `share`/`mapping`) whose
    non-shared parameters are copied from `source` and whose shared modules are FusedGroups of its layers."""
    if len(getattr(source, source.shared_attr)) != source.args.depth:
        raise ValueError("weight fusion starts from an unshared model (share=0)")
    args = dataclasses.replace(source.args, share=share, mapping=mapping, mapping_seed=mapping_seed)
    target = build(source.registry_name, args)
    attr = target.shared_attr
    rest = {k: v for k, v in source.state_dict().items() if not k.startswith(attr + ".")}
    missing, unexpected = target.load_state_dict(rest, strict=False)
    assert not unexpected and all(k.startswith(attr + ".") for k in missing), (missing, unexpected)
    fused = [FusedGroup([source.shared_module(i) for i in layers], reduction) for layers in groups(target.layer_map)]
    setattr(target, attr, nn.ModuleList(fused))
    return target.train(source.training)


def fuse(model: nn.Module) -> nn.Module:
    """In place: every FusedGroup becomes the plain module of its reduced weights; returns the model."""
    attr = model.shared_attr
    setattr(model, attr, nn.ModuleList(m.plain() if isinstance(m, FusedGroup) else m for m in getattr(model, attr)))
    return model
