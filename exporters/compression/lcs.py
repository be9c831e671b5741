"""`lcs:alpha=A`: bake one point of an LCS / Learning-Subspaces checkpoint into a plain `lcs_cnn`.

The baked model holds w(alpha) for every layer with the LCS top-k mask of the post-warmup schedule (df = 0:
alpha 1 is dense, 0.025 keeps 2.5 % per layer, the first conv stays dense) and norm affine parameters at alpha.
BatchNorm models (Learning Subspaces) get their running statistics recalibrated at alpha on the training split;
GroupNorm models (LCS) need no recalibration, by design. Any exporter then exports the plain model unchanged;
the manifest's `sparsity` is the fraction of zero conv/linear weights of the baked model.
Width checkpoints bake a narrower plain model (the first ceil(f C) filters, f = 0.25 + 0.75 alpha; its args carry
the narrower channels); bits checkpoints bake fp32 weights on the bits(alpha) grid (3..8 bits, in `args.bits`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.errors import CompressionSpecError


def lcs_(model: nn.Module, alpha: float, data: Any = None) -> nn.Module:
    """The plain model at `alpha` (a new module; the input is left as it was)."""
    from models.layers.subspace import recalibrate_bn
    from models.lcs_cnn import LCSCNN, bake, set_level

    if not isinstance(model, LCSCNN) or model.args.subspace == "none":
        raise CompressionSpecError(f"lcs compression needs an LCS / subspace checkpoint, got "
                                   f"{getattr(model, 'registry_name', type(model).__name__)}",
                                   "train one with `python -m trainers.lcs.recipe` or use another --compress spec")
    if model.args.norm == "batch":
        if data is None:
            from trainers.data import load_dataset

            data = load_dataset("digits").train
        with set_level(model, alpha):
            recalibrate_bn(model, torch.from_numpy(data.x))
    return bake(model, alpha)

