"""PyTorch eager on a torch artifact (a safetensors checkpoint folder): the reference runtime. For an LM artifact
folder the checkpoint is OpenELM's, run through its cached forward (`forward_cached`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from profiles.runtimes.base import Runtime


class TorchRuntime(Runtime):
    name = "torch"
    lm_part = "checkpoint"

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
        self.model = exportable(model)
        self._example = example_inputs(self.model, 1)
        self._threads = threads

    def input_specs(self) -> list[dict[str, Any]]:
        return [{"name": f"input_{i}" if i else "input", "shape": [None, *t.shape[1:]],
                 "dtype": str(t.dtype).removeprefix("torch.")} for i, t in enumerate(self._example)]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        with self._torch.inference_mode():
            out = self.model(*(self._torch.from_numpy(x) for x in inputs))
        return [out.numpy()]

    def options(self) -> dict[str, Any]:
        return {"num_threads": self._threads, "interop_threads": self._torch.get_num_interop_threads()}

    def load_lm(self, folder: Path, threads: int, options: dict[str, Any] | None = None) -> None:
        import torch

        from models import checkpoint

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
