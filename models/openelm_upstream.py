"""Upstream OpenELM checkpoint folders (the Hugging Face / mlx-lm layout: config.json + *.safetensors with upstream
tensor names): config mapping both ways, state-dict cleanup, writing a folder and loading one with every name and
shape checked before anything is allocated. Never downloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from models.openelm import ModelArgs, OpenELM, _per_layer


def sanitize(state: dict[str, torch.Tensor], args: ModelArgs) -> dict[str, torch.Tensor]:
    """Upstream HF/MLX state dict -> ours: drop a tied `lm_head`, strip rotary buffers, slice a padded
    training vocabulary (32,128 -> 32,000; pitfall 7)."""
    out = {}
    for k, v in state.items():
        if k.startswith("lm_head.") or "pos_embedding" in k or k.endswith("causal_mask"):
            continue
        if k == "transformer.token_embeddings.weight":
            v = v[: args.vocab_size]
        out[k] = v
    return out


def upstream_config(args: ModelArgs) -> dict[str, Any]:
    """config.json in the HF / mlx-lm layout (per-layer lists expanded, as the released configs store them)."""
    return {
        "model_type": "openelm", "architectures": ["OpenELMForCausalLM"], "vocab_size": args.vocab_size,
        "model_dim": args.model_dim, "num_transformer_layers": args.num_transformer_layers, "head_dim": args.head_dim,
        "num_gqa_groups": args.num_gqa_groups, "num_query_heads": args.query_heads(), "num_kv_heads": args.kv_heads(),
        "qkv_multipliers": list(args.qkv_multipliers),
        "ffn_multipliers": _per_layer(args.ffn_multipliers, args.num_transformer_layers),
        "ffn_dim_divisor": args.ffn_dim_divisor, "ffn_with_glu": True, "normalize_qk_projections": True,
        "share_input_output_layers": True, "rope_freq_constant": args.rope_freq_constant,
        "rope_max_length": 4096, "max_context_length": args.max_context_length, "rms_norm_eps": args.norm_eps,
        "activation_fn_name": "swish", "normalization_layer_name": "rms_norm",
        "bos_token_id": args.bos_token_id, "eos_token_id": args.eos_token_id, "torch_dtype": "float32",
    }


def args_from_upstream(cfg: dict[str, Any]) -> ModelArgs:
    n = int(cfg["num_transformer_layers"])
    if not cfg.get("share_input_output_layers", True) or not cfg.get("ffn_with_glu", True):
        raise ValueError("only tied-embedding, GLU OpenELM configs are supported")
    heads = cfg.get("num_query_heads")
    return ModelArgs(
        vocab_size=int(cfg["vocab_size"]), model_dim=int(cfg["model_dim"]), num_transformer_layers=n,
        head_dim=int(cfg["head_dim"]), num_gqa_groups=int(cfg.get("num_gqa_groups", 1)),
        qkv_multipliers=tuple(cfg.get("qkv_multipliers", (0.5, 1.0))),
        ffn_multipliers=tuple(_per_layer(cfg["ffn_multipliers"], n)), ffn_dim_divisor=int(cfg["ffn_dim_divisor"]),
        max_context_length=int(cfg.get("max_context_length", 2048)),
        rope_freq_constant=int(cfg.get("rope_freq_constant", 10000)), norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
        num_query_heads=tuple(int(h) for h in heads) if heads else None,
        bos_token_id=int(cfg.get("bos_token_id", 1)), eos_token_id=int(cfg.get("eos_token_id", 2)),
    )


def save_upstream(model: OpenELM, folder: Path) -> Path:
    """Write config.json + model.safetensors with upstream names (what HF and mlx-lm read)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(upstream_config(model.args), indent=2))
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


UPSTREAM_FIX = "point at a folder with the Hugging Face OpenELM layout: config.json + *.safetensors (no pickles)"
_POSITIVE = ("vocab_size", "model_dim", "num_transformer_layers", "head_dim", "num_gqa_groups", "ffn_dim_divisor",
             "max_context_length")


def _upstream_args(cfg: Any, path: Path) -> ModelArgs:
    """ModelArgs from an upstream config.json, refusing other architectures and sizes that cannot build a model."""
    from models.errors import CheckpointError

    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path} is not a JSON object", UPSTREAM_FIX)
    kind = cfg.get("model_type", "openelm")
    if kind != "openelm":
        raise CheckpointError(f"{path} describes a model_type {kind!r} model, not 'openelm'",
                              "import an apple/OpenELM-* folder; other architectures are not supported")
    try:
        args = args_from_upstream(cfg)
    except KeyError as e:
        raise CheckpointError(f"{path} lacks the key {e}", UPSTREAM_FIX) from None
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path} has an unusable value ({e})", UPSTREAM_FIX) from None
    bad = unbuildable(args)
    if bad:
        raise CheckpointError(f"{path} gives sizes no OpenELM can have: {bad}",
                              "use the config.json that came with the weights")
    return args


def unbuildable(args: ModelArgs) -> str:
    """Why `args` cannot build a model (non-positive or non-integer sizes, heads that do not split into KV groups),
    or "" when they can."""
    bad = [f"{f}={getattr(args, f)!r}" for f in _POSITIVE
           if not isinstance(getattr(args, f), int) or isinstance(getattr(args, f), bool) or getattr(args, f) < 1]
    if bad:
        return ", ".join(bad)
    try:
        heads, ffn = args.query_heads(), args.ffn_dims()
    except (TypeError, ValueError, IndexError) as e:
        return f"per-layer multipliers unusable ({e})"
    if len(heads) != args.num_transformer_layers or any(h < 1 or h % args.num_gqa_groups for h in heads):
        return f"num_query_heads={heads} with num_gqa_groups={args.num_gqa_groups}"
    if len(ffn) != args.num_transformer_layers or min(ffn) < 1:
        return f"FFN widths {ffn}"
    return ""


def _listed(label: str, items: list[str], limit: int = 3) -> str:
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return f"{label} ({len(items)}): {', '.join(items[:limit])}{more}"


def state_mismatch(expected: dict[str, tuple[int, ...]], got: dict[str, tuple[int, ...]]) -> str:
    """One line naming missing, unexpected and mis-sized tensors (shapes as checkpoint vs model), a few of each;
    empty when the names and shapes match."""
    shape = lambda s: "x".join(map(str, s)) or "scalar"  # noqa: E731
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    sized = [f"{k} is {shape(got[k])} in the checkpoint, {shape(expected[k])} in the model"
             for k in sorted(set(expected) & set(got)) if tuple(got[k]) != tuple(expected[k])]
    parts = [("missing tensors", missing), ("unexpected tensors", unexpected), ("size mismatches", sized)]
    return "; ".join(_listed(label, items) for label, items in parts if items)


def load_upstream(folder: Path) -> OpenELM:
    """Load an upstream-layout folder (config.json + one or more *.safetensors); never downloads. The config is
    checked (model_type, sizes) and every tensor's name and shape compared with the model it describes before
    anything is allocated, so an error names the offending tensors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from models.errors import CheckpointError

    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder} {'is a file, not a folder' if folder.exists() else 'does not exist'}",
                              UPSTREAM_FIX)
    files = sorted(folder.glob("*.safetensors"))
    if not (folder / "config.json").is_file() or not files:
        raise CheckpointError(f"{folder} has no config.json or no *.safetensors", UPSTREAM_FIX)
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{folder / 'config.json'} is not readable JSON ({e.__class__.__name__})",
                              UPSTREAM_FIX) from None
    args = _upstream_args(cfg, folder / "config.json")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            state.update(load_file(str(f)))
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{folder} is not a loadable OpenELM checkpoint: {f.name} is not a readable "
                                  f"safetensors file ({str(e).splitlines()[0][:160]})",
                                  "restore the file from the release it came from") from None
    state = sanitize({k: v.float() for k, v in state.items()}, args)
    with torch.device("meta"):  # shapes only: a wrong config allocates nothing
        model = OpenELM(args)
    problem = state_mismatch({k: tuple(v.shape) for k, v in model.state_dict().items()},
                             {k: tuple(v.shape) for k, v in state.items()})
    if problem:
        raise CheckpointError(f"{folder} is not a loadable OpenELM checkpoint: the weights do not fit its "
                              f"config.json: {problem}",
                              "use the config.json and *.safetensors of one release (not mixed or edited)")
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()
