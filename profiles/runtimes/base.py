"""The runtime contract, one per runtime name for every task: `load`/`input_specs`/`run` for a vision artifact,
`load_lm`/`prefill`/`decode_step` for an LM artifact folder (the KV cache is held inside the runtime).
Implementations import their library lazily, inside `load` / `load_lm`."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np


class RuntimeUnavailable(Exception):
    """This runtime cannot run on this machine (e.g. Core ML on Linux): recorded as status 'unavailable'."""


LM_MANIFEST = "lm_manifest.json"  # what marks an LM artifact folder (exporters.lm.artifact writes it)


class Runtime:
    name = "base"
    fixed_batch: int | None = None  # set when the loaded model only takes one batch size
    lm_part = ""  # the sub-folder of an LM artifact folder that this runtime loads

    @classmethod
    def version(cls) -> str:
        return "unknown"

    # the options a measurement may set, each with its accepted values: scenarios of one artifact on one runtime
    # (Core ML compute units, MLX on Metal or the CPU, torch on MPS or the CPU); values are upper/lower case as listed
    OPTIONS: dict[str, tuple[str, ...]] = {}
    # the values a measurement uses for options it does not set, recorded with its scenario like set ones
    DEFAULT_OPTIONS: dict[str, str] = {}

    @classmethod
    def unavailable_here(cls) -> str | None:
        """Why this runtime cannot run on this machine at all (checked by the parent, no child needed), or None."""
        return None

    @classmethod
    def unavailable_with(cls, options: dict[str, Any]) -> str | None:
        """Why these options cannot run on this machine (e.g. Metal on Linux), or None; the parent checks it."""
        return None

    def load(self, model_file: Path, threads: int, options: dict[str, Any]) -> None:
        raise NotImplementedError

    def input_specs(self) -> list[dict[str, Any]]:
        """[{name, shape (None = dynamic), dtype}] as the loaded model declares them."""
        raise NotImplementedError

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """One synchronous forward pass: outputs are materialised when this returns."""
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """What was actually configured (threads, providers, compute units), for the record."""
        return {}

    # ------------------------------------------------------------------------------------------------ LM side

    def lm_folder(self, folder: Path) -> Path:
        """This runtime's part of an LM artifact folder, or `folder` itself when it is that part already (as during
        an export's verification, before the manifest is written)."""
        folder = Path(folder)
        return folder / self.lm_part if (folder / LM_MANIFEST).is_file() else folder

    def load_lm(self, folder: Path, threads: int, options: dict[str, Any] | None = None) -> None:
        """Load an LM artifact folder (or this runtime's part of one) for `prefill` / `decode_step`."""
        raise NotImplementedError(f"the {self.name} runtime does not run language models")

    def prefill(self, ids: np.ndarray) -> np.ndarray:
        """Token ids (B, T) -> logits (B, T, V) as float32, starting a fresh KV cache."""
        raise NotImplementedError

    def decode_step(self, token: np.ndarray) -> np.ndarray:
        """The next token ids (B, 1) after the cached ones -> logits (B, 1, V), the cache extended."""
        raise NotImplementedError

    def greedy(self, prompt: np.ndarray, max_new_tokens: int, **prefill_options: Any) -> np.ndarray:
        """(B, max_new_tokens) greedy tokens after `prompt`: `generate_step` over this runtime's prefill + decode steps."""
        from models.generation.generate import generate_step

        prefill = functools.partial(self.prefill, **prefill_options)
        return np.stack(list(generate_step(self.decode_step, prompt, max_new_tokens, prefill=prefill)), 1)
