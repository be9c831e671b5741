"""SeedLM (Shafipour et al., 2024): each block of C weights = an LFSR seed + P coefficients sharing one exponent.

Conventions recorded in every manifest (`SeedLMConfig.describe()`):
- LFSR: K-bit Fibonacci, feedback = XOR of the tap bits, `state <- (state >> 1) | (bit << (K-1))`, emitted value =
  the new state. Seed convention "load": the register is loaded with seed s (1 <= s < 2^K) and the next C*P states
  fill V(s) row by row (C x P). U(s) = (V - 2^(K-1)) / (2^(K-1) - 1).
- Coefficients t = U⁺ w (pseudo-inverses precomputed once by SVD in float64); 4-bit mantissas q in [-8, 7] and one
  4-bit exponent e in [-8, 7] with e = ceil(log2(max|t| / 7.5)) clamped (the card's fix of the paper's ambiguous
  rule); t̂ = q * 2^e. The search keeps the seed with the lowest ||w - U t̂||² over all seeds, ties -> lowest seed
  (computed exactly by branch and bound, `_search`; `_search_exhaustive` is the brute-force reference).
- Blocks: a tensor is flattened row-major; a last partial block is zero-padded and counted in the bits.
- Packing: per block one (K + 4 + 4P)-bit word [seed | exponent+8 | mantissas+8 ...], words concatenated into a
  bit stream. 4-bit: C=8, P=3, K=16 -> 32 bits/8 weights = 4.000; 3-bit: C=12, P=4 -> 36/12 = 3.000.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

TAPS = {3: (0, 1), 8: (0, 2, 3, 4), 12: (0, 1, 2, 8), 16: (0, 1, 3, 12)}
SEEDLM_VERSION = 1


@dataclass(frozen=True)
class SeedLMConfig:
    block: int = 8          # C
    coeffs: int = 3         # P
    lfsr_bits: int = 16     # K
    exp_bits: int = 4
    mant_bits: int = 4
    version: int = SEEDLM_VERSION

    @classmethod
    def for_bits(cls, bits: int) -> "SeedLMConfig":
        if bits == 4:
            return cls(8, 3)
        if bits == 3:
            return cls(12, 4)
        raise ValueError(f"SeedLM has 3- and 4-bit configurations, not {bits}")

    @property
    def block_bits(self) -> int:
        return self.lfsr_bits + self.exp_bits + self.mant_bits * self.coeffs

    @property
    def bits_per_weight(self) -> float:
        return self.block_bits / self.block

    def describe(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "taps": list(TAPS[self.lfsr_bits]), "seed_convention": "load register with s",
                "exponent_rule": "ceil(log2(max|t|/7.5)) clamped to [-8,7]", "packing": "seed|exp+8|mantissas+8, MSB first"}


# ----------------------------------------------------------------------------- LFSR


def lfsr_sequence(seed: int, n: int, k: int, taps: Iterable[int] | None = None) -> np.ndarray:
    """The next `n` states after loading the register with `seed` (reference, one seed)."""
    taps = tuple(TAPS[k] if taps is None else taps)
    state, out = int(seed), np.empty(n, dtype=np.int64)
    for i in range(n):
        bit = 0
        for t in taps:
            bit ^= (state >> t) & 1
        state = (state >> 1) | (bit << (k - 1))
        out[i] = state
    return out


def lfsr_matrix(seed: int, c: int, p: int, k: int, taps: Iterable[int] | None = None) -> np.ndarray:
    """V(seed) (C, P), filled row by row."""
    return lfsr_sequence(seed, c * p, k, taps).reshape(c, p)


def lfsr_period(k: int, taps: Iterable[int] | None = None) -> int:
    seq = lfsr_sequence(1, 2 ** k, k, taps)
    return int(np.argmax(seq == 1)) + 1


def lfsr_states_torch(seeds: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """Run-time generator: (nb,) seeds -> (nb, n) states, vectorized over blocks (no table)."""
    state = seeds.to(torch.int32).clone()
    out = torch.empty(seeds.shape[0], n, dtype=torch.int32, device=seeds.device)
    for i in range(n):
        bit = torch.zeros_like(state)
        for t in TAPS[k]:
            bit ^= (state >> t) & 1
        state = (state >> 1) | (bit << (k - 1))
        out[:, i] = state
    return out


def basis_from_states(v: torch.Tensor | np.ndarray, k: int):
    half = 2 ** (k - 1)
    return (v - half) / (half - 1)


@lru_cache(maxsize=4)
def seed_tables(c: int, p: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """U(s) (M, C, P) and U(s)⁺ (M, P, C) in float32 for every seed s = 1..2^K-1 (row s-1).

    Neighbouring seeds are shifted windows of one cycle: walk the cycle once from seed 1, then read windows."""
    m = 2 ** k - 1
    cyc = lfsr_sequence(1, m, k)                      # cyc[i] = state after i+1 steps from 1; cyc[-1] == 1
    pos = np.empty(m + 1, dtype=np.int64)
    pos[cyc] = np.arange(m)                          # index of each state in the cycle
    idx = (pos[np.arange(1, m + 1)][:, None] + 1 + np.arange(c * p)) % m
    u = basis_from_states(cyc[idx].astype(np.float64), k).reshape(m, c, p)
    pinv = np.linalg.pinv(u)                          # SVD, float64 (condition numbers reach ~5e5)
    return u.astype(np.float32), pinv.astype(np.float32)


# ----------------------------------------------------------------------------- coefficients


def quantize_coeffs(t: np.ndarray, cfg: SeedLMConfig) -> tuple[np.ndarray, np.ndarray]:
    """t (..., P) -> (q int8 (..., P), e int8 (...)) with a shared exponent per block."""
    emax = 2 ** (cfg.exp_bits - 1) - 1
    qmax = 2 ** (cfg.mant_bits - 1) - 1
    amax = np.abs(t).max(-1)
    with np.errstate(divide="ignore"):
        e = np.ceil(np.log2(np.maximum(amax, 1e-30) / (qmax + 0.5)))
    e = np.clip(e, -emax - 1, emax)
    q = np.clip(np.rint(t / np.exp2(e)[..., None]), -qmax - 1, qmax)
    return q.astype(np.int8), e.astype(np.int8)


def dequant_coeffs(q: np.ndarray, e: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) * np.exp2(e.astype(np.float32))[..., None]


# ----------------------------------------------------------------------------- encoder (the hot loop)


def _search_exhaustive(w: np.ndarray, cfg: SeedLMConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference: quantized error of every seed for every block (M x nb x C work), lowest error, ties -> lowest seed."""
    u, pinv = seed_tables(cfg.block, cfg.coeffs, cfg.lfsr_bits)
    m = u.shape[0]
    t = (pinv.reshape(m * cfg.coeffs, cfg.block) @ w.T).reshape(m, cfg.coeffs, -1)  # (M, P, nb)
    q, e = quantize_coeffs(t.transpose(0, 2, 1), cfg)                               # (M, nb, P), (M, nb)
    that = dequant_coeffs(q, e)                                                     # (M, nb, P)
    recon = np.matmul(u, that.transpose(0, 2, 1))                                   # (M, C, nb)
    err = ((recon - w.T[None]) ** 2).sum(1)                                         # (M, nb)
    best = err.argmin(0)                                                            # first minimum = lowest seed
    cols = np.arange(w.shape[0])
    return (best + 1).astype(np.int64), q[best, cols], e[best, cols]


@lru_cache(maxsize=4)
def projection_table(c: int, p: int, k: int) -> torch.Tensor:
    """Orthonormal bases Q(s) of span U(s), stacked as (M * P, C) so that ||Q(s)^T w||² for all seeds is one matmul."""
    u, _ = seed_tables(c, p, k)
    qmat = np.linalg.qr(u.astype(np.float64))[0]                                    # (M, C, P)
    return torch.from_numpy(np.ascontiguousarray(qmat.transpose(0, 2, 1)).reshape(-1, c).astype(np.float32))


def _quantized_errors(w: np.ndarray, idx: np.ndarray, cfg: SeedLMConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """w (nb, C), candidate seed rows idx (nb, K) -> squared errors (nb, K), mantissas (nb, K, P), exponents (nb, K)."""
    u, pinv = seed_tables(cfg.block, cfg.coeffs, cfg.lfsr_bits)
    t = np.einsum("nkpc,nc->nkp", pinv[idx], w)
    q, e = quantize_coeffs(t, cfg)
    recon = np.einsum("nkcp,nkp->nkc", u[idx], dequant_coeffs(q, e))
    return ((recon - w[:, None]) ** 2).sum(-1), q, e


def _search(w: np.ndarray, cfg: SeedLMConfig, k: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """w (nb, C) -> the exhaustive search's (seed, q, e) per block, by branch and bound.

    The unquantized least-squares residual ||w||² - ||Q(s)^T w||² of seed s lower-bounds its quantized error, and
    all 2^K - 1 residuals come from one batched matmul (the hot loop). Only the k seeds with the smallest bound get
    their coefficients quantized; a block whose k-th bound does not exceed its best quantized error (so an unexamined
    seed could still win) falls back to the exhaustive search. Same result, ties included."""
    m = 2 ** cfg.lfsr_bits - 1
    proj = projection_table(cfg.block, cfg.coeffs, cfg.lfsr_bits)
    wt = torch.from_numpy(np.ascontiguousarray(w.T))                                 # (C, nb)
    captured = (proj @ wt).view(m, cfg.coeffs, -1).square().sum(1)                  # (M, nb)
    bound = (wt.square().sum(0) - captured).T                                       # (nb, M)
    lows, idx = bound.topk(min(k, m), dim=1, largest=False, sorted=True)
    idx = idx.numpy()
    err, q, e = _quantized_errors(w, idx, cfg)
    order = np.lexsort((idx, err), axis=1)[:, 0]                                     # lowest error, then lowest seed
    rows = np.arange(len(w))
    best_err = err[rows, order]
    seeds, qs, es = idx[rows, order] + 1, q[rows, order], e[rows, order]
    slack = 1e-4 * best_err + 1e-5 * (w.astype(np.float64) ** 2).sum(1) + 1e-12     # float32 error of the bound
    unsure = lows[:, -1].numpy() <= best_err + slack
    if unsure.any():
        s2, q2, e2 = _search_exhaustive(np.ascontiguousarray(w[unsure]), cfg)
        seeds[unsure], qs[unsure], es[unsure] = s2, q2, e2
    return seeds.astype(np.int64), qs, es


def encode_blocks(w: np.ndarray, cfg: SeedLMConfig, chunk: int = 256,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
    seeds, qs, es = [], [], []
    for i in range(0, len(w), chunk):
        s, q, e = _search(np.ascontiguousarray(w[i:i + chunk], dtype=np.float32), cfg)
        seeds.append(s), qs.append(q), es.append(e)
        if progress:
            progress(min(i + chunk, len(w)), len(w))
    return {"seeds": np.concatenate(seeds), "q": np.concatenate(qs), "e": np.concatenate(es)}


def to_blocks(w: np.ndarray, c: int) -> np.ndarray:
    flat = np.asarray(w, dtype=np.float32).reshape(-1)
    return np.pad(flat, (0, (-flat.size) % c)).reshape(-1, c)


def decode_blocks(seeds: np.ndarray, q: np.ndarray, e: np.ndarray, cfg: SeedLMConfig) -> np.ndarray:
    """(nb,) seeds, (nb, P) mantissas, (nb,) exponents -> (nb, C) weights via the run-time LFSR."""
    v = lfsr_states_torch(torch.from_numpy(seeds.astype(np.int64)), cfg.block * cfg.coeffs, cfg.lfsr_bits)
    u = basis_from_states(v.to(torch.float32), cfg.lfsr_bits).reshape(-1, cfg.block, cfg.coeffs)
    t = torch.from_numpy(dequant_coeffs(q, e))
    return torch.bmm(u, t[:, :, None])[:, :, 0].numpy()


@dataclass
class SeedLMTensor:
    shape: tuple[int, ...]
    seeds: np.ndarray
    q: np.ndarray
    e: np.ndarray
    cfg: SeedLMConfig

    @property
    def n_blocks(self) -> int:
        return len(self.seeds)

    @property
    def size_bits(self) -> int:
        return self.n_blocks * self.cfg.block_bits

    @property
    def bits_per_weight(self) -> float:
        return self.size_bits / int(np.prod(self.shape))

    def decode(self) -> np.ndarray:
        n = int(np.prod(self.shape))
        return decode_blocks(self.seeds, self.q, self.e, self.cfg).reshape(-1)[:n].reshape(self.shape)


def encode_tensor(w: np.ndarray | torch.Tensor, cfg: SeedLMConfig, cache_dir: Path | None = None) -> SeedLMTensor:
    """Encode one tensor (cached by content hash + config when `cache_dir` is given: the search is slow)."""
    w = np.asarray(w.detach().cpu().numpy() if isinstance(w, torch.Tensor) else w, dtype=np.float32)
    path = None
    if cache_dir is not None:
        key = hashlib.sha256(w.tobytes() + repr((w.shape, cfg)).encode()).hexdigest()[:24]
        path = Path(cache_dir) / f"seedlm-{key}.npz"
        if path.exists():
            d = np.load(path)
            return SeedLMTensor(tuple(w.shape), d["seeds"], d["q"], d["e"], cfg)
    enc = encode_blocks(to_blocks(w, cfg.block), cfg)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **enc)
        tmp.replace(path)
    return SeedLMTensor(tuple(w.shape), enc["seeds"], enc["q"], enc["e"], cfg)


def default_cache_dir() -> Path:
    return Path(os.environ.get("EDGEZOO_CACHE", Path.home() / ".cache" / "edgezoo")) / "seedlm"


# ----------------------------------------------------------------------------- packing


def pack(t: SeedLMTensor) -> bytes:
    """Bit stream of (K + 4 + 4P)-bit words, MSB first; the last byte is zero-padded."""
    cfg = t.cfg
    fields = [(t.seeds.astype(np.int64), cfg.lfsr_bits), (t.e.astype(np.int64) + 8, cfg.exp_bits)]
    fields += [(t.q[:, i].astype(np.int64) + 8, cfg.mant_bits) for i in range(cfg.coeffs)]
    bits = [((vals[:, None] >> np.arange(width - 1, -1, -1)) & 1).astype(np.uint8) for vals, width in fields]
    return np.packbits(np.concatenate(bits, 1).reshape(-1)).tobytes()


def unpack(data: bytes, shape: tuple[int, ...], cfg: SeedLMConfig) -> SeedLMTensor:
    nb = -(-int(np.prod(shape)) // cfg.block)
    bits = np.unpackbits(np.frombuffer(data, np.uint8))[: nb * cfg.block_bits].reshape(nb, cfg.block_bits).astype(np.int64)
    out, col = [], 0
    for width in [cfg.lfsr_bits, cfg.exp_bits] + [cfg.mant_bits] * cfg.coeffs:
        out.append((bits[:, col:col + width] << np.arange(width - 1, -1, -1)).sum(1))
        col += width
    q = np.stack(out[2:], 1) - 8
    return SeedLMTensor(tuple(shape), out[0], q.astype(np.int8), (out[1] - 8).astype(np.int8), cfg)


# ----------------------------------------------------------------------------- modules


class SeedLMLinear(nn.Module):
    """A bias-free linear layer whose weight is regenerated from seeds on every call (no dense weight stored)."""

    def __init__(self, t: SeedLMTensor) -> None:
        super().__init__()
        self.cfg, self.shape = t.cfg, t.shape
        self.in_features, self.out_features = t.shape[1], t.shape[0]
        self.register_buffer("seeds", torch.from_numpy(t.seeds.astype(np.int32)))
        self.register_buffer("q", torch.from_numpy(t.q.astype(np.int8)))
        self.register_buffer("e", torch.from_numpy(t.e.astype(np.int8)))

    def weight_now(self) -> torch.Tensor:
        c = self.cfg
        v = lfsr_states_torch(self.seeds, c.block * c.coeffs, c.lfsr_bits)
        u = basis_from_states(v.to(torch.float32), c.lfsr_bits).reshape(-1, c.block, c.coeffs)
        t = self.q.to(torch.float32) * torch.exp2(self.e.to(torch.float32))[:, None]
        w = torch.bmm(u, t[:, :, None]).reshape(-1)
        return w[: self.out_features * self.in_features].reshape(self.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight_now().to(x.dtype))


def seedlm_targets(model: nn.Module, prefix: str = "transformer.layers") -> list[str]:
    """The block linears the card compresses (embeddings and norms stay fp32)."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.startswith(prefix)]


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


@torch.no_grad()
def compress_seedlm_(model: nn.Module, bits: int = 4, names: list[str] | None = None, cache_dir: Path | None = None,
                     reconstructed: bool = False, progress: bool = True) -> dict[str, Any]:
    """Replace block linears by SeedLMLinear (or, `reconstructed=True`, dense nn.Linear holding the decoded
    weights, for formats with no seed op). Returns honest accounting over the compressed tensors."""
    from tqdm import tqdm

    cfg = SeedLMConfig.for_bits(bits)
    report: dict[str, Any] = {"config": cfg.describe(), "tensors": {}}
    total_bits = total_w = 0
    names = names if names is not None else seedlm_targets(model)
    bar = tqdm(total=sum(model.get_submodule(n).weight.numel() for n in names), desc=f"SeedLM-{bits} encode",
               unit="w", unit_scale=True, disable=not progress)
    for name in names:
        lin = model.get_submodule(name)
        w = lin.weight.detach()
        t = encode_tensor(w, cfg, cache_dir)
        bar.update(w.numel())
        dense = torch.from_numpy(t.decode())
        rel = float((dense - w).norm() / w.norm().clamp_min(1e-30))
        report["tensors"][name] = {"shape": list(t.shape), "bits_per_weight": t.bits_per_weight, "rel_error": rel}
        total_bits, total_w = total_bits + t.size_bits, total_w + w.numel()
        if reconstructed:
            lin.weight.copy_(dense)
        else:
            _set(model, name, SeedLMLinear(t))
    bar.close()
    report.update(bits_per_weight=total_bits / max(total_w, 1), size_bytes=-(-total_bits // 8), weights=total_w,
                  runtime="regenerated from seeds" if not reconstructed else "reconstructed dense weights")
    return report


@torch.no_grad()
def densify_(model: nn.Module) -> nn.Module:
    """SeedLMLinear -> nn.Linear with the regenerated weights ("reconstructed weights" path for exporters)."""
    for name, m in list(model.named_modules()):
        if isinstance(m, SeedLMLinear):
            lin = nn.Linear(m.in_features, m.out_features, bias=False)
            lin.weight.copy_(m.weight_now())
            _set(model, name, lin)
    return model
