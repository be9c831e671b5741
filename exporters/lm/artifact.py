"""LM artifacts: checkpoint -> torch-level compression (none | int8 | int4 | seedlm3/4, group 32 RTN) -> format.

SeedLM and the torch RTN specs are exported as reconstructed dense weights (no runtime has a seed op); the
manifest records the packed bits/weight and says so. ONNX, MLX and Core ML int4/int8 use their own library's
quantizer instead (onnxruntime's MatMulNBitsQuantizer; mlx-lm's nn.quantize; coremltools.optimize.coreml
linear_quantize_weights on the converted program); torch int4/int8 is group-32 RTN in torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models import checkpoint
from models.checkpoint import checkpoint_hash


def compress_lm(model, compression: str) -> dict[str, Any]:
    from exporters.compression.rtn_groups import rtn_
    from exporters.compression.seedlm import compress_seedlm_, default_cache_dir

    if compression == "none":
        return {"bits_per_weight": 32.0}
    if compression.startswith("seedlm"):
        rep = compress_seedlm_(model, int(compression[-1]), cache_dir=default_cache_dir(), reconstructed=True)
    elif compression in ("int8", "int4"):
        rep = rtn_(model, int(compression[3:]), 32, symmetric=True)
    else:
        raise ValueError(f"unknown LM compression {compression!r}: none, int8, int4, seedlm3, seedlm4")
    return {"bits_per_weight": rep["bits_per_weight"], "packed_weight_bytes": rep["size_bytes"],
            "weights_note": "reconstructed dense weights (compressed tensors' packed size in packed_weight_bytes)"}


LM_EXPORTER_VERSION = 2  # 2: Core ML, ONNX int8/int4 through onnxruntime, prefill/decode sharing weights


def reusable_lm_export(ckpt: Path, fmt: str, compression: str, out_dir: Path) -> bool:
    """True when `out_dir` already holds this exact export: same checkpoint weights, format, compression, exporter."""
    try:
        man = json.loads((Path(out_dir) / "lm_manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return (man.get("format"), man.get("compression"), man.get("exporter_version"), man.get("checkpoint_sha256")) == (
        fmt, compression, LM_EXPORTER_VERSION, checkpoint_hash(ckpt))


def export_lm(ckpt: Path, fmt: str, compression: str, out_dir: Path) -> Path:
    model, card = checkpoint.load(Path(ckpt))
    out_dir = Path(out_dir)
    native_mlx = fmt == "mlx" and compression in ("int8", "int4")
    native_coreml = fmt == "coreml" and compression in ("int8", "int4")
    native_onnx = fmt == "onnx" and compression in ("int8", "int4")
    native = native_mlx or native_coreml or native_onnx
    info = {"bits_per_weight": None} if native else compress_lm(model, compression)
    if fmt == "torch":
        checkpoint.save(model, out_dir / "checkpoint", {k: v for k, v in card.items()
                                                        if k not in ("model", "args", "paper", "task", "weights_sha256")})
    elif fmt == "onnx":
        from exporters.lm.onnx_lm import export_lm_onnx, quantize_lm_onnx, share_initializers

        info["export"] = export_lm_onnx(model, out_dir / "onnx")
        if native_onnx:
            info["export"]["quantization"] = quantize_lm_onnx(out_dir / "onnx", int(compression[3:]))
            info["bits_per_weight"] = info["export"]["quantization"]["bits_per_weight"]
        info["export"]["shared_weights"] = share_initializers(out_dir / "onnx")
    elif fmt == "mlx":
        from exporters.lm.mlx_lm_export import export_mlx_lm

        info["export"] = export_mlx_lm(model, out_dir / "mlx", q_bits=int(compression[3:]) if native_mlx else None, q_group=32)
        if native_mlx:
            info["bits_per_weight"] = int(compression[3:]) + 32 / 32  # affine: fp16 scale + bias per group of 32
    elif fmt == "coreml":
        from exporters.lm.coreml_lm import export_coreml_lm

        details = export_coreml_lm(model, out_dir / "coreml", quantize=compression if native_coreml else None)
        info["verification"] = details.pop("verification")
        info["export"] = details
        if native_coreml:  # int8: + fp32 scale per output channel; int4: + fp32 scale per block of 32
            info["bits_per_weight"] = details["bits_per_weight"]
    else:
        raise ValueError(f"unknown LM format {fmt!r}: torch, onnx, mlx, coreml")
    size = sum(f.stat().st_size for f in out_dir.rglob("*") if f.is_file())
    man = {"format": fmt, "compression": compression, "checkpoint": str(ckpt), "checkpoint_sha256": checkpoint_hash(ckpt),
           "size_bytes": size, "vocab_size": model.args.vocab_size, "exporter_version": LM_EXPORTER_VERSION, **info}
    (out_dir / "lm_manifest.json").write_text(json.dumps(man, indent=2, default=str))
    return out_dir
