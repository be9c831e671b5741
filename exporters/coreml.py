"""Core ML export: torch.export -> coremltools mlprogram (iOS18 / macOS15) -> coremltools.optimize.coreml.

- none: compute_precision FLOAT32. fp16: compute_precision FLOAT16 (fp16 weights, fp32 input/output with casts).
- int8: linear_quantize_weights, linear_symmetric int8, per output channel (block 0) or per block.
- int4: linear_quantize_weights, linear_symmetric int4, per_block. Core ML's block is `block` input channels by the
  whole kernel ([1, block, KH, KW] for a conv, [1, block] for a linear) and must divide the input channels; a layer
  whose input channels it does not divide gets the largest divisor <= block (all of them when there are fewer
  than `block`, i.e. per output channel). The block each weight got is in the export details.
- prune: compress_ prunes (global magnitude, optional masked fine-tuning) at torch level; prune_weights with a
  threshold config (|w| <= 1e-12) then stores exactly those zeros sparsely: a bit mask + the nonzero values.
  A tensor with under 1/32 zeros stays dense (sparse storage would be larger).
- palettize: palettize_weights (kmeans, nbits, one LUT per tensor).
Every compression config sets weight_threshold=0: coremltools' default (2048 elements) would skip every tensor of
the tiny models. coremltools still never compresses rank-1 tensors (biases) or tensors of under 10 elements, which
it stores inline in model.mlmodel rather than in weight.bin.

Quantized variants keep compute_precision FLOAT32 (fp32 activations, fp32 scales) so they are compared with the
fp32 reference on their weight compression alone.

Verification on Linux is structural (Core ML cannot predict off macOS): the saved package is reopened with
skip_model_load=True and its MIL program is walked. On macOS it also predicts the eval data.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from exporters.compression import CompressionSpec
from exporters.coreml_common import Capture, feature, load_coremltools, quiet

MODEL_FILE = "model.mlpackage"
MAX_BATCH = 4096
DEPLOYMENT_TARGET = "iOS18"  # == macOS15: block-wise int4 and constexpr_blockwise_shift_scale need it
WEIGHT_THRESHOLD = 0
PRUNE_THRESHOLD = 1e-12
# a sparse tensor stores a 1-bit mask plus its nonzeros: smaller than dense fp32 above 1/32 zeros
MIN_SPARSE_FRACTION = 1 / 32
WEIGHT_OPS = ("conv", "conv_transpose", "linear", "matmul")
# op types coremltools 9 emits for each method at iOS18 (the older constexpr_* names accepted for foreign files)
COMPRESSED_OPS = {
    "int8": ("constexpr_blockwise_shift_scale", "constexpr_affine_dequantize"),
    "int4": ("constexpr_blockwise_shift_scale", "constexpr_affine_dequantize"),
    "prune": ("constexpr_sparse_to_dense", "constexpr_sparse_blockwise_shift_scale"),
    "palettize": ("constexpr_lut_to_dense",),
    "datafree": ("constexpr_lut_to_dense",),
}
_FLOAT_BYTES = {"FLOAT32": 4, "FLOAT16": 2, "BFLOAT16": 2, "FLOAT64": 8}
_BITS = {"FLOAT32": 32, "FLOAT16": 16, "BFLOAT16": 16, "FLOAT64": 64, "INT32": 32, "UINT32": 32, "INT16": 16,
         "UINT16": 16, "INT8": 8, "UINT8": 8, "INT4": 4, "UINT4": 4, "UINT6": 6, "UINT3": 3, "UINT2": 2, "UINT1": 1}


# ---------------------------------------------------------------------------------------------------- export


def _input_names(inputs: tuple[torch.Tensor, ...]) -> list[str]:
    return [f"input_{i}" if i else "input" for i in range(len(inputs))]


def _convert(ct, model: nn.Module, inputs: tuple[torch.Tensor, ...], precision, dynamic: bool,
             sizes: tuple[int, ...] = (), io: Any = None):
    """torch.export -> run_decompositions({}) -> ct.convert. Dynamic batch traces with batch 2 (torch.export
    specialises a size-1 dim) and declares a RangeDim(1, MAX_BATCH) batch. `sizes`: batch 1 at the example's size
    and at each square size, as Core ML EnumeratedShapes (traced with dynamic height and width)."""
    names = _input_names(inputs)
    outputs = [ct.TensorType(name="logits")]
    if io is not None:  # a user model: its own names, a RangeDim per dynamic axis it asked for
        program, ct_inputs, outputs = _convert_named(ct, model, inputs, io, dynamic)
    elif sizes:
        base = inputs[0].shape[-1]
        span = sorted({*sizes, base})
        hw = {2: torch.export.Dim("height", min=span[0], max=span[-1]),
              3: torch.export.Dim("width", min=span[0], max=span[-1])}
        program = torch.export.export(model, inputs[:1], dynamic_shapes=(hw,))
        shapes = ct.EnumeratedShapes(shapes=[(1, inputs[0].shape[1], s, s) for s in span],
                                     default=(1, *inputs[0].shape[1:]))
        ct_inputs = [ct.TensorType(name=names[0], shape=shapes, dtype=np.float32)]
    elif dynamic:
        batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
        traced = tuple(t.expand(2, *t.shape[1:]).contiguous() for t in inputs)
        program = torch.export.export(model, traced, dynamic_shapes=tuple({0: batch} for _ in inputs))
        ct_inputs = [ct.TensorType(name=n, shape=ct.Shape((ct.RangeDim(1, MAX_BATCH, default=1), *t.shape[1:])),
                                   dtype=np.float32) for n, t in zip(names, inputs)]
    else:
        program = torch.export.export(model, inputs)
        ct_inputs = [ct.TensorType(name=n, shape=tuple(t.shape), dtype=np.float32) for n, t in zip(names, inputs)]
    program = program.run_decompositions({})
    return ct.convert(program, inputs=ct_inputs, outputs=outputs, convert_to="mlprogram",
                      minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET), compute_precision=precision,
                      skip_model_load=True)


def _convert_named(ct, model: nn.Module, inputs: tuple[torch.Tensor, ...], io: Any,
                   dynamic: bool) -> tuple[Any, list, list]:
    """A user model: its own input/output names; with `dynamic`, torch.export with the IOSpec's dynamic axes
    (traced at 2 where the example has 1: torch.export specialises size-1 dims) and a Core ML
    RangeDim(min, max, default=example size) per dynamic axis."""
    dims = io.torch_dims() if dynamic else tuple({} for _ in inputs)
    traced = tuple(t.expand(*[2 if t.shape[a] == 1 and a in d else t.shape[a] for a in range(t.dim())]).contiguous()
                   for t, d in zip(inputs, dims))
    program = torch.export.export(model, traced, dynamic_shapes=dims) if dynamic else \
        torch.export.export(model, inputs)
    listed = io.enumerated or tuple(() for _ in inputs)
    ct_inputs = [ct.TensorType(name=name, shape=_enumerated(ct, t, enum, axes) if enum and dynamic else
                               _range_shape(ct, t, axes if dynamic else ()),
                               dtype=np.float32 if t.is_floating_point() else np.int32)
                 for name, t, axes, enum in zip(io.inputs, inputs, io.dynamic, listed)]
    return program, ct_inputs, [ct.TensorType(name=o) for o in io.outputs]


def _enumerated(ct, t: torch.Tensor, enum: tuple, axes: tuple) -> Any:
    """EnumeratedShapes: the example's shape with every combination of the listed sizes, axes of one dim name
    taking the same size (other axes, the batch included, fixed at the example's: Core ML does not mix enumerated
    and ranged dims)."""
    import itertools

    dim = {a: n for a, n, *_ in axes}
    sizes = {dim[a]: s for a, s in enum}
    shapes = []
    for combo in itertools.product(*sizes.values()):
        pick = dict(zip(sizes, combo))
        shapes.append(tuple(pick[dim[a]] if a in dict(enum) else int(n) for a, n in enumerate(t.shape)))
    return ct.EnumeratedShapes(shapes=shapes, default=tuple(t.shape))


def _range_shape(ct, t: torch.Tensor, axes: tuple) -> Any:
    """The example's shape with a RangeDim on each (axis, name, min, max) in `axes`."""
    ranges = {a: (lo, hi) for a, _, lo, hi in axes}
    return ct.Shape(tuple(ct.RangeDim(*ranges[a], default=int(n)) if a in ranges else int(n)
                          for a, n in enumerate(t.shape)))


def _weight_consts(mlmodel) -> list[tuple[str, str, tuple[int, ...]]]:
    """(const name, consumer op type, shape) for every const that is a conv/linear weight in the MIL program
    (other weight layouts, e.g. conv_transpose or matmul, are left to the global config)."""
    out = []
    for fn in mlmodel._mil_program.functions.values():
        for op in fn.operations:
            if op.op_type not in ("conv", "linear"):  # weight (out, in, ...): input channels on axis 1
                continue
            w = op.inputs.get("weight", op.inputs.get("y"))
            if w is not None and w.op is not None and w.op.op_type == "const" and w.rank >= 2:
                out.append((w.op.name, op.op_type, tuple(int(d) for d in w.shape)))
    return out


def effective_block(cin: int, block: int) -> int:
    """The Core ML block along the input-channel axis: `block` when it divides cin, all of cin when cin <= block
    (one scale per output channel), else the largest divisor of cin below `block`."""
    if cin <= block:
        return cin
    return max(d for d in range(1, block + 1) if cin % d == 0)


def _compress(ct, mlmodel, spec: CompressionSpec, model: nn.Module | None = None) -> tuple[Any, dict[str, Any]]:
    import coremltools.optimize.coreml as cto

    if spec.method in ("int8", "int4"):
        dtype = "int8" if spec.method == "int8" else "int4"
        if spec.block == 0:
            cfg = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
                mode="linear_symmetric", dtype=dtype, granularity="per_channel", weight_threshold=WEIGHT_THRESHOLD))
            return cto.linear_quantize_weights(mlmodel, cfg), {
                "tool": f"coremltools.optimize.coreml.linear_quantize_weights(linear_symmetric, {dtype}, per_channel, "
                        f"weight_threshold={WEIGHT_THRESHOLD})"}
        per_op, blocks = {}, {}
        for name, _, shape in _weight_consts(mlmodel):
            b = effective_block(shape[1], spec.block)
            blocks[name] = {"shape": list(shape), "block": b}
            per_op[name] = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype=dtype, granularity="per_block",
                                                       block_size=b, weight_threshold=WEIGHT_THRESHOLD)
        cfg = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype=dtype, granularity="per_block", block_size=spec.block,
            weight_threshold=WEIGHT_THRESHOLD), op_name_configs=per_op)
        return cto.linear_quantize_weights(mlmodel, cfg), {
            "tool": f"coremltools.optimize.coreml.linear_quantize_weights(linear_symmetric, {dtype}, per_block, "
                    f"block_size={spec.block}, weight_threshold={WEIGHT_THRESHOLD})",
            "block_requested": spec.block, "block_convention": "[1, block, KH, KW] (input channels x whole kernel)",
            "blocks": blocks, "blocks_reduced": sorted(n for n, b in blocks.items() if b["block"] != spec.block)}
    if spec.method in ("prune", "lcs") or spec.method == "datafree" and spec.bits >= 32:
        # compress_ already pruned globally (and fine-tuned), or baked an LCS point with its masks: store exactly
        # those zeros. A per-tensor
        # OpMagnitudePrunerConfig(target_sparsity) would prune every tensor again to `sparsity`, zeroing more
        # weights in the layers the global criterion left denser than average.
        cfg = cto.OptimizationConfig(global_config=cto.OpThresholdPrunerConfig(
            threshold=PRUNE_THRESHOLD, minimum_sparsity_percentile=MIN_SPARSE_FRACTION,
            weight_threshold=WEIGHT_THRESHOLD))
        return cto.prune_weights(mlmodel, cfg), {
            "tool": f"coremltools.optimize.coreml.prune_weights(OpThresholdPrunerConfig(threshold={PRUNE_THRESHOLD}, "
                    f"minimum_sparsity_percentile={MIN_SPARSE_FRACTION:.4f}, weight_threshold={WEIGHT_THRESHOLD}))",
            "sparsity_requested": spec.sparsity, "pruned_at": "torch level (compress_), global magnitude"}
    if spec.method == "datafree" and spec.bits < 32:  # per-channel LUTs of the learned values
        from exporters.compression.datafree import coreml_palettize

        return coreml_palettize(mlmodel, model)
    if spec.method == "palettize":
        cfg = cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(
            mode="kmeans", nbits=spec.bits, weight_threshold=WEIGHT_THRESHOLD))
        return cto.palettize_weights(mlmodel, cfg), {
            "tool": f"coremltools.optimize.coreml.palettize_weights(OpPalettizerConfig(kmeans, nbits={spec.bits}, "
                    f"per_tensor, weight_threshold={WEIGHT_THRESHOLD}))"}
    return mlmodel, {"tool": f"coremltools.convert(compute_precision="
                             f"{'FLOAT16' if spec.method == 'fp16' else 'FLOAT32'})"}


def export(model: nn.Module, inputs: tuple[torch.Tensor, ...], out_dir: Path, spec: CompressionSpec,
           sizes: tuple[int, ...] = (), io: Any = None) -> dict[str, Any]:
    """`sizes`: square input sizes besides the example's, declared as enumerated shapes at batch 1."""
    ct = load_coremltools()
    capture = Capture()
    path = Path(out_dir) / MODEL_FILE
    precision = ct.precision.FLOAT16 if spec.method == "fp16" else ct.precision.FLOAT32
    details: dict[str, Any] = {"deployment_target": f"{DEPLOYMENT_TARGET} / macOS15",
                               "compute_precision": "FLOAT16" if spec.method == "fp16" else "FLOAT32",
                               "weight_threshold": WEIGHT_THRESHOLD}
    timings = {}
    t0 = time.perf_counter()
    with quiet(capture):
        try:
            if sizes:  # enumerated shapes fix the batch at 1
                mlmodel = _convert(ct, model, inputs, precision, dynamic=False, sizes=sizes)
            else:
                mlmodel = _convert(ct, model, inputs, precision, dynamic=True, io=io)
            details["dynamic_batch"] = not sizes
        except Exception as e:  # some graphs only convert with a static batch: say so, and go on with batch 1
            details["dynamic_batch"] = False
            details["enumerated_shapes_error" if sizes else "dynamic_batch_error"] = \
                f"{e.__class__.__name__}: {str(e).strip()[:200]}"
            mlmodel = _convert(ct, model, inputs, precision, dynamic=False, io=io)
        timings["convert_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        mlmodel, info = _compress(ct, mlmodel, spec, model)
        timings["compress_s"] = time.perf_counter() - t1
        mlmodel.save(str(path))
    # ct.convert of a torch.export program adds an ExecuTorch debug-handle map (not in the package manifest, not
    # read by Core ML); the compressed re-saves drop it. Removed so package sizes compare like for like.
    debug_map = path / "executorch_debug_handle_mapping.json"
    if debug_map.exists():
        debug_map.unlink()
        details["removed"] = [debug_map.name]
    details.update(info)
    structure = inspect_package(path)
    details.update({
        "ops": structure["ops"],
        "compressed_ops": sum(structure["ops"].get(o, 0)
                              for o in COMPRESSED_OPS.get("prune" if spec.method == "lcs" else spec.method, ())),
        "payload_dtypes": structure["payload_dtypes"],
        "weight_bin_bytes": structure["weight_bin_bytes"],
        "inline_param_bytes": structure["inline_param_bytes"],
        # the same tensors at their logical size, without weight.bin's per-blob headers and 64-byte alignment
        "payload_bytes": structure["blob_payload_bytes"] + structure["inline_param_bytes"],
        "package_bytes": structure["package_bytes"],
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "converter_warnings": capture.messages[:20],
        # weight.bin (every blob, with coremltools' 64-byte blob headers and alignment) plus the float tensors
        # small enough to be stored inline in model.mlmodel (biases of < 10 values): every stored parameter byte
        "weight_bytes": structure["weight_bin_bytes"] + structure["inline_param_bytes"],
    })
    if sizes:  # read back from the saved package: what Core ML will accept
        details["input_sizes"] = enumerated_sizes(path)
    return details


def enumerated_sizes(path: Path) -> list[int]:
    """The square sizes (last two dims equal) among the first input's enumerated shapes in a saved package."""
    ct = load_coremltools()
    arr = ct.models.MLModel(str(path), skip_model_load=True).get_spec().description.input[0].type.multiArrayType
    return sorted({int(s.shape[-1]) for s in arr.enumeratedShapes.shapes if s.shape[-1] == s.shape[-2]})


# ---------------------------------------------------------------------------------------------------- inspection


def _walk_ops(block):
    for op in block.operations:
        yield op
        for inner in op.blocks:
            yield from _walk_ops(inner)


def _values(op):
    """Every literal Value an op carries: a const's `val`, and the inline arguments of constexpr ops."""
    if "val" in op.attributes:
        yield op.attributes["val"]
    for arg in op.inputs.values():
        for binding in arg.arguments:
            if binding.WhichOneof("binding") == "value":
                yield binding.value


def _numel(value) -> int:
    return int(np.prod([d.constant.size for d in value.type.tensorType.dimensions]))


def _op_name(op) -> str:
    if "name" in op.attributes:
        names = op.attributes["name"].immediateValue.tensor.strings.values
        if names:
            return names[0]
    return op.outputs[0].name if op.outputs else ""


def inspect_package(path: Path) -> dict[str, Any]:
    """The structure of a saved .mlpackage, read from its spec (no model load, so it works on Linux)."""
    ct = load_coremltools()
    from coremltools.proto import MIL_pb2

    path = Path(path)
    mlmodel = ct.models.MLModel(str(path), skip_model_load=True)
    spec = mlmodel.get_spec()
    dtype_name = MIL_pb2.DataType.Name
    ops: Counter[str] = Counter()
    payload_dtypes: Counter[str] = Counter()
    producers: dict[str, str] = {}
    weight_layers: list[dict[str, Any]] = []
    inline_bytes = blob_payload = 0
    sparse = {"tensors": 0, "values": 0, "nonzeros": 0}
    if spec.WhichOneof("Type") == "mlProgram":
        for fn in spec.mlProgram.functions.values():
            all_ops = list(_walk_ops(fn.block_specializations[fn.opset]))
            for op in all_ops:
                for out in op.outputs:
                    producers[out.name] = op.type
            for op in all_ops:
                ops[op.type] += 1
                for v in _values(op):
                    tt = v.type.tensorType
                    dt = dtype_name(tt.dataType)
                    if op.type.startswith("constexpr_"):
                        payload_dtypes[dt] += 1
                    n = _numel(v)
                    if v.WhichOneof("value") == "immediateValue" and dt in _FLOAT_BYTES and tt.rank >= 1:
                        inline_bytes += n * _FLOAT_BYTES[dt]
                    elif v.WhichOneof("value") == "blobFileValue":
                        blob_payload += (n * _BITS.get(dt, 32) + 7) // 8
                if "nonzero_data" in op.inputs:  # constexpr_sparse_to_dense / constexpr_sparse_blockwise_shift_scale
                    mask = op.inputs.get("mask", op.inputs.get("data_mask"))
                    if mask is not None and mask.arguments:
                        sparse["tensors"] += 1
                        sparse["values"] += _numel(mask.arguments[0].value)
                        sparse["nonzeros"] += _numel(op.inputs["nonzero_data"].arguments[0].value)
                if op.type in WEIGHT_OPS:
                    key = "weight" if "weight" in op.inputs else "y"
                    args = op.inputs[key].arguments if key in op.inputs else []
                    src = args[0].name if args and args[0].name else ""
                    weight_layers.append({"op": op.type, "name": _op_name(op), "weight": src,
                                          "producer": producers.get(src, "inline" if not src else "?")})
    bins = [f for f in path.rglob("weight.bin") if f.is_file()]
    desc = spec.description
    return {
        "spec_type": spec.WhichOneof("Type"),
        "specification_version": spec.specificationVersion,
        "ops": dict(sorted(ops.items())),
        "payload_dtypes": dict(sorted(payload_dtypes.items())),
        "weight_layers": weight_layers,
        "weight_bin_bytes": sum(f.stat().st_size for f in bins),
        "inline_param_bytes": inline_bytes,
        "blob_payload_bytes": blob_payload,
        "sparse": sparse,
        "package_bytes": sum(f.stat().st_size for f in path.rglob("*") if f.is_file()),
        "inputs": [feature(f) for f in desc.input],
        "outputs": [feature(f) for f in desc.output],
    }


# ---------------------------------------------------------------------------------------------------- verify


def structural_check(path: Path, method: str, bits: int | None = None) -> dict[str, Any]:
    if method == "datafree":  # learned values as per-channel LUTs; the pruning variant is stored sparse
        from exporters.compression.datafree import palette_bits

        method, bits = ("palettize", palette_bits(bits)) if bits and bits < 32 else ("prune", None)
    s = inspect_package(path)
    ops, problems = s["ops"], []
    expected = COMPRESSED_OPS.get(method, ())
    compressed = sum(ops.get(o, 0) for o in expected)
    constexpr = sum(n for o, n in ops.items() if o.startswith("constexpr_"))
    if s["spec_type"] != "mlProgram":
        problems.append(f"spec type is {s['spec_type']}, not mlProgram")
    if not any(o in ops for o in WEIGHT_OPS):
        problems.append("no conv/linear op in the program")
    if "conv" not in ops:
        problems.append("no conv op in the program")
    if s["weight_bin_bytes"] <= 0:
        problems.append("weight.bin is missing or empty")
    if [i["name"] for i in s["inputs"]][:1] != ["input"]:
        problems.append(f"first input is {[i['name'] for i in s['inputs']]}, expected 'input'")
    if [o["name"] for o in s["outputs"]] != ["logits"]:
        problems.append(f"outputs are {[o['name'] for o in s['outputs']]}, expected ['logits']")
    uncompressed = [w["name"] or w["weight"] for w in s["weight_layers"] if w["producer"] not in expected]
    if expected:
        if compressed == 0:
            problems.append(f"no {' / '.join(expected)} op: the weights were not compressed")
        want = {"int8": "INT8", "int4": "INT4", "palettize": f"UINT{bits or 4}", "prune": "UINT1"}[method]
        if want not in s["payload_dtypes"]:
            problems.append(f"no {want} payload in the compressed ops (found {sorted(s['payload_dtypes'])})")
    elif constexpr and method != "lcs":  # an LCS point is stored sparse when its mask zeroes enough weights
        problems.append(f"{constexpr} constexpr ops in a model exported without weight compression")
    if method == "fp16" and "cast" not in ops:
        problems.append("fp16 model has no cast op (fp32 I/O around fp16 compute expected)")
    return {
        "kind": "structural", "ok": not problems, "problems": problems,
        "ops": ops, "compressed_ops": compressed, "expected_compressed_ops": list(expected),
        "weight_layers": len(s["weight_layers"]),
        "uncompressed_weight_layers": uncompressed if expected else [],
        "payload_dtypes": s["payload_dtypes"],
        "sparse_tensors": s["sparse"]["tensors"],
        "stored_zeros": s["sparse"]["values"] - s["sparse"]["nonzeros"],
        "weight_bin_bytes": s["weight_bin_bytes"], "inline_param_bytes": s["inline_param_bytes"],
        "inputs": s["inputs"], "outputs": s["outputs"], "specification_version": s["specification_version"],
    }


def predict_all(mlmodel, x: np.ndarray, dynamic: bool, chunk: int = 256) -> np.ndarray:
    step = chunk if dynamic else 1
    outs = []
    for i in range(0, len(x), step):
        res = mlmodel.predict({"input": x[i:i + step].astype(np.float32)})
        outs.append(np.asarray(res["logits"] if "logits" in res else next(iter(res.values()))))
    return np.concatenate(outs, 0)


def verify(model: nn.Module, artifact) -> dict[str, Any]:
    comp = artifact.manifest.get("compression") or {}
    result = structural_check(artifact.model_file, comp.get("method", "none"), comp.get("bits"))
    if sys.platform != "darwin":
        result["note"] = "Core ML predicts only on macOS: structure checked, numbers not"
        return result
    from exporters.verify import numeric_parity

    ct = load_coremltools()
    mlmodel = ct.models.MLModel(str(artifact.model_file), compute_units=ct.ComputeUnit.CPU_ONLY)
    data = np.load(artifact.path / "eval.npz")
    dynamic = result["inputs"][0]["shape"] is not None and result["inputs"][0]["shape"][0] is None
    numeric = numeric_parity(predict_all(mlmodel, data["x"], dynamic), data["reference"])
    return {**result, **numeric, "kind": "numeric+structural", "runtime": "coreml CPU_ONLY",
            "ok": result["ok"] and numeric["ok"], "structural_ok": result["ok"], "numeric_ok": numeric["ok"]}
