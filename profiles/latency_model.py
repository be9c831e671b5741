"""A per-operator latency model calibrated on this host, in the spirit of nn-Meter's kernel-level prediction
(arXiv 2106.08208; it predicts each kernel and sums them). profiles/roofline.py stays the lower bound.

Each ONNX artifact is read as its operators (op type, precision, shapes by onnx shape inference at batch 1):
- kind: conv (dense), dwconv (grouped / depthwise), matmul (MatMul, Gemm, their integer and QDQ forms), quant
  (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear), norm, softmax, act (activations), other (shape and
  elementwise ops);
- precision: what the kernel computes in: fp32, fp16, int8-dynamic (ConvInteger / MatMulInteger: activations
  quantized at run time), int8-qdq (QLinearConv / QLinearMatMul, or a Conv / MatMul fed by DequantizeLinear on both
  sides in a QDQ graph, which onnxruntime fuses into an int8 kernel): the two int8 paths run different kernels;
- FLOPs (2 per multiply-add for conv and matmul, one per output element otherwise) and bytes (every input and
  output tensor at its stored width, weights included: each read or written once).
The predicted median is a sum over (kind, precision) groups of launch overhead x count + bytes / bandwidth, plus
FLOPs / throughput per (dense or depthwise, precision) -- dense convolutions and matrix products share one
throughput, as both run as GEMMs in onnxruntime's MLAS -- plus one constant per call: a linear model with non-negative coefficients, fitted by
non-negative least squares (scipy.optimize.nnls) on the host's measured medians, rows weighted by 1 / measured so
the fit minimizes relative error. Leave-one-architecture-out (every artifact of the held-out model name is out of
the fit, whatever its scale or compression) says how well it predicts an architecture it has not seen.
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

CONV = ("Conv", "ConvInteger", "QLinearConv", "FusedConv", "ConvTranspose")
MATMUL = ("MatMul", "Gemm", "MatMulInteger", "QLinearMatMul", "MatMulNBits", "FusedMatMul")
QUANT = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")
NORM = ("BatchNormalization", "LayerNormalization", "GroupNormalization", "InstanceNormalization",
        "SimplifiedLayerNormalization", "ReduceMean")
SOFTMAX = ("Softmax", "LogSoftmax")
ACT = ("Relu", "Clip", "Gelu", "Erf", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "LeakyRelu", "Silu")
KINDS = ("conv", "dwconv", "matmul", "quant", "norm", "softmax", "act", "other")
COMPUTE_KINDS = ("conv", "dwconv", "matmul")  # kinds with a FLOPs / throughput term
INT8 = (2, 3)  # TensorProto UINT8, INT8
FP16 = 10
DTYPE_BYTES = {1: 4, 2: 1, 3: 1, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2, 21: 1, 22: 1}


@dataclass
class Op:
    op_type: str
    kind: str
    precision: str
    flops: float
    bytes: float


@dataclass
class Graph:
    """What the model reads from one ONNX file."""
    path: str
    ops: list[Op] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for op in self.ops:
            out[op.op_type] = out.get(op.op_type, 0) + 1
        return out


def _concrete(model: Any) -> Any:
    """A copy whose graph inputs have every symbolic or unknown dimension set to 1 (batch 1), so that shape
    inference gives numbers."""
    import onnx

    model = onnx.ModelProto.FromString(model.SerializeToString())
    del model.graph.value_info[:]  # inferred again from the concrete inputs (stored ones keep a symbolic batch)
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        for d in inp.type.tensor_type.shape.dim:
            if not d.HasField("dim_value"):
                d.dim_value = 1
    _topological(model.graph)
    model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    for _ in range(8):  # ops onnx cannot infer (GroupNormalization at opset 21) keep their input's shape
        if not _carry_shapes(model):
            break
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    return model


SAME_SHAPE = ("GroupNormalization", "InstanceNormalization", "LayerNormalization", "BatchNormalization") + ACT


def _carry_shapes(model: Any) -> bool:
    """Give each output of a shape-preserving op that inference left unknown its first input's shape and type;
    True when any was added (inference then continues from there)."""
    from onnx import helper

    known = {vi.name: vi for vi in [*model.graph.input, *model.graph.value_info, *model.graph.output]
             if vi.type.tensor_type.HasField("shape")}
    added = False
    for node in model.graph.node:
        src = known.get(node.input[0]) if node.input else None
        if node.op_type in SAME_SHAPE and src is not None and node.output and node.output[0] not in known:
            t = src.type.tensor_type
            vi = helper.make_tensor_value_info(node.output[0], t.elem_type, [d.dim_value for d in t.shape.dim])
            model.graph.value_info.append(vi)
            known[node.output[0]] = vi
            added = True
    return added


def _topological(graph: Any) -> None:
    """Reorder nodes so each comes after its inputs' producers (onnxconverter's fp16 casts are appended last, and
    shape inference reads nodes in order)."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):  # inputs nobody produces (outer-scope names): keep their order
            ordered += rest
            break
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def _tensor_table(model: Any) -> dict[str, tuple[tuple[int, ...] | None, int]]:
    """name -> (shape or None, element type) for every value the graph knows."""
    table: dict[str, tuple[tuple[int, ...] | None, int]] = {}
    g = model.graph
    for vi in [*g.input, *g.value_info, *g.output]:
        t = vi.type.tensor_type
        dims = tuple(d.dim_value for d in t.shape.dim) if t.HasField("shape") else None
        ok = dims is not None and all(d.HasField("dim_value") and d.dim_value > 0 for d in t.shape.dim)
        table[vi.name] = (dims if ok else None, t.elem_type)
    for init in g.initializer:
        table[init.name] = (tuple(init.dims), init.data_type)
    for node in g.node:  # constants as nodes
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            t = node.attribute[0].t
            table[node.output[0]] = (tuple(t.dims), t.data_type)
    return table


def _numel(shape: tuple[int, ...] | None) -> int:
    return int(np.prod(shape)) if shape is not None else 0


def _attr(node: Any, name: str, default: Any = None) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _kind(node: Any, table: dict[str, Any]) -> str:
    t = node.op_type
    if t in CONV:
        return "dwconv" if int(_attr(node, "group", 1)) > 1 else "conv"
    for kind, types in (("matmul", MATMUL), ("quant", QUANT), ("norm", NORM), ("softmax", SOFTMAX), ("act", ACT)):
        if t in types:
            return kind
    return "other"


def _precision(node: Any, table: dict[str, Any], producers: dict[str, str]) -> str:
    """fp32 | fp16 | int8: integer kernels, and QDQ compute nodes whose data and weight both come dequantized."""
    if node.op_type in ("ConvInteger", "MatMulInteger"):
        return "int8-dynamic"
    if node.op_type in ("QLinearConv", "QLinearMatMul"):
        return "int8-qdq"
    data = [i for i in node.input[:2] if i]
    if node.op_type in CONV + MATMUL and len(data) == 2 and all(producers.get(i) == "DequantizeLinear" for i in data):
        return "int8-qdq"
    elem = table.get(node.input[0], (None, 1))[1] if node.input else 1
    return "fp16" if elem == FP16 else ("int8" if elem in INT8 else "fp32")


def _flops(node: Any, table: dict[str, Any], out_elems: int) -> float:
    t = node.op_type
    if t in CONV:
        w = table.get(node.input[1] if t != "QLinearConv" else node.input[3], (None, 1))[0]
        if w is None or len(w) < 3:
            return 0.0
        return 2.0 * out_elems * int(np.prod(w[1:]))  # w: (C_out, C_in / group, kh, kw)
    if t in MATMUL:
        a = table.get(node.input[0], (None, 1))[0]
        if t == "Gemm" and a is not None:
            k = a[0] if _attr(node, "transA", 0) else a[-1]
        elif t == "MatMulNBits":
            k = int(_attr(node, "K", 0))
        elif t == "QLinearMatMul":
            a = table.get(node.input[0], (None, 1))[0]
            k = a[-1] if a else 0
        else:
            k = a[-1] if a else 0
        return 2.0 * out_elems * int(k)
    return float(out_elems)


def read_graph(path: Path | str) -> Graph:
    """The operators of one ONNX file with their kind, precision, FLOPs and bytes (batch 1)."""
    import onnx

    model = _concrete(onnx.load(str(path)))
    table = _tensor_table(model)
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    graph = Graph(str(path))
    for node in model.graph.node:
        if node.op_type == "Constant":
            continue
        sizes = [(_numel(table.get(n, (None, 1))[0]), DTYPE_BYTES.get(table.get(n, (None, 1))[1], 4))
                 for n in [*node.input, *node.output] if n]
        out_elems = _numel(table.get(node.output[0], (None, 1))[0]) if node.output else 0
        graph.ops.append(Op(node.op_type, _kind(node, table), _precision(node, table, producers),
                            _flops(node, table, out_elems), float(sum(n * b for n, b in sizes))))
    return graph


def features(graph: Graph) -> dict[str, float]:
    """Per (kind, precision) group: op count and bytes; FLOPs per (dense | dwconv, precision); the per-call
    constant."""
    out: dict[str, float] = {"call": 1.0}
    for op in graph.ops:
        group = f"{op.kind}:{op.precision}"
        out[f"count {group}"] = out.get(f"count {group}", 0.0) + 1.0
        out[f"bytes {group}"] = out.get(f"bytes {group}", 0.0) + op.bytes
        if op.kind in COMPUTE_KINDS:
            key = f"flops {'dwconv' if op.kind == 'dwconv' else 'dense'}:{op.precision}"
            out[key] = out.get(key, 0.0) + op.flops
    return out


@dataclass
class Fit:
    """Fitted non-negative coefficients (ms per unit of each feature)."""
    coef: dict[str, float]

    def predict(self, feats: dict[str, float]) -> float:
        return sum(self.coef.get(k, 0.0) * v for k, v in feats.items())

    def describe(self) -> dict[str, float]:
        """Readable terms: launch overhead (us per op), throughput (GFLOP/s), bandwidth (GB/s), per call (ms)."""
        out = {}
        for k, c in self.coef.items():
            if c <= 0:
                continue
            if k.startswith("count"):
                out[f"{k} overhead us"] = c * 1e3
            elif k.startswith("flops"):
                out[f"{k} GFLOP/s"] = 1e-6 / c
            elif k.startswith("bytes"):
                out[f"{k} GB/s"] = 1e-6 / c
            else:
                out[f"{k} ms"] = c
        return out


def fit(rows: list[dict[str, float]], measured: list[float]) -> Fit:
    """NNLS on relative error: min || (A c - y) / y ||, c >= 0. Columns are scaled to unit norm for conditioning."""
    from scipy.optimize import nnls

    if not rows or len(rows) != len(measured):
        raise ValueError(f"fit needs one measured median per row ({len(rows)} rows, {len(measured)} medians)")
    names = sorted({k for r in rows for k in r})
    y = np.asarray(measured, dtype=np.float64)
    if (y <= 0).any() or not np.isfinite(y).all():
        raise ValueError("measured medians must be finite and positive")
    a = np.array([[r.get(k, 0.0) for k in names] for r in rows], dtype=np.float64) / y[:, None]
    norms = np.linalg.norm(a, axis=0)
    norms[norms == 0] = 1.0
    c, _ = nnls(a / norms, np.ones_like(y), maxiter=50 * len(names))
    return Fit({k: float(v) for k, v in zip(names, c / norms)})


@dataclass
class Sample:
    """One measured ONNX artifact: what identifies it and its features."""
    arch: str
    label: str
    measured_ms: float
    feats: dict[str, float]
    scale: str = "small"
    record_id: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


def leave_one_out(samples: list[Sample], evaluate: Iterable[Sample] | None = None) -> list[dict[str, Any]]:
    """Leave-one-architecture-out: each sample of `evaluate` (default: all) predicted by a fit on every sample of the
    other architectures. Returns one row per evaluated sample with its error = (predicted - measured) / measured."""
    evaluate = list(samples if evaluate is None else evaluate)
    fits: dict[str, Fit] = {}
    out = []
    for s in evaluate:
        if s.arch not in fits:
            train = [t for t in samples if t.arch != s.arch]
            if not train:
                raise ValueError(f"nothing to fit on once {s.arch} is left out: measure another architecture")
            fits[s.arch] = fit([t.feats for t in train], [t.measured_ms for t in train])
        pred = fits[s.arch].predict(s.feats)
        out.append({"arch": s.arch, "label": s.label, "scale": s.scale, "id": s.record_id, **s.info,
                    "measured_ms": s.measured_ms, "predicted_ms": pred, "error": (pred - s.measured_ms) / s.measured_ms,
                    "trained_on": len(samples) - sum(t.arch == s.arch for t in samples)})
    return out


def summary(rows: list[dict[str, Any]], tolerance: float = 0.10) -> dict[str, Any]:
    """Fraction of rows within +-tolerance and the median |error|."""
    errs = [abs(r["error"]) for r in rows if r.get("error") is not None and math.isfinite(r["error"])]
    return {"n": len(errs), "within": sum(e <= tolerance for e in errs) / len(errs) if errs else None,
            "tolerance": tolerance, "median_abs_error": statistics.median(errs) if errs else None}


def samples_from_records(records: Iterable[dict[str, Any]], host_id: str, threads: int | None = None,
                         ) -> tuple[list[Sample], list[dict[str, Any]]]:
    """(samples, skipped with the reason) from store records: ok ONNX vision records measured on this host by
    onnxruntime, newest per artifact (profiles.query.latest), their graphs read from the artifact's model file."""
    from profiles.query import kind, latest, scale

    samples, skipped = [], []
    for rec in latest(records):
        art = rec.get("artifact") or {}
        why = _unusable(rec, art, host_id, threads)
        if why is None and kind(rec) != "classify":
            why = "not a vision (classify) record"
        path = Path(art.get("path") or "") / "model.onnx"
        if why is None and not path.is_file():
            why = f"{path} is gone"
        if why is not None:
            skipped.append({"id": rec.get("id"), "model": rec.get("model"), "reason": why})
            continue
        feats = graph_features(str(path), path.stat().st_mtime_ns)
        samples.append(Sample(str(rec.get("model")), f"{rec.get('model')} {art.get('compression')} ({scale(rec)})",
                              float(rec["latency"]["median_ms"]), feats, scale(rec), rec.get("id"),
                              {"model": rec.get("model"), "compression": art.get("compression"),
                               "threads": rec.get("threads")}))
    return samples, skipped


@functools.lru_cache(maxsize=512)
def graph_features(path: str, mtime_ns: int) -> dict[str, float]:
    """features(read_graph(path)), read once per file version (the dashboard asks again on every rerun)."""
    return features(read_graph(path))


def _unusable(rec: dict[str, Any], art: dict[str, Any], host_id: str, threads: int | None) -> str | None:
    if rec.get("status") != "ok":
        return f"status {rec.get('status')}"
    if art.get("format") != "onnx" or rec.get("runtime") != "onnxruntime":
        return "not an ONNX artifact measured by onnxruntime"
    if (rec.get("device") or {}).get("id") != host_id:
        return "measured on another machine"
    if threads is not None and rec.get("threads") != threads:
        return f"measured with {rec.get('threads')} threads, not {threads}"
    if not (rec.get("latency") or {}).get("median_ms"):
        return "no measured median"
    return None


def evaluate_store(records: Iterable[dict[str, Any]], host_id: str, threads: int | None = None,
                   scale: str | None = "deploy") -> dict[str, Any]:
    """Leave-one-architecture-out on the host's records: fitted on every usable record (both scales), evaluated on
    those of `scale` (None: all). Returns {"rows", "summary", "skipped", "fit" (on everything, readable terms)}."""
    samples, skipped = samples_from_records(records, host_id, threads)
    target = [s for s in samples if scale is None or s.scale == scale]
    if len({s.arch for s in samples}) < 2 or not target:
        return {"rows": [], "summary": summary([]), "skipped": skipped, "fit": {},
                "problem": f"needs ONNX records of at least two architectures, {scale or 'any'} scale among them "
                           f"({len(samples)} usable, {len(target)} at that scale)"}
    rows = leave_one_out(samples, target)
    whole = fit([s.feats for s in samples], [s.measured_ms for s in samples])
    return {"rows": rows, "summary": summary(rows), "skipped": skipped, "fit": whole.describe(), "problem": None}
