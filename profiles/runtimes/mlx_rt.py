"""MLX on an .mlxfn file (mx.import_function): the traced graph and its weights, no torch. CPU on Linux.

Input specs and the batch mode come from the JSON metadata EdgeZoo writes into the file. A foreign .mlxfn has
none, and the function MLX imports exposes no attributes; MLX states the shapes and dtypes it was exported with
only in the error it raises for a call that matches none of them, so that is where they are read from (the first
traced signature). Where that fails, the user passes them (`edgezoo profile --input x=1x64:float32`).

The imported function is profiled through `mx.compile` (option compile=true, the default): MLX then fuses
elementwise ops and skips the per-call graph bookkeeping, as an MLX app would run it; compile=false profiles the
function eagerly, op by op (a scenario of the same artifact).

An LM artifact's mlx/ folder is an mlx-lm model folder (exporters.lm.mlx_lm_export), loaded by mlx-lm and run with
mlx-lm's prompt cache. mlx-lm's generation (`generate_step`) calls the model eagerly with its KV cache (it compiles
only its samplers and a few activations), so the LM path has no compiled step to use and runs as mlx-lm does.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import ArtifactError
from profiles.runtimes.base import Runtime

MISMATCH = "[import_function::call]"  # how MLX begins the error for a call no exported signature matches
_FUNCTION = re.compile(r"^\s*\d+\. Function with (\d+) positional inputs and (\d+) keyword inputs:\s*$")
_INPUT = re.compile(r'^\s*(?:\d+|"(?P<kw>[^"]*)"): \((?P<shape>[\d,\s]*)\) (?P<dtype>\w+)\s*$')


class MlxInputsUnknown(ArtifactError):
    """A foreign .mlxfn whose input shapes EdgeZoo cannot learn, or inputs that do not match it."""


def _input_flags(specs: list[dict[str, Any]]) -> str:
    """The `edgezoo profile` flags that pass these inputs (a scalar has the empty shape)."""
    return " ".join(f"--input {s['name']}={'x'.join(map(str, s['shape']))}:{s['dtype']}" for s in specs)


def _describe(shapes_dtypes: list[tuple[list[int], str]]) -> str:
    """As MLX writes signatures: (1,64) float32, (10) float16."""
    return ", ".join(f"({','.join(map(str, shape))}) {dtype}" for shape, dtype in shapes_dtypes) or "no inputs"


def exported_inputs(message: str) -> list[dict[str, Any]] | None:
    """The inputs of the first signature listed in MLX's call-mismatch error (positional ones named input_0...,
    keyword ones by their name and flagged `keyword`), or None when the text lists none."""
    specs: list[dict[str, Any]] | None = None
    declared = 0
    for line in message.splitlines():
        if m := _FUNCTION.match(line):
            if specs is not None:
                break  # only the first traced signature
            specs, declared = [], int(m[1]) + int(m[2])
        elif specs is not None and (m := _INPUT.match(line)):
            shape = [int(d) for d in m["shape"].replace(" ", "").split(",") if d]
            specs.append({"name": m["kw"] if m["kw"] is not None else f"input_{len(specs)}", "shape": shape,
                          "dtype": m["dtype"], **({"keyword": True} if m["kw"] is not None else {})})
        elif specs is not None and not line.strip():
            break
    return specs if specs is not None and len(specs) == declared else None  # else: a format this does not know


def _mx(options: dict[str, Any]):
    import mlx.core as mx

    if sys.platform != "darwin" or options.get("device") == "cpu":
        mx.set_default_device(mx.cpu)  # the Linux build has only the CPU; on macOS the default is Metal
    return mx


class MlxRuntime(Runtime):
    name = "mlx"
    lm_part = "mlx"
    # device gpu: Metal, the default on macOS; Linux has only the CPU. compile: mx.compile the imported function
    OPTIONS = {"device": ("gpu", "cpu"), "compile": ("true", "false")}
    DEFAULT_OPTIONS = {"compile": "true"}

    @classmethod
    def unavailable_with(cls, options: dict[str, Any]) -> str | None:
        if options.get("device") == "gpu" and sys.platform != "darwin":
            return "MLX on Metal (device=gpu) needs macOS; the Linux build has only the CPU (device=cpu)"
        return None

    @classmethod
    def version(cls) -> str:
        return importlib.metadata.version("mlx")

    def load(self, model_file: Path, threads: int, options: dict[str, Any]) -> None:
        mx = self._mx = _mx(options)
        self._file = Path(model_file)
        self._imported, meta = mx.import_function(str(model_file), return_metadata=True)
        self.compiled = str(options.get("compile", self.DEFAULT_OPTIONS["compile"])) == "true"
        self._fn = mx.compile(self._imported) if self.compiled else self._imported
        self._meta = _parse(meta)
        self._threads = threads
        self._exported = None if self._meta.get("inputs") else self._probe()
        dynamic = self._meta.get("dynamic_batch", True)
        shape = ((self._meta.get("inputs") or [{}])[0].get("shape") or [None])
        self.fixed_batch = None if dynamic or shape[0] is None else int(shape[0])

    def load_lm(self, folder: Path, threads: int, options: dict[str, Any] | None = None) -> None:
        from mlx_lm.models.cache import make_prompt_cache

        from exporters.lm.mlx_lm_export import load_mlx_lm  # mlx-lm's loader (imports torch: only for LMs)

        self._mx, self._new_cache = _mx(options or {}), make_prompt_cache
        self.lm, _ = load_mlx_lm(self.lm_folder(folder))
        self._threads = threads
        self._cache: Any = None

    def _lm_step(self, ids: np.ndarray) -> np.ndarray:
        out = self.lm(self._mx.array(ids.astype(np.int32)), cache=self._cache)
        self._mx.eval(out)
        return np.array(out, dtype=np.float32)

    def prefill(self, ids: np.ndarray) -> np.ndarray:
        self._cache = self._new_cache(self.lm)
        return self._lm_step(ids)

    def decode_step(self, token: np.ndarray) -> np.ndarray:
        return self._lm_step(token)

    def _probe(self) -> list[dict[str, Any]] | None:
        """The inputs a foreign .mlxfn was exported with, from MLX's answer to a call with no arguments."""
        try:
            self._imported()
        except ValueError as e:
            return exported_inputs(str(e)) if str(e).startswith(MISMATCH) else None
        return []  # a function without inputs

    def input_specs(self) -> list[dict[str, Any]]:
        if self._meta.get("inputs"):
            return self._meta["inputs"]
        if self._exported is None:
            raise MlxInputsUnknown(
                f"{self._file} declares no input shapes EdgeZoo can read (no EdgeZoo metadata, and MLX "
                f"{self.version()} exposes none for an imported function)",
                "pass them to `edgezoo profile`, one --input per input in call order, e.g. --input x=1x64:float32")
        return self._exported

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        mx = self._mx
        arrays = [mx.array(np.ascontiguousarray(x)) for x in inputs]
        args, kwargs = arrays, {}
        if self._exported:  # a foreign file: dtypes numpy lacks (bfloat16), keyword inputs by name
            arrays = [a.astype(getattr(mx, s["dtype"])) if s["dtype"] == "bfloat16" else a
                      for a, s in zip(arrays, self._exported)] + arrays[len(self._exported):]
            n = sum(not s.get("keyword") for s in self._exported)
            args, kwargs = arrays[:n], {s["name"]: a for s, a in zip(self._exported[n:], arrays[n:])}
        try:
            outs = self._fn(*args, **kwargs)
        except ValueError as e:
            if not str(e).startswith(MISMATCH):
                raise
            given = _describe([(list(x.shape), str(x.dtype)) for x in inputs])
            takes = exported_inputs(str(e))
            raise MlxInputsUnknown(
                f"{self._file} was exported for other inputs than {given}"
                + (f": it takes {_describe([(s['shape'], s['dtype']) for s in takes])}" if takes else ""),
                f"pass those to `edgezoo profile`: {_input_flags(takes)}" if takes else
                f"pass its inputs to `edgezoo profile`, e.g. --input x=1x64:float32 ({' '.join(str(e).split())[:300]})"
            ) from None
        mx.eval(*outs)
        return [np.array(o.astype(mx.float32) if o.dtype == mx.bfloat16 else o) for o in outs]  # numpy has no bf16

    def options(self) -> dict[str, Any]:
        return {"device": str(self._mx.default_device()), "compiled": self.compiled, "threads_requested": self._threads,
                "threads_applied": False,  # MLX has no thread-count setting for its CPU backend
                "dynamic_batch": self.fixed_batch is None, "metadata": bool(self._meta)}


def _parse(meta: str | None) -> dict[str, Any]:
    try:
        data = json.loads(meta) if meta else {}
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
