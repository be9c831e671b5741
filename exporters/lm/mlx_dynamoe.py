"""DynaMoE in MLX: mlx-lm's OpenELM with each FFN replaced by nested experts and a router (models/dynamoe.py).

The exported folder is an mlx-lm model folder (config.json + model.safetensors with the torch names, routers
included); config.json adds `expert_sizes` (per layer), `theta` and `ffn_compute`, and names this module under
`edgezoo_mlx_model` so `exporters.lm.mlx_lm_export.load_mlx_lm` builds this model instead of mlx-lm's.

`ffn_compute` (a load-time option, `load_model(..., model_config={"ffn_compute": ...})`):
- slice: per token, only its expert's rows of gate/up and columns of down are multiplied. A decode step (one
  token) reads the router's choice (an `mx.eval`, so the graph is cut there) and runs one sliced SwiGLU; a
  prefill groups the tokens by expert and runs each group on its slice. This is the mode that skips work.
- mask: every unit computed, the ones above the token's expert zeroed (what ONNX and Core ML do; no saving).
- dense: the full FFN for every token, router not run (the dense model's cost, for comparison).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx_lm.models import openelm as base

FFN_COMPUTE = ("slice", "mask", "dense")


@dataclass
class ModelArgs(base.ModelArgs):
    expert_sizes: list = field(default_factory=list)  # per layer: the nested experts' hidden units, increasing
    theta: float = 0.5
    ffn_compute: str = "slice"


class _Split:
    """Weights laid out for prefix slicing (kept outside the module's parameters): gate, up and down^T, each
    (hidden, d), so an expert's units are the first k rows of each."""

    def __init__(self, ffn: "NestedMLP") -> None:
        h = ffn.hidden
        w1 = ffn.proj_1.weight
        self.gate, self.up = mx.contiguous(w1[:h]), mx.contiguous(w1[h:])
        self.down_t = mx.contiguous(ffn.proj_2.weight.T)
        mx.eval(self.gate, self.up, self.down_t)


class NestedMLP(base.MLP):
    def __init__(self, args: ModelArgs, layer_id: int) -> None:
        super().__init__(args, layer_id)
        self.sizes = [int(s) for s in args.expert_sizes[layer_id]]
        self.hidden, self.theta, self.compute = self.sizes[-1], float(args.theta), args.ffn_compute
        self.router = nn.Linear(args.model_dim, len(self.sizes), bias=True)
        tier = np.searchsorted(np.array(self.sizes), np.arange(self.hidden), side="right")
        self._tier = _Const(mx.array(tier.astype(np.int32)))
        self._split: _Split | None = None

    def experts(self, x: mx.array) -> mx.array:
        """(B, L) expert per token: the smallest whose cumulative router probability reaches theta."""
        cum = mx.cumsum(mx.softmax(self.router(x).astype(mx.float32), axis=-1), axis=-1)
        return mx.minimum((cum < self.theta).astype(mx.int32).sum(-1), len(self.sizes) - 1)

    def _expert(self, x: mx.array, k: int) -> mx.array:
        w = self._split
        return (nn.silu(x @ w.gate[:k].T) * (x @ w.up[:k].T)) @ w.down_t[:k]

    def __call__(self, x: mx.array) -> mx.array:
        if self.compute == "dense":
            return super().__call__(x)
        choice = self.experts(x)
        if self.compute == "mask":
            gate, up = mx.split(self.proj_1(x), 2, axis=-1)
            keep = (self._tier.value <= choice[..., None]).astype(x.dtype)
            return self.proj_2(nn.silu(gate) * up * keep)
        if self._split is None:
            self._split = _Split(self)
        b, t, d = x.shape
        if b * t == 1:  # decode: one token, one sliced expert
            return self._expert(x, self.sizes[int(choice.item())])
        flat, ids = x.reshape(-1, d), np.array(choice).reshape(-1)
        out = mx.zeros_like(flat)
        for e in np.unique(ids):  # prefill: tokens grouped by expert, each group on its slice
            rows = mx.array(np.flatnonzero(ids == e).astype(np.int32))
            out[rows] = self._expert(flat[rows], self.sizes[int(e)])
        return out.reshape(b, t, d)


class _Const:
    """A constant array kept out of the module's parameters (not saved, not loaded)."""

    def __init__(self, value: mx.array) -> None:
        self.value = value


class Model(base.Model):
    def __init__(self, args: ModelArgs) -> None:
        if args.ffn_compute not in FFN_COMPUTE:
            raise ValueError(f"ffn_compute {args.ffn_compute!r} is not one of {FFN_COMPUTE}")
        super().__init__(args)
        for i, layer in enumerate(self.transformer.layers):
            layer.ffn = NestedMLP(args, i)


def mlx_config(model) -> dict:
    """What config.json adds for a torch DynaMoE model (models/dynamoe.py)."""
    return {"edgezoo_mlx_model": __name__, "expert_sizes": [f.sizes for f in model.ffns()],
            "theta": float(model.args.theta), "ffn_compute": "slice"}
