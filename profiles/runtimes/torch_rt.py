"""PyTorch eager on a torch artifact (a safetensors checkpoint folder): the reference runtime. For an LM artifact
folder the checkpoint is OpenELM's, run through its cached forward (`forward_cached`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from profiles.runtimes.base import Runtime, RuntimeUnavailable


class TorchRuntime(Runtime):
    name = "torch"
    lm_part = "checkpoint"
    OPTIONS = {"device": ("cpu", "mps")}

    @classmethod
    def unavailable_with(cls, options: dict[str, Any]) -> str | None:
        if options.get("device", "cpu") == "cpu":
            return None
        if sys.platform != "darwin":
            return "torch on MPS needs macOS on Apple silicon; use device=cpu here"
        import torch

        return None if torch.backends.mps.is_available() else "torch.backends.mps.is_available() is False on this Mac"

    @classmethod
    def version(cls) -> str:
        import torch

        return torch.__version__

    def load(self, model_file: Path, threads: int, options: dict[str, Any]) -> None:
        import torch

        from models import checkpoint
        from models.registry import example_inputs, exportable

        torch.set_num_threads(threads)
        self._torch = torch
        folder = Path(model_file)
        model, _ = checkpoint.load(folder if folder.is_dir() else folder.parent)
        self._device = torch.device(options.get("device", "cpu"))
        self._example = example_inputs(exportable(model), 1)
        self.model = exportable(model).to(self._device)
        self._threads = threads

    def input_specs(self) -> list[dict[str, Any]]:
        return [{"name": f"input_{i}" if i else "input", "shape": [None, *t.shape[1:]],
                 "dtype": str(t.dtype).removeprefix("torch.")} for i, t in enumerate(self._example)]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        with self._torch.inference_mode():
            out = self.model(*(self._torch.from_numpy(x).to(self._device) for x in inputs))
        return [out.cpu().numpy()]  # copying back waits for the device: the pass is complete when this returns

    def options(self) -> dict[str, Any]:
        return {"num_threads": self._threads, "interop_threads": self._torch.get_num_interop_threads(),
                "device": str(self._device)}

    def load_lm(self, folder: Path, threads: int, options: dict[str, Any] | None = None) -> None:
        import torch

        from models import checkpoint

        if (options or {}).get("device", "cpu") != "cpu":
            raise RuntimeUnavailable("the torch LM runtime runs on the CPU only (device=cpu)")
        torch.set_num_threads(threads)
        self._torch = torch
        self.lm, _ = checkpoint.load(self.lm_folder(folder))
        self._cache: Any = None

    def _lm_step(self, ids: np.ndarray) -> np.ndarray:
        with self._torch.no_grad():
            logits, self._cache = self.lm.forward_cached(self._torch.from_numpy(ids), self._cache)
        return logits.numpy()

    def prefill(self, ids: np.ndarray) -> np.ndarray:
        self._cache = None
        return self._lm_step(ids)

    def decode_step(self, token: np.ndarray) -> np.ndarray:
        return self._lm_step(token)
