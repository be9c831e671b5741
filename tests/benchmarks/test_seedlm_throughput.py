"""SeedLM compression throughput vs this machine's matmul roofline, and LM decode tokens/s per runtime.

Asserted, as ratios measured in the same run (never absolute times): the branch-and-bound seed search is at
least MIN_BOUND_SPEEDUP x faster than the exhaustive reference (the README reports 3.4-3.6x) and finds the same
seeds; neither search runs above the machine's own numpy sgemm throughput for the FLOPs it is charged.
Run: `python -m tests.benchmarks.test_seedlm_throughput`."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from exporters.compression import seedlm as S

pytestmark = pytest.mark.benchmark
MIN_BOUND_SPEEDUP = 2.0


def numpy_sgemm_flops_per_s(n: int = 1024, repeats: int = 5) -> float:
    """Best-of-N fp32 matmul throughput in numpy (the library the seed search runs on)."""
    a, b = (np.random.default_rng(0).standard_normal((n, n)).astype(np.float32) for _ in range(2))
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def search_flops(cfg: S.SeedLMConfig, n_blocks: int, exhaustive: bool) -> float:
    """Per block and seed. Exhaustive: coefficients (2PC) + reconstruction (2CP) + squared error (3C).
    Branch and bound: the residual bound ||Q(s)^T w||² (2PC + 2P); its few quantized candidates are not counted."""
    seeds = 2 ** cfg.lfsr_bits - 1
    per_seed = 4 * cfg.coeffs * cfg.block + 3 * cfg.block if exhaustive else 2 * cfg.coeffs * cfg.block + 2 * cfg.coeffs
    return float(n_blocks * seeds * per_seed)


def seedlm_throughput(bits: int, n_blocks: int = 256, exhaustive: bool = False) -> dict[str, float]:
    cfg = S.SeedLMConfig.for_bits(bits)
    S.seed_tables(cfg.block, cfg.coeffs, cfg.lfsr_bits)  # tables are built once per config
    S.projection_table(cfg.block, cfg.coeffs, cfg.lfsr_bits)
    w = np.random.default_rng(0).standard_normal((n_blocks, cfg.block)).astype(np.float32) * 0.05
    if exhaustive:
        seconds = _timed(lambda: [S._search_exhaustive(w[i:i + 32], cfg) for i in range(0, n_blocks, 32)])
    else:
        seconds = _timed(lambda: S.encode_blocks(w, cfg))
    flops = search_flops(cfg, n_blocks, exhaustive)
    peak = numpy_sgemm_flops_per_s()
    return {"bits": bits, "weights_per_s": w.size / seconds, "achieved_gflops": flops / seconds / 1e9,
            "peak_gflops": peak / 1e9, "fraction_of_roofline": (flops / peak) / seconds}


def lm_tokens_per_s() -> list[tuple[str, str, float, float]]:
    from exporters.lm.artifact import export_lm
    from profiles.lm_measure import measure_lm
    from trainers.openelm.recipe import load_lm_recipe
    from trainers.openelm.train import train_lm

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "ckpt"
        train_lm(load_lm_recipe("openelm_tiny", []), ckpt)
        for fmt, comp in (("torch", "none"), ("onnx", "none"), ("mlx", "none"), ("mlx", "int4")):
            r = measure_lm(export_lm(ckpt, fmt, comp, Path(tmp) / f"{fmt}-{comp}"))
            if r["status"] == "ok":
                rows.append((r["runtime"], comp, r["prefill_tokens_per_s"], r["decode_tokens_per_s"]))
            else:
                rows.append((fmt, comp, float("nan"), float("nan")))
    return rows


def run_benchmarks() -> None:
    print("\nSeedLM encoding over 65,535 seeds (fp32): branch and bound (default) vs the exhaustive reference")
    for bits in (4, 3):
        for exhaustive in (True, False):
            f = seedlm_throughput(bits, exhaustive=exhaustive)
            print(f"  SeedLM-{bits} {'exhaustive' if exhaustive else 'bound':<10}: {f['weights_per_s']:,.0f} weights/s; "
                  f"search {f['achieved_gflops']:.1f} GFLOP/s vs numpy sgemm {f['peak_gflops']:.1f} GFLOP/s = "
                  f"{100 * f['fraction_of_roofline']:.1f} % of the roofline")
    print("tiny OpenELM byte LM (openelm_tiny), batch 1: tokens/s per runtime")
    for runtime, comp, prefill, decode in lm_tokens_per_s():
        print(f"  {runtime:<12} {comp:<6} prefill {prefill:,.0f} tok/s   decode {decode:,.0f} tok/s")


def test_seedlm_benchmark() -> None:
    for bits in (4, 3):
        ex, bound = (seedlm_throughput(bits, n_blocks=128, exhaustive=e) for e in (True, False))
        speedup = bound["weights_per_s"] / ex["weights_per_s"]
        print(f"\nSeedLM-{bits}: bound {bound['weights_per_s']:,.0f} vs exhaustive {ex['weights_per_s']:,.0f} "
              f"weights/s = {speedup:.2f}x (target >= {MIN_BOUND_SPEEDUP}x); roofline fraction "
              f"{100 * bound['fraction_of_roofline']:.1f} % / {100 * ex['fraction_of_roofline']:.1f} %")
        assert speedup >= MIN_BOUND_SPEEDUP, (bits, speedup)
        assert 0 < bound["fraction_of_roofline"] <= 1 and 0 < ex["fraction_of_roofline"] <= 1
        cfg = S.SeedLMConfig.for_bits(bits)
        w = np.random.default_rng(1).standard_normal((32, cfg.block)).astype(np.float32) * 0.05
        seeds, q, e = S._search_exhaustive(w, cfg)
        enc = S.encode_blocks(w, cfg)
        assert np.array_equal(enc["seeds"], seeds) and np.array_equal(enc["q"], q) and np.array_equal(enc["e"], e)


if __name__ == "__main__":
    run_benchmarks()
