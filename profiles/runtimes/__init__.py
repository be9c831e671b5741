"""Runtimes, one per name for every task: `load(artifact, threads)`, `run(inputs)` (synchronised), `input_specs()`
for vision artifacts; `load_lm(folder, threads)`, `prefill(ids)`, `decode_step(token)` for LM artifact folders.

Each runtime module is imported only inside the profiling child, so heavy libraries stay out of the parent.
A runtime may also be named as `package.module:Class` for runtimes that live outside EdgeZoo.
"""

from __future__ import annotations

import importlib
from typing import Any

RUNTIMES = {
    "torch": "profiles.runtimes.torch_rt:TorchRuntime",
    "onnxruntime": "profiles.runtimes.onnxruntime_rt:OnnxRuntime",
    "mlx": "profiles.runtimes.mlx_rt:MlxRuntime",
    "coreml": "profiles.runtimes.coreml_rt:CoreMLRuntime",
}
DEFAULT_RUNTIME = {"torch": "torch", "onnx": "onnxruntime", "mlx": "mlx", "coreml": "coreml"}  # format -> runtime


OPENBLAS = "/usr/lib/x86_64-linux-gnu/libopenblas.so.0"  # Debian's libopenblas0-pthread


def child_env(runtime: str) -> dict[str, str]:
    """Environment a runtime's measuring child needs before it starts. MLX's CPU backend on Linux bundles a
    slow BLAS; with Debian's OpenBLAS preloaded its matmuls and convolutions run ~1.7x faster here."""
    import os
    import sys

    if runtime == "mlx" and sys.platform.startswith("linux") and os.path.exists(OPENBLAS):
        return {"LD_PRELOAD": OPENBLAS}
    return {}


def resolve(name: str) -> Any:
    """Runtime class for a registered name or a `module:Class` path."""
    target = RUNTIMES.get(name, name)
    if ":" not in target:
        raise KeyError(f"unknown runtime {name!r}; use one of {', '.join(RUNTIMES)} or module:Class")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def check_options(name: str, options: dict[str, Any]) -> dict[str, str]:
    """The options a measurement asks of runtime `name`, checked against what it declares (`Runtime.OPTIONS`);
    raises EdgeZooError naming the option or value and what is accepted."""
    from models.errors import EdgeZooError

    try:
        declared = getattr(resolve(name), "OPTIONS", {})
    except Exception as e:  # an unknown name or a module:Class that does not import
        raise EdgeZooError(f"runtime {name!r} does not load ({e})", "check the runtime name") from None
    for key, value in options.items():
        if key not in declared:
            accepted = ", ".join(declared) or "none"
            raise EdgeZooError(f"runtime {name!r} has no option {key!r}", f"its options: {accepted}")
        if str(value) not in declared[key]:
            raise EdgeZooError(f"{name} option {key}={value!r} is not accepted",
                               f"use one of {', '.join(declared[key])}")
    return {k: str(v) for k, v in options.items()}


def with_defaults(name: str, options: dict[str, Any]) -> dict[str, str]:
    """`options` plus the runtime's defaults for those not set (`Runtime.DEFAULT_OPTIONS`), so that a measurement
    records, and is cached under, what actually ran (e.g. MLX compiled)."""
    try:
        defaults = getattr(resolve(name), "DEFAULT_OPTIONS", {})
    except Exception:  # a runtime that does not load is reported where it is measured
        defaults = {}
    return {**defaults, **{k: str(v) for k, v in options.items()}}
