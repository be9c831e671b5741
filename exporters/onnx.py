"""ONNX export (torch.onnx dynamo exporter, dynamic batch) and compression through onnxruntime's own tools.

- fp16: onnxruntime.transformers.float16 (fp32 inputs/outputs kept; ORT inserts casts where CPU lacks fp16 kernels)
- int8: onnxruntime.quantization.quantize_dynamic (int8 weights per output channel, activations quantized at run time)
- int8-static: onnxruntime.quantization.quantize_static (QDQ, int8 weights per output channel, activation ranges
  calibrated on `eval.npz` in the output folder: a zoo classifier's validation split, a user model's eval inputs)
- int4: block-wise weight-only int4, DequantizeLinear(block_size) from opset 21. Written here because onnxruntime's
  4-bit quantizer (MatMulNBits) covers MatMul only, not Conv or Gemm.
- prune: zeros set at torch level; ONNX has no sparse initializer that onnxruntime executes, so the file is dense.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import warnings
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from exporters.compression import CompressionSpec, rtn_quantize
from exporters.verify import numeric_parity, size_parity

OPSET = 21
MODEL_FILE = "model.onnx"


_BASE_GRAPHS: dict[str, bytes] = {}  # fp32 graph per (weights, input shapes): fp16/int8/int4 start from it


def _graph_key(model: nn.Module, inputs: tuple[torch.Tensor, ...], sizes: tuple[int, ...] = (),
               io: Any = None) -> str:
    h = hashlib.sha256(type(model).__name__.encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().contiguous().numpy().tobytes())
    h.update(repr([tuple(x.shape) for x in inputs]).encode())
    h.update(repr(sorted(sizes)).encode())
    h.update(repr(io).encode())
    return h.hexdigest()


def _torch_export(model: nn.Module, inputs: tuple[torch.Tensor, ...], path: Path, sizes: tuple[int, ...] = (),
                  io: Any = None) -> None:
    key = _graph_key(model, inputs, sizes, io)
    if key not in _BASE_GRAPHS:
        _export_uncached(model, inputs, path, sizes, io)
        _BASE_GRAPHS[key] = path.read_bytes()
    path.write_bytes(_BASE_GRAPHS[key])


def _export_uncached(model: nn.Module, inputs: tuple[torch.Tensor, ...], path: Path, sizes: tuple[int, ...] = (),
                     io: Any = None) -> None:
    """Dynamic batch; with `sizes`, dynamic height and width too, over the range the sizes span. `io` (a user
    model's IOSpec) names the inputs and outputs and gives each input's dynamic axes."""
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # e.g. "torchvision is not installed" on every export
    dims: dict[int, Any] = {0: torch.export.Dim("batch", min=1, max=4096)}
    if sizes:
        span = (*sizes, inputs[0].shape[-1])
        dims[2] = torch.export.Dim("height", min=min(span), max=max(span))
        dims[3] = torch.export.Dim("width", min=min(span), max=max(span))
    names, outputs, shapes = (["input"], ["logits"], (dims,)) if io is None else \
        (list(io.inputs), list(io.outputs), io.torch_dims())
    with contextlib.redirect_stdout(StringIO()), warnings.catch_warnings():  # progress lines, deprecations
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, inputs, dynamo=True, opset_version=OPSET, input_names=names,
                                    output_names=outputs, dynamic_shapes=shapes, verbose=False)
    program.save(str(path))


def export(model: nn.Module, inputs: tuple[torch.Tensor, ...], out_dir: Path, spec: CompressionSpec,
           sizes: tuple[int, ...] = (), io: Any = None) -> dict[str, Any]:
    """`sizes`: square input sizes the graph takes besides the example's (dynamic H/W axes, checked per size)."""
    path = Path(out_dir) / MODEL_FILE
    _torch_export(model, inputs, path, sizes, io)
    details: dict[str, Any] = {"opset": OPSET, "dynamic_batch": True, **compress_file(path, spec, model)}
    return _describe(path, model, sizes, out_dir, details)


def compress_file(path: Path, spec: CompressionSpec, model: nn.Module | None = None) -> dict[str, Any]:
    """Apply `spec` to the fp32 ONNX file at `path` in place with onnxruntime's tools (an ONNX file from anywhere:
    `model` is needed only by datafree). int8-static calibrates on `eval.npz` beside the file. Returns details."""
    import onnx

    details: dict[str, Any] = {}
    if spec.method == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        onnx.save(convert_float_to_float16(onnx.load(str(path)), keep_io_types=True), str(path))
        details["tool"] = "onnxruntime.transformers.float16.convert_float_to_float16"
    elif spec.method == "int8":
        _quantize_dynamic_int8(path)
        details["tool"] = "onnxruntime.quantization.quantize_dynamic(per_channel=True, weight_type=QInt8)"
    elif spec.method == "int4":
        onnx.save(quantize_weights_int4(onnx.load(str(path)), spec.block), str(path))
        details["tool"] = f"weight-only int4, DequantizeLinear block_size={spec.block}"
    elif spec.method == "datafree" and spec.bits < 32:  # the learned codes and scales (compression/datafree.py)
        from exporters.compression.datafree import onnx_qdq

        graph = onnx.load(str(path))
        details.update(onnx_qdq(graph, model, spec.bits))
        onnx.save(graph, str(path))
    elif spec.method == "int8-static":
        details.update(quantize_static_int8(path, path.parent / "eval.npz"))
    return details


def _describe(path: Path, model: nn.Module, sizes: tuple[int, ...], out_dir: Path,
              details: dict[str, Any]) -> dict[str, Any]:
    import onnx

    graph = onnx.load(str(path))
    details["ops"] = op_histogram(graph)
    details["weight_bytes"] = initializer_bytes(graph)
    if sizes:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        details["dynamic_hw"] = True
        details["input_sizes"], details["size_parity"] = size_parity(
            model, lambda x: sess.run(None, {"input": x})[0], sizes, out_dir)
    return details


CALIBRATION_ROWS = 256  # batches of 32; activation ranges settle well before this on small models


def quantize_static_int8(path: Path, eval_data: Path) -> dict[str, Any]:
    """QDQ int8 with per-channel weights; activation ranges (MinMax) from the first rows of the eval inputs."""
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    data = np.load(eval_data)
    more = sorted((k for k in data.files if k.startswith("x_")), key=lambda k: int(k[2:]))  # a user model's inputs
    # a zoo classifier's own calibration images (validation split), else the user's evaluation inputs
    calib = sorted((k for k in data.files if k.startswith("calib_")), key=lambda k: int(k[6:]))  # named inputs
    feeds = [data[k] for k in ["calib", *calib]] if "calib" in data.files else \
        [data[k][:CALIBRATION_ROWS] for k in ["x", *more]]
    names = [i.name for i in ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs()]
    n = len(feeds[0])

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{k: v[i:i + 32] for k, v in zip(names, feeds)} for i in range(0, n, 32)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    logging.getLogger().setLevel(logging.ERROR)
    tmp = path.with_suffix(".int8s.onnx")
    quantize_static(str(path), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    tmp.replace(path)
    return {"tool": "onnxruntime.quantization.quantize_static(QDQ, per_channel=True, QInt8 weights and activations, "
                    "MinMax)", "calibration_rows": int(n), "calibration_data": str(data["source"]) if "source" in
            data.files else "eval.npz: the evaluation inputs"}


def _quantize_dynamic_int8(path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # it warns about optional pre-processing on every call
    tmp = path.with_suffix(".int8.onnx")
    quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    tmp.replace(path)


def _pack_int4(q: np.ndarray) -> bytes:
    """Two signed 4-bit values per byte, low nibble first (the ONNX INT4 layout)."""
    flat = (q.astype(np.int8).ravel() & 0x0F).astype(np.uint8)
    if flat.size % 2:
        flat = np.append(flat, np.uint8(0))
    return (flat[0::2] | (flat[1::2] << 4)).tobytes()


def int4_codes(w: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Symmetric int4 RTN of w (out, ...) in blocks of `block` along K = prod(in dims) (0: per output channel):
    codes (out, K), fp32 scales (out, ceil(K / block)), the block size used."""
    q = rtn_quantize(torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)), 4, block)
    out = w.shape[0]
    return q.int_codes().reshape(out, -1).numpy(), q.scale.reshape(out, -1).numpy(), q.codes.shape[-1]


def quantize_weights_int4(model, block: int):
    """Replace every Conv/Gemm weight W (out, ...) by int4 codes (out, K) + fp32 scales (out, ceil(K/block)),
    dequantized in-graph (DequantizeLinear, axis=1) and reshaped back. Symmetric, round-to-nearest."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    new_nodes, consumers = [], [(n, 1) for n in model.graph.node if n.op_type in ("Conv", "Gemm")]
    done: set[str] = set()
    for node, idx in consumers:
        name = node.input[idx]
        if name not in inits or name in done:
            continue  # a weight shared by several layers (SPIN) is quantized once and stays shared
        done.add(name)
        w = numpy_helper.to_array(inits[name]).astype(np.float32)
        if node.op_type == "Gemm" and not any(a.name == "transB" and a.i == 1 for a in node.attribute):
            continue  # weight laid out (in, out): leave it in fp32 rather than quantize the wrong axis
        out, k = w.shape[0], int(np.prod(w.shape[1:]))
        q, scale, b = int4_codes(w, block)
        model.graph.initializer.remove(inits[name])
        model.graph.initializer.extend([
            helper.make_tensor(name + "_q4", TensorProto.INT4, [out, k], _pack_int4(q), raw=True),
            numpy_helper.from_array(scale.astype(np.float32), name + "_scale"),
            numpy_helper.from_array(np.array(w.shape, dtype=np.int64), name + "_shape"),
        ])
        new_nodes += [
            helper.make_node("DequantizeLinear", [name + "_q4", name + "_scale"], [name + "_2d"], axis=1, block_size=b),
            helper.make_node("Reshape", [name + "_2d", name + "_shape"], [name]),
        ]
    nodes = new_nodes + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model


def op_histogram(model) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in model.graph.node:
        out[n.op_type] = out.get(n.op_type, 0) + 1
    return dict(sorted(out.items()))


def initializer_bytes(model) -> int:
    """Stored parameter bytes: float and integer-code initializers (weights, biases, scales, zero points);
    int64 shape constants excluded."""
    from onnx import TensorProto, helper

    total = 0
    for t in model.graph.initializer:
        if t.data_type == TensorProto.INT64:
            continue
        n = int(np.prod(t.dims)) if len(t.dims) else 1
        bits = helper.tensor_dtype_to_np_dtype(t.data_type).itemsize * 8 if t.data_type not in (
            TensorProto.INT4, TensorProto.UINT4) else 4
        total += (n * bits + 7) // 8
    return total


def verify(model: nn.Module, artifact) -> dict[str, Any]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(artifact.model_file), providers=["CPUExecutionProvider"])
    data = np.load(artifact.path / "eval.npz")
    out = sess.run(None, {sess.get_inputs()[0].name: data["x"]})[0]
    return {"kind": "numeric", "runtime": "onnxruntime", **numeric_parity(out, data["reference"])}
