"""`compress_(model, spec)`: the torch-level step before any format.

Pruning is applied here for every format (torch.nn.utils.prune's L1 magnitude criterion), since ONNX and MLX
have no pruning library; Core ML prunes again through coremltools.optimize so its file stores the sparsity.
Quantization and fp16 are left to each format's own library; `fake_quantize_` simulates block-wise
round-to-nearest (models/layers/quant.py) for experiments that need the numerics without a format.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from exporters.compression.spec import CompressionSpec
from models.layers.quant import rtn

COMPRESSIBLE = (nn.Conv2d, nn.Linear)


def compressible_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, COMPRESSIBLE)]


def prune_(model: nn.Module, sparsity: float, finetune: int = 0, data: Any = None, seed: int = 0) -> None:
    """Global L1-magnitude unstructured pruning over all conv/linear weights, optionally followed by masked
    fine-tuning on `data` (the masks stay fixed while the surviving weights train), then made permanent."""
    layers = [m for _, m in compressible_layers(model)]
    prune.global_unstructured([(m, "weight") for m in layers], pruning_method=prune.L1Unstructured, amount=sparsity)
    if finetune and data is not None:
        from trainers.loop import finetune as finetune_loop

        finetune_loop(model, data, epochs=finetune, seed=seed)
    for m in layers:
        prune.remove(m, "weight")


@torch.no_grad()
def fake_quantize_(model: nn.Module, bits: int, block: int) -> None:
    """Symmetric RTN of every conv/linear weight in blocks along the input dimension (block 0: per channel)."""
    for _, m in compressible_layers(model):
        m.weight.copy_(rtn(m.weight, bits, block))


def compress_(model: nn.Module, spec: CompressionSpec, data: Any = None) -> nn.Module:
    """Apply the torch-level part of `spec` in place (pruning, with fine-tuning when `data` is the training
    split); the rest happens in each format's own library. Returns the model in eval mode."""
    if spec.method == "prune":
        if spec.finetune and data is None:
            raise ValueError("prune with finetune needs the training split; pass data= or finetune=0")
        prune_(model, spec.sparsity, spec.finetune, data)
    if spec.method == "datafree":  # layer-wise reconstruction on BatchNorm-synthesised inputs, no data
        from exporters.compression.datafree import datafree_

        model = datafree_(model, spec.bits, spec.sparsity)
    if spec.method == "lcs":  # a new, plain model baked at alpha (exporters/compression/lcs.py)
        from exporters.compression.lcs import lcs_

        model = lcs_(model, spec.alpha, data)
    return model.eval()


def weight_sparsity(model: nn.Module) -> float:
    total = zeros = 0
    for _, m in compressible_layers(model):
        total += m.weight.numel()
        zeros += int((m.weight == 0).sum())
    return zeros / max(total, 1)


def compress_lm_(model: nn.Module, spec: CompressionSpec) -> dict[str, Any]:
    """The torch-level LM compressions, in place on the block linears: group-wise RTN (int8/int4) or SeedLM,
    stored as reconstructed dense weights (no runtime has a seed op). Returns the packed bits/weight and bytes."""
    from exporters.compression.rtn_groups import rtn_
    from exporters.compression.seedlm import compress_seedlm_, default_cache_dir

    if spec.method == "dynamoe" or getattr(model, "registry_name", None) == "dynamoe":
        from trainers.dynamoe.knob import apply_knob  # theta, and the active parameters per token it gives

        return apply_knob(model, spec)
    if spec.method == "none":
        return {"bits_per_weight": 32.0}
    if spec.method == "seedlm":
        rep = compress_seedlm_(model, spec.bits, cache_dir=default_cache_dir(), reconstructed=True)
    elif spec.method in ("int8", "int4"):
        rep = rtn_(model, spec.bits, spec.block, symmetric=True)
    else:
        raise ValueError(f"{spec.name} is not a language-model compression")
    return {"bits_per_weight": rep["bits_per_weight"], "packed_weight_bytes": rep["size_bytes"],
            "weights_note": "reconstructed dense weights (compressed tensors' packed size in packed_weight_bytes)"}
