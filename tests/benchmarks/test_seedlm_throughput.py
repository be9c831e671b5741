"""SeedLM compression throughput vs this machine's matmul roofline, OpenELM-270M encode time, LM decode tokens/s.

The seed search (`seedlm._search`: branch and bound over cache-sized tiles of blocks x seeds, one matmul per tile
whose output is the least-squares bound, reduced at once to a row maximum) is measured against, in the same run:
- the plain torch matmul of the same shapes (its roofline: the search can at best run at that GEMM's speed),
- the square 1024^3 sgemm (the machine's compute peak),
- the previous search (one (M*P, C) x (C, blocks) matmul over all seeds, then a top-32 per block), and the
  exhaustive reference.
Asserted, as ratios measured in the same run (never absolute times): the tiled search is faster than the previous
one and finds the exhaustive search's seeds and codes; no fraction exceeds 1.
Run: `python -m tests.benchmarks.test_seedlm_throughput` (env SEEDLM_270M_LAYERS=all encodes every layer of the
OpenELM-270M-shaped model instead of extrapolating from the first one)."""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from exporters.compression import seedlm as S

pytestmark = pytest.mark.benchmark
MIN_SPEEDUP_OVER_PREVIOUS = 1.5


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def square_sgemm_flops_per_s(n: int = 1024, repeats: int = 5) -> float:
    """Best-of-N fp32 torch matmul throughput (the machine's compute roofline with torch's threads)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    return 2 * n ** 3 / min(_timed(lambda: a @ b) for _ in range(repeats))


def matching_matmul_flops_per_s(cfg: S.SeedLMConfig, repeats: int = 3) -> float:
    """The search's own GEMMs alone, run as the search runs them: (blocks, D) x (D, seed tile) over all seeds on
    one single-threaded worker per torch thread, each with its own chunk of blocks."""
    g, _ = S.gram_table(cfg.block, cfg.coeffs, cfg.lfsr_bits, "cpu")
    rows, width = S.TILES["cpu"]
    workers = torch.get_num_threads()

    def gemms(_: int) -> None:
        x, out = torch.randn(rows, g.shape[1]), torch.empty(rows, width)
        for s0 in range(0, len(g), width):
            torch.mm(x, g[s0:s0 + width].T, out=out[:, : len(g[s0:s0 + width])])

    with ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        run = lambda: list(pool.map(gemms, range(workers)))  # noqa: E731
        run()
        best = min(_timed(run) for _ in range(repeats))
    torch.set_num_threads(workers)
    return 2.0 * workers * rows * len(g) * g.shape[1] / best


def previous_search(w: np.ndarray, cfg: S.SeedLMConfig, k: int = 32):
    """The search this replaced (the 'before' of the benchmark): every seed's bound from one (M*P, C) x (C, nb)
    matmul, squared and summed over P, a top-k per block, the k candidates quantized, exhaustive fallback."""
    m = 2 ** cfg.lfsr_bits - 1
    proj = S.projection_table(cfg.block, cfg.coeffs, cfg.lfsr_bits)
    wt = torch.from_numpy(np.ascontiguousarray(w.T))
    bound = (wt.square().sum(0) - (proj @ wt).view(m, cfg.coeffs, -1).square().sum(1)).T      # (nb, M)
    lows, idx = bound.topk(min(k, m), dim=1, largest=False, sorted=True)
    idx = idx.numpy()
    err, q, e = S._quantized_errors(w, idx, cfg)
    order = np.lexsort((idx, err), axis=1)[:, 0]
    rows = np.arange(len(w))
    best_err, seeds, qs, es = err[rows, order], idx[rows, order] + 1, q[rows, order], e[rows, order]
    slack = 1e-4 * best_err + 1e-5 * (w.astype(np.float64) ** 2).sum(1) + 1e-12
    unsure = lows[:, -1].numpy() <= best_err + slack
    if unsure.any():
        s2, q2, e2 = S._search_exhaustive(np.ascontiguousarray(w[unsure]), cfg)
        seeds[unsure], qs[unsure], es[unsure] = s2, q2, e2
    return seeds, qs, es


def search_flops(cfg: S.SeedLMConfig, n_blocks: int, method: str) -> float:
    """FLOPs charged per block and seed. Tiled: the GEMM against the projection table (2D, D = C(C+1)/2).
    Previous: the residual bound ||Q(s)^T w||² (2PC + 2P). Exhaustive: coefficients (2PC) + reconstruction (2CP)
    + squared error (3C). Candidate quantization is not counted."""
    d = cfg.block * (cfg.block + 1) // 2
    per_seed = {"tiled": 2 * d, "previous": 2 * cfg.coeffs * cfg.block + 2 * cfg.coeffs,
                "exhaustive": 4 * cfg.coeffs * cfg.block + 3 * cfg.block}[method]
    return float(n_blocks * (2 ** cfg.lfsr_bits - 1) * per_seed)


def _run(method: str, w: np.ndarray, cfg: S.SeedLMConfig) -> None:
    if method == "tiled":
        S.encode_blocks(w, cfg, device="cpu")
    else:
        step = 256 if method == "previous" else 32
        search = previous_search if method == "previous" else S._search_exhaustive
        for i in range(0, len(w), step):
            search(np.ascontiguousarray(w[i:i + step]), cfg)


def seedlm_throughput(bits: int, n_blocks: int = 4096, method: str = "tiled") -> dict[str, float]:
    cfg = S.SeedLMConfig.for_bits(bits)
    S.seed_tables(cfg.block, cfg.coeffs, cfg.lfsr_bits)  # tables are built once per config
    S.gram_table(cfg.block, cfg.coeffs, cfg.lfsr_bits, "cpu")
    w = np.random.default_rng(0).standard_normal((n_blocks, cfg.block)).astype(np.float32) * 0.05
    seconds = _timed(lambda: _run(method, w, cfg))
    flops = search_flops(cfg, n_blocks, method)
    roof = matching_matmul_flops_per_s(cfg)
    peak = square_sgemm_flops_per_s()
    return {"bits": bits, "method": method, "weights_per_s": w.size / seconds, "achieved_gflops": flops / seconds / 1e9,
            "matmul_gflops": roof / 1e9, "peak_gflops": peak / 1e9, "fraction_of_roofline": flops / roof / seconds,
            "fraction_of_peak": flops / peak / seconds}


def openelm_270m_linears() -> list[tuple[int, str, tuple[int, int]]]:
    """(layer, name, (out, in)) of every block linear of OpenELM-270M (published config, models/openelm.py)."""
    from models.openelm import ModelArgs

    a = ModelArgs.openelm_270m()
    q, kv, ffn, d, h = a.query_heads(), a.kv_heads(), a.ffn_dims(), a.model_dim, a.head_dim
    out = []
    for i in range(a.num_transformer_layers):
        out += [(i, "qkv_proj", ((q[i] + 2 * kv[i]) * h, d)), (i, "out_proj", (d, q[i] * h)),
                (i, "proj_1", (2 * ffn[i], d)), (i, "proj_2", (d, ffn[i]))]
    return out


def openelm_270m_encode(bits: int = 4, layers: tuple[int, ...] = (0,)) -> dict[str, float]:
    """Encode the full `layers` of an OpenELM-270M-shaped model (random N(0, 0.02) weights), time them, and
    extrapolate to every layer by weight count (the search's cost is linear in the number of blocks)."""
    cfg = S.SeedLMConfig.for_bits(bits)
    linears = openelm_270m_linears()
    rng = np.random.default_rng(0)
    done = seconds = cpu = 0.0
    for layer, _, shape in linears:
        if layer in layers:
            w = (rng.standard_normal(shape) * 0.02).astype(np.float32)
            c0 = time.process_time()
            seconds += _timed(lambda: S.encode_tensor(w, cfg))
            cpu, done = cpu + time.process_time() - c0, done + w.size
    total = float(sum(o * i for _, _, (o, i) in linears))
    # CPU seconds count only this process's work, so weights per CPU-second x cores estimates an idle machine
    return {"bits": bits, "layers": len(layers), "weights": done, "seconds": seconds, "total_weights": total,
            "extrapolated_hours": seconds * total / done / 3600, "measured_all": len(layers) == len(
                {layer for layer, _, _ in linears}), "weights_per_cpu_s": done / cpu,
            "idle_hours": total / (done / cpu * torch.get_num_threads()) / 3600}


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


def _load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


def run_benchmarks() -> None:
    print(f"\nSeedLM seed search over 65,535 seeds (fp32, {_load()})")
    print(f"  {'config':<9} {'search':<10} {'weights/s':>10} {'GFLOP/s':>8} {'same-shape mm':>14} {'fraction':>9} "
          f"{'sq. sgemm':>10} {'fraction':>9}")
    for bits in (4, 3):
        rows = {m: seedlm_throughput(bits, 4096 if m != "exhaustive" else 256, m)
                for m in ("tiled", "previous", "exhaustive")}
        for m, f in rows.items():
            print(f"  SeedLM-{bits}  {m:<10} {f['weights_per_s']:>10,.0f} {f['achieved_gflops']:>8.1f} "
                  f"{f['matmul_gflops']:>14.1f} {100 * f['fraction_of_roofline']:>8.1f}% {f['peak_gflops']:>10.1f} "
                  f"{100 * f['fraction_of_peak']:>8.1f}%")
        print(f"  SeedLM-{bits}  tiled / previous = "
              f"{rows['tiled']['weights_per_s'] / rows['previous']['weights_per_s']:.2f}x")
    layers = tuple(range(16)) if os.environ.get("SEEDLM_270M_LAYERS") == "all" else (0,)
    r = openelm_270m_encode(4, layers)
    how = "measured" if r["measured_all"] else f"EXTRAPOLATED by weight count from {r['layers']} full layer(s)"
    print(f"OpenELM-270M-shaped (random weights, {r['total_weights'] / 1e6:.1f}M block-linear weights), SeedLM-4: "
          f"{r['weights'] / 1e6:.2f}M weights in {r['seconds']:.0f} s = {r['weights'] / r['seconds']:,.0f} weights/s; "
          f"whole model {r['extrapolated_hours']:.2f} h ({how}; {_load()}); {r['weights_per_cpu_s']:,.0f} weights "
          f"per CPU-second, so {r['idle_hours']:.2f} h on an idle machine with {torch.get_num_threads()} threads "
          "(estimate from CPU time)")
    print("tiny OpenELM byte LM (openelm_tiny), batch 1: tokens/s per runtime")
    for runtime, comp, prefill, decode in lm_tokens_per_s():
        print(f"  {runtime:<12} {comp:<6} prefill {prefill:,.0f} tok/s   decode {decode:,.0f} tok/s")


def test_seedlm_benchmark() -> None:
    for bits in (4, 3):
        new, old = (seedlm_throughput(bits, 2048, m) for m in ("tiled", "previous"))
        speedup = new["weights_per_s"] / old["weights_per_s"]
        print(f"\nSeedLM-{bits}: tiled {new['weights_per_s']:,.0f} vs previous {old['weights_per_s']:,.0f} weights/s = "
              f"{speedup:.2f}x; {100 * new['fraction_of_roofline']:.1f} % of the same-shape matmul "
              f"({new['matmul_gflops']:.1f} GFLOP/s), {100 * new['fraction_of_peak']:.1f} % of the square sgemm; {_load()}")
        assert speedup >= MIN_SPEEDUP_OVER_PREVIOUS, (bits, speedup)
        assert 0 < new["fraction_of_roofline"] <= 1 and 0 < new["fraction_of_peak"] <= 1
        cfg = S.SeedLMConfig.for_bits(bits)
        w = np.random.default_rng(1).standard_normal((32, cfg.block)).astype(np.float32) * 0.05
        seeds, q, e = S._search_exhaustive(w, cfg)
        enc = S.encode_blocks(w, cfg)
        assert np.array_equal(enc["seeds"], seeds) and np.array_equal(enc["q"], q) and np.array_equal(enc["e"], e)


if __name__ == "__main__":
    run_benchmarks()
