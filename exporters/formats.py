"""The exporter registry: one plug-in per format, for vision (classification) and language models alike.

Each plug-in names its format, the model-file suffixes it reads, the compression methods it supports per task,
the runtime that measures it by default, and the modules that implement it (imported on first use: converters are
heavy). Every list of formats (`exporters.FORMATS`, model files, supported compressions) is derived from here.

An implementation module offers `export(model, inputs, out_dir, spec) -> info` and `verify(model, artifact)` for
classifiers, `lm_export(model, out_dir, spec, card) -> info` and `lm_verify(model, artifact)` for language models.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLASSIFICATION, LM = "classification", "lm"
TASKS = (CLASSIFICATION, LM)
LM_METHODS = frozenset({"none", "int8", "int4", "seedlm", "dynamoe"})  # LM int8/int4: group-32 RTN; seedlm 3/4 bits;
# dynamoe: a DynaMoE checkpoint routed at theta


def task_of(card: dict[str, Any]) -> str:
    """A checkpoint's task from its card: "lm" for language models, classification otherwise."""
    return LM if card.get("task") == LM else CLASSIFICATION


@dataclass(frozen=True)
class Exporter:
    name: str
    suffixes: tuple[str, ...]   # model files of this format EdgeZoo can load without a manifest (foreign models)
    model_file: str             # what a classification artifact folder holds
    lm_part: str                # the sub-folder an LM artifact folder holds
    compressions: dict[str, frozenset[str]]  # task -> compression methods
    runtime: str                # the runtime that measures it by default (profiles.runtimes)
    module: str                 # classification implementation
    lm_module: str              # language-model implementation
    native_lm: frozenset[str] = field(default_factory=frozenset)  # LM methods the format's own library applies

    def artifact_file(self, task: str) -> str:
        return self.lm_part if task == LM else self.model_file

    def supports(self, task: str) -> frozenset[str]:
        return self.compressions.get(task, frozenset())

    def implementation(self, task: str):
        return importlib.import_module(self.lm_module if task == LM else self.module)

    def export(self, model, out_dir: Path, spec, task: str = CLASSIFICATION, inputs=None,
               card: dict[str, Any] | None = None, sizes: tuple[int, ...] = (), io: Any = None) -> dict[str, Any]:
        """`sizes`: square input sizes a classifier also takes besides the example's (multi-scale models). `io`:
        a user model's input/output names and dynamic axes (exporters/own.py `IOSpec`)."""
        impl = self.implementation(task)
        if task == LM:
            return impl.lm_export(model, out_dir, spec, card or {})
        if io is not None:
            return impl.export(model, inputs, out_dir, spec, io=io)
        return impl.export(model, inputs, out_dir, spec, sizes) if sizes else impl.export(model, inputs, out_dir, spec)

    def verify(self, model, artifact, task: str = CLASSIFICATION) -> dict[str, Any]:
        impl = self.implementation(task)
        return impl.lm_verify(model, artifact) if task == LM else impl.verify(model, artifact)


_NATIVE_Q = frozenset({"int8", "int4"})
EXPORTERS = (
    Exporter("onnx", (".onnx",), "model.onnx", "onnx",
             {CLASSIFICATION: frozenset({"none", "fp16", "int8", "int4", "prune", "lcs", "datafree", "int8-static"}),
              LM: LM_METHODS},
             "onnxruntime", "exporters.onnx", "exporters.lm.onnx_lm", _NATIVE_Q),
    Exporter("coreml", (".mlpackage", ".mlmodel"), "model.mlpackage", "coreml",
             {CLASSIFICATION: frozenset({"none", "fp16", "int8", "int4", "prune", "palettize", "lcs", "datafree"}),
              LM: LM_METHODS},
             "coreml", "exporters.coreml", "exporters.lm.coreml_lm", _NATIVE_Q),
    Exporter("mlx", (".mlxfn",), "model.mlxfn", "mlx",
             {CLASSIFICATION: frozenset({"none", "fp16", "int8", "int4", "prune", "lcs", "datafree"}), LM: LM_METHODS},
             "mlx", "exporters.mlx", "exporters.lm.mlx_lm_export", _NATIVE_Q),
    Exporter("torch", (), "model.safetensors", "checkpoint",  # safetensors for the eager reference runtime
             {CLASSIFICATION: frozenset({"none", "fp16", "prune", "lcs"}), LM: LM_METHODS},
             "torch", "exporters.torch", "exporters.torch"),
)
BY_NAME = {e.name: e for e in EXPORTERS}
FORMATS = tuple(BY_NAME)
MODEL_FILES = {e.name: e.model_file for e in EXPORTERS}
SUFFIXES = {s: e.name for e in EXPORTERS for s in e.suffixes}


def get(fmt: str) -> Exporter:
    if fmt not in BY_NAME:
        from models.errors import ArtifactError

        raise ArtifactError(f"unknown format {fmt!r}", f"use one of: {', '.join(FORMATS)}")
    return BY_NAME[fmt]
