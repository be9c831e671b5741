"""The measuring child: `python -m profiles.child REQUEST.json RESULT.json`.

Runs in a fresh process per (artifact, runtime, scenario) so that peak memory and imports are its own.
Imports only numpy, the standard library and the one runtime it measures.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from profiles import memory
from profiles import record as R
from profiles.runtimes import resolve
from profiles.runtimes.base import RuntimeUnavailable

_DTYPES = {"float32": np.float32, "float16": np.float16, "int64": np.int64, "int32": np.int32, "uint8": np.uint8,
           "int8": np.int8, "bool": np.bool_, "float64": np.float64}


def synthesize_inputs(specs: list[dict[str, Any]], batch: int, seed: int = 0) -> list[np.ndarray]:
    """Inputs from declared specs: dynamic dims become `batch` (first) or 1; floats ~U(0,1), ints in [0, 16)."""
    rng = np.random.default_rng(seed)
    out = []
    for spec in specs:
        shape = [(batch if i == 0 else 1) if d is None else d for i, d in enumerate(spec["shape"] or [batch])]
        dtype = _DTYPES.get(spec.get("dtype", "float32"), np.float32)
        arr = rng.random(shape) if np.issubdtype(dtype, np.floating) else rng.integers(0, 16, shape)
        out.append(arr.astype(dtype))
    return out


def held_out_inputs(folder: Path, specs: list[dict[str, Any]], batch: int) -> list[np.ndarray] | None:
    """A model with integer inputs (ByteFormer's byte tokens and padding mask) is timed on the first `batch` rows of
    its held-out inputs (eval.npz x, x_1, ...): random integers are not valid files. None for float-only inputs or
    when the folder holds no matching eval data."""
    if all(np.issubdtype(_DTYPES.get(s.get("dtype", "float32"), np.float32), np.floating) for s in specs):
        return None
    path = folder / "eval.npz"
    if not path.is_file():
        return None
    data = np.load(path)
    keys = ["x", *sorted((k for k in data.files if k.startswith("x_")), key=lambda k: int(k[2:]))]
    if len(keys) != len(specs) or "x" not in data.files:
        return None
    rows = [data[k] for k in keys]
    reps = -(-batch // len(rows[0]))  # more rows than the split holds: repeated
    return [np.concatenate([r] * reps)[:batch] for r in rows]


def _timed_loop(rt, inputs: list[np.ndarray], sc: dict[str, Any]) -> tuple[list[float], dict[str, Any]]:
    """Run until both min_iters and min_seconds are reached, or a cap (max_iters, max_seconds) stops it first.
    Returns the samples (s) and how the loop ended: `stopped_by` and whether it ran under min_seconds."""
    samples: list[float] = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        rt.run(inputs)
        samples.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        if len(samples) >= sc["min_iters"] and elapsed >= sc["min_seconds"]:
            stopped_by = "min_iters_and_seconds"
        elif len(samples) >= sc["max_iters"]:
            stopped_by = "max_iters"
        elif elapsed >= sc["max_seconds"]:
            stopped_by = "max_seconds"
        else:
            continue
        return samples, {"stopped_by": stopped_by, "loop_seconds": elapsed, "min_seconds": sc["min_seconds"],
                         "below_min_seconds": elapsed < sc["min_seconds"],
                         "below_min_iters": len(samples) < sc["min_iters"]}


def at_input_size(specs: list[dict[str, Any]], size: int | None) -> list[dict[str, Any]]:
    """Input specs with the first image input's height and width set to `size` (a scenario's input resolution)."""
    if size is None or not specs or len(specs[0].get("shape") or []) != 4:
        return specs
    return [{**specs[0], "shape": [*specs[0]["shape"][:2], size, size]}, *specs[1:]]


def _evaluate(rt, folder: Path, size: int | None = None) -> dict[str, Any] | None:
    """Accuracy on the held-out split and parity vs the torch reference, from the artifact's own outputs. At another
    input size the test images are resized (bilinear) to it and there is no reference: accuracy only."""
    path = folder / "eval.npz"
    if not path.exists():
        return None
    from exporters.verify import numeric_parity

    data = np.load(path)
    x = base = data["x"]
    if size is not None and x.ndim == 4 and x.shape[-1] != size:
        from trainers.data import resize_bilinear

        x = resize_bilinear(x, size)
    step = rt.fixed_batch or 128
    more = [data[k] for k in sorted((k for k in data.files if k.startswith("x_")), key=lambda k: int(k[2:]))]
    outs = [rt.run([x[i:i + step], *(m[i:i + step] for m in more)])[0] for i in range(0, len(x), step)]
    logits = np.concatenate([np.asarray(o, dtype=np.float32).reshape(-1, data["reference"].shape[-1]) for o in outs])
    out: dict[str, Any] = {}
    if "y" in data.files:  # a user model exported without labels: accuracy not measured, parity only
        acc = float((logits.argmax(-1) == data["y"]).mean())
        dataset = str(data["source"]) if "source" in data.files else "test split"
        dataset = dataset if x is base else f"{dataset} resized to {size}x{size}"
        out["accuracy"] = R.Quality("top1", acc, dataset, int(len(data["y"]))).to_dict()
    elif "quality" in data.files:  # deployment scale (app/deploy.py): seeded weights, quality not measured
        out["accuracy"] = R.Quality("top1", None, str(data["quality"])).to_dict()
    if x is base:
        floor = float(data["min_sqnr_db"]) if "min_sqnr_db" in data.files else None
        out["parity"] = R.Parity.from_dict({"reference": "torch fp32 (after torch-level compression)",
                                            **numeric_parity(logits, data["reference"], floor)}).to_dict()
    return out


def measure_in_child(req: dict[str, Any]) -> dict[str, Any]:
    sc = req["scenario"]
    runtime_cls = resolve(req["runtime"])
    rt = runtime_cls()
    result: dict[str, Any] = {"runtime": req["runtime"], "runtime_version": runtime_cls.version()}
    rss_before = memory.current_rss()
    t0 = time.perf_counter()
    rt.load(Path(req["model_file"]), req["threads"], req.get("options", {}))
    result["load_seconds"] = time.perf_counter() - t0
    rss_loaded = memory.current_rss()
    result["runtime_options"] = rt.options()
    specs = at_input_size(req.get("inputs") or rt.input_specs(), sc.get("input_size"))
    batch = rt.fixed_batch or sc["batch"]
    inputs = held_out_inputs(Path(req.get("folder") or "."), specs, batch) or synthesize_inputs(specs, batch)
    peak_reset = memory.reset_peak()
    t0 = time.perf_counter()
    rt.run(inputs)
    result["first_call_ms"] = (time.perf_counter() - t0) * 1e3
    for _ in range(sc["warmup"]):
        rt.run(inputs)
    samples, ended = _timed_loop(rt, inputs, sc)
    peak = memory.peak_rss()  # before any statistics allocate
    result["latency"] = R.Latency.of(samples, **ended).to_dict()
    result["memory"] = R.Memory(peak, rss_before, (rss_loaded - rss_before) if rss_before and rss_loaded else None,
                                peak_reset, memory.peak_label(peak_reset), nulls=frozenset({"load_delta_bytes"})).to_dict()
    result["input_shapes"] = [list(x.shape) for x in inputs]
    result["load_average"] = list(os.getloadavg())  # 1, 5, 15 min after the loop: how shared the machine was
    if req.get("evaluate", True):
        result.update(_evaluate(rt, Path(req["folder"]), sc.get("input_size")) or {})
    result["status"] = "ok"
    return result


def main(argv: list[str]) -> int:
    req = json.loads(Path(argv[0]).read_text())
    try:
        result = measure_in_child(req)
    except RuntimeUnavailable as e:
        result = R.failure("unavailable", "RuntimeUnavailable", str(e))
    except Exception as e:  # recorded, not swallowed: the parent stores it as a failure row
        result = R.failure("failed", e.__class__.__name__, (str(e).strip().splitlines() or [""])[0][:500],
                           traceback=traceback.format_exc()[-4000:])
    Path(argv[1]).write_text(json.dumps(result, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
