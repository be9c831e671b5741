"""onnxruntime, CPU execution provider, threads pinned. An LM artifact's onnx/ folder holds two graphs with the KV
cache explicit (exporters.lm.onnx_lm): prefill.onnx (input_ids, pad -> logits, present.*) and decode.onnx (input_ids,
pad, past.* -> logits, present.*); `pad` counts each row's left padding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from profiles.runtimes.base import Runtime

_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
              "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(int8)": "int8", "tensor(bool)": "bool",
              "tensor(double)": "float64"}


def _session(path: Path, threads: int, providers: list[str]):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=providers)


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    lm_part = "onnx"

    @classmethod
    def version(cls) -> str:
        import onnxruntime

        return onnxruntime.__version__

    def load(self, model_file: Path, threads: int, options: dict[str, Any]) -> None:
        self._providers = options.get("providers", ["CPUExecutionProvider"])
        self.session = _session(model_file, threads, self._providers)
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

    def load_lm(self, folder: Path, threads: int, options: dict[str, Any] | None = None) -> None:
        folder = self.lm_folder(folder)
        providers = (options or {}).get("providers", ["CPUExecutionProvider"])
        self._prefill = _session(folder / "prefill.onnx", threads, providers)
        self._decode = _session(folder / "decode.onnx", threads, providers)
        present = [o.name for o in self._decode.get_outputs()][1:]
        self._past_names = ["past" + name.removeprefix("present") for name in present]
        self._cache: list[np.ndarray] | None = None
        self._pad = np.zeros(0, np.int64)

    def prefill(self, ids: np.ndarray, pad: np.ndarray | None = None) -> np.ndarray:
        """`pad` (B,): each row's left padding (none by default), kept for the decode steps that follow."""
        self._cache = None
        self._pad = np.zeros(len(ids), np.int64) if pad is None else np.asarray(pad, np.int64)
        out = self._prefill.run(None, {"input_ids": ids.astype(np.int64), "pad": self._pad})
        self._cache = out[1:]
        return out[0]

    def decode_step(self, token: np.ndarray) -> np.ndarray:
        out = self._decode.run(None, {"input_ids": token.astype(np.int64), "pad": self._pad,
                                      **dict(zip(self._past_names, self._cache))})
        self._cache = out[1:]
        return out[0]
