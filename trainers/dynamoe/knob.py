"""The theta knob as a compression step (`dynamoe:theta=T`, exporters.compression.torch_level.compress_lm_): set the
routers' sensitivity of a DynaMoE checkpoint and count what it gives on held-out bytes (torch, masked compute):
mean active FFN fraction (routers included), active parameters per token and bpb. The manifest keeps them under
`active_params`; the LM profiler copies them into each record (profiles/lm_measure.py)."""

from __future__ import annotations

from typing import Any

from models.errors import CompressionSpecError

KNOB_CONTEXT, KNOB_WINDOWS = 64, 64
COMPUTE = {"onnx": "masked dense FFN: every unit computed, the mask zeroes the rest (no compute saved)",
           "coreml": "masked dense FFN: every unit computed, the mask zeroes the rest (no compute saved)",
           "torch": "masked dense FFN: every unit computed, the mask zeroes the rest (no compute saved)",
           "mlx": "per-token slicing: each token runs only its expert's rows of gate/up and columns of down"}


def apply_knob(model: Any, spec: Any) -> dict[str, Any]:
    """Route `model` at the spec's theta (`none`: the checkpoint's own); a non-DynaMoE model or another
    compression is a one-line CompressionSpecError."""
    from models.dynamoe import DynaMoE, active_params
    from trainers.dynamoe.convert import routed_eval
    from trainers.text import eval_windows, load_text

    if not isinstance(model, DynaMoE):
        raise CompressionSpecError(f"compression {spec.name} needs a DynaMoE checkpoint",
                                   "convert a dense LM first: edgezoo train dynamoe_main (trainers/dynamoe)")
    if spec.method not in ("none", "dynamoe"):
        raise CompressionSpecError(f"compression {spec.name} is not available for DynaMoE checkpoints",
                                   "use none or dynamoe:theta=T (T in [0, 1])")
    if spec.method == "dynamoe":
        model.set_theta(spec.theta)
    windows = eval_windows(load_text().val, KNOB_CONTEXT, KNOB_WINDOWS)
    bpb, choices = routed_eval(model, windows)
    return {"bits_per_weight": 32.0, "active_params": {
        "theta": model.args.theta, **active_params(model, choices), "torch_val_bpb": bpb,
        "tokens": int(windows[:, 1:].numel()),
        "counted_on": f"{KNOB_WINDOWS} validation windows of {KNOB_CONTEXT} bytes",
        "compute": COMPUTE}}
