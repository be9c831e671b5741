"""SeedLM (Shafipour et al., 2024): each block of C weights = an LFSR seed + P coefficients sharing one exponent.

Conventions recorded in every manifest (`SeedLMConfig.describe()`):
- LFSR: K-bit Fibonacci, feedback = XOR of the tap bits, `state <- (state >> 1) | (bit << (K-1))`, emitted value =
  the new state. Seed convention "load": the register is loaded with seed s (1 <= s < 2^K) and the next C*P states
  fill V(s) row by row (C x P). U(s) = (V - 2^(K-1)) / (2^(K-1) - 1).
- Coefficients t = U⁺ w (pseudo-inverses precomputed once by SVD in float64); 4-bit mantissas q in [-8, 7] and one
  4-bit exponent e in [-8, 7] with e = ceil(log2(max|t| / 7.5)) clamped (the card's fix of the paper's ambiguous
  rule); t̂ = q * 2^e. The search keeps the seed with the lowest ||w - U t̂||² over all seeds, ties -> lowest seed
  (computed exactly by branch and bound over cache-sized tiles of seeds x blocks, `_search`, on the GPU when torch
  has one; `_search_exhaustive` is the brute-force reference).
- Blocks: a tensor is flattened row-major; a last partial block is zero-padded and counted in the bits.
- Packing: per block one (K + 4 + 4P)-bit word [seed | exponent+8 | mantissas+8 ...], words concatenated into a
  bit stream. 4-bit: C=8, P=3, K=16 -> 32 bits/8 weights = 4.000; 3-bit: C=12, P=4 -> 36/12 = 3.000.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
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


@lru_cache(maxsize=8)
def gram_table(c: int, p: int, k: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The projections Q(s)Q(s)^T as rows G (M, D) over the D = C(C+1)/2 upper-triangle pairs (i <= j, off-diagonal
    entries doubled), so that the captured energy ||Q(s)^T w||² = w^T Q Q^T w of every seed is G @ x(w), with x the
    pairwise products w_i w_j: one matmul of inner size D whose output is already the bound (no square, no sum)."""
    q = projection_table(c, p, k).double().view(-1, p, c)                          # (M, P, C) rows of Q(s)^T
    pairs = torch.triu_indices(c, c)                                                # (2, D)
    proj = torch.einsum("mpi,mpj->mij", q, q)[:, pairs[0], pairs[1]]                # (M, D)
    g = proj * torch.where(pairs[0] == pairs[1], 1.0, 2.0)
    return g.float().contiguous().to(device), pairs.to(device)


def _quantized_errors(w: np.ndarray, idx: np.ndarray, cfg: SeedLMConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """w (nb, C), candidate seed rows idx (nb, K) -> squared errors (nb, K), mantissas (nb, K, P), exponents (nb, K)."""
    u, pinv = seed_tables(cfg.block, cfg.coeffs, cfg.lfsr_bits)
    t = np.einsum("nkpc,nc->nkp", pinv[idx], w)
    q, e = quantize_coeffs(t, cfg)
    recon = np.einsum("nkcp,nkp->nkc", u[idx], dequant_coeffs(q, e))
    return ((recon - w[:, None]) ** 2).sum(-1), q, e


def search_device() -> str:
    """Where the seed search runs: the GPU when torch sees one, else the CPU (all of torch's threads)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


# tiles of blocks x seeds: 2 MB of fp32 bounds per tile on the CPU (stays in L2), far larger on a GPU
TILES = {"cpu": (2048, 256), "cuda": (16384, 8192)}


class _Best:
    """Per block: the lowest quantized error seen, its seed (ties -> lowest seed), mantissas and exponent."""

    def __init__(self, w: np.ndarray, cfg: SeedLMConfig) -> None:
        self.w, self.cfg = w, cfg
        n = len(w)
        self.err = np.full(n, np.inf, np.float32)
        self.seed = np.zeros(n, np.int64)
        self.q, self.e = np.zeros((n, cfg.coeffs), np.int8), np.zeros(n, np.int8)
        # float32 rounding of the bound (D products, each at most ~||w||²): a seed is skipped only beyond it
        self.slack_w = 1e-4 * (w.astype(np.float64) ** 2).sum(1) + 1e-12

    def consider(self, rows: np.ndarray, rows_idx: np.ndarray) -> None:
        """Quantize candidate seeds (table rows `rows_idx`) for blocks `rows` and keep any improvement."""
        err, q, e = _quantized_errors(self.w[rows], rows_idx[:, None], self.cfg)
        err, q, e = err[:, 0], q[:, 0], e[:, 0]
        order = np.lexsort((rows_idx, err, rows))                                   # per block: lowest error, seed
        first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
        r, s, err = rows[first], rows_idx[first] + 1, err[first]
        better = (err < self.err[r]) | ((err == self.err[r]) & (s < self.seed[r]))
        r, first = r[better], first[better]
        self.err[r], self.seed[r], self.q[r], self.e[r] = err[better], s[better], q[first], e[first]

    def threshold(self, norm2: torch.Tensor) -> torch.Tensor:
        """Captured energy a seed needs for its bound ||w||² - captured to reach the best error (+ slack)."""
        limit = (self.err + 1e-4 * self.err + self.slack_w).astype(np.float32)
        return norm2 - torch.from_numpy(limit).to(norm2.device)


def _search(w: np.ndarray, cfg: SeedLMConfig, k: int = 4, seed_tile: int | None = None,
            device: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """w (nb, C) -> the exhaustive search's (seed, q, e) per block, by branch and bound over tiles of seeds.

    The unquantized least-squares residual ||w||² - ||Q(s)^T w||² of seed s lower-bounds its quantized error. Per
    tile of seeds one matmul (`gram_table`) gives every seed's captured energy; the tile is reduced at once to its
    row maximum, and only blocks where some seed could still beat the best quantized error (bound <= best + slack)
    look further: their candidate seeds are quantized in batches of about one per block, which then tightens the
    threshold. The first tile's k best bounds seed the running best. Same result as `_search_exhaustive`, ties
    included (lowest seed)."""
    device = device or search_device()
    seed_tile = seed_tile or TILES["cuda" if device.startswith("cuda") else "cpu"][1]
    g, pairs = gram_table(cfg.block, cfg.coeffs, cfg.lfsr_bits, device)
    wt = torch.from_numpy(w).to(device)
    x, norm2 = wt[:, pairs[0]] * wt[:, pairs[1]], wt.square().sum(1)                # (nb, D), (nb,)
    best, rows = _Best(w, cfg), np.arange(len(w))
    tile = torch.empty(len(w), min(seed_tile, len(g)), device=device)
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    n_pending = 0
    for s0 in range(0, len(g), seed_tile):
        s1 = min(s0 + seed_tile, len(g))
        captured = tile[:, : s1 - s0]
        torch.mm(x, g[s0:s1].T, out=captured)                                      # (nb, seeds in tile)
        if s0 == 0:
            top = captured.topk(min(k, captured.shape[1]), dim=1).indices.cpu().numpy()
            best.consider(np.repeat(rows, top.shape[1]), top.reshape(-1))
            thr = best.threshold(norm2)
        open_rows = (captured.amax(1) >= thr).nonzero()[:, 0]                        # the fused arg-min test
        if len(open_rows):
            r, s = (captured[open_rows] >= thr[open_rows, None]).nonzero().T
            pending.append((open_rows[r].cpu().numpy(), s.cpu().numpy() + s0))
            n_pending += len(r)
        if n_pending >= len(w) or s1 == len(g):  # quantize candidates in batches, then tighten
            if pending:
                best.consider(*map(np.concatenate, zip(*pending)))
            pending, n_pending, thr = [], 0, best.threshold(norm2)
    return best.seed, best.q, best.e


def encode_blocks(w: np.ndarray, cfg: SeedLMConfig, chunk: int | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  device: str | None = None) -> dict[str, np.ndarray]:
    """Encode (nb, C) blocks, `chunk` blocks per search (default: the device's tile). On the CPU, chunks run on one
    thread per torch thread, each single-threaded: small tiles stay in each core's cache, and no thread waits at a
    barrier for another (which, on a loaded machine, costs more than the tile)."""
    device = device or search_device()
    cuda = device.startswith("cuda")
    workers = 1 if cuda else torch.get_num_threads()
    chunk = max(1, min(chunk or TILES["cuda" if cuda else "cpu"][0], -(-len(w) // workers)))
    starts = range(0, len(w), chunk)
    seed_tables(cfg.block, cfg.coeffs, cfg.lfsr_bits), gram_table(cfg.block, cfg.coeffs, cfg.lfsr_bits, device)  # once

    def one(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _search(np.ascontiguousarray(w[i:i + chunk], dtype=np.float32), cfg, device=device)

    pool = ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) if workers > 1 else None
    try:
        results = []
        for i, res in zip(starts, pool.map(one, starts) if pool else map(one, starts)):
            results.append(res)
            if progress:
                progress(min(i + chunk, len(w)), len(w))
    finally:
        if pool:
            pool.shutdown()
            torch.set_num_threads(workers)  # MKL's thread count is process-wide: give it back
    seeds, qs, es = zip(*results)
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
