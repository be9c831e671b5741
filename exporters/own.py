"""Export, compress and check a user's own model (exporters/own_source.py says what a model can be), to the same
artifact folders, manifest and verification as zoo checkpoints: `export(model, example_inputs, fmt, compress)`.

The artifact's `eval.npz` holds the evaluation inputs (the user's, else the example inputs), their labels when
given, and the reference outputs of the torch model after torch-level compression, so profiling measures parity
(and top-1 accuracy when labels were given; otherwise accuracy is "not measured"). `check(model, inputs)` lists the
graph's ops per format before converting; a failed conversion names the op, where it is in the user's code and
what to try. An ONNX file takes the ONNX compressions (exporters/onnx.py `compress_file`).
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from exporters.artifact import (
    EXPORTER_VERSION,
    MANIFEST,
    Artifact,
    _finish,
    _reusable,
    weight_count,
    write_manifest,
)
from exporters.compression import compress_, parse_spec
from exporters.compression.torch_level import weight_sparsity
from exporters.cost import try_model_cost
from exporters.formats import CLASSIFICATION, get
from exporters.output import check_out_dir, publish, resolve_out, staging
from exporters.own_source import (
    IOSpec,
    ModelSourceError,
    Source,
    io_spec,
    parse_dynamic,
    resolve_source,
    run_reference,
)
from exporters.verify import numeric_parity
from models.errors import CompressionSpecError, ConversionError

OWN_FORMATS = ("onnx", "coreml", "mlx")
ZOO_ONLY = frozenset({"lcs", "dynamoe", "seedlm"})  # need an EdgeZoo training-time model
ONNX_FILE_METHODS = frozenset({"none", "fp16", "int8", "int8-static", "int4"})


def model_key(module: nn.Module, inputs: tuple[torch.Tensor, ...], io: IOSpec) -> str:
    from exporters.onnx import _graph_key

    return _graph_key(module, inputs, io=io)


def keeps_batch(src: Source, outs: tuple[torch.Tensor, ...]) -> bool:
    """Whether forward() treats axis 0 as a batch: the example stacked twice gives every output stacked twice.
    A model that folds the batch away (x.view(1, -1)) is exported at the example's batch only."""
    try:
        with torch.no_grad():
            twice = src.module(*(torch.cat([t, t]) for t in src.inputs))
    except Exception:  # the model refuses another batch size
        return False
    twice = (twice,) if isinstance(twice, torch.Tensor) else tuple(twice)
    return len(twice) == len(outs) and all(
        t.dim() > 0 and o.dim() > 0 and t.shape[0] == 2 * o.shape[0] and torch.allclose(t, torch.cat([o, o]),
                                                                                        rtol=1e-4, atol=1e-5)
        for t, o in zip(twice, outs))


def _own_spec(fmt: str, compress: str):
    if fmt not in OWN_FORMATS:
        raise ModelSourceError(f"format {fmt!r} takes EdgeZoo checkpoints only", f"export your model to one of: "
                                                                                 f"{', '.join(OWN_FORMATS)}")
    spec = parse_spec(compress, fmt)
    if spec.method in ZOO_ONLY:
        raise CompressionSpecError(f"compression {spec.name} needs an EdgeZoo training-time model",
                                   "use none, fp16, int8, int8-static (onnx), int4, prune50 or palette4 (coreml)")
    return dataclasses.replace(spec, finetune=0) if spec.method == "prune" else spec  # no training split to tune on


def _eval_arrays(src: Source, eval_data: Any) -> tuple[list[np.ndarray], np.ndarray | None, str]:
    """(inputs, labels or None, what they are) of the evaluation set `(inputs, labels)` (labels may be None)."""
    from exporters.own_source import as_tuple

    if eval_data is None:
        return [t.numpy() for t in src.inputs], None, "example inputs"
    if not (isinstance(eval_data, (tuple, list)) and len(eval_data) == 2):
        raise ModelSourceError("eval_data must be a pair (inputs, labels)",
                               "pass eval_data=(x, y), or (x, None) with a metric or for parity only")
    inputs = as_tuple(eval_data[0])
    labels = eval_data[1]
    y = None if labels is None else np.asarray(labels.numpy() if isinstance(labels, torch.Tensor) else labels)
    if len(inputs) != len(src.inputs) or (y is not None and len(y) != len(inputs[0])):
        raise ModelSourceError(f"evaluation set has {len(inputs)} input tensors of {len(inputs[0])} rows and "
                               f"{'no' if y is None else len(y)} labels", f"pass {len(src.inputs)} input tensor(s) "
                               "like the example inputs and one label per row")
    return [t.numpy() for t in inputs], y, "the user's evaluation inputs"


def write_eval(folder: Path, xs: list[np.ndarray], y: np.ndarray | None, reference: np.ndarray, source: str) -> None:
    arrays = {"x": xs[0], **{f"x_{i}": x for i, x in enumerate(xs[1:], 1)}, "reference": reference,
              "source": np.array(source)}
    np.savez_compressed(folder / "eval.npz", **arrays, **({"y": y} if y is not None else {}))


EVAL_BATCH = 256


def batch_step(manifest: dict[str, Any]) -> int:
    """Rows per call: EVAL_BATCH for a dynamic batch, else the batch the graph was exported with."""
    shape = manifest["inputs"][0]["shape"]
    return EVAL_BATCH if manifest["export_details"].get("dynamic_batch") or not shape else int(shape[0])


def _batched(fn: Callable[..., np.ndarray], xs: list[np.ndarray], step: int) -> np.ndarray:
    return np.concatenate([np.asarray(fn(*[x[i:i + step] for x in xs]), dtype=np.float32)
                           for i in range(0, len(xs[0]), step)])


@torch.no_grad()
def _first(module: nn.Module, arrays: tuple[np.ndarray, ...]) -> np.ndarray:
    out = module(*(torch.from_numpy(a) for a in arrays))
    return (out if isinstance(out, torch.Tensor) else out[0]).float().numpy()


def artifact_outputs(fmt: str, path: Path, xs: list[np.ndarray], step: int) -> np.ndarray | None:
    """The artifact's first output on `xs`; None where the format cannot run here (Core ML off macOS)."""
    if fmt == "onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        return _batched(lambda *a: sess.run(None, dict(zip(names, a)))[0], xs, step)
    if fmt == "mlx":
        import mlx.core as mx

        fn = mx.import_function(str(path))
        return _batched(lambda *a: np.array(fn(*[mx.array(v) for v in a])[0]), xs, step)
    return None


def verify_own(fmt: str, art: Artifact, io: IOSpec) -> dict[str, Any]:
    """Numeric parity against the torch reference (ONNX, MLX); Core ML on Linux: structure and names."""
    data = np.load(art.path / "eval.npz")
    xs = [data[k] for k in ["x", *[f"x_{i}" for i in range(1, len(io.inputs))]]]
    if fmt != "coreml":
        out = artifact_outputs(fmt, art.model_file, xs, batch_step(art.manifest))
        return {"kind": "numeric", "runtime": get(fmt).runtime, **numeric_parity(out, data["reference"])}
    from exporters.coreml import structural_check

    comp = art.manifest["compression"]
    res = structural_check(art.model_file, comp["method"], comp.get("bits"))
    named = ("first input is", "outputs are", "no conv op")  # the zoo's names and conv layers; checked below instead
    res["problems"] = [p for p in res["problems"] if not p.startswith(named)]
    got = ([i["name"] for i in res["inputs"]], [o["name"] for o in res["outputs"]])
    if got != (list(io.inputs), list(io.outputs)):
        res["problems"].append(f"inputs/outputs are {got}, expected {(list(io.inputs), list(io.outputs))}")
    res["ok"] = not res["problems"]
    res["note"] = "Core ML predicts only on macOS: structure checked, numbers not"
    return res


def _quality(fmt: str, art: Artifact, metric: Callable[..., float] | None, io: IOSpec) -> dict[str, Any]:
    """A metric callable on the artifact's own outputs (and labels, when given): metric(outputs[, labels])."""
    if metric is None:
        return {"metric": None, "value": None, "note": "not measured (no metric callable given)"}
    data = np.load(art.path / "eval.npz")
    xs = [data[k] for k in ["x", *[f"x_{i}" for i in range(1, len(io.inputs))]]]
    out = artifact_outputs(fmt, art.model_file, xs, batch_step(art.manifest))
    name = getattr(metric, "__name__", "metric")
    if out is None:
        return {"metric": name, "value": None, "note": f"not measured ({fmt} does not run on this machine)"}
    value = float(metric(out, data["y"]) if "y" in data.files else metric(out))
    return {"metric": name, "value": value, "dataset": str(data["source"]), "n": len(out)}


def default_out(workspace: Path | None, name: str, key: str, fmt: str, spec_name: str) -> Path:
    import os

    root = Path(workspace or os.environ.get("EDGEZOO_WORKSPACE", "edgezoo-workspace"))
    return root / "artifacts" / f"{name}-{key[:10]}" / f"{fmt}-{spec_name}"


def export(model: Any, example_inputs: Any = None, fmt: str = "onnx", compress: str = "none",
           out: str | Path | None = None, *, name: str | None = None, eval_data: Any = None,
           metric: Callable[..., float] | None = None, output_names: list[str] | None = None,
           dynamic: dict[str, dict[int, tuple[str, int, int]]] | list[str] | None = None,
           workspace: str | Path | None = None,
           force: bool = False, input_names: list[str] | None = None) -> Artifact:
    """Export a model to `fmt` with `compress`: an nn.Module, a torch.export program, a `.pt2` file,
    `package.module:factory`, an EdgeZoo checkpoint folder or an `.onnx` file (ONNX compressions only).
    `eval_data`: evaluation inputs, or (inputs, labels); `metric(outputs[, labels]) -> float` is computed on the
    artifact's outputs. `dynamic`: extra dynamic axes, {input: {axis: (dim name, min, max)}} (ONNX dynamic axes,
    Core ML RangeDim) or {input: {axis: (dim name, [sizes])}} (Core ML EnumeratedShapes at the example's batch);
    the batch is dynamic whenever forward() keeps it.
    `input_names`: checked against forward()'s (the CLI's --input names)."""
    if isinstance(model, (str, Path)) and Path(model).expanduser().is_dir():
        from exporters.artifact import export_checkpoint

        return export_checkpoint(Path(model), fmt, compress, out_dir=Path(out) if out else None,
                                 workspace=Path(workspace) if workspace else None, force=force)
    if isinstance(model, (str, Path)) and str(model).endswith(".onnx"):
        return export_onnx_file(Path(model), fmt, compress, out, name=name, example_inputs=example_inputs,
                                eval_data=eval_data, workspace=workspace, force=force)
    spec = _own_spec(fmt, compress)
    src = resolve_source(model, example_inputs, name)
    outs = run_reference(src)
    if input_names is not None and tuple(input_names) != src.names:
        raise ModelSourceError(f"inputs given as {', '.join(input_names)}, but {src.name}.forward takes "
                               f"{', '.join(src.names) or 'no arguments'}",
                               f"name them as forward() does, in order: --input {src.names[0] if src.names else 'x'}"
                               "=SHAPE:DTYPE ...")
    if isinstance(dynamic, (list, tuple)):  # the CLI's NAME:AXIS=DIM:MIN:MAX texts
        dynamic = parse_dynamic(list(dynamic), src.names)
    io = io_spec(src, len(outs), output_names, dynamic, batch=keeps_batch(src, outs))
    key = model_key(src.module, src.inputs, io)
    named = out is not None
    out_dir = resolve_out(out) if named else resolve_out(default_out(workspace, src.name, key, fmt, spec.name))
    cache_key = {"model_sha256": key, "format": fmt, "compression": spec.to_dict(),
                 "exporter_version": EXPORTER_VERSION, "task": CLASSIFICATION, "source": "own"}
    if not force and metric is None and eval_data is None and (done := _reusable(out_dir, cache_key)) is not None:
        return done
    check_out_dir(out_dir, force or not named)
    with staging(out_dir) as tmp:
        manifest = {**cache_key, "model": src.name, "paper": None, "compression_name": spec.name,
                    "origin": src.origin, "model_file": get(fmt).model_file}
        _build(tmp, fmt, spec, src, io, manifest, eval_data, metric)
        publish(tmp, out_dir, force or not named)
    return Artifact(out_dir, manifest)


def _build(tmp: Path, fmt: str, spec, src: Source, io: IOSpec, manifest: dict[str, Any], eval_data: Any,
           metric: Callable[..., float] | None) -> None:
    t0 = time.perf_counter()
    compressed = compress_(copy.deepcopy(src.module), spec)
    xs, y, source = _eval_arrays(src, eval_data)
    dynamic = any(a == 0 for axes in io.dynamic for a, *_ in axes)
    step = EVAL_BATCH if dynamic else len(src.inputs[0])
    write_eval(tmp, xs, y, _batched(lambda *a: _first(compressed, a), xs, step), source)
    cost = try_model_cost(compressed, src.inputs)
    try:
        info = get(fmt).export(compressed, tmp, spec, inputs=src.inputs, io=io)
    except Exception as e:  # converters raise anything: the op, where it is, what to try
        raise conversion_report(fmt, src, e) from None
    # what the graph declares: Core ML's enumerated shapes fix the batch at the example's
    info["dynamic_batch"] = dynamic and not (fmt == "coreml" and any(io.enumerated))
    n = weight_count(src.module)
    _finish(tmp, manifest, t0, 8.0 * info["weight_bytes"] / n if n else None,
            {k: v for k, v in info.items() if k != "weight_bytes"})
    manifest.update(n_weights=n, weight_bytes=info["weight_bytes"], cost=cost, sparsity=weight_sparsity(compressed),
                    inputs=io.declared(src.inputs), outputs=[{"name": o} for o in io.outputs],
                    evaluation={"inputs": source, "n": len(xs[0]), "labels": y is not None},
                    calibration=source if spec.method == "int8-static" else None)
    art = Artifact(tmp, manifest)
    manifest["verification"] = verify_own(fmt, art, io)
    manifest["quality"] = _quality(fmt, art, metric, io)
    write_manifest(tmp, manifest)


# --- op coverage and conversion reports ----------------------------------------------------------------------------

def _where(node: Any) -> str:
    """The innermost frame of the user's code in a node's stack trace: file:line (code)."""
    lines = (node.meta.get("stack_trace") or "").strip().splitlines()
    frames = [(lines[i].strip(), lines[i + 1].strip() if i + 1 < len(lines) else "")
              for i in range(len(lines)) if lines[i].strip().startswith("File ")]
    mine = [f for f in frames if "site-packages" not in f[0] and "/torch/" not in f[0]] or frames
    if not mine:
        return "unknown location"
    head, code = mine[-1]
    parts = head.split('"')
    line = head.rsplit("line ", 1)[-1].split(",")[0]
    return f"{Path(parts[1]).name if len(parts) > 1 else head}:{line} ({code})"


def _supported(fmt: str, target: Any, key: str) -> bool:
    if fmt == "mlx":
        from exporters.mlx_ops import OPS

        return key in OPS
    if fmt == "coreml":
        from exporters.coreml_common import load_coremltools

        load_coremltools()
        from coremltools.converters.mil.frontend.torch.ops import (
            _TORCH_OPS_REGISTRY as reg,
        )

        op = key.split(".")[1] if key.startswith("aten.") else key
        return op in reg.name_to_func_mapping or op.rstrip("_") in reg.name_to_func_mapping
    from torch._decomp import core_aten_decompositions
    from torch.onnx._internal.exporter._registration import ONNXRegistry

    return _onnx_registry(ONNXRegistry).is_registered(target) or target in core_aten_decompositions()


_REGISTRY: list[Any] = []


def _onnx_registry(cls: Any) -> Any:
    if not _REGISTRY:
        import logging

        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        _REGISTRY.append(cls.from_torchlib())
    return _REGISTRY[0]


def check(model: Any, example_inputs: Any = None, formats: tuple[str, ...] = OWN_FORMATS) -> dict[str, Any]:
    """The model's graph (torch.export, decompositions kept whole) and, per format, the ops it lacks and where
    they are in the user's code. Converting may still fail on an op's arguments; this is what can be known first."""
    from exporters.mlx_ops import op_key

    src = resolve_source(model, example_inputs)
    run_reference(src)
    try:
        with torch.no_grad():
            ep = torch.export.export(src.module, src.inputs).run_decompositions({})
    except Exception as e:  # data-dependent control flow and the like
        raise ConversionError(f"torch.export of {src.name} failed: {e.__class__.__name__}: "
                              f"{(str(e).strip().splitlines() or [''])[0][:200]}",
                              "make forward() traceable (no data-dependent Python control flow), see "
                              "https://pytorch.org/docs/stable/export.html") from None
    nodes = [n for n in ep.graph.nodes if n.op == "call_function"]
    ops = Counter(op_key(n) for n in nodes)
    report: dict[str, Any] = {"model": src.name, "inputs": list(src.names), "ops": dict(sorted(ops.items())),
                              "formats": {}}
    for fmt in formats:
        missing: dict[str, list[str]] = {}
        for n in nodes:
            key = op_key(n)
            if not _supported(fmt, n.target, key):
                missing.setdefault(key, []).append(_where(n))
        report["formats"][fmt] = {"supported": not missing, "covered_ops": len(ops) - len(missing),
                                  "total_ops": len(ops), "missing": missing}
    return report


def conversion_report(fmt: str, src: Source, err: Exception) -> ConversionError:
    """A failed conversion as one line: the op the converter lacks, where it is in the user's code, what to try."""
    from exporters.artifact import conversion_summary

    if isinstance(err, ModelSourceError):
        return err
    try:
        cov = check(src.module, src.inputs)
    except Exception:  # the coverage check itself failed: the converter's message is all there is
        cov = None
    mine = (cov or {}).get("formats", {}).get(fmt, {}).get("missing") or {}
    others = [f for f, r in ((cov or {}).get("formats") or {}).items() if f != fmt and r["supported"]]
    if mine:
        op, where = next(iter(mine.items()))
        problem = f"{fmt} conversion of {src.name} failed: {fmt} has no {op} (at {where[0]})"
    else:
        problem = f"{fmt} conversion of {src.name} failed: {conversion_summary(err)}"
    fix = "replace that op in forward() with supported ones" + (
        f", or export to {' / '.join(others)} (they cover every op)" if others else "") + \
        "; `exporters check MODEL` lists each format's coverage"
    return ConversionError(problem, fix)


# --- an ONNX file --------------------------------------------------------------------------------------------------

def _onnx_inputs(path: Path, example_inputs: Any) -> list[np.ndarray]:
    if example_inputs is not None:
        from exporters.own_source import as_tuple

        return [t.numpy() for t in as_tuple(example_inputs)]
    import onnxruntime as ort

    types = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}
    rng = np.random.default_rng(0)
    out = []
    for i in ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        dtype = types.get(i.type, np.float32)
        out.append(rng.standard_normal(shape).astype(dtype) if dtype == np.float32
                   else rng.integers(0, 16, shape).astype(dtype))
    return out


def export_onnx_file(path: Path, fmt: str, compress: str, out: str | Path | None = None, *, name: str | None = None,
                     example_inputs: Any = None, eval_data: Any = None, workspace: str | Path | None = None,
                     force: bool = False) -> Artifact:
    """An ONNX file through the ONNX compressions, verified against the original file on the eval inputs."""
    from exporters.artifact import dir_sha256
    from exporters.onnx import compress_file

    path = resolve_out(path)
    if not path.is_file():
        raise ModelSourceError(f"{path} does not exist", "pass the path of an .onnx file")
    if fmt != "onnx":
        raise ModelSourceError(f"an ONNX file converts to onnx only, not {fmt}",
                               "export the PyTorch model (module:factory or .pt2) to get coreml or mlx")
    spec = parse_spec(compress, "onnx")
    if spec.method not in ONNX_FILE_METHODS:
        raise CompressionSpecError(f"compression {spec.name} needs the PyTorch model",
                                   f"an ONNX file takes: {', '.join(sorted(ONNX_FILE_METHODS))}")
    name = name or path.stem
    key = dir_sha256(path)
    named = out is not None
    out_dir = resolve_out(out) if named else resolve_out(default_out(workspace, name, key, "onnx", spec.name))
    cache_key = {"model_sha256": key, "format": "onnx", "compression": spec.to_dict(),
                 "exporter_version": EXPORTER_VERSION, "task": CLASSIFICATION, "source": "onnx file"}
    if not force and eval_data is None and (done := _reusable(out_dir, cache_key)) is not None:
        return done
    check_out_dir(out_dir, force or not named)
    with staging(out_dir) as tmp:
        manifest = {**cache_key, "model": name, "paper": None, "compression_name": spec.name, "origin": path.name,
                    "model_file": "model.onnx"}
        t0 = time.perf_counter()
        xs = _onnx_inputs(path, example_inputs if eval_data is None else eval_data[0])
        y = None if eval_data is None or eval_data[1] is None else np.asarray(eval_data[1])
        ref = artifact_outputs("onnx", path, xs, len(xs[0]))
        write_eval(tmp, xs, y, ref, "the user's evaluation inputs" if eval_data is not None else "example inputs")
        shutil.copyfile(path, tmp / "model.onnx")
        try:
            details = compress_file(tmp / "model.onnx", spec)
        except Exception as e:  # onnxruntime's quantizers on a graph they do not handle
            from exporters.artifact import conversion_summary

            raise ConversionError(f"{spec.name} of {path.name} failed: {conversion_summary(e)}",
                                  "try another compression (fp16, int8, int4)") from None
        _finish(tmp, manifest, t0, None, details)
        out_arr = artifact_outputs("onnx", tmp / "model.onnx", xs, len(xs[0]))
        manifest["verification"] = {"kind": "numeric", "runtime": "onnxruntime",
                                    "reference": "the original ONNX file", **numeric_parity(out_arr, ref)}
        manifest["quality"] = {"metric": None, "value": None, "note": "not measured"}
        write_manifest(tmp, manifest)
        publish(tmp, out_dir, force or not named)
    return Artifact(out_dir, manifest)


__all__ = ["MANIFEST", "IOSpec", "check", "export", "export_onnx_file"]
