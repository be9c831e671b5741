"""OpenELM -> one stateful Core ML program (.mlpackage) for prefill and decode, the KV cache held in Core ML states
(iOS 18 / macOS 15; card 01 section 6). The pattern is coremltools' documented stateful LLM one:

- inputs: input_ids (1, T) int32 and causal_mask (1, 1, T, P + T) float32, both flexible (1 <= T <= P + T <= max_len).
  The mask is additive (0 / MASK_VALUE, finite: fp16 safe), and its last dimension tells the program how many
  positions P are already cached: the new keys/values are written at P .. P + T - 1 (`causal_mask` builds it).
- states: k_cache_i / v_cache_i of shape (1, n_kv_i, max_len, d_head) per layer (KV-head counts differ by layer),
  fp16 (the only state dtype coremltools converts), keys stored rotated. Reset = a fresh `make_state()`.
- output: logits (1, T, V) float32.

Compute precision is FLOAT32 for every compression (fp32 activations and RMSNorm; states are read and written
through casts), so a variant differs from the fp32 reference by its weights and the fp16 cache only.
int8 / int4 are applied to the converted program with coremltools.optimize.coreml.linear_quantize_weights
(int8 per output channel, int4 per block of 32 input channels), weight_threshold 0 as in exporters/coreml.py.

On Linux verification is structural (the package is reopened from its spec: states, inputs, outputs, ops, the
quantized payloads); Core ML predicts only on macOS, where the numbers are checked too
(`coreml_lm_steps`; profiles.runtimes.coreml_rt measures it).
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from models.errors import ConversionError
from models.openelm import MASK_VALUE, OpenELM, rope

MODEL_FILE = "model.mlpackage"
INFO_FILE = "lm_coreml.json"
INPUTS = ("input_ids", "causal_mask")
STATE_DTYPE = torch.float16
QUANTIZED_PAYLOAD = {"int8": "INT8", "int4": "INT4"}
QUANT_OP = "constexpr_blockwise_shift_scale"
QUANT_SPECS = {"int8": dict(method="int8", bits=8, block=0), "int4": dict(method="int4", bits=4, block=32)}


def state_names(n_layers: int) -> list[str]:
    return [f"{kind}_cache_{i}" for i in range(n_layers) for kind in ("k", "v")]


class StatefulLM(nn.Module):
    """What is converted: OpenELM's weights with the KV cache as registered buffers updated in place."""

    def __init__(self, model: OpenELM, max_len: int, cache_dtype: torch.dtype = STATE_DTYPE) -> None:
        super().__init__()
        self.model, self.max_len = model.eval(), max_len
        a = model.args
        for i, h in enumerate(a.kv_heads()):
            for kind in ("k", "v"):
                self.register_buffer(f"{kind}_cache_{i}", torch.zeros(1, h, max_len, a.head_dim, dtype=cache_dtype))

    def forward(self, input_ids: torch.Tensor, causal_mask: torch.Tensor) -> torch.Tensor:
        t, end = input_ids.shape[1], causal_mask.shape[-1]
        past = end - t
        pos = torch.arange(t, dtype=torch.int32, device=input_ids.device)[None] + past
        tr = self.model.transformer
        x = tr.token_embeddings(input_ids)
        for i, layer in enumerate(tr.layers):
            x = x + self._attend(i, layer.attn, layer.attn_norm(x), pos, past, end, causal_mask)
            x = x + layer.ffn(layer.ffn_norm(x))
        return tr.norm(x) @ tr.token_embeddings.weight.T

    def _attend(self, i: int, at, x: torch.Tensor, pos: torch.Tensor, past, end, mask: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        qkv = at.qkv_proj(x).reshape(1, t, at.n_q + 2 * at.n_kv, at.d_head).transpose(1, 2)
        q, k, v = qkv.split([at.n_q, at.n_kv, at.n_kv], dim=1)
        q, k = rope(at.q_norm(q), pos, at.base), rope(at.k_norm(k), pos, at.base)
        kc, vc = getattr(self, f"k_cache_{i}"), getattr(self, f"v_cache_{i}")
        # functional slice update + whole-buffer copy_: export turns it into one state write, no shape guards
        kc.copy_(torch.slice_scatter(kc, k.to(kc.dtype), dim=2, start=past, end=end))
        vc.copy_(torch.slice_scatter(vc, v.to(vc.dtype), dim=2, start=past, end=end))
        keys, values = kc[:, :, :end].to(x.dtype), vc[:, :, :end].to(x.dtype)  # (1, n_kv, end, D)
        g = at.n_q // at.n_kv  # query head h reads KV head h // g: stack each group's queries, never copy the cache
        scores = q.reshape(1, at.n_kv, g * t, at.d_head) @ keys.transpose(-1, -2) / math.sqrt(at.d_head)
        scores = scores + torch.cat([mask] * g, dim=2)  # rank <= 4 throughout
        out = (scores.softmax(-1) @ values).reshape(1, at.n_q, t, at.d_head)
        return at.out_proj(out.transpose(1, 2).reshape(1, t, at.n_q * at.d_head))


def causal_mask(past: int, t: int) -> np.ndarray:
    """(1, 1, t, past + t) additive mask for t new tokens after `past` cached ones."""
    q = past + np.arange(t)[:, None]
    k = np.arange(past + t)[None]
    return np.where(k <= q, 0.0, MASK_VALUE).astype(np.float32)[None, None]


# ---------------------------------------------------------------------------------------------------- export


def _program(wrapper: StatefulLM):
    """torch.export with T and P + T dynamic. A cache slice is contiguous only when it spans the whole buffer, so
    export adds shape asserts (P + T != max_len) that hold no meaning for Core ML: they are dropped."""
    n = wrapper.max_len
    t, end = torch.export.Dim("t", min=1, max=n), torch.export.Dim("end", min=1, max=n)
    ids = torch.randint(0, wrapper.model.args.vocab_size, (1, 3), dtype=torch.int32)
    program = torch.export.export(wrapper, (ids, torch.from_numpy(causal_mask(2, 3))),
                                  dynamic_shapes=({1: t}, {2: t, 3: end}),
                                  prefer_deferred_runtime_asserts_over_guards=True)
    program = program.run_decompositions({})
    graph = program.graph_module.graph
    for node in list(graph.nodes):
        if node.target is torch.ops.aten._assert_scalar.default:
            graph.erase_node(node)
    graph.eliminate_dead_code()
    program.graph_module.recompile()
    return program


def _convert(ct, wrapper: StatefulLM):
    n = wrapper.max_len
    inputs = [ct.TensorType(name="input_ids", shape=(1, ct.RangeDim(1, n, default=1)), dtype=np.int32),
              ct.TensorType(name="causal_mask", shape=(1, 1, ct.RangeDim(1, n, default=1), ct.RangeDim(1, n, default=1)),
                            dtype=np.float32)]
    states = [ct.StateType(wrapped_type=ct.TensorType(shape=tuple(b.shape), dtype=np.float16), name=name)
              for name, b in wrapper.named_buffers()]
    return ct.convert(_program(wrapper), inputs=inputs, outputs=[ct.TensorType(name="logits", dtype=np.float32)],
                      states=states, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
                      compute_precision=ct.precision.FLOAT32, skip_model_load=True)


def export_coreml_lm(model: OpenELM, out_dir: Path, quantize: str | None = None) -> dict[str, Any]:
    """Write out_dir/model.mlpackage (+ lm_coreml.json); returns export details with a `verification` entry."""
    from exporters.artifact import conversion_summary
    from exporters.compression import CompressionSpec
    from exporters.coreml import _compress
    from exporters.coreml_common import Capture, load_coremltools, quiet

    if quantize not in (None, *QUANT_SPECS):
        raise ValueError(f"unknown Core ML LM quantization {quantize!r}: None, int8, int4")
    ct = load_coremltools()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MODEL_FILE
    a = model.args
    wrapper = StatefulLM(model, a.max_context_length)
    capture, timings = Capture(), {}
    with quiet(capture):
        t0 = time.perf_counter()
        try:
            mlmodel = _convert(ct, wrapper)
        except Exception as e:  # torch.export and coremltools raise anything: name the op when they do
            raise ConversionError(f"Core ML conversion of the OpenELM LM failed: {conversion_summary(e)}",
                                  "export another format (onnx, mlx), or replace the unsupported op in the model") from None
        timings["convert_s"] = time.perf_counter() - t0
        quant: dict[str, Any] = {"tool": "coremltools.convert(compute_precision=FLOAT32)"}
        if quantize:
            t1 = time.perf_counter()
            mlmodel, quant = _compress(ct, mlmodel, CompressionSpec(**QUANT_SPECS[quantize]))
            timings["compress_s"] = time.perf_counter() - t1
        shutil.rmtree(path, ignore_errors=True)
        mlmodel.save(str(path))
    (path / "executorch_debug_handle_mapping.json").unlink(missing_ok=True)  # not read by Core ML (see coreml.py)
    info = {"format": "coreml-lm", "model_file": MODEL_FILE, "deployment_target": "iOS18 / macOS15",
            "compute_precision": "FLOAT32", "state_dtype": "float16", "inputs": list(INPUTS), "outputs": ["logits"],
            "states": state_names(a.num_transformer_layers), "layers": a.num_transformer_layers,
            "kv_heads": a.kv_heads(), "head_dim": a.head_dim, "vocab_size": a.vocab_size, "max_len": wrapper.max_len,
            "cached_keys": "rotated", "mask": f"additive (0 / {MASK_VALUE}), last dim = cached + new positions",
            "linears": sum(isinstance(m, nn.Linear) for m in model.modules()) + 1}  # + the tied logits projection
    (out_dir / INFO_FILE).write_text(json.dumps(info, indent=2))
    verification = verify_lm(model, out_dir, quantize)
    return {**info, **{k: v for k, v in quant.items() if k not in ("blocks",)}, "quantization": quantize,
            "bits_per_weight": verification["bits_per_weight"], "package_bytes": verification["package_bytes"],
            "timings": {k: round(v, 3) for k, v in timings.items()}, "converter_warnings": capture.messages[:20],
            "verification": verification}


# ---------------------------------------------------------------------------------------------------- verify


def _states(spec) -> list[dict[str, Any]]:
    from coremltools.proto import FeatureTypes_pb2

    dt = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name
    out = []
    for s in spec.description.state:
        arr = s.type.stateType.arrayType
        out.append({"name": s.name, "shape": [int(d) for d in arr.shape], "dtype": dt(arr.dataType).lower()})
    return out


def _quantized_bits(spec) -> dict[str, float]:
    """Stored bits of the quantized tensors (data + scales + offsets) per quantized weight."""
    from coremltools.proto import MIL_pb2

    from exporters.coreml import _BITS, _numel, _walk_ops

    bits = n = 0
    for fn in spec.mlProgram.functions.values():
        for op in _walk_ops(fn.block_specializations[fn.opset]):
            if op.type != QUANT_OP:
                continue
            for key, arg in op.inputs.items():
                for b in arg.arguments:
                    if b.WhichOneof("binding") != "value":
                        continue
                    size = _numel(b.value)
                    bits += size * _BITS.get(MIL_pb2.DataType.Name(b.value.type.tensorType.dataType), 32)
                    n += size if key == "data" else 0
    return {"quantized_weights": n, "bits_per_weight": bits / n if n else 32.0}


def structural_check_lm(path: Path, info: dict[str, Any], quantize: str | None) -> dict[str, Any]:
    """Reopen the package from its spec (no model load: works on Linux) and check what a stateful LM must have."""
    from exporters.coreml import inspect_package
    from exporters.coreml_common import load_coremltools

    s = inspect_package(path)
    spec = load_coremltools().models.MLModel(str(path), skip_model_load=True).get_spec()
    ops, problems, n = s["ops"], [], info["layers"]
    states = _states(spec)
    want_states = [{"name": name, "shape": [1, h, info["max_len"], info["head_dim"]], "dtype": "float16"}
                   for name, h in zip(state_names(n), [h for h in info["kv_heads"] for _ in range(2)])]
    if s["spec_type"] != "mlProgram" or s["specification_version"] < 9:
        problems.append(f"{s['spec_type']} spec v{s['specification_version']}: an iOS18 mlProgram (v9+) is needed for states")
    if states != want_states:
        problems.append(f"states {[(x['name'], x['shape'], x['dtype']) for x in states]} != expected "
                        f"{[(x['name'], x['shape'], x['dtype']) for x in want_states]}")
    want_in = [{"name": "input_ids", "shape": [1, None], "dtype": "int32"},
               {"name": "causal_mask", "shape": [1, 1, None, None], "dtype": "float32"}]
    if s["inputs"] != want_in:
        problems.append(f"inputs {s['inputs']} != {want_in}")
    if [(o["name"], o["dtype"]) for o in s["outputs"]] != [("logits", "float32")]:
        problems.append(f"outputs {s['outputs']}, expected one float32 'logits'")
    for op in ("read_state", "write_state"):
        if ops.get(op, 0) != 2 * n:
            problems.append(f"{ops.get(op, 0)} {op} ops, expected {2 * n} (one per cache state)")
    want_linear = info.get("linears", 4 * n + 1)  # qkv, out, ffn in/out per layer (+ routers) + tied logits
    if ops.get("linear", 0) != want_linear:
        problems.append(f"{ops.get('linear', 0)} linear ops, expected {want_linear}")
    linear = [w for w in s["weight_layers"] if w["op"] == "linear"]
    quantized = [w for w in linear if w["producer"] == QUANT_OP]
    if quantize:
        if len(quantized) != len(linear):
            problems.append(f"{len(linear) - len(quantized)} of {len(linear)} linear weights not quantized")
        if QUANTIZED_PAYLOAD[quantize] not in s["payload_dtypes"]:
            problems.append(f"no {QUANTIZED_PAYLOAD[quantize]} payload (found {sorted(s['payload_dtypes'])})")
    elif any(op.startswith("constexpr_") for op in ops):
        problems.append("constexpr ops in a model exported without weight quantization")
    if s["weight_bin_bytes"] <= 0:
        problems.append("weight.bin is missing or empty")
    bits = _quantized_bits(spec) if quantize else {"quantized_weights": 0, "bits_per_weight": 32.0}
    return {"kind": "structural", "ok": not problems, "problems": problems, "states": states, "inputs": s["inputs"],
            "outputs": s["outputs"], "ops": ops, "linear_weights": len(linear), "quantized_linear_weights": len(quantized),
            "compressed_ops": ops.get(QUANT_OP, 0), "payload_dtypes": s["payload_dtypes"], **bits,
            "weight_bin_bytes": s["weight_bin_bytes"], "package_bytes": s["package_bytes"],
            "specification_version": s["specification_version"]}


def coreml_lm_steps(folder: Path, compute_units: str = "CPU_ONLY") -> tuple[Callable, Callable]:
    """(prefill, step) through coremltools' MLModel.predict (macOS): a fresh make_state() per prefill, the cached
    length carried in the causal mask's shape."""
    from exporters.coreml_common import load_coremltools

    ct = load_coremltools()
    mlmodel = ct.models.MLModel(str(Path(folder) / MODEL_FILE), compute_units=getattr(ct.ComputeUnit, compute_units))
    held: dict[str, Any] = {}

    def step(ids: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids.astype(np.int32), "causal_mask": causal_mask(held["past"], ids.shape[1])}
        out = mlmodel.predict(feed, state=held["state"])
        held["past"] += ids.shape[1]
        return np.asarray(out["logits"], dtype=np.float32)

    def prefill(ids: np.ndarray) -> np.ndarray:
        held.update(state=mlmodel.make_state(), past=0)
        return step(ids)

    return prefill, step


def verify_lm(model: OpenELM, folder: Path, quantize: str | None) -> dict[str, Any]:
    """Structural everywhere; on macOS also prefill logits and greedy tokens against torch (exporters.lm.parity).
    The fp16 KV cache may change a near-tie, so the tokens are recorded, not required."""
    folder = Path(folder)
    info = json.loads((folder / INFO_FILE).read_text())
    result = structural_check_lm(folder / MODEL_FILE, info, quantize)
    if sys.platform != "darwin":
        result["note"] = "Core ML predicts only on macOS: structure checked, numbers not"
        return result
    from exporters.lm.parity import lm_parity

    numeric = lm_parity(model, *coreml_lm_steps(folder), "coreml CPU_ONLY", exact=False)
    return {**result, **numeric, "kind": "numeric+structural", "ok": result["ok"] and numeric["ok"],
            "structural_ok": result["ok"]}


def lm_export(model: OpenELM, out_dir: Path, spec, card: dict[str, Any]) -> dict[str, Any]:
    """The Core ML plug-in for language models: out_dir/coreml/, one stateful program; int8/int4 through
    coremltools' linear_quantize_weights. Verified while exported (the details carry `verification`)."""
    details = export_coreml_lm(model, Path(out_dir) / "coreml",
                               quantize=spec.method if spec.method in QUANT_SPECS else None)
    if details["quantization"] is None:
        details.pop("bits_per_weight")  # fp32 package: the torch-level compression's count stands
    return details


def lm_verify(model: OpenELM, artifact) -> dict[str, Any]:
    return verify_lm(model, artifact.path / "coreml", artifact.manifest["export_details"].get("quantization"))
