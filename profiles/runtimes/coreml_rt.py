"""Core ML through coremltools' MLModel.predict: macOS only; elsewhere the run is recorded as 'unavailable',
after the package's structure has been checked (a broken package is a failure on every platform).

Options: compute_units = ALL (default) | CPU_ONLY | CPU_AND_GPU | CPU_AND_NE. Core ML has no thread setting:
`threads` is recorded, not applied.

An LM artifact's coreml/ folder holds one stateful program (exporters.lm.coreml_lm) whose KV cache lives in a
make_state() state; the cached length travels in the causal mask's shape. It is a batch-1 program: a multi-row
prefill (the bpb windows) runs row by row, each from a fresh state, and leaves no cache to decode from.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import ArtifactError
from profiles.runtimes.base import Runtime, RuntimeUnavailable

UNAVAILABLE = "Core ML runs only on macOS; this artifact was verified structurally"
LM_UNAVAILABLE = "Core ML runs only on macOS 15+; this LM artifact was verified structurally (lm_manifest.json)"
COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")
SPEC_DIR = "Data"  # an .mlpackage keeps the items its Manifest.json lists under Data/


class InvalidCoreMLPackage(ArtifactError):
    """The .mlpackage / .mlmodel is damaged or incomplete (recorded as a failure, not as 'unavailable')."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path} is not a valid Core ML package: {problem}",
                         "re-export it (`exporters coreml CKPT`) or copy the whole .mlpackage folder again")


def _root_spec(package: Path) -> Path:
    """The model spec file that the package's Manifest.json names as its root model, after checking that every
    item the manifest lists is there."""
    manifest = package / "Manifest.json"
    if not manifest.is_file():
        raise InvalidCoreMLPackage(package, "Manifest.json is missing")
    try:
        data = json.loads(manifest.read_text())
        items = data["itemInfoEntries"]
        root = items[data["rootModelIdentifier"]]["path"]
        paths = [str(item["path"]) for item in items.values()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidCoreMLPackage(package, f"Manifest.json is not readable JSON ({e})") from None
    except (KeyError, TypeError, AttributeError) as e:
        raise InvalidCoreMLPackage(package, f"Manifest.json names no root model ({e.__class__.__name__}: {e})"
                                   ) from None
    for rel in paths:
        item = package / SPEC_DIR / rel
        if not item.resolve().is_relative_to(package.resolve()):
            raise InvalidCoreMLPackage(package, f"Manifest.json lists {rel!r}, outside the package")
        if not item.exists():
            raise InvalidCoreMLPackage(package, f"{SPEC_DIR}/{rel}, listed in Manifest.json, is missing")
    return package / SPEC_DIR / str(root)


def _blob_refs(message) -> Iterator[tuple[str, int]]:
    """(file name, offset) of every weight blob a Core ML spec refers to (ML program `blobFileValue`s)."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.name == "blobFileValue":
            yield value.fileName, value.offset
        elif hasattr(value, "ListFields"):
            yield from _blob_refs(value)
        else:  # a repeated field or a map (whose values may be messages)
            for item in value.values() if hasattr(value, "keys") else value:
                if hasattr(item, "ListFields"):
                    yield from _blob_refs(item)


def check_package(path: Path) -> None:
    """Check an .mlpackage (or .mlmodel) without Core ML: Manifest.json, the root model spec it names parsed by
    coremltools' protobuf (a model type and inputs), and every weight file the spec refers to present and long
    enough. Raises InvalidCoreMLPackage naming the first problem. Without coremltools only the files are checked."""
    path = Path(path)
    spec_file = _root_spec(path) if path.is_dir() else path
    where = spec_file.relative_to(path) if path.is_dir() else spec_file.name
    try:
        raw = spec_file.read_bytes()
    except OSError as e:
        raise InvalidCoreMLPackage(path, f"{where} cannot be read ({e})") from None
    try:
        from google.protobuf.message import DecodeError

        from exporters.coreml_common import load_coremltools

        model_pb2 = load_coremltools().proto.Model_pb2
    except ImportError:
        return
    spec = model_pb2.Model()
    try:
        spec.ParseFromString(raw)
    except DecodeError as e:  # truncated, or not a spec at all
        raise InvalidCoreMLPackage(path, f"{where} is not a Core ML model spec ({e})") from None
    if spec.WhichOneof("Type") is None or not spec.description.input:
        raise InvalidCoreMLPackage(path, f"{where} holds no model (no model type or no inputs; {len(raw)} bytes)")
    for name, offset in set(_blob_refs(spec)):
        blob = spec_file.parent / name.removeprefix("@model_path/")
        if not blob.is_file():
            raise InvalidCoreMLPackage(path, f"weight file {name} that {where} refers to is missing")
        if offset >= blob.stat().st_size:
            raise InvalidCoreMLPackage(path, f"weight file {name} is truncated ({blob.stat().st_size} bytes, a "
                                             f"weight starts at byte {offset})")


def _mlmodel(path: Path, options: dict[str, Any]) -> tuple[Any, str]:
    """(MLModel, compute units) for a package on macOS, the units checked."""
    units = str(options.get("compute_units", "ALL")).upper()
    if units not in COMPUTE_UNITS:
        raise ValueError(f"unknown Core ML compute_units {units!r}; use one of {', '.join(COMPUTE_UNITS)}")
    from exporters.coreml_common import load_coremltools

    ct = load_coremltools()
    return ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, units)), units


class CoreMLRuntime(Runtime):
    name = "coreml"
    lm_part = "coreml"
    OPTIONS = {"compute_units": COMPUTE_UNITS}

    @classmethod
    def version(cls) -> str:
        import importlib.metadata

        try:
            return importlib.metadata.version("coremltools")
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    @classmethod
    def unavailable_here(cls) -> str | None:
        return None if sys.platform == "darwin" else UNAVAILABLE

    def load(self, model_file: Path, threads: int, options: dict[str, Any]) -> None:
        check_package(model_file)
        if sys.platform != "darwin":
            raise RuntimeUnavailable(UNAVAILABLE)
        from exporters.coreml_common import feature

        self.model, units = _mlmodel(model_file, options)
        desc = self.model.get_spec().description
        self._inputs = [feature(f) for f in desc.input]
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

    def load_lm(self, folder: Path, threads: int, options: dict[str, Any] | None = None) -> None:
        if sys.platform != "darwin":
            raise RuntimeUnavailable(LM_UNAVAILABLE)
        from exporters.lm.coreml_lm import INFO_FILE, MODEL_FILE, causal_mask

        folder = self.lm_folder(folder)
        self.lm_info = json.loads((folder / INFO_FILE).read_text())
        self.lm, self._units = _mlmodel(folder / MODEL_FILE, options or {})
        self._causal_mask, self._threads = causal_mask, threads
        self._state: Any = None
        self._past = 0

    def _lm_step(self, ids: np.ndarray, state: Any, past: int) -> np.ndarray:
        """ids (1, T) after `past` positions cached in `state` -> logits (1, T, V)."""
        t = ids.shape[1]
        if past + t > self.lm_info["max_len"]:
            raise ValueError(f"{past + t} positions exceed the Core ML cache ({self.lm_info['max_len']})")
        out = self.lm.predict({"input_ids": ids.astype(np.int32), "causal_mask": self._causal_mask(past, t)},
                              state=state)
        return np.asarray(out["logits"], dtype=np.float32)

    def prefill(self, ids: np.ndarray) -> np.ndarray:
        self._state, self._past = None, 0
        if len(ids) > 1:
            return np.concatenate([self._lm_step(row[None], self.lm.make_state(), 0) for row in ids])
        self._state = self.lm.make_state()
        logits = self._lm_step(ids, self._state, 0)
        self._past = ids.shape[1]
        return logits

    def decode_step(self, token: np.ndarray) -> np.ndarray:
        if self._state is None:
            raise ValueError("Core ML decodes after a one-row prefill only (its program takes batch 1)")
        logits = self._lm_step(token, self._state, self._past)
        self._past += token.shape[1]
        return logits
