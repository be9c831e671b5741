"""OpenELM -> ONNX as two graphs with the KV cache explicit (card 01 section 6):

- prefill.onnx: input_ids (B, T), pad (B,) -> logits (B, T, V), present.{i}.key / present.{i}.value
- decode.onnx:  input_ids (B, T), pad (B,), past.{i}.key / past.{i}.value (B, n_kv_i, P, D) -> logits, present.*

Cached keys are stored rotated (one consistent choice); masks come from lengths (`pad` = left padding per row).
The per-layer KV-head counts differ (layer-wise scaling), so every layer has its own pair of inputs/outputs.
The export checks both graphs through onnxruntime (`lm_verify`); profiles.runtimes.onnxruntime_rt measures them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from models.openelm import OpenELM

OPSET = 18


class _Step(nn.Module):
    """Flat-signature wrapper: (ids, pad, *past) -> (logits, *present)."""

    def __init__(self, model: OpenELM, with_past: bool) -> None:
        super().__init__()
        self.model, self.with_past = model, with_past

    def forward(self, ids: torch.Tensor, pad: torch.Tensor, *past: torch.Tensor):
        cache = [(past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2)] if self.with_past else None
        logits, new = self.model.forward_cached(ids, cache, pad)
        return (logits, *[t for kv in new for t in kv])


def _names(n_layers: int, kind: str) -> list[str]:
    return [f"{kind}.{i}.{x}" for i in range(n_layers) for x in ("key", "value")]


def export_lm_onnx(model: OpenELM, out_dir: Path, past_len: int = 4) -> dict[str, Any]:
    """Write prefill.onnx and decode.onnx (fp32, dynamic batch / length / past) and lm_onnx.json."""
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    a = model.args
    n = a.num_transformer_layers
    b, t, p = torch.export.Dim("batch", min=1, max=64), torch.export.Dim("seq", min=1, max=a.max_context_length), \
        torch.export.Dim("past", min=1, max=a.max_context_length)
    ids = torch.randint(0, a.vocab_size, (2, 3))
    pad = torch.zeros(2, dtype=torch.long)
    past = [torch.randn(2, h, past_len, a.head_dim) for h in a.kv_heads() for _ in range(2)]
    present = _names(n, "present")
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Step(model, False), (ids, pad), dynamo=True, opset_version=OPSET,
                          input_names=["input_ids", "pad"], output_names=["logits", *present],
                          dynamic_shapes=({0: b, 1: t}, {0: b})).save(str(out_dir / "prefill.onnx"))
        torch.onnx.export(_Step(model, True), (ids, pad, *past), dynamo=True, opset_version=OPSET,
                          input_names=["input_ids", "pad", *_names(n, "past")], output_names=["logits", *present],
                          dynamic_shapes=({0: b, 1: t}, {0: b}, tuple({0: b, 2: p} for _ in past))
                          ).save(str(out_dir / "decode.onnx"))
    info = {"format": "onnx-lm", "graphs": ["prefill.onnx", "decode.onnx"], "opset": OPSET, "layers": n,
            "kv_heads": a.kv_heads(), "head_dim": a.head_dim, "vocab_size": a.vocab_size, "cached_keys": "rotated",
            "mask": "from lengths (pad input)", "max_context_length": a.max_context_length}
    (out_dir / "lm_onnx.json").write_text(json.dumps(info, indent=2))
    return info


def quantize_lm_onnx(out_dir: Path, bits: int, block: int = 32) -> dict[str, Any]:
    """Weight-only RTN of every MatMul with a constant weight (the block linears) through onnxruntime's
    MatMulNBitsQuantizer (symmetric, per block of `block` input channels), both graphs rewritten in place.
    The LM head is quantized only where the exporter folded the tied embedding's transpose into a constant."""
    import onnx

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    root.handlers[:], root.level = handlers, level  # its import calls logging.basicConfig(level=INFO) on the root
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    out_dir = Path(out_dir)
    stored = weights = 0
    for graph in ("prefill.onnx", "decode.onnx"):
        q = MatMulNBitsQuantizer(onnx.load(str(out_dir / graph)), bits=bits, block_size=block, is_symmetric=True,
                                 op_types_to_quantize=("MatMul",))
        q.process()
        q.model.save_model_to_file(str(out_dir / graph), use_external_data_format=False)
        if graph == "prefill.onnx":
            inits = {t.name: t for t in q.model.model.graph.initializer}
            for node in (n for n in q.model.model.graph.node if n.op_type == "MatMulNBits"):
                attrs = {a.name: a.i for a in node.attribute}
                weights += attrs["K"] * attrs["N"]
                stored += sum(len(onnx.numpy_helper.to_array(inits[i]).tobytes()) for i in node.input[1:] if i in inits)
    if not weights:
        raise ValueError("no MatMul with a constant weight was quantized")
    info = {"method": "onnxruntime MatMulNBitsQuantizer", "bits": bits, "block_size": block, "symmetric": True,
            "quantized_weights": weights, "bits_per_weight": 8 * stored / weights}
    meta = json.loads((out_dir / "lm_onnx.json").read_text())
    (out_dir / "lm_onnx.json").write_text(json.dumps({**meta, "quantization": info}, indent=2))
    return info


def share_initializers(out_dir: Path, graphs: tuple[str, ...] = ("prefill.onnx", "decode.onnx"),
                       location: str = "weights.bin", threshold: int = 1024) -> dict[str, int]:
    """Store every initializer of >= `threshold` bytes once in `location` (ONNX external data) and point both graphs
    at it: prefill and decode share all their weights, so the folder holds them once instead of twice."""
    import onnx
    from onnx.external_data_helper import set_external_data

    out_dir = Path(out_dir)
    models = [onnx.load(str(out_dir / g)) for g in graphs]
    offsets: dict[tuple[str, int], tuple[int, int]] = {}
    referenced = 0
    with open(out_dir / location, "wb") as f:
        for m in models:
            for t in m.graph.initializer:
                if not t.HasField("raw_data") or len(t.raw_data) < threshold:
                    continue
                key = (hashlib.sha256(t.raw_data).hexdigest(), t.data_type)
                if key not in offsets:
                    f.write(b"\0" * (-f.tell() % 64))  # 64-byte aligned tensors
                    offsets[key] = (f.tell(), len(t.raw_data))
                    f.write(t.raw_data)
                offset, length = offsets[key]
                referenced += length
                set_external_data(t, location, offset=offset, length=length)
                t.ClearField("raw_data")
                t.data_location = onnx.TensorProto.EXTERNAL
    for m, g in zip(models, graphs):
        onnx.save(m, str(out_dir / g))
    return {"stored_bytes": (out_dir / location).stat().st_size, "referenced_bytes": referenced,
            "shared_tensors": len(offsets)}


def lm_export(model: OpenELM, out_dir: Path, spec, card: dict[str, Any]) -> dict[str, Any]:
    """The ONNX plug-in for language models: out_dir/onnx/ with prefill and decode graphs sharing one weight file;
    int8/int4 through onnxruntime's quantizer (bits per weight counted from the rewritten graphs)."""
    folder = Path(out_dir) / "onnx"
    info: dict[str, Any] = export_lm_onnx(model, folder)
    out: dict[str, Any] = {}
    if spec.method in ("int8", "int4"):
        info["quantization"] = quantize_lm_onnx(folder, spec.bits, spec.block)
        out["bits_per_weight"] = info["quantization"]["bits_per_weight"]
    info["shared_weights"] = share_initializers(folder)
    return {**out, **info}


def onnx_lm_steps(folder: Path) -> tuple[Callable, Callable]:
    """(prefill, step) over the two graphs through onnxruntime's CPU provider, the KV cache held between calls."""
    import onnxruntime as ort

    folder = Path(folder)
    layers = json.loads((folder / "lm_onnx.json").read_text())["layers"]
    prefill_graph, decode_graph = (ort.InferenceSession(str(folder / g), providers=["CPUExecutionProvider"])
                                   for g in ("prefill.onnx", "decode.onnx"))
    past_names, cache = _names(layers, "past"), {}

    def run(session, ids: np.ndarray, past: dict[str, np.ndarray]) -> np.ndarray:
        logits, *present = session.run(None, {"input_ids": ids.astype(np.int64), "pad": np.zeros(len(ids), np.int64),
                                              **past})
        cache.update(zip(past_names, present))
        return logits

    return (lambda ids: run(prefill_graph, ids, {})), (lambda token: run(decode_graph, token, dict(cache)))


def lm_verify(model: OpenELM, artifact) -> dict[str, Any]:
    """Prefill logits and greedy tokens through onnxruntime against the torch model (exporters.lm.parity)."""
    from exporters.lm.parity import exact_required, lm_parity

    prefill, step = onnx_lm_steps(artifact.path / "onnx")
    return lm_parity(model, prefill, step, "onnxruntime CPU", exact_required(artifact))
