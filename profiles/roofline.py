"""Roofline estimates: predicted latency = max(FLOPs / peak, bytes moved / bandwidth).

`model_cost` (exporters.cost, counted at export) counts a model's FLOPs (torch's FlopCounterMode: 2 per
multiply-add of conv/matmul; elementwise ops are not counted) and its activation traffic (fp32 bytes of the input
and of every leaf module's output).
`bytes moved = weight bytes at their stored (compressed) width + activation bytes`: each tensor read or
written once, no cache reuse, no kernel overheads. It is a lower bound on time, so measured / predicted >= 1
is expected, and predicted / measured is the "fraction of the roofline bound" a runtime reaches.

Precision (which peak applies) follows what the runtime computes in, not how weights are stored:
- fp16: Core ML (compute_precision FLOAT16) and ONNX (float16 graph) compute in fp16; EdgeZoo's torch and MLX
  fp16 artifacts store half weights but compute in fp32.
- int8: only ONNX int8 (quantize_dynamic: ConvInteger/MatMulInteger with activations quantized at run time)
  computes in int8. Core ML and MLX int8 are weight-only: weights are dequantized, compute is fp32.
- int4, palettize, prune (dense zeros) and none compute in fp32.
Where a device publishes no peak for that precision we fall back to its fp32 peak and say so (`precision_note`);
where it has neither (a Neural Engine asked for fp32) the prediction is skipped with the reason.
Activation bytes are counted at fp32 even for fp16 runs, which overstates that term by up to 2x.
"""

from __future__ import annotations

import statistics
from typing import Any, Iterable

from exporters.cost import model_cost, try_model_cost  # noqa: F401  (counted at export, re-exported)
from profiles.catalog import Device


def compute_precision(fmt: str | None, compression: str | None) -> str:
    """What the runtime computes in for an EdgeZoo artifact (see the module docstring)."""
    if compression == "fp16" and fmt in ("coreml", "onnx"):
        return "fp16"
    if compression == "int8" and fmt == "onnx":
        return "int8"
    return "fp32"


def _peak(device: Device, precision: str) -> tuple[float, str, str]:
    """(peak, precision used, note); raises ValueError when the device has no usable figure."""
    if device.peak.get(precision):
        return float(device.peak[precision]), precision, ""
    if precision != "fp32" and device.peak.get("fp32"):
        return float(device.peak["fp32"]), "fp32", f"no {precision} peak for {device.name}: fp32 peak used"
    raise ValueError(f"{device.name} has no {precision} peak" + ("" if precision == "fp32" else " nor fp32 peak")
                     + f" (this artifact computes in {precision})")


def predict(cost: dict[str, int], weight_bytes: int, device: Device, precision: str = "fp32",
            batch: int = 1) -> dict[str, Any]:
    """Roofline time for `batch` inputs (cost is per input; weights are read once per call)."""
    peak, used, note = _peak(device, precision)
    if not device.memory_bandwidth:
        raise ValueError(f"{device.name} has no memory bandwidth figure")
    flops = cost["flops"] * batch
    nbytes = int(weight_bytes) + cost["activation_bytes"] * batch
    t_compute, t_memory = flops / peak, nbytes / float(device.memory_bandwidth)
    return {"predicted_ms": 1e3 * max(t_compute, t_memory), "bound": "compute" if t_compute >= t_memory else "memory",
            "flops": flops, "bytes": nbytes, "precision": used, "precision_note": note,
            "intensity": flops / nbytes if nbytes else None}


def _record_inputs(rec: dict[str, Any]) -> tuple[dict[str, int], int, int]:
    """(cost, weight bytes, batch) of a store record; raises ValueError with the reason it cannot be predicted."""
    art = rec.get("artifact") or {}
    if rec.get("status") == "failed":  # 'unavailable' runtimes (Core ML on Linux) still have a predictable artifact
        raise ValueError(f"failed ({rec.get('error_class')}): no trustworthy artifact to predict")
    if art.get("foreign"):
        raise ValueError("foreign file: no manifest, so no cost")
    cost = art.get("cost")
    if not cost:
        raise ValueError("no cost in the artifact manifest (exported before costs were recorded: re-export with --force)")
    if "flops" not in cost:
        raise ValueError(f"cost could not be counted at export: {cost.get('error')}")
    weight_bytes = art.get("weight_bytes") or art.get("size_bytes")
    if not weight_bytes:
        raise ValueError("no weight size in the record")
    shapes = rec.get("input_shapes") or [[(rec.get("scenario") or {}).get("batch", 1)]]
    return cost, int(weight_bytes), int(shapes[0][0]) if shapes[0] else 1


def _describe(rec: dict[str, Any]) -> dict[str, Any]:
    art = rec.get("artifact") or {}
    return {"id": rec.get("id"), "model": rec.get("model"), "format": art.get("format"),
            "compression": art.get("compression"), "runtime": rec.get("runtime"), "threads": rec.get("threads")}


def predict_record(rec: dict[str, Any], device: Device) -> dict[str, Any]:
    """One predicted row for a store record on `device`; raises ValueError with the reason it cannot be."""
    base = _describe(rec)
    cost, weight_bytes, batch = _record_inputs(rec)
    precision = compute_precision(base["format"], base["compression"])
    return {**base, "device": device.name, "batch": batch, "wanted_precision": precision,
            **predict(cost, weight_bytes, device, precision, batch)}


def predict_records(records: Iterable[dict[str, Any]], device: Device) -> tuple[list[dict], list[dict]]:
    """(predictions, skipped): one predicted row per record on `device`, or a skip row with the reason."""
    rows, skipped = [], []
    for rec in records:
        try:
            rows.append(predict_record(rec, device))
        except ValueError as e:
            skipped.append({**_describe(rec), "device": device.name, "reason": str(e)})
    return rows, skipped


def _compare_one(rec: dict[str, Any], host: Device, host_id: str) -> dict[str, Any]:
    if rec.get("status") != "ok":
        raise ValueError(f"not measured here ({rec.get('status')}: {rec.get('error_class')})")
    if (rec.get("device") or {}).get("id") != host_id:
        raise ValueError("measured on another machine")
    row = predict_record(rec, host)
    measured = (rec.get("latency") or {}).get("median_ms")
    if not measured:
        raise ValueError("no measured median")
    pred = row["predicted_ms"]
    return {**row, "measured_ms": measured, "error": (measured - pred) / measured,
            "ratio": measured / pred if pred else None, "fraction_of_roofline": pred / measured}


def compare_measured(records: Iterable[dict[str, Any]], host: Device, host_id: str) -> tuple[list[dict], list[dict]]:
    """Measured p50 vs predicted on the host, for records measured on this machine (fingerprint `host_id`).
    error = (measured - predicted) / measured; ratio = measured / predicted; fraction = predicted / measured."""
    rows, skipped = [], []
    for rec in records:
        try:
            rows.append(_compare_one(rec, host, host_id))
        except ValueError as e:
            skipped.append({**_describe(rec), "device": host.name, "reason": str(e)})
    return rows, skipped


def median_abs_error(rows: list[dict[str, Any]]) -> float | None:
    errs = [abs(r["error"]) for r in rows if r.get("error") is not None]
    return statistics.median(errs) if errs else None
