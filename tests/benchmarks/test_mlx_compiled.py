"""MLX artifacts (exported .mlxfn, run by the MLX runtime: compiled by default) vs a hand-written `mlx.nn` version of
the same architecture with the same weights, compiled, in one run; the artifact run eagerly (compile=false) too.

Each model is the zoo's configuration (ModelArgs defaults, 1x8x8 digits input: what `edgezoo run` exports) and, with
EDGEZOO_MLX_BENCH_SCALES=small,deploy, the published size (ModelArgs.deploy(), 3x224x224). Weights are seeded
random with randomized batch-norm statistics; both versions must agree numerically before they are timed.
Calls are interleaved (artifact compiled, artifact eager, mlx.nn compiled) so that machine load hits all alike;
each call converts a numpy input and output, as the runtime does. Ratio = artifact p50 / mlx.nn p50 (target <= 1.2).
The timing runs in a child with Debian's OpenBLAS preloaded, as EdgeZoo's MLX measuring children are
(profiles.runtimes.child_env). Run: `python -m tests.benchmarks.test_mlx_compiled`."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.benchmark
TARGET_RATIO = 1.2


def _build(name: str, scale: str):
    import torch

    from models import registry

    torch.manual_seed(0)
    spec = registry.get(name)
    args = spec.args_cls.deploy() if scale == "deploy" else spec.args_cls()
    model = registry.build(name, args).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 2.0)
    return model, torch.randn(1, args.in_channels, args.image_size, args.image_size)


def _p50_ms(samples: list[float]) -> float:
    return float(np.median(samples)) * 1e3


def compare(name: str, scale: str, iters: int) -> dict[str, float]:
    import mlx.core as mx

    from exporters.compression.spec import parse_spec
    from exporters.formats import MODEL_FILES
    from exporters.mlx import export
    from profiles.runtimes.mlx_rt import MlxRuntime
    from tests.benchmarks.mlx_nn_zoo import from_torch

    model, x = _build(name, scale)
    with tempfile.TemporaryDirectory() as tmp:
        export(model, (x,), Path(tmp), parse_spec("none"))
        runtimes = {}
        for flag in ("true", "false"):
            runtimes[flag] = MlxRuntime()
            runtimes[flag].load(Path(tmp) / MODEL_FILES["mlx"], 1, {"device": "cpu", "compile": flag})
    ref = mx.compile(from_torch(name, model))

    def hand(inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = ref(mx.array(inputs[0]))
        mx.eval(out)
        return [np.array(out)]

    calls = {"artifact": runtimes["true"].run, "artifact eager": runtimes["false"].run, "mlx.nn": hand}
    xs = [x.numpy()]
    outs = {k: f(xs)[0] for k, f in calls.items()}
    with_torch = model(x).detach().numpy()
    for k, out in outs.items():
        np.testing.assert_allclose(out, with_torch, rtol=1e-3, atol=1e-3 * float(np.abs(with_torch).max()), err_msg=k)
    samples: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(iters):
        for k, f in calls.items():
            t0 = time.perf_counter()
            f(xs)
            samples[k].append(time.perf_counter() - t0)
    return {k: _p50_ms(v) for k, v in samples.items()}


def run_benchmarks(scales: tuple[str, ...] = ("small",), iters: int = 300) -> list[tuple[str, str, dict]]:
    rows = []
    print(f"\nMLX {__import__('mlx.core').core.__version__} on the CPU, batch 1, p50 of {iters} interleaved calls "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '-')})")
    print(f"  {'model':<12} {'scale':<7} {'artifact (compiled)':>20} {'mlx.nn (compiled)':>18} {'ratio':>6} "
          f"{'artifact eager':>15} {'compiled speed-up':>18}")
    from models.errors import ConversionError

    for scale in scales:
        for name in ("mobilenetv2", "resnet", "convmixer"):
            try:
                r = compare(name, scale, iters if scale == "small" else max(10, iters // 20))
            except ConversionError as e:  # no MLX artifact to compare (the zoo records the same failure)
                print(f"  {name:<12} {scale:<7} no MLX artifact: {e.args[0]}")
                continue
            ratio = r["artifact"] / r["mlx.nn"]
            print(f"  {name:<12} {scale:<7} {r['artifact']:>17.3f} ms {r['mlx.nn']:>15.3f} ms {ratio:>6.2f} "
                  f"{r['artifact eager']:>12.3f} ms {r['artifact eager'] / r['artifact']:>17.2f}x"
                  f"{'' if ratio <= TARGET_RATIO else '  (above the 1.2 target)'}")
            rows.append((name, scale, r))
    return rows


def test_mlx_artifacts_vs_hand_written_mlx_nn() -> None:
    """In a child with the measuring children's environment; it fails if any version disagrees numerically."""
    from profiles.runtimes import child_env

    env = {**os.environ, **child_env("mlx"), "EDGEZOO_MLX_BENCH_ITERS": "100"}
    res = subprocess.run([sys.executable, "-m", "tests.benchmarks.test_mlx_compiled"], env=env, text=True,
                         capture_output=True, timeout=900, cwd=Path(__file__).resolve().parents[2])
    print(res.stdout, res.stderr[-3000:])
    assert res.returncode == 0
    assert res.stdout.count(" ms ") >= 3


if __name__ == "__main__":
    run_benchmarks(tuple(os.environ.get("EDGEZOO_MLX_BENCH_SCALES", "small").split(",")),
                   int(os.environ.get("EDGEZOO_MLX_BENCH_ITERS", "300")))
