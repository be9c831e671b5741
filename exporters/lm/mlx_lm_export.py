"""OpenELM -> an mlx-lm model folder (config.json with `model_type: openelm` + model.safetensors, upstream names).

mlx-lm ships `mlx_lm/models/openelm.py` with the same parameter names, so `mlx_lm.utils.load_model(folder)` loads
it directly. Optional quantization uses mlx-lm's own path (`nn.quantize`, affine, one scale and one bias per group,
both stored in the weights' dtype: float32 here, so group 32 costs 2 bits per weight on top of the codes). Only the
block linears are quantized, as in the ONNX, Core ML and torch exports: the (tied) token embedding stays float, and
layers whose input width is not a multiple of the group stay float too (card 01 section 6). Bits per weight are
counted from the saved safetensors (codes + scales + biases of the quantized linears), never from a formula.
SeedLM has no MLX op on Linux: a SeedLM model is exported with its reconstructed dense weights, and the manifest
says so.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from models.openelm import OpenELM
from models.openelm_upstream import save_upstream


def load_mlx_lm(folder: Path, **config: Any) -> tuple[Any, dict[str, Any]]:
    """(model, config) of an mlx-lm model folder, through mlx-lm's own loader; a folder whose config.json names an
    EdgeZoo MLX model module (`edgezoo_mlx_model`, e.g. exporters.lm.mlx_dynamoe) is built by that module.
    `config` overrides config.json keys at load time."""
    from mlx_lm.utils import _get_classes, load_model

    module = json.loads((Path(folder) / "config.json").read_text()).get("edgezoo_mlx_model")
    classes = _get_classes
    if module is not None:
        mod = importlib.import_module(module)
        classes = lambda config: (mod.Model, mod.ModelArgs)  # noqa: E731
    return load_model(Path(folder), model_config=config or None, get_model_classes=classes)


def export_mlx_lm(model: OpenELM, out_dir: Path, q_bits: int | None = None, q_group: int = 64) -> dict[str, Any]:
    out_dir = save_upstream(model.eval(), Path(out_dir))
    info: dict[str, Any] = {"format": "mlx-lm", "quantization": None}
    if getattr(model, "registry_name", None) == "dynamoe":  # nested experts + routers: its own MLX model
        from exporters.lm.mlx_dynamoe import mlx_config

        extra = mlx_config(model)
        config = json.loads((out_dir / "config.json").read_text())
        (out_dir / "config.json").write_text(json.dumps({**config, **extra}, indent=2))
        info["ffn_compute"] = extra["ffn_compute"]
    if q_bits:
        info["quantization"] = _quantize_folder(out_dir, q_bits, q_group)
    info["size_bytes"] = sum(f.stat().st_size for f in out_dir.glob("*.safetensors"))
    return info


def _quantize_folder(folder: Path, bits: int, group: int) -> dict[str, Any]:
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    model, config = load_mlx_lm(folder)
    skipped: list[str] = []

    def predicate(path: str, m: Any) -> bool:
        if isinstance(m, nn.Embedding):  # the tied embedding (and so the LM head) stays float, as in every format
            return False
        ok = hasattr(m, "to_quantized") and m.weight.shape[-1] % group == 0
        if hasattr(m, "to_quantized") and not ok:
            skipped.append(path)
        return ok

    nn.quantize(model, group_size=group, bits=bits, class_predicate=predicate)
    weights = dict(tree_flatten(model.parameters()))
    mx.save_safetensors(str(folder / "model.safetensors"), weights, metadata={"format": "mlx"})
    config["quantization"] = {"group_size": group, "bits": bits}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return {"bits": bits, "group_size": group, "mode": "affine", "float_layers": skipped,
            **count_quantized_bits(folder / "model.safetensors", bits, group)}


def safetensors_index(path: Path) -> dict[str, dict[str, Any]]:
    """{tensor name: {"dtype", "shape", "nbytes"}} from a safetensors header (8-byte length + JSON)."""
    with open(path, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    return {k: {"dtype": v["dtype"], "shape": v["shape"], "nbytes": v["data_offsets"][1] - v["data_offsets"][0]}
            for k, v in header.items() if k != "__metadata__"}


def count_quantized_bits(path: Path, bits: int, group: int) -> dict[str, Any]:
    """Stored bits per weight of the quantized layers of a saved mlx-lm model: 8 x (packed codes + scales + biases
    bytes) / weights, the weight count read back from the packed codes (uint32 words x 32 / bits) and checked
    against the scales (one per `group` weights)."""
    index = safetensors_index(Path(path))
    layers = sorted(k.removesuffix(".scales") for k in index if k.endswith(".scales"))
    stored = weights = 0
    for name in layers:
        w, scales = index[f"{name}.weight"], index[f"{name}.scales"]
        n = w["shape"][0] * w["shape"][-1] * 32 // bits
        if n != scales["shape"][0] * scales["shape"][-1] * group:
            raise ValueError(f"{name}: {n} packed {bits}-bit weights but scales for {scales['shape']} groups of {group}")
        weights += n
        parts = [f"{name}.{part}" for part in ("weight", "scales", "biases")]
        stored += sum(index[p]["nbytes"] for p in parts if p in index)
    if not weights:
        raise ValueError(f"{path} holds no quantized layer")
    return {"quantized_layers": layers, "quantized_weights": weights, "quantized_bytes": stored,
            "scale_dtype": index[f"{layers[0]}.scales"]["dtype"], "bits_per_weight": 8 * stored / weights}


def mlx_generate(folder: Path, prompt: list[int], max_new_tokens: int) -> list[int]:
    """Greedy tokens from mlx-lm's own `generate_step` (its KV cache, its sampler default = argmax): the exported
    folder checked against mlx-lm's own loop."""
    import mlx.core as mx

    gen = importlib.import_module("mlx_lm.generate")  # the package re-exports a function of the same name
    model, _ = load_mlx_lm(folder)
    out = []
    for tok, _ in gen.generate_step(mx.array(np.asarray(prompt, dtype=np.int32)), model, max_tokens=max_new_tokens):
        out.append(int(tok))
    return out


def lm_export(model: OpenELM, out_dir: Path, spec, card: dict[str, Any]) -> dict[str, Any]:
    """The MLX plug-in for language models: out_dir/mlx/, an mlx-lm model folder; int8/int4 through mlx-lm's
    nn.quantize (bits per weight counted from the saved file)."""
    native = spec.method in ("int8", "int4")
    if native and getattr(model, "registry_name", None) == "dynamoe":
        from models.errors import ConversionError

        raise ConversionError(f"MLX {spec.method} of a DynaMoE model is not supported (its experts slice float weights)",
                              "export it with none or dynamoe:theta=T")
    info = export_mlx_lm(model, Path(out_dir) / "mlx", q_bits=spec.bits if native else None, q_group=spec.block or 32)
    return {"bits_per_weight": info["quantization"]["bits_per_weight"], **info} if native else info


def mlx_lm_steps(folder: Path) -> tuple[Callable, Callable]:
    """(prefill, step) through mlx-lm: its loader, its model call and its prompt cache (a fresh one per prefill)."""
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache

    model, _ = load_mlx_lm(folder)
    cache: list[Any] = []

    def run(ids: np.ndarray) -> np.ndarray:
        out = model(mx.array(ids.astype(np.int32)), cache=cache[0])
        mx.eval(out)
        return np.array(out, dtype=np.float32)

    def prefill(ids: np.ndarray) -> np.ndarray:
        cache[:] = [make_prompt_cache(model)]
        return run(ids)

    return prefill, run


def lm_verify(model: OpenELM, artifact) -> dict[str, Any]:
    """Prefill logits and greedy tokens through mlx-lm against the torch model (exporters.lm.parity)."""
    from exporters.lm.parity import exact_required, lm_parity

    prefill, step = mlx_lm_steps(artifact.path / "mlx")
    return lm_parity(model, prefill, step, "mlx-lm", exact_required(artifact))
