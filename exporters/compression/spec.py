"""Compression specs: `none`, `fp16`, `int8`, `int4[:block=32]`, `prune[:sparsity=0.5]` (alias prune50),
`palettize[:bits=4]` (alias palette4, Core ML only), `datafree[:bits=4,sparsity=0]` (layer-wise data-free
reconstruction, exporters/compression/datafree.py; `datafree:sparsity=0.9` prunes with float weights),
`lcs[:alpha=1.0]` (bake an LCS / subspace checkpoint at alpha),
`int8-static` (ONNX: onnxruntime quantize_static, QDQ, per-channel int8 weights, activations calibrated on the
validation split for zoo classifiers (never the test split it is scored on), the user's evaluation or example
inputs otherwise),
`dynamoe[:theta=0.5]` (route a DynaMoE LM checkpoint at sensitivity theta). prune50 = prune:sparsity=0.5 with 2 epochs of masked fine-tuning;
`prune:sparsity=0.5,finetune=0` is pure post-training pruning. Plain data, JSON round-trip, unknown keys rejected.
Language models take none, int8 and int4 (group-32 RTN: `int8` means int8:block=32 there) and seedlm3/seedlm4;
which methods a format supports per task comes from the exporter registry (exporters/formats.py)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from exporters.formats import CLASSIFICATION, EXPORTERS, LM, LM_METHODS, TASKS
from models.errors import CompressionSpecError

SPEC_VERSION = 1
METHODS = ("none", "fp16", "int8", "int4", "prune", "palettize", "lcs", "seedlm", "dynamoe",
           "datafree", "int8-static")
ALIASES = {"fp32": "none", "prune50": "prune:sparsity=0.5", "palette4": "palettize:bits=4", "int4-b32": "int4:block=32",
           "seedlm3": "seedlm:bits=3", "seedlm4": "seedlm:bits=4"}
SUPPORTED = {(e.name, task): e.supports(task) for e in EXPORTERS for task in TASKS}  # (format, task) -> methods
DEFAULT_SPECS = ("none", "fp16", "int8", "int4", "prune50")
LM_SPECS = ("none", "int8", "int4", "seedlm3", "seedlm4")  # what language models export with (group 32)
LM_BLOCK = 32


@dataclass(frozen=True)
class CompressionSpec:
    method: str = "none"
    bits: int = 32
    block: int = 0          # block size along the input dimension; 0 = per output channel
    sparsity: float = 0.0   # magnitude pruning target (global across conv/linear weights)
    finetune: int = 0       # epochs of masked fine-tuning after pruning (needs the training split)
    alpha: float = 1.0      # lcs: the point on the subspace (LCS: 1 dense, 0.025 keeps 2.5 % of the weights)
    theta: float = 0.5      # dynamoe: router sensitivity (higher: larger experts); kept out of other specs' dicts
    version: int = SPEC_VERSION

    @property
    def name(self) -> str:
        """Canonical short name, used in folder names and tables."""
        if self.method == "int4":
            return f"int4-b{self.block}"
        if self.method == "int8" and self.block:
            return f"int8-b{self.block}"
        if self.method == "prune":
            return f"prune{round(self.sparsity * 100)}" + (f"-ft{self.finetune}" if self.finetune else "")
        if self.method == "palettize":
            return f"palette{self.bits}"
        if self.method == "seedlm":
            return f"seedlm{self.bits}"
        if self.method == "datafree":  # datafree3, datafree-p90, datafree4-p50
            return "datafree" + (str(self.bits) if self.bits < 32 else "") + (
                f"-p{round(self.sparsity * 100)}" if self.sparsity else "")
        if self.method == "lcs":
            return f"lcs-a{self.alpha:.2f}" if round(self.alpha, 2) == self.alpha else f"lcs-a{self.alpha:.3f}"
        if self.method == "dynamoe":
            return f"dynamoe-t{self.theta:.2f}" if round(self.theta, 2) == self.theta else f"dynamoe-t{self.theta:g}"
        return self.method

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.method != "dynamoe":  # other specs' dicts (and so their artifact cache keys) stay as they were
            d.pop("theta")
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CompressionSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CompressionSpecError(f"unknown compression fields {unknown}", f"use only {sorted(known)}")
        return cls(**data)


_DEFAULTS = {
    "none": dict(bits=32), "fp16": dict(bits=16), "int8": dict(bits=8, block=0),
    "int4": dict(bits=4, block=32), "prune": dict(bits=32, sparsity=0.5, finetune=2), "palettize": dict(bits=4),
    "lcs": dict(bits=32, alpha=1.0), "seedlm": dict(bits=4),
    "dynamoe": dict(bits=32, theta=0.5),
    "datafree": dict(bits=4, sparsity=0.0),
    "int8-static": dict(bits=8),
}
_OPTIONS = {"none": set(), "fp16": set(), "int8": {"block"}, "int4": {"block"}, "prune": {"sparsity", "finetune"}, "palettize": {"bits"}, "lcs": {"alpha"}, "seedlm": {"bits"},
            "dynamoe": {"theta"},
            "datafree": {"bits", "sparsity"}, "int8-static": set()}


def parse_spec(text: str, fmt: str | None = None, task: str = CLASSIFICATION) -> CompressionSpec:
    """Parse `method[:key=value,...]` for a task (classification | lm); with `fmt`, also check the format supports it."""
    if task not in TASKS:
        raise CompressionSpecError(f"unknown task {task!r}", f"use one of: {', '.join(TASKS)}")
    raw = ALIASES.get(text.strip(), text.strip())
    method, _, opts = raw.partition(":")
    if method not in METHODS:
        raise CompressionSpecError(f"unknown compression spec {text!r}",
                                   f"use one of: {', '.join(METHODS)} (aliases: {', '.join(ALIASES)})")
    values: dict[str, Any] = dict(_DEFAULTS[method], **(dict(block=LM_BLOCK) if task == LM and method == "int8" else {}))
    for item in filter(None, opts.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in _OPTIONS[method]:
            allowed = ", ".join(sorted(_OPTIONS[method])) or "no options"
            raise CompressionSpecError(f"bad option {item!r} in compression spec {text!r}", f"{method} takes {allowed}")
        try:
            values[key] = float(value) if key in ("sparsity", "alpha", "theta") else int(value)
        except ValueError:
            raise CompressionSpecError(f"option {key}={value!r} in {text!r} is not a number", "give a number") from None
    if method == "datafree" and "sparsity=" in opts and "bits=" not in opts:
        values["bits"] = 32  # the pruning variant keeps float weights unless bits are given
    spec = CompressionSpec(method=method, **values)
    _check_ranges(spec, text)
    if task == LM and (spec.method not in LM_METHODS or spec.method.startswith("int") and spec.block != LM_BLOCK):
        raise CompressionSpecError(f"compression {text!r} is not available for language models",
                                   f"use one of: {', '.join(LM_SPECS)}")
    if fmt is not None and spec.method not in SUPPORTED.get((fmt, task), set()):
        kind = "language models" if task == LM else "classifiers"
        raise CompressionSpecError(f"compression {spec.name} is not available for {fmt} ({kind})",
                                   f"{fmt} supports: {', '.join(sorted(SUPPORTED.get((fmt, task), set())))}")
    return spec


def lm_name(spec: CompressionSpec) -> str:
    """The short LM name (none | int8 | int4 | seedlm3 | seedlm4) that LM records and tables use."""
    return spec.method if spec.method in ("int8", "int4") else spec.name


def _check_ranges(spec: CompressionSpec, text: str) -> None:
    if spec.method == "prune" and not 0.0 < spec.sparsity < 1.0:
        raise CompressionSpecError(f"sparsity in {text!r} must be in (0, 1)", "e.g. prune:sparsity=0.5")
    if spec.method == "lcs" and not 0.0 <= spec.alpha <= 1.0:
        raise CompressionSpecError(f"alpha in {text!r} must be in [0, 1]", "e.g. lcs:alpha=0.7")
    if spec.method == "dynamoe" and not (math.isfinite(spec.theta) and 0.0 <= spec.theta <= 1.0):
        raise CompressionSpecError(f"theta in {text!r} must be in [0, 1]", "e.g. dynamoe:theta=0.7")
    if spec.method in ("int4", "int8") and spec.block not in (0, 16, 32, 64, 128):
        raise CompressionSpecError(f"block in {text!r} must be 0 (per channel), 16, 32, 64 or 128", "e.g. int4:block=32")
    if spec.method == "seedlm" and spec.bits not in (3, 4):
        raise CompressionSpecError(f"SeedLM bits in {text!r} must be 3 or 4", "e.g. seedlm:bits=4")
    if spec.method == "datafree" and not 0.0 <= spec.sparsity < 1.0:
        raise CompressionSpecError(f"sparsity in {text!r} must be in [0, 1)", "e.g. datafree:sparsity=0.9")
    if spec.method == "datafree" and not (2 <= spec.bits <= 8 or spec.bits == 32 and 0.0 < spec.sparsity < 1.0):
        raise CompressionSpecError(f"datafree bits in {text!r} must be 2..8 (or omitted with sparsity=...)",
                                   "e.g. datafree:bits=4 or datafree:sparsity=0.9")
    if spec.method == "palettize" and spec.bits not in (1, 2, 3, 4, 6, 8):
        raise CompressionSpecError(f"palettization bits in {text!r} must be 1, 2, 3, 4, 6 or 8", "e.g. palettize:bits=4")
