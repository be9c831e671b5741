"""Roofline: FLOPs match analytic counts, predictions are compute- or memory-bound as they should be,
records without a cost are skipped with a reason, and the host profile is measured once and cached."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from profiles import hostbench, roofline
from profiles.catalog import Device
from profiles.device import fingerprint


def toy_device(fp32: float, bandwidth: float, **peaks: float) -> Device:
    return Device(name="toy", title="toy", kind="cpu", vendor="-", peak={"fp32": fp32, "fp16": None, "int8": None, **peaks},
                  memory_bandwidth=bandwidth, memory_bytes=None, compute_units=1)


def test_flops_and_activations_match_analytic_counts() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10)).eval()
    cost = roofline.model_cost(model, (torch.randn(1, 1, 8, 8),))
    conv = 2 * (4 * 8 * 8) * (1 * 3 * 3)     # 2 FLOP per MAC: outputs x (in_channels x kernel)
    linear = 2 * 256 * 10
    assert cost["flops"] == conv + linear
    # fp32 bytes: input (64) + conv (256) + relu (256) + flatten (256) + linear (10) values
    assert cost["activation_bytes"] == 4 * (64 + 256 + 256 + 256 + 10)


def test_grouped_strided_conv_and_batch() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.Conv2d(8, 8, 1, groups=2)).eval()
    cost = roofline.model_cost(model, (torch.randn(2, 3, 9, 9),))
    out = 2 * 8 * 4 * 4
    assert cost["flops"] == 2 * out * 27 + 2 * out * 4


def test_compute_and_memory_bound() -> None:
    cost = {"flops": 1_000_000, "activation_bytes": 1000}
    slow_alu = roofline.predict(cost, 1000, toy_device(fp32=1e9, bandwidth=1e12))
    assert slow_alu["bound"] == "compute" and slow_alu["predicted_ms"] == pytest.approx(1.0)
    slow_mem = roofline.predict(cost, 1000, toy_device(fp32=1e15, bandwidth=1e6))
    assert slow_mem["bound"] == "memory" and slow_mem["predicted_ms"] == pytest.approx(2.0)  # 2000 B at 1 MB/s
    assert slow_mem["bytes"] == 2000 and slow_mem["flops"] == 1_000_000


def test_batch_scales_activations_not_weights() -> None:
    p = roofline.predict({"flops": 10, "activation_bytes": 100}, 1000, toy_device(1e9, 1e9), batch=4)
    assert p["bytes"] == 1000 + 400 and p["flops"] == 40


def test_precision_choice_and_fallback() -> None:
    assert roofline.compute_precision("coreml", "fp16") == "fp16"
    assert roofline.compute_precision("onnx", "int8") == "int8"
    assert roofline.compute_precision("coreml", "int8") == "fp32"  # weight-only: dequantized, fp32 compute
    assert roofline.compute_precision("torch", "fp16") == "fp32"
    cost = {"flops": 10**9, "activation_bytes": 0}
    fast16 = roofline.predict(cost, 0, toy_device(1e9, 1e12, fp16=4e9), "fp16")
    assert fast16["precision"] == "fp16" and fast16["predicted_ms"] == pytest.approx(250)
    fallback = roofline.predict(cost, 0, toy_device(1e9, 1e12), "int8")
    assert fallback["precision"] == "fp32" and "no int8 peak" in fallback["precision_note"]
    npu = Device(name="npu", title="npu", kind="npu", vendor="-", peak={"fp32": None, "fp16": 1e12, "int8": None},
                 memory_bandwidth=1e9, memory_bytes=None, compute_units=1)
    with pytest.raises(ValueError, match="no fp32 peak"):
        roofline.predict(cost, 0, npu, "fp32")


def record(rid: int, p50: float, cost: dict | None, status: str = "ok", fmt: str = "onnx", **extra) -> dict:
    return {"id": rid, "model": "toy", "status": status, "runtime": "onnxruntime", "threads": 2,
            "artifact": {"format": fmt, "compression": "none", "weight_bytes": 1000, "cost": cost},
            "latency": {"median_ms": p50}, "input_shapes": [[1, 1, 8, 8]], "device": {"id": fingerprint()["id"]},
            **extra}


def test_records_are_predicted_or_skipped_with_reason() -> None:
    dev = toy_device(fp32=1e9, bandwidth=1e12)
    recs = [record(1, 2.0, {"flops": 10**6, "activation_bytes": 0}), record(2, 1.0, None),
            record(3, 1.0, None, status="failed", error_class="ParityMismatch"),
            {"id": 4, "model": "x", "status": "ok", "artifact": {"format": "onnx", "foreign": True}}]
    rows, skipped = roofline.predict_records(recs, dev)
    assert [r["id"] for r in rows] == [1] and rows[0]["predicted_ms"] == pytest.approx(1.0)
    reasons = {s["id"]: s["reason"] for s in skipped}
    assert "no cost" in reasons[2] and "failed" in reasons[3] and "foreign" in reasons[4]


def test_measured_vs_predicted() -> None:
    dev = toy_device(fp32=1e9, bandwidth=1e12)
    mine = record(1, 4.0, {"flops": 10**6, "activation_bytes": 0})
    elsewhere = record(2, 4.0, {"flops": 10**6, "activation_bytes": 0}, device={"id": "another"})
    rows, skipped = roofline.compare_measured([mine, elsewhere], dev, fingerprint()["id"])
    (row,) = rows
    assert row["predicted_ms"] == pytest.approx(1.0) and row["measured_ms"] == 4.0
    assert row["error"] == pytest.approx(0.75) and row["ratio"] == pytest.approx(4.0)
    assert row["fraction_of_roofline"] == pytest.approx(0.25)
    assert skipped[0]["reason"] == "measured on another machine"
    assert roofline.median_abs_error(rows) == pytest.approx(0.75)


def test_micro_benchmarks_measure_something() -> None:
    assert hostbench.matmul_flops(threads=1, n=128, seconds=0.05) > 1e8
    assert hostbench.copy_bandwidth(mib=8, repeats=2) > 1e8


def test_host_profile_is_cached_per_fingerprint(tmp_path, monkeypatch) -> None:
    calls = []

    def fake(threads: int) -> Device:
        calls.append(threads)
        return toy_device(fp32=5e10, bandwidth=2e10)

    monkeypatch.setattr(hostbench, "measure_host", fake)
    first = hostbench.host_profile(tmp_path, threads=2)
    again = hostbench.host_profile(tmp_path, threads=2)
    assert calls == [2] and again == first and (tmp_path / hostbench.CACHE_FILE).exists()
    hostbench.host_profile(tmp_path, threads=1)
    assert calls == [2, 1]
