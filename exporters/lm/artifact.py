"""LM artifacts: checkpoint -> torch-level compression (none | int8 | int4 | seedlm3/4, group 32 RTN) -> format.

SeedLM and the torch RTN specs are exported as reconstructed dense weights (no runtime has a seed op); the
manifest records the packed bits/weight and says so. ONNX, MLX and Core ML int4/int8 use their own library's
quantizer instead (onnxruntime's MatMulNBitsQuantizer; mlx-lm's nn.quantize; coremltools.optimize.coreml
linear_quantize_weights on the converted program); torch int4/int8 is group-32 RTN in torch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from exporters import FORMATS
from exporters.output import check_out_dir, publish, resolve_out, staging
from models import checkpoint
from models.checkpoint import checkpoint_hash, file_sha256
from models.errors import ArtifactError


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
        raise ArtifactError(f"unknown LM compression {compression!r}", "use none, int8, int4, seedlm3 or seedlm4")
    return {"bits_per_weight": rep["bits_per_weight"], "packed_weight_bytes": rep["size_bytes"],
            "weights_note": "reconstructed dense weights (compressed tensors' packed size in packed_weight_bytes)"}


LM_EXPORTER_VERSION = 3  # 2: Core ML, ONNX int8/int4 via onnxruntime, shared weights; 3: MLX embedding kept float
LM_FORMATS = FORMATS  # every format exports language models too
LM_COMPRESSIONS = ("none", "int8", "int4", "seedlm3", "seedlm4")
LM_MANIFEST = "lm_manifest.json"


def check_lm_request(fmt: str, compression: str) -> None:
    if fmt not in LM_FORMATS:
        raise ArtifactError(f"unknown LM format {fmt!r}", f"use one of: {', '.join(LM_FORMATS)}")
    if compression not in LM_COMPRESSIONS:
        raise ArtifactError(f"unknown LM compression {compression!r}", f"use one of: {', '.join(LM_COMPRESSIONS)}")


def default_lm_out_dir(artifacts: Path, ckpt: Path, fmt: str, compression: str) -> Path:
    """One folder per (checkpoint content, format, compression): two checkpoints never share an export."""
    ckpt = Path(ckpt).resolve()
    return Path(artifacts) / f"{ckpt.name}-{checkpoint_hash(ckpt)[:10]}" / f"lm-{fmt}-{compression}"


def lm_payload_sha256(folder: Path) -> str:
    """sha256 over every file of an LM artifact but its manifest: what is measured is what was exported."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.name != LM_MANIFEST):
        h.update(str(f.relative_to(folder)).encode())
        h.update(file_sha256(f).encode())
    return h.hexdigest()


def read_lm_manifest(folder: Path, check_sha: bool = True) -> dict[str, Any]:
    """The manifest of an LM artifact folder, with its files checked against the sha256 recorded at export."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"LM artifact {folder} is not a folder", "pass a folder made by `edgezoo lm export`")
    try:
        man = json.loads((folder / LM_MANIFEST).read_text())
        man["format"]
    except FileNotFoundError:
        raise ArtifactError(f"{folder} has no {LM_MANIFEST}", "pass a folder made by `edgezoo lm export`") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise ArtifactError(f"{folder / LM_MANIFEST} is corrupt", "re-export with `edgezoo lm export`") from None
    if check_sha and man.get("sha256") and lm_payload_sha256(folder) != man["sha256"]:
        raise ArtifactError(f"the files of {folder} do not match its manifest (sha256 differs from the export's)",
                            "re-export it with `edgezoo lm export ... --force`")
    return man


def reusable_lm_export(ckpt: Path, fmt: str, compression: str, out_dir: Path) -> bool:
    """True when `out_dir` already holds this exact export: same checkpoint weights, format, compression, exporter."""
    try:
        man = read_lm_manifest(out_dir)
    except ArtifactError:
        return False
    return (man.get("format"), man.get("compression"), man.get("exporter_version"), man.get("checkpoint_sha256")) == (
        fmt, compression, LM_EXPORTER_VERSION, checkpoint_hash(ckpt))


def export_lm(ckpt: Path, fmt: str, compression: str, out_dir: Path, force: bool = False) -> Path:
    """Export an LM checkpoint into `out_dir` (resolved from the caller's directory). An existing EdgeZoo export
    there is replaced only with `force`; a folder EdgeZoo did not make never is."""
    check_lm_request(fmt, compression)
    ckpt = Path(ckpt).resolve()
    model, card = checkpoint.load(ckpt)
    if card.get("task") != "lm":
        raise ArtifactError(f"{ckpt} is a {card.get('task')!r} checkpoint, not a language model",
                            "pass an LM checkpoint (edgezoo lm train / lm import); vision models export with `exporters`")
    out_dir = resolve_out(out_dir)
    check_out_dir(out_dir, force)
    with staging(out_dir) as tmp:
        info = _export_lm_into(tmp, model, card, fmt, compression)
        size = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file())
        man = {"format": fmt, "compression": compression, "checkpoint": str(ckpt),
               "checkpoint_sha256": checkpoint_hash(ckpt), "size_bytes": size, "sha256": lm_payload_sha256(tmp),
               "vocab_size": model.args.vocab_size, "exporter_version": LM_EXPORTER_VERSION, **info}
        (tmp / LM_MANIFEST).write_text(json.dumps(man, indent=2, default=str))
        publish(tmp, out_dir, force)
    return out_dir


def _export_lm_into(out_dir: Path, model, card: dict[str, Any], fmt: str, compression: str) -> dict[str, Any]:
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
            info["bits_per_weight"] = info["export"]["quantization"]["bits_per_weight"]  # counted from the saved file
    else:
        from exporters.lm.coreml_lm import export_coreml_lm

        details = export_coreml_lm(model, out_dir / "coreml", quantize=compression if native_coreml else None)
        info["verification"] = details.pop("verification")
        info["export"] = details
        if native_coreml:  # int8: + fp32 scale per output channel; int4: + fp32 scale per block of 32
            info["bits_per_weight"] = details["bits_per_weight"]
    return info
