"""The runtime contract. Implementations import their library lazily, inside `load`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class RuntimeUnavailable(Exception):
    """This runtime cannot run on this machine (e.g. Core ML on Linux): recorded as status 'unavailable'."""


class Runtime:
    name = "base"
    fixed_batch: int | None = None  # set when the loaded model only takes one batch size

    @classmethod
    def version(cls) -> str:
        return "unknown"

    @classmethod
    def unavailable_here(cls) -> str | None:
        """Why this runtime cannot run on this machine at all (checked by the parent, no child needed), or None."""
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
