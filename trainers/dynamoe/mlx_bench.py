"""MLX speed of DynaMoE's per-token slicing against the dense FFN (card 04 section 6: time it only where the slice
avoids the work). Two measurements, each in this process with MLX on the CPU (run it with Debian's OpenBLAS
preloaded, as the profiler's MLX child is: `LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libopenblas.so.0`):

- decode: one exported DynaMoE MLX folder loaded three times (`ffn_compute` slice | mask | dense), the median time
  of a batch-1 decode step after a 32-byte prompt, and the mean expert size the router chose;
- ffn: one FFN layer alone at batch 1, the full SwiGLU against a prefix expert of each size (weights laid out for
  slicing), at the card's width (d 128, FFN 512) and a wider one (d 1024, FFN 4096), where a matmul is not
  dominated by the per-call overhead.

    LD_PRELOAD=... python -m trainers.dynamoe.mlx_bench ARTIFACT_MLX_FOLDER [--steps 200]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np


def _median_ms(fn: Callable[[], Any], steps: int, warmup: int = 10) -> float:
    import mlx.core as mx

    for _ in range(warmup):
        mx.eval(fn())
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        mx.eval(fn())
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def decode_ms(folder: Path, compute: str, steps: int = 200, prompt_len: int = 32) -> dict[str, float]:
    """Median batch-1 decode step (ms) of the MLX DynaMoE folder with FFNs computed as `compute`."""
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache

    from exporters.lm.mlx_lm_export import load_mlx_lm

    model, _ = load_mlx_lm(folder, ffn_compute=compute)
    prompt = mx.array(np.random.default_rng(0).integers(32, 127, (1, prompt_len)).astype(np.int32))
    cache = make_prompt_cache(model)
    token = mx.argmax(model(prompt, cache=cache)[:, -1:], axis=-1)
    mx.eval(token)
    sizes: list[int] = []
    hook = _record_sizes(model, sizes) if compute == "slice" else None

    def step():
        nonlocal cache
        if cache[0].offset >= prompt_len + 64:  # a fresh context every 64 steps: attention cost stays bounded
            cache = make_prompt_cache(model)
            mx.eval(model(prompt, cache=cache))
        return model(token, cache=cache)

    out = {"median_ms": _median_ms(step, steps)}
    if hook is not None:
        out["mean_expert_fraction"] = float(np.mean(sizes)) if sizes else float("nan")
    return out


def _record_sizes(model: Any, sizes: list[float]) -> bool:
    """Wrap each layer's sliced expert call to record the chosen size as a fraction of the FFN width."""
    for layer in model.transformer.layers:
        ffn = layer.ffn
        original = ffn._expert

        def expert(x, k, _orig=original, _h=ffn.hidden):
            if x.shape[0] == 1 and x.ndim == 3:
                sizes.append(k / _h)
            return _orig(x, k)

        ffn._expert = expert
    return True


def ffn_ms(d: int, hidden: int, steps: int = 300) -> dict[str, float]:
    """One FFN at batch 1: full SwiGLU (proj_1 then proj_2, as mlx-lm computes it) vs prefix experts."""
    import mlx.core as mx
    import mlx.nn as nn

    rng = np.random.default_rng(0)
    w1 = mx.array(rng.standard_normal((2 * hidden, d)).astype(np.float32) / d ** 0.5)
    w2 = mx.array(rng.standard_normal((d, hidden)).astype(np.float32) / hidden ** 0.5)
    gate, up, down_t = mx.contiguous(w1[:hidden]), mx.contiguous(w1[hidden:]), mx.contiguous(w2.T)
    x = mx.array(rng.standard_normal((1, 1, d)).astype(np.float32))
    mx.eval(w1, w2, gate, up, down_t, x)

    def dense():
        g, u = mx.split(x @ w1.T, 2, axis=-1)
        return (nn.silu(g) * u) @ w2.T

    out = {"dense_ms": _median_ms(dense, steps)}
    for frac in (0.25, 0.5, 0.75, 1.0):
        k = int(frac * hidden)
        out[f"slice_{frac:g}_ms"] = _median_ms(lambda k=k: (nn.silu(x @ gate[:k].T) * (x @ up[:k].T)) @ down_t[:k],
                                               steps)
    return out


def main() -> None:
    import mlx.core as mx

    mx.set_default_device(mx.cpu)
    folder = Path(sys.argv[1])
    steps = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 200
    report = {"decode": {c: decode_ms(folder, c, steps) for c in ("dense", "mask", "slice")},
              "ffn_d128_h512": ffn_ms(128, 512), "ffn_d1024_h4096": ffn_ms(1024, 4096)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
