"""Benchmarks of the profiling harness itself: the README's two targets, both ratios of figures measured in the
same run (never an absolute time).

(a) overhead: EdgeZoo's reported median for an ONNX model vs a bare in-process loop over an identically
    configured onnxruntime session, as a ratio: target <= 1.05;
(b) stability: spread of the median over 5 repeated profiles of one artifact, relative to their median:
    target <= 10 %.
The EdgeZoo profiles and the bare loops alternate, so a change in machine load hits both sides of the ratio.

Run: `make bench` or `python -m tests.benchmarks.test_harness_overhead`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from exporters.artifact import export_checkpoint
from models import checkpoint
from models.registry import build
from profiles.measure import Scenario, measure

pytestmark = pytest.mark.benchmark
MAX_OVERHEAD_RATIO = 1.05
MAX_STABILITY_SPREAD = 0.10


def bench_artifact(root: Path):
    """A wide ResNet on 8x8 digits (~1 ms a call here): long enough to time well, short enough that overhead shows."""
    model = build("resnet", {"widths": (64, 128, 256), "blocks_per_stage": 2})
    ckpt = checkpoint.save(model.eval(), root / "ckpt", {"dataset": "digits"})
    return export_checkpoint(ckpt, "onnx", "none", out_dir=root / "onnx")


def bare_loop_median_ms(model_file: Path, threads: int, seconds: float = 2.0) -> float:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(str(model_file), so, providers=["CPUExecutionProvider"])
    x = {sess.get_inputs()[0].name: np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32)}
    for _ in range(20):
        sess.run(None, x)
    samples, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(samples) < 200:
        t0 = time.perf_counter()
        sess.run(None, x)
        samples.append(time.perf_counter() - t0)
    return float(np.median(samples) * 1e3)


def run_benchmarks(threads: int = 2) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        art = bench_artifact(Path(tmp))
        scenario = Scenario(min_seconds=2.0)
        medians, bare = [], []
        for _ in range(5):
            r = measure(art, "onnxruntime", threads, scenario)
            assert r["status"] == "ok", r.get("error_message")
            assert r["latency"]["stopped_by"] == "min_iters_and_seconds", r["latency"]["stopped_by"]  # not capped
            medians.append(r["latency"]["median_ms"])
            bare.append(bare_loop_median_ms(art.model_file, threads))
    figures = {
        "edgezoo_median_ms": float(np.median(medians)),
        "bare_loop_median_ms": float(np.median(bare)),
        "overhead_ratio": float(np.median(medians) / np.median(bare)),
        "stability_spread": float((max(medians) - min(medians)) / np.median(medians)),
    }
    print("\nharness benchmark (onnxruntime, wide ResNet 8x8, batch 1, %d threads)" % threads)
    print("  EdgeZoo medians over 5 profiles (ms): " + ", ".join(f"{m:.4f}" for m in medians))
    print("  bare in-process loop medians (ms):    " + ", ".join(f"{m:.4f}" for m in bare))
    print(f"  overhead ratio (EdgeZoo / bare):      {figures['overhead_ratio']:.3f}  (target <= {MAX_OVERHEAD_RATIO})")
    print(f"  stability: spread of medians:         {100 * figures['stability_spread']:.1f} %  "
          f"(target <= {100 * MAX_STABILITY_SPREAD:.0f} %)")
    return figures


def test_harness_benchmark() -> None:
    figures = run_benchmarks()
    assert np.isfinite(list(figures.values())).all()
    assert figures["overhead_ratio"] <= MAX_OVERHEAD_RATIO, figures
    assert figures["stability_spread"] <= MAX_STABILITY_SPREAD, figures


if __name__ == "__main__":
    run_benchmarks()
