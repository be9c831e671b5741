"""MLX on an .mlxfn file (mx.import_function): the traced graph and its weights, no torch. CPU on Linux.

Input specs and the batch mode come from the JSON metadata EdgeZoo writes into the file; a foreign .mlxfn
without it is taken as one float32 input of unknown shape, any batch.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from profiles.runtimes.base import Runtime

UNKNOWN_INPUTS = [{"name": "input", "shape": None, "dtype": "float32"}]


class MlxRuntime(Runtime):
    name = "mlx"

    @classmethod
    def version(cls) -> str:
        return importlib.metadata.version("mlx")

    def load(self, model_file: Path, threads: int, options: dict[str, Any]) -> None:
        import mlx.core as mx

        if sys.platform != "darwin" or options.get("device") == "cpu":
            mx.set_default_device(mx.cpu)  # the Linux build has only the CPU; on macOS the default is Metal
        self._mx = mx
        self._fn, meta = mx.import_function(str(model_file), return_metadata=True)
        self._meta = _parse(meta)
        self._threads = threads
        dynamic = self._meta.get("dynamic_batch", True)
        shape = (self.input_specs()[0].get("shape") or [None])
        self.fixed_batch = None if dynamic or shape[0] is None else int(shape[0])

    def input_specs(self) -> list[dict[str, Any]]:
        return self._meta.get("inputs") or UNKNOWN_INPUTS

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        mx = self._mx
        outs = self._fn(*(mx.array(np.ascontiguousarray(x)) for x in inputs))
        mx.eval(*outs)
        return [np.array(o) for o in outs]

    def options(self) -> dict[str, Any]:
        return {"device": str(self._mx.default_device()), "threads_requested": self._threads,
                "threads_applied": False,  # MLX has no thread-count setting for its CPU backend
                "dynamic_batch": self.fixed_batch is None, "metadata": bool(self._meta)}


def _parse(meta: str | None) -> dict[str, Any]:
    try:
        data = json.loads(meta) if meta else {}
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
