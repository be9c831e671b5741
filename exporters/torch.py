"""The torch "format": a safetensors checkpoint folder that the eager reference runtime loads.
fp16 stores half-precision tensors (upcast to fp32 on load); prune stores the zeroed weights densely."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from exporters.compression import CompressionSpec
from exporters.verify import numeric_parity
from models import checkpoint


def export(model: nn.Module, inputs: tuple[torch.Tensor, ...], out_dir: Path, spec: CompressionSpec,
           sizes: tuple[int, ...] = ()) -> dict[str, Any]:
    if spec.method == "fp16":
        model = model.half()
    checkpoint.save(model, Path(out_dir), {})
    model.float()
    size = (Path(out_dir) / checkpoint.WEIGHTS).stat().st_size
    stored = sum(t.numel() * t.element_size() for t in model.state_dict().values() if t.is_floating_point())
    if spec.method == "fp16":
        stored //= 2
    extra = {"input_sizes": list(sizes)} if sizes else {}  # the eager model takes any size its layers allow
    return {"dynamic_batch": True, "weight_bytes": stored, "file_bytes": size, "tool": "safetensors", **extra}


@torch.no_grad()
def verify(model: nn.Module, artifact) -> dict[str, Any]:
    loaded, _ = checkpoint.load(artifact.path)
    data = np.load(artifact.path / "eval.npz")
    out = loaded.eval()(torch.from_numpy(data["x"])).numpy()
    return {"kind": "numeric", "runtime": "torch", **numeric_parity(out, data["reference"])}


def lm_export(model: nn.Module, out_dir: Path, spec: CompressionSpec, card: dict[str, Any]) -> dict[str, Any]:
    """Language models: out_dir/checkpoint/, an EdgeZoo checkpoint of the (torch-level compressed) model."""
    meta = {k: v for k, v in card.items() if k not in ("model", "args", "paper", "task", "weights_sha256")}
    checkpoint.save(model, Path(out_dir) / "checkpoint", meta)
    return {"tool": "safetensors"}


@torch.no_grad()
def lm_verify(model: nn.Module, artifact) -> dict[str, Any]:
    """The saved checkpoint reloaded gives the exported model's logits on a few tokens."""
    loaded, _ = checkpoint.load(artifact.path / "checkpoint")
    ids = (torch.arange(16) % model.args.vocab_size)[None]
    out, ref = loaded.eval()(ids)[0], model.eval()(ids)[0]
    return {"kind": "numeric", "runtime": "torch", **numeric_parity(out.float().numpy(), ref.float().numpy())}
