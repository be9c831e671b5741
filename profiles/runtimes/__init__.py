"""Runtimes: `load(artifact, threads)`, `run(inputs)` (synchronised), `input_specs()`.

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
DEFAULT_RUNTIME = {"onnx": "onnxruntime", "mlx": "mlx", "coreml": "coreml", "torch": "torch"}


def resolve(name: str) -> Any:
    """Runtime class for a registered name or a `module:Class` path."""
    target = RUNTIMES.get(name, name)
    if ":" not in target:
        raise KeyError(f"unknown runtime {name!r}; use one of {', '.join(RUNTIMES)} or module:Class")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)
