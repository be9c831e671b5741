"""onnxruntime, CPU execution provider, threads pinned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from profiles.runtimes.base import Runtime

_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
              "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(int8)": "int8", "tensor(bool)": "bool",
              "tensor(double)": "float64"}


class OnnxRuntime(Runtime):
    name = "onnxruntime"

    @classmethod
    def version(cls) -> str:
        import onnxruntime

        return onnxruntime.__version__

    def load(self, model_file: Path, threads: int, options: dict[str, Any]) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        self._providers = options.get("providers", ["CPUExecutionProvider"])
        self.session = ort.InferenceSession(str(model_file), so, providers=self._providers)
        self._names = [i.name for i in self.session.get_inputs()]
        self._threads = threads

    def input_specs(self) -> list[dict[str, Any]]:
        return [{"name": i.name, "shape": [d if isinstance(d, int) else None for d in i.shape],
                 "dtype": _ORT_TYPES.get(i.type, "float32")} for i in self.session.get_inputs()]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, dict(zip(self._names, inputs)))

    def options(self) -> dict[str, Any]:
        return {"intra_op_num_threads": self._threads, "inter_op_num_threads": 1,
                "providers": self.session.get_providers()}
