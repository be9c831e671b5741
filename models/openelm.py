"""OpenELM (Mehta et al., 2024): decoder-only LM with layer-wise scaling of heads and FFN width.

Follows apple/corenet `general_gpt.py` and the Hugging Face `modeling_openelm.py`: pre-norm blocks, one fused
QKV projection, per-head q/k RMSNorm (before RoPE), NeoX RoPE, grouped-query attention, SwiGLU, tied embeddings,
no biases. Attribute names match the upstream checkpoints (`transformer.layers.N.attn.qkv_proj`, ...).

Differences from the HF reference (card pitfalls 4-5): the cache holds *rotated* keys, positions come from an
explicit per-sequence left-pad count, and masks are built from lengths (no 2048x2048 buffer).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.registry import PaperCard, register

CARD = PaperCard(
    title="OpenELM: An Efficient Language Model Family with Open Training and Inference Framework",
    arxiv="2404.14619",
    code="https://github.com/apple/corenet/blob/main/corenet/modeling/models/language_modeling/general_gpt.py",
    key="openelm",
)
MASK_VALUE = -3.0e4  # finite: fully masked rows (left padding) stay NaN-free, and fp16 does not overflow
KVCache = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (k, v): (B, n_kv_i, L, d_head), keys rotated


def make_divisible(v: float, divisor: int) -> int:
    """Upstream `make_divisible`: nearest multiple of `divisor`, at least `divisor`, never below 0.9 v."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return int(new_v + divisor if new_v < 0.9 * v else new_v)


def _per_layer(mult: Sequence[float] | float, n: int) -> list[float]:
    """Endpoints (a, b) -> linspace over layers rounded to 2 decimals (pitfall 2); a length-n list is kept."""
    if isinstance(mult, (int, float)):
        return [float(mult)] * n
    mult = list(mult)
    if len(mult) == n and n != 2:
        return [float(m) for m in mult]
    return [round(float(v), 2) for v in np.linspace(mult[0], mult[1], num=n, dtype=float)]


@dataclass
class ModelArgs:
    """Upstream field names. Defaults: the card's section-5 layer-wise byte LM (931,648 parameters)."""
    vocab_size: int = 256
    model_dim: int = 128
    num_transformer_layers: int = 6
    head_dim: int = 16
    num_gqa_groups: int = 2          # query heads per KV head (upstream name; pitfall 1)
    qkv_multipliers: tuple[float, ...] = (0.5, 1.0)
    ffn_multipliers: tuple[float, ...] = (0.5, 4.0)
    ffn_dim_divisor: int = 32
    max_context_length: int = 128
    rope_freq_constant: int = 10000
    norm_eps: float = 1e-6
    num_query_heads: tuple[int, ...] | None = None  # explicit per-layer override (from an upstream config.json)
    bos_token_id: int = 1
    eos_token_id: int = 2

    # --- published configurations (HF apple/OpenELM-*, corenet openelm_*.yaml)
    @classmethod
    def openelm_270m(cls) -> "ModelArgs":
        return cls(32000, 1280, 16, 64, 4, ffn_dim_divisor=256, max_context_length=2048)

    @classmethod
    def openelm_450m(cls) -> "ModelArgs":
        return cls(32000, 1536, 20, 64, 4, ffn_dim_divisor=256, max_context_length=2048)

    @classmethod
    def openelm_1_1b(cls) -> "ModelArgs":
        return cls(32000, 2048, 28, 64, 4, ffn_dim_divisor=256, max_context_length=2048)

    @classmethod
    def openelm_3b(cls) -> "ModelArgs":
        return cls(32000, 3072, 36, 128, 4, ffn_dim_divisor=256, max_context_length=2048)

    @classmethod
    def isotropic(cls) -> "ModelArgs":
        """The card's control: 8 query / 4 KV heads and FFN 256 in every layer (919,360 parameters)."""
        return cls(qkv_multipliers=(1.0, 1.0), ffn_multipliers=(2.0, 2.0))

    @classmethod
    def tiny(cls) -> "ModelArgs":
        """Small but still layer-wise (query heads [2,4,4], FFN [32,96,128]): pitfall 3 says rounding can erase it."""
        return cls(vocab_size=256, model_dim=32, num_transformer_layers=3, head_dim=8, num_gqa_groups=2,
                   ffn_dim_divisor=32, max_context_length=64)

    # --- derived per-layer widths
    def query_heads(self) -> list[int]:
        if self.num_query_heads is not None:
            return [int(h) for h in self.num_query_heads]
        q = _per_layer(self.qkv_multipliers, self.num_transformer_layers)
        return [make_divisible(self.model_dim * m, self.head_dim * self.num_gqa_groups) // self.head_dim for m in q]

    def kv_heads(self) -> list[int]:
        return [h // self.num_gqa_groups for h in self.query_heads()]

    def ffn_dims(self) -> list[int]:
        f = _per_layer(self.ffn_multipliers, self.num_transformer_layers)
        return [make_divisible(m * self.model_dim, self.ffn_dim_divisor) for m in f]


class RMSNorm(nn.Module):
    """RMSNorm computed in fp32 (card: fp16 squares overflow), cast back, then scaled."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def rope(x: torch.Tensor, pos: torch.Tensor, base: float) -> torch.Tensor:
    """Rotate-half (NeoX) RoPE. x: (B, H, T, D); pos: (B, T) absolute positions."""
    d = x.shape[-1]
    inv = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float32, device=x.device) / d))  # (D/2,)
    ang = pos.to(torch.float32)[..., None] * inv  # (B, T, D/2)
    emb = torch.cat([ang, ang], -1)[:, None]  # (B, 1, T, D)
    x1, x2 = x.float().chunk(2, -1)
    rotated = torch.cat([-x2, x1], -1)
    return (x.float() * emb.cos() + rotated * emb.sin()).type_as(x)


class Attention(nn.Module):
    def __init__(self, a: ModelArgs, n_q: int, n_kv: int) -> None:
        super().__init__()
        self.n_q, self.n_kv, self.d_head, self.base = n_q, n_kv, a.head_dim, a.rope_freq_constant
        self.qkv_proj = nn.Linear(a.model_dim, (n_q + 2 * n_kv) * a.head_dim, bias=False)
        self.q_norm = RMSNorm(a.head_dim, a.norm_eps)
        self.k_norm = RMSNorm(a.head_dim, a.norm_eps)
        self.out_proj = nn.Linear(n_q * a.head_dim, a.model_dim, bias=False)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor,
                past: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        b, t, _ = x.shape
        qkv = self.qkv_proj(x).reshape(b, t, self.n_q + 2 * self.n_kv, self.d_head).transpose(1, 2)  # (B, H, T, D)
        q, k, v = qkv.split([self.n_q, self.n_kv, self.n_kv], dim=1)
        q = rope(self.q_norm(q), pos, self.base)
        k = rope(self.k_norm(k), pos, self.base)
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)  # (B, n_kv, L + T, D)
        g = self.n_q // self.n_kv
        kr, vr = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)  # query head h uses KV head h // g
        out = F.scaled_dot_product_attention(q, kr, vr, attn_mask=mask, scale=1.0 / math.sqrt(self.d_head))
        return self.out_proj(out.transpose(1, 2).reshape(b, t, self.n_q * self.d_head)), (k, v)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.proj_1 = nn.Linear(dim, 2 * hidden, bias=False)  # [gate | up]
        self.proj_2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.proj_1(x).chunk(2, -1)
        return self.proj_2(F.silu(a) * b)


class DecoderLayer(nn.Module):
    def __init__(self, a: ModelArgs, n_q: int, n_kv: int, ffn: int) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(a.model_dim, a.norm_eps)
        self.attn = Attention(a, n_q, n_kv)
        self.ffn_norm = RMSNorm(a.model_dim, a.norm_eps)
        self.ffn = FeedForward(a.model_dim, ffn)

    def forward(self, x, pos, mask, past):
        h, kv = self.attn(self.attn_norm(x), pos, mask, past)
        x = x + h
        return x + self.ffn(self.ffn_norm(x)), kv


class Transformer(nn.Module):
    def __init__(self, a: ModelArgs) -> None:
        super().__init__()
        self.token_embeddings = nn.Embedding(a.vocab_size, a.model_dim)
        self.layers = nn.ModuleList(DecoderLayer(a, q, kv, f) for q, kv, f in zip(a.query_heads(), a.kv_heads(), a.ffn_dims()))
        self.norm = RMSNorm(a.model_dim, a.norm_eps)


def build_mask(t: int, past_len: int, pad: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive mask (B, 1, T, L + T) from lengths: causal, and keys inside a sequence's left padding hidden."""
    q_abs = past_len + torch.arange(t, device=pad.device)[:, None]  # (T, 1)
    k_abs = torch.arange(past_len + t, device=pad.device)[None, :]  # (1, L + T)
    ok = (k_abs <= q_abs)[None] & (k_abs[None] >= pad[:, None, None])  # (B, T, L + T)
    return torch.where(ok, 0.0, MASK_VALUE).to(dtype)[:, None]


@register("openelm", ModelArgs, CARD, task="lm")
class OpenELM(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        self.transformer = Transformer(args)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Card init: linear N(0, fan_in^-1/2), embedding N(0, d^-1/2), out_proj/proj_2 times (2N)^-1/2."""
        extra = (2 * self.args.num_transformer_layers) ** -0.5
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear):
                std = m.in_features ** -0.5 * (extra if name.endswith(("out_proj", "proj_2")) else 1.0)
                nn.init.normal_(m.weight, 0.0, std)
        nn.init.normal_(self.transformer.token_embeddings.weight, 0.0, self.args.model_dim ** -0.5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) int64 -> logits (B, T, V)."""
        return self.forward_cached(tokens, None)[0]

    def forward_cached(self, tokens: torch.Tensor, cache: KVCache | None, pad: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, KVCache]:
        """One prefill or decode step. `cache` holds rotated keys; `pad` (B,) counts each row's left padding,
        so row b's token at absolute index j sits at position j - pad[b]."""
        b, t = tokens.shape
        past_len = 0 if not cache else cache[0][0].shape[2]
        pad = torch.zeros(b, dtype=torch.long, device=tokens.device) if pad is None else pad
        pos = (past_len + torch.arange(t, device=tokens.device))[None] - pad[:, None]  # (B, T)
        x = self.transformer.token_embeddings(tokens)
        mask = build_mask(t, past_len, pad, x.dtype)
        new: KVCache = []
        for i, layer in enumerate(self.transformer.layers):
            x, kv = layer(x, pos.clamp_min(0), mask, cache[i] if cache else None)
            new.append(kv)
        h = self.transformer.norm(x)
        return (h @ self.transformer.token_embeddings.weight.T)[..., : self.args.vocab_size], new

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor, ...]:
        return (torch.randint(0, self.args.vocab_size, (batch, min(16, self.args.max_context_length))),)


def param_count(args: ModelArgs) -> int:
    """Exact parameter count from the derived widths, without allocating the model."""
    d, hd = args.model_dim, args.head_dim
    total = args.vocab_size * d + d  # tied embedding + final norm
    for q, kv, f in zip(args.query_heads(), args.kv_heads(), args.ffn_dims()):
        total += d * (q + 2 * kv) * hd + q * hd * d + 2 * hd + d * 2 * f + f * d + 2 * d
    return total


# --------------------------------------------------------------------------- generation


def filtered_probs(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """The sampling distribution (..., V) in fp32 after temperature, top-k and top-p; temperature <= 0 gives a one-hot
    argmax. Generation and the speculative decoder's acceptance rule both use it."""
    logits = logits.float()
    if temperature <= 0:
        return F.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    logits = logits / temperature
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.shape[-1]), -1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        srt, idx = logits.sort(-1, descending=True)
        drop = srt.softmax(-1).cumsum(-1) - srt.softmax(-1) > top_p  # keep the smallest prefix reaching top_p
        logits = logits.scatter(-1, idx, srt.masked_fill(drop, float("-inf")))
    return logits.softmax(-1)


def _sample(logits: torch.Tensor, temperature: float, top_k: int, top_p: float, gen: torch.Generator | None) -> torch.Tensor:
    """logits (B, V) -> next ids (B,). temperature 0 = greedy."""
    if temperature <= 0:
        return logits.argmax(-1)
    return torch.multinomial(filtered_probs(logits, temperature, top_k, top_p), 1, generator=gen)[:, 0]


@torch.no_grad()
def generate(model: OpenELM, prompt: torch.Tensor, max_new_tokens: int, temperature: float = 0.0, top_k: int = 0,
             top_p: float = 1.0, seed: int | None = None, pad: torch.Tensor | None = None) -> torch.Tensor:
    """KV-cached generation. prompt (B, T) (left-padded when `pad` is given) -> new tokens (B, max_new_tokens)."""
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    logits, cache = model.forward_cached(prompt, None, pad)
    out = []
    for _ in range(max_new_tokens):
        nxt = _sample(logits[:, -1], temperature, top_k, top_p, gen)
        out.append(nxt)
        logits, cache = model.forward_cached(nxt[:, None], cache, pad)
    return torch.stack(out, 1)


def require_byte_vocab(args: ModelArgs, tokenizer: str | None = None) -> None:
    """Text in and out of EdgeZoo goes through the byte tokenizer (ids 0..255): only a 256-token vocabulary fits it.
    An imported upstream OpenELM (Llama-2 tokenizer, 32,000 tokens) does not."""
    from models.errors import EdgeZooError

    if args.vocab_size != 256:
        raise EdgeZooError(f"the model has a {args.vocab_size:,}-token vocabulary (tokenizer: "
                           f"{tokenizer or 'not bytes'}), and the byte tokenizer cannot encode for it",
                           "use a byte-level LM (vocabulary 256) made by `edgezoo lm train`; an upstream model needs "
                           "its own tokenizer, which EdgeZoo does not bundle")


def check_context(args: ModelArgs, prompt_len: int, new_tokens: int = 0) -> None:
    """A prompt of `prompt_len` bytes followed by `new_tokens` generated ones must fit the model's context."""
    from models.errors import EdgeZooError

    room = args.max_context_length
    if prompt_len < 1:
        raise EdgeZooError("the prompt is empty", "give at least one character of prompt")
    if prompt_len + new_tokens > room:
        ways = ([f"shorten the prompt to at most {room - new_tokens:,} bytes"] if new_tokens < room else []) + (
            [f"ask for at most {room - prompt_len:,} new tokens"] if new_tokens and prompt_len < room else [])
        fix = " or ".join(ways) or f"shorten the prompt and ask for fewer than {room:,} new tokens"
        plus = f" plus {new_tokens:,} new tokens" if new_tokens else ""
        raise EdgeZooError(f"a {prompt_len:,}-byte prompt{plus} exceeds the model's context of "
                           f"{room:,} tokens", fix)


MIN_TEMPERATURE = 1e-3  # a smaller positive temperature overflows logits / T in fp32: use 0 (greedy) instead


def check_temperature(temperature: float) -> None:
    """0 means greedy; a positive temperature must be large enough that logits / T stay finite."""
    from models.errors import EdgeZooError

    if not math.isfinite(temperature) or temperature < 0 or 0 < temperature < MIN_TEMPERATURE:
        raise EdgeZooError(f"temperature {temperature:g} cannot be sampled from",
                           f"use 0 for greedy decoding or a temperature of at least {MIN_TEMPERATURE:g}")


def byte_prompt(args: ModelArgs, text: str, new_tokens: int, tokenizer: str | None = None) -> list[int]:
    """`text` as byte ids for a generation of `new_tokens`, after every check that needs no tensor: a byte vocabulary,
    encodable text (argv bytes that are not UTF-8 come back as they were typed), the model's context."""
    from models.errors import EdgeZooError

    require_byte_vocab(args, tokenizer)
    try:
        ids = list(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError as e:
        raise EdgeZooError(f"the prompt cannot be encoded as UTF-8 ({e.reason} at character {e.start})",
                           "pass plain text") from None
    check_context(args, len(ids), new_tokens)
    return ids


# --------------------------------------------------------------------------- upstream folders


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
