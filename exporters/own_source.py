"""A user's own model as the exporters take it: an `nn.Module`, a `torch.export` program (in memory or saved with
`torch.export.save` as `.pt2`), or `package.module:factory` (a callable returning the module), with example inputs
(tensors, or `NAME=SHAPE:DTYPE` specs), the input names of its `forward` and its dynamic axes (`IOSpec`).

Everything is checked here, before any output is made: a factory that raises or returns something else, a `.pt2`
saved by another torch version, inputs the model does not accept."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.errors import EdgeZooError

MAX_BATCH = 4096
FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "float64": torch.float64, "int64": torch.int64,
           "int32": torch.int32, "uint8": torch.uint8, "int8": torch.int8, "bool": torch.bool}


class ModelSourceError(EdgeZooError):
    """The model, its example inputs or its saved program cannot be used as given."""


@dataclass(frozen=True)
class IOSpec:
    """Input and output names (as in the user's code) and, per input, its dynamic axes (axis, name, min, max).
    Axes with the same name are one dimension (e.g. a batch shared by every input). `enumerated`: per input, the
    axes that take only listed sizes (axis, sizes): ONNX gets their range, Core ML EnumeratedShapes."""
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic: tuple[tuple[tuple[int, str, int, int], ...], ...]
    enumerated: tuple[tuple[tuple[int, tuple[int, ...]], ...], ...] = ()

    def torch_dims(self) -> tuple[dict[int, Any], ...]:
        made: dict[str, Any] = {}
        return tuple({a: made.setdefault(n, torch.export.Dim(n, min=lo, max=hi)) for a, n, lo, hi in axes}
                     for axes in self.dynamic)

    def declared(self, inputs: tuple[torch.Tensor, ...]) -> list[dict[str, Any]]:
        """The manifest's input specs: None on every dynamic axis."""
        return [{"name": n, "shape": [None if any(a == d for a, *_ in axes) else int(s)
                                      for d, s in enumerate(t.shape)],
                 "dtype": str(t.dtype).removeprefix("torch."), "dynamic_axes": [list(x) for x in axes]}
                for n, t, axes in zip(self.inputs, inputs, self.dynamic)]


@dataclass
class Source:
    module: nn.Module
    inputs: tuple[torch.Tensor, ...]
    names: tuple[str, ...]
    name: str          # the model's name in tables (the user's, or the class / file name)
    origin: str        # what the user passed: "nn.Module", "torch.export program", "file.pt2", "pkg.mod:factory"


def example_tensors(specs: list[dict[str, Any]]) -> tuple[torch.Tensor, ...]:
    """Inputs from `--input NAME=SHAPE:DTYPE` specs: floats ~N(0, 1), integers in [0, 16)."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for s in specs:
        dtype = _DTYPES[s.get("dtype", "float32")]
        shape = [int(d) for d in s["shape"]]
        out.append(torch.randn(shape, generator=gen).to(dtype) if dtype.is_floating_point
                   else torch.randint(0, 16, shape, generator=gen).to(dtype))
    return tuple(out)


def as_tuple(inputs: Any) -> tuple[torch.Tensor, ...]:
    items = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs or ())
    if not items or not all(isinstance(t, torch.Tensor) for t in items):
        raise ModelSourceError("example inputs must be a tensor or a tuple of tensors",
                               "pass e.g. torch.randn(1, 3, 32, 32), or --input x=1x3x32x32:float32 on the CLI")
    return items


def forward_names(module: nn.Module, n: int) -> tuple[str, ...]:
    """The first `n` parameter names of `forward` (what the user called the inputs); input_i past *args."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    named = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return tuple(named[i] if i < len(named) else f"input_{i}" for i in range(n))


def pt2_torch_version(path: Path) -> str | None:
    """The torch version a `torch.export.save` archive records (models/model.json), None when it records none."""
    try:
        with zipfile.ZipFile(path) as z:
            meta = next((n for n in z.namelist() if n.endswith("models/model.json")), None)
            return json.loads(z.read(meta)).get("torch_version") if meta else None
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as e:
        raise ModelSourceError(f"{path} is not a torch.export archive ({e.__class__.__name__})",
                               "save the program with torch.export.save(program, 'model.pt2')") from None


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split("+")[0].split(".")[:2])


def load_pt2(path: Path) -> torch.export.ExportedProgram:
    """torch.export.load after checking the archive was saved by this torch (major.minor): another version's
    serialized graph may fail to load or load with a different meaning."""
    saved = pt2_torch_version(path)
    if saved is not None and _major_minor(saved) != _major_minor(torch.__version__):
        raise ModelSourceError(
            f"{path.name} was saved by torch {saved}, this is torch {torch.__version__}",
            f"re-export it under torch {torch.__version__}: torch.export.save(torch.export.export(model, "
            "example_inputs), 'model.pt2'), or pass the model as package.module:factory")
    try:
        return torch.export.load(str(path))
    except Exception as e:  # a corrupt or incompatible archive
        raise ModelSourceError(f"torch.export.load({path.name}) failed: {e.__class__.__name__}: "
                               f"{(str(e).strip().splitlines() or [''])[0][:160]}",
                               "re-export it with torch.export.save under this torch version") from None


def call_factory(ref: str) -> nn.Module:
    """Import `package.module` (from the current folder too) and call `factory()`; it must return an nn.Module."""
    mod_name, _, attr = ref.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        factory = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as e:
        raise ModelSourceError(f"cannot import {ref}: {e.__class__.__name__}: {str(e)[:160]}",
                               "pass package.module:factory importable from the current folder") from None
    if not callable(factory):
        raise ModelSourceError(f"{ref} is a {type(factory).__name__}, not a callable",
                               "point at a function (or class) that returns the nn.Module")
    try:
        made = factory()
    except Exception as e:  # the user's code
        raise ModelSourceError(f"factory {ref} raised {e.__class__.__name__}: {str(e).strip()[:160]}",
                               "fix the factory: called without arguments, it must return the model") from None
    if not isinstance(made, nn.Module):
        raise ModelSourceError(f"factory {ref} returned a {type(made).__name__}, not a torch.nn.Module",
                               "return the model itself (an nn.Module instance), not its state dict or a class")
    return made


def _from_program(ep: torch.export.ExportedProgram, inputs: Any, name: str, origin: str) -> Source:
    args = as_tuple(inputs) if inputs is not None else as_tuple(ep.example_inputs[0] if ep.example_inputs else ())
    names = tuple(s.arg.name for s in ep.graph_signature.input_specs if s.kind.name == "USER_INPUT")
    return Source(ep.module(), args, names[:len(args)], name, origin)


def resolve_source(model: Any, inputs: Any = None, name: str | None = None) -> Source:
    """A Source from an nn.Module, an ExportedProgram, a `.pt2` path or `package.module:factory`."""
    if isinstance(model, torch.export.ExportedProgram):
        return _from_program(model, inputs, name or "model", "torch.export program")
    if isinstance(model, (str, Path)) and str(model).endswith(".pt2"):
        path = Path(model).expanduser().resolve()
        if not path.is_file():
            raise ModelSourceError(f"{path} does not exist", "pass the path of a file saved with torch.export.save")
        return _from_program(load_pt2(path), inputs, name or path.stem, path.name)
    if isinstance(model, str) and FACTORY.match(model):
        module = call_factory(model)
        origin = model
    elif isinstance(model, nn.Module):
        module, origin = model, "nn.Module"
    else:
        raise ModelSourceError(f"model {str(model)[:80]!r} is not an nn.Module, a torch.export program, a .pt2 file "
                               "or package.module:factory", "pass one of those (or a zoo checkpoint folder / .onnx)")
    if inputs is None:
        raise ModelSourceError(f"{origin} needs example inputs",
                               "pass example_inputs (a tensor or tuple), or --input NAME=SHAPE:DTYPE on the CLI")
    args = as_tuple(inputs)
    return Source(module.eval(), args, forward_names(module, len(args)), name or type(module).__name__, origin)


def run_reference(src: Source) -> tuple[torch.Tensor, ...]:
    """The model on its example inputs: one tensor or a tuple/list of tensors, else a clear error."""
    try:
        with torch.no_grad():
            out = src.module(*src.inputs)
    except Exception as e:  # shapes or dtypes the model does not take
        shapes = ", ".join(f"{n}={'x'.join(map(str, t.shape))}:{str(t.dtype).removeprefix('torch.')}"
                           for n, t in zip(src.names, src.inputs))
        raise ModelSourceError(f"{src.name} does not accept the example inputs {shapes}: {e.__class__.__name__}: "
                               f"{(str(e).strip().splitlines() or [''])[0][:160]}",
                               "pass inputs with the shapes and dtypes forward() expects (--input NAME=SHAPE:DTYPE, "
                               "one per forward argument, in order)") from None
    outs = (out,) if isinstance(out, torch.Tensor) else tuple(out) if isinstance(out, (tuple, list)) else None
    if not outs or not all(isinstance(t, torch.Tensor) for t in outs):
        raise ModelSourceError(f"{src.name} returns {type(out).__name__}, not a tensor or a tuple of tensors",
                               "wrap the model so forward() returns tensors (a dict: return its values as a tuple)")
    return outs


def parse_dynamic(texts: list[str] | None, names: tuple[str, ...]) -> dict[str, dict[int, tuple]]:
    """`NAME:AXIS=DIM:MIN:MAX` (e.g. `tokens:1=seq:1:512`) or `NAME:AXIS=DIM:S1,S2,...` (listed sizes, e.g.
    `image:2=side:16,32`), repeatable: extra dynamic axes besides the batch."""
    out: dict[str, dict[int, tuple]] = {}
    for text in texts or []:
        m = re.fullmatch(r"(\w+):(\d+)=(\w+):(\d+):(\d+)", text.strip())
        e = re.fullmatch(r"(\w+):(\d+)=(\w+):([1-9]\d*(?:,[1-9]\d*)+)", text.strip())
        if not e and (not m or int(m[4]) < 1 or int(m[5]) < int(m[4])):
            raise ModelSourceError(f"dynamic axis {text!r} is not NAME:AXIS=DIM:MIN:MAX with 1 <= MIN <= MAX or "
                                   "NAME:AXIS=DIM:SIZE,SIZE,...", "pass e.g. --dynamic tokens:1=seq:1:512 or "
                                                                  "--dynamic image:2=side:16,32")
        m = m or e
        if m[1] not in names:
            raise ModelSourceError(f"dynamic axis {text!r} names input {m[1]!r}, the model's inputs are "
                                   f"{', '.join(names)}", "use one of the model's input names")
        out.setdefault(m[1], {})[int(m[2])] = (m[3], [int(v) for v in m[4].split(",")]) if e else \
            (m[3], int(m[4]), int(m[5]))
    return out


def io_spec(src: Source, n_outputs: int, output_names: list[str] | None = None,
            dynamic: dict[str, dict[int, tuple[str, int, int]]] | None = None, batch: bool = True) -> IOSpec:
    """Names as in the user's code; a shared dynamic batch on axis 0 (unless `batch` is False) plus `dynamic`."""
    outs = tuple(output_names or (["output"] if n_outputs == 1 else [f"output_{i}" for i in range(n_outputs)]))
    if len(outs) != n_outputs:
        raise ModelSourceError(f"{len(outs)} output names for {n_outputs} output{'s' if n_outputs > 1 else ''} of "
                               f"{src.name}", f"give {n_outputs} name(s), one per output forward() returns")
    axes, listed = [], []
    for n, t in zip(src.names, src.inputs):
        given = (dynamic or {}).get(n, {})
        enum = {a: tuple(sorted({int(s) for s in v[1]})) for a, v in given.items() if len(v) == 2}
        extra = {a: (v[0], min(enum[a]), max(enum[a])) if a in enum else tuple(v) for a, v in given.items()}
        bad = [a for a in extra if a >= t.dim() or not extra[a][1] <= t.shape[a] <= extra[a][2]
               or a in enum and t.shape[a] not in enum[a]]
        if bad:
            raise ModelSourceError(f"dynamic axis {bad[0]} of {n} is outside its example shape "
                                   f"{list(t.shape)} or range", "give an axis < rank whose range (or list) holds "
                                                                "the example's size")
        mine = {0: ("batch", 1, MAX_BATCH)} if batch and t.dim() and 0 not in enum else {}
        axes.append(tuple((a, *v) for a, v in sorted({**mine, **extra}.items())))
        listed.append(tuple(sorted(enum.items())))
    return IOSpec(src.names, outs, tuple(axes), tuple(listed) if any(listed) else ())
