"""A model's cost for the manifest: FLOPs (torch's FlopCounterMode: 2 per multiply-add of conv/matmul; elementwise
ops are not counted) and activation traffic (fp32 bytes of the input and of every leaf module's output).
profiles.roofline turns these into roofline predictions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# torch is imported inside model_cost only: the dashboard imports profiles.roofline, which imports this module.
if TYPE_CHECKING:
    import torch
    from torch import nn


def model_cost(model: "nn.Module", inputs: tuple["torch.Tensor", ...]) -> dict[str, int]:
    """{"flops", "activation_bytes"} of one forward pass of `model` on `inputs` (fp32 activations)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    outputs: list[int] = []

    def hook(_m: Any, _i: Any, out: Any) -> None:
        for t in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(t, torch.Tensor):
                outputs.append(t.numel() * 4)

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    input_bytes = sum(t.numel() * 4 for t in inputs)
    return {"flops": int(counter.get_total_flops()), "activation_bytes": int(input_bytes + sum(outputs))}


def try_model_cost(model: "nn.Module", inputs: tuple["torch.Tensor", ...]) -> dict[str, Any]:
    """model_cost, or {"error": ...}: an estimate must never break an export."""
    try:
        return model_cost(model, inputs)
    except Exception as e:  # any op FlopCounterMode or a hook cannot handle
        return {"error": f"{e.__class__.__name__}: {str(e)[:200]}"}
