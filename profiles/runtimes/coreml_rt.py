"""Core ML through coremltools' MLModel.predict: macOS only; elsewhere the run is recorded as 'unavailable'.

Options: compute_units = ALL (default) | CPU_ONLY | CPU_AND_GPU | CPU_AND_NE. Core ML has no thread setting:
`threads` is recorded, not applied.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from profiles.runtimes.base import Runtime, RuntimeUnavailable

UNAVAILABLE = "Core ML runs only on macOS; this artifact was verified structurally"
COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")


class CoreMLRuntime(Runtime):
    name = "coreml"

    @classmethod
    def version(cls) -> str:
        import importlib.metadata

        try:
            return importlib.metadata.version("coremltools")
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    def load(self, model_file: Path, threads: int, options: dict[str, Any]) -> None:
        if sys.platform != "darwin":
            raise RuntimeUnavailable(UNAVAILABLE)
        units = str(options.get("compute_units", "ALL")).upper()
        if units not in COMPUTE_UNITS:
            raise ValueError(f"unknown Core ML compute_units {units!r}; use one of {', '.join(COMPUTE_UNITS)}")
        from exporters.coreml import _ct, _feature

        ct = _ct()
        self.model = ct.models.MLModel(str(model_file), compute_units=getattr(ct.ComputeUnit, units))
        desc = self.model.get_spec().description
        self._inputs = [_feature(f) for f in desc.input]
        self._outputs = [f.name for f in desc.output]
        self._units = units
        self._threads = threads
        first = self._inputs[0]["shape"] if self._inputs else None
        self.fixed_batch = first[0] if first and first[0] is not None else None

    def input_specs(self) -> list[dict[str, Any]]:
        return [dict(spec) for spec in self._inputs]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        feed = {spec["name"]: np.ascontiguousarray(x, dtype=spec["dtype"] if spec["dtype"] in ("float32", "float16")
                                                   else None) for spec, x in zip(self._inputs, inputs)}
        out = self.model.predict(feed)  # synchronous: outputs are numpy arrays when it returns
        return [np.asarray(out[name]) for name in self._outputs]

    def options(self) -> dict[str, Any]:
        return {"compute_units": self._units, "threads_requested": self._threads,
                "threads": "not configurable in Core ML"}
