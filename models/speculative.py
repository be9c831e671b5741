"""QuantSpec self-speculative decoding (card 02) for the OpenELM byte LM, batch 1, in host code.

Draft: a copy of the model with 4-bit group-wise RTN weights reading the x4 view of the hierarchical KV cache.
Verifier: the full-precision model reading the x8 view of the same cache. The card notes that the development
code quantizes only the MLP weights of the draft; here every block linear is quantized by default (the paper's
description, and what a 4-bit draft copy means on a device), `draft_layers="mlp"` gives the dev-code variant.
Embeddings / the tied output head and norms stay fp32 in both.

Step: the cache holds K/V of every committed token but the last one (x0). The draft runs gamma one-token passes
from x0, the cache rolls back by gamma, the verifier runs once on [x0, d1..d_gamma] and overwrites those entries;
greedy keeps the longest prefix that matches its argmax plus its own token (correction or bonus), sampling uses
the exact rule min(1, p/q) with residual resampling. The cache keeps only committed entries and is flushed after
each commit. The draft length is capped so that a verify pass never spans a flush point (2R - buffer tokens):
the verifier then attends to exactly the cache an autoregressive decoder of the verifier view would, so greedy
output equals it token for token (up to last-bit near-ties between multi-token and one-token passes).
"""

from __future__ import annotations

import copy
import functools
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator, Sequence

import torch

from models.errors import EdgeZooError
from models.generation.cache import FpKVCache, KVCache
from models.generation.generate import cached_step, generate_step
from models.generation.sampling import filtered_probs, make_sampler, sample
from models.kv_quant import HierarchicalKVCache, cache_bytes
from models.layers.quant import lm_linear_names, rtn_
from models.openelm import OpenELM

KINDS = ("accepted", "corrected", "bonus", "plain")


@dataclass
class SpecStats:
    """Cumulative over one generation."""
    new_tokens: int = 0
    drafted: int = 0
    accepted: int = 0
    verify_passes: int = 0            # verifier forward passes, prefill excluded
    draft_passes: int = 0
    seconds: float = 0.0              # wall time so far, prefill included
    per_position_drafted: list[int] = field(default_factory=list)
    per_position_accepted: list[int] = field(default_factory=list)
    corrected: int = 0                # steps that ended with a rejected draft
    prefill_seconds: float = 0.0
    draft_seconds: float = 0.0
    verify_seconds: float = 0.0

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.drafted if self.drafted else math.nan

    @property
    def token_acceptance(self) -> float:
        """Per-token acceptance alpha: accepted / (accepted + first rejections), the alpha of the card's formulas
        (acceptance_rate also counts drafts after a rejection, which are never judged)."""
        judged = self.accepted + self.corrected
        return self.accepted / judged if judged else math.nan

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else math.nan

    @property
    def decode_tokens_per_s(self) -> float:
        decode = self.seconds - self.prefill_seconds
        return self.new_tokens / decode if decode > 0 else math.nan

    @property
    def verify_passes_per_token(self) -> float:
        return self.verify_passes / self.new_tokens if self.new_tokens else math.nan

    @property
    def accepted_per_verify(self) -> float:
        return self.accepted / self.verify_passes if self.verify_passes else math.nan

    @property
    def cost_ratio(self) -> float:
        """c = mean draft pass time / mean verify pass time (the card's draft/verifier cost)."""
        if not self.draft_passes or not self.verify_passes or self.verify_seconds <= 0:
            return math.nan
        return (self.draft_seconds / self.draft_passes) / (self.verify_seconds / self.verify_passes)

    def to_dict(self) -> dict:
        props = ("acceptance_rate", "token_acceptance", "tokens_per_s", "decode_tokens_per_s",
                 "verify_passes_per_token", "accepted_per_verify", "cost_ratio")
        return {**asdict(self), **{p: getattr(self, p) for p in props}}

    def snapshot(self) -> "SpecStats":
        return copy.deepcopy(self)


@dataclass
class SpecEvent:
    tokens: list[int]
    kinds: list[str]
    stats: SpecStats


# --------------------------------------------------------------------------- sampling rules


def residual_dist(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """normalize(max(0, p - q)) over the last axis; falls back to p where p == q everywhere."""
    r = (p - q).clamp_min(0)
    mass = r.sum(-1, keepdim=True)
    return torch.where(mass > 0, r / mass.clamp_min(1e-30), p)


def speculative_accept(p: torch.Tensor, q: torch.Tensor, x: torch.Tensor, gen: torch.Generator | None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact rule, vectorised over draws: p, q (V,) or (N, V) fp32, x (N,) drafts sampled from q.
    Accept x with probability min(1, p(x)/q(x)), else draw from normalize(max(0, p - q)).
    Returns (accepted (N,) bool, tokens (N,)); tokens follow p exactly."""
    p, q = p.float().expand(len(x), -1), q.float().expand(len(x), -1)
    px, qx = p.gather(1, x[:, None])[:, 0], q.gather(1, x[:, None])[:, 0]
    u = torch.rand(len(x), generator=gen)
    accepted = u * qx < px  # u < p/q without dividing by a zero q
    resampled = torch.multinomial(residual_dist(p, q), 1, generator=gen)[:, 0]
    return accepted, torch.where(accepted, x, resampled)


def tokens_per_verify(alpha: float, gamma: int) -> float:
    """Expected tokens per verifier pass, (1 - alpha^(gamma+1)) / (1 - alpha)."""
    return float(gamma + 1) if alpha >= 1 else (1 - alpha ** (gamma + 1)) / (1 - alpha)


def analytic_speedup(alpha: float, gamma: int, c: float) -> float:
    """The card's ideal speed-up (1 - alpha^(gamma+1)) / ((1 - alpha)(gamma c + 1))."""
    return tokens_per_verify(alpha, gamma) / (gamma * c + 1)


def chi2_gof(counts: torch.Tensor, probs: torch.Tensor, min_expected: float = 5.0) -> tuple[float, int, float]:
    """Pearson chi-square goodness of fit of observed `counts` to `probs`; bins with expected count below
    `min_expected` are pooled into one (merged into the smallest kept bin if still below). Returns
    (statistic, degrees of freedom, p-value); a draw where probs is 0 gives p = 0."""
    counts, probs = counts.double(), probs.double() / probs.sum()
    if bool(((probs == 0) & (counts > 0)).any()):
        return math.inf, 0, 0.0
    expected = probs * counts.sum()
    small = expected < min_expected
    obs, exp = counts[~small].tolist(), expected[~small].tolist()
    pooled_o, pooled_e = float(counts[small].sum()), float(expected[small].sum())
    if pooled_e > 0:
        if pooled_e < min_expected and exp:
            j = exp.index(min(exp))
            obs[j], exp[j] = obs[j] + pooled_o, exp[j] + pooled_e
        else:
            obs.append(pooled_o)
            exp.append(pooled_e)
    dof = len(exp) - 1
    if dof < 1:
        return 0.0, 0, 1.0
    stat = sum((o - e) ** 2 / e for o, e in zip(obs, exp))
    f64 = torch.float64
    p = float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=f64), torch.tensor(stat / 2, dtype=f64)))
    return stat, dof, p


def top2_gap(logits: torch.Tensor) -> float:
    top = logits.float().topk(2, -1).values
    return float(top[..., 0] - top[..., 1])


# --------------------------------------------------------------------------- cache policies


class QuantViews:
    """QuantSpec: the draft reads x4, the verifier x8 of one hierarchical cache."""

    def __init__(self, n_layers: int, group: int, residual: int, cache=HierarchicalKVCache) -> None:
        self.cache = cache(n_layers, group, residual)

    def __len__(self) -> int:
        return len(self.cache)

    def draft_view(self) -> tuple[KVCache | None, torch.Tensor | None]:
        return self.cache.view(4), None

    def verify_view(self) -> tuple[KVCache | None, torch.Tensor | None]:
        return self.cache.view(8), None

    def append(self, new: KVCache, n: int) -> None:
        self.cache.append(new, n)

    def truncate(self, length: int) -> None:
        self.cache.truncate(length)

    def commit(self) -> None:
        self.cache.flush()

    def room(self) -> int:
        return self.cache.room()


class SparseViews(FpKVCache):
    """MagicDec-style comparator: an fp cache; the verifier reads all of it, the draft only `sink` first and
    `recent` last entries (positions kept: a negative pad offsets the query positions to their true values)."""

    def __init__(self, sink: int = 4, recent: int = 124) -> None:
        super().__init__()
        self.sink, self.recent = sink, recent

    def draft_view(self) -> tuple[KVCache | None, torch.Tensor | None]:
        n = len(self)
        if n <= self.sink + self.recent:
            return self.kv, None
        view = [(torch.cat([k[:, :, :self.sink], k[:, :, -self.recent:]], 2),
                 torch.cat([v[:, :, :self.sink], v[:, :, -self.recent:]], 2)) for k, v in self.kv]
        return view, torch.tensor([self.sink + self.recent - n])

    def verify_view(self) -> tuple[KVCache | None, torch.Tensor | None]:
        return self.kv, None

    def commit(self) -> None:
        pass

    def room(self) -> int:
        return 1 << 30


# --------------------------------------------------------------------------- decoder


def quantize_draft(model: OpenELM, bits: int, group: int, symmetric: bool, layers: str) -> tuple[OpenELM, dict]:
    """A deep copy with RTN group-wise fake-quantized block linears ("all" or "mlp" = the FFN only)."""
    draft = copy.deepcopy(model).eval()
    return draft, rtn_(draft, bits, group, symmetric=symmetric, names=draft_names(draft, layers))


def draft_names(model: OpenELM, layers: str) -> list[str]:
    """The block linears a draft quantizes: "all", or "mlp" (the FFN only, the development code's choice)."""
    if layers not in ("all", "mlp"):
        raise EdgeZooError(f"unknown draft_layers {layers!r}", "use 'all' (every block linear) or 'mlp'")
    return [n for n in lm_linear_names(model) if layers == "all" or ".ffn." in n]


def packed_pair(model: OpenELM, bits: int, group: int, symmetric: bool, layers: str) -> tuple[OpenELM, OpenELM, dict]:
    """(verifier with bf16 run-time block linears, draft with packed int4 ones, the draft's weight report)."""
    from models.packed_runtime import runtime_copy

    if bits != 4 or symmetric:
        raise EdgeZooError(f"the int4 runtime stores asymmetric 4-bit codes, not {bits}-bit "
                           f"{'symmetric' if symmetric else 'asymmetric'} ones", "use weight_bits=4, weight_symmetric=False")
    draft, report = runtime_copy(model, "int4", group, draft_names(model, layers))
    if layers == "mlp":  # attention stays 16-bit, as in the verifier
        draft, _ = runtime_copy(draft, "bf16")
    return runtime_copy(model, "bf16")[0], draft, report


class QuantSpecDecoder:
    """Self-speculative decoding with a 4-bit-weight / x4-cache draft and an fp-weight / x8-cache verifier."""

    def __init__(self, model: OpenELM, *, weight_bits: int = 4, weight_group: int = 32, kv_group: int = 32,
                 residual: int = 32, weight_symmetric: bool = False, draft_layers: str = "all",
                 draft_kv: str = "quant", sink: int = 4, recent: int = 124, runtime: str = "fake") -> None:
        """`weight_symmetric=False`: one fp16 scale and zero per group (MLX-style affine 4-bit). `draft_kv="sparse"`
        swaps the draft's cache for `sink` + `recent` fp entries (the paper's sparse-KV comparator).
        `runtime="fake"`: fp32 verifier, fake-quantized fp32 draft (same cost per pass); `"int4"`: the block
        linears run packed (models.packed_runtime.py): bf16 weights in the verifier (and plain decoding), 4-bit
        codes in the draft, `weight_group` inputs per scale."""
        if draft_kv not in ("quant", "sparse"):
            raise EdgeZooError(f"unknown draft_kv {draft_kv!r}", "use 'quant' (QuantSpec) or 'sparse' (sink + recent)")
        HierarchicalKVCache(1, kv_group, residual)  # validates G and R early
        if runtime == "int4":
            self.model, self.draft, self.weight_report = packed_pair(model, weight_bits, weight_group,
                                                                     weight_symmetric, draft_layers)
        elif runtime == "fake":
            self.model = model.eval()
            self.draft, self.weight_report = quantize_draft(model, weight_bits, weight_group, weight_symmetric,
                                                            draft_layers)
        else:
            raise EdgeZooError(f"unknown runtime {runtime!r}", "use 'fake' (fp32 kernels) or 'int4' (packed kernels)")
        self.runtime = runtime
        self.kv_group, self.residual, self.draft_kv = kv_group, residual, draft_kv
        self.sink, self.recent = sink, recent

    def _views(self):
        if self.draft_kv == "sparse":
            return SparseViews(self.sink, self.recent)
        return QuantViews(len(self.model.transformer.layers), self.kv_group, self.residual, self._cache_types()[0])

    def _cache_types(self) -> tuple[type, type]:
        """(hierarchical cache, plain cache): the packed runtime keeps both in preallocated storage."""
        if self.runtime == "fake":
            return HierarchicalKVCache, FpKVCache
        from models.packed_runtime import InPlaceHierarchicalKVCache, InPlaceKVCache

        return InPlaceHierarchicalKVCache, InPlaceKVCache

    @staticmethod
    def _pass(net: OpenELM, tokens: list[int], views, draft: bool) -> torch.Tensor:
        past, pad = views.draft_view() if draft else views.verify_view()
        logits, new = net.forward_cached(torch.tensor([tokens]), past, pad)
        views.append(new, len(tokens))
        return logits[0].float()

    def _stepper(self, net: OpenELM, views, draft: bool, commit: bool = False, gaps: list[float] | None = None):
        """A `generate_step` step through `_pass`: tokens (1, T) -> fp32 logits (1, T, V); `commit` flushes after
        each pass, `gaps` collects each pass's last top-2 logit gap."""
        def step(tokens: torch.Tensor) -> torch.Tensor:
            logits = self._pass(net, tokens[0].tolist(), views, draft)
            if commit:
                views.commit()
            if gaps is not None:
                gaps.append(top2_gap(logits[-1]))
            return logits[None]
        return step

    def _prefill(self, prompt: list[int], views) -> None:
        if not prompt:
            raise EdgeZooError("empty prompt", "give at least one byte of prompt")
        if len(prompt) > 1:
            self._pass(self.model, prompt[:-1], views, draft=False)
            views.commit()

    @torch.no_grad()
    def stream(self, prompt: Sequence[int], max_new_tokens: int, gamma: int = 4, temperature: float = 0.0,
               top_k: int = 0, top_p: float = 1.0, seed: int | None = None) -> Iterator[SpecEvent]:
        """Yield one SpecEvent per verify step (accepted drafts, then a correction or a bonus token)."""
        gen, prompt = _generator(seed), list(prompt)
        filt = functools.partial(filtered_probs, temperature=temperature, top_k=top_k, top_p=top_p)
        stats, t0 = SpecStats(per_position_drafted=[0] * gamma, per_position_accepted=[0] * gamma), time.perf_counter()
        views = self._views()
        self._prefill(prompt, views)
        stats.prefill_seconds = time.perf_counter() - t0
        last = int(prompt[-1])
        while stats.new_tokens < max_new_tokens:
            g = max(0, min(gamma, max_new_tokens - stats.new_tokens - 1, views.room()))
            base = len(views)
            t1 = time.perf_counter()
            drafts, qs = self._draft(last, g, views, filt, temperature, gen)
            t2 = time.perf_counter()
            views.truncate(base)
            logits = self._pass(self.model, [last] + drafts, views, draft=False)
            stats.verify_seconds += time.perf_counter() - t2
            stats.draft_seconds += t2 - t1
            tokens, kinds = (_greedy_decide(drafts, logits) if temperature <= 0
                             else _sample_decide(drafts, qs, logits, filt, gen))
            n_acc = kinds.count("accepted")
            views.truncate(base + 1 + n_acc)
            views.commit()
            tokens, kinds = tokens[: max_new_tokens - stats.new_tokens], kinds[: max_new_tokens - stats.new_tokens]
            last = tokens[-1]
            _count(stats, g, n_acc, kinds, len(tokens))
            stats.seconds = time.perf_counter() - t0
            yield SpecEvent(tokens, kinds, stats.snapshot())

    def _draft(self, last: int, g: int, views, filt, temperature: float, gen) -> tuple[list[int], list[torch.Tensor]]:
        """g draft tokens after `last`, one draft pass each, and (sampling) the distributions q they came from."""
        qs: list[torch.Tensor] = []

        def pick(logits: torch.Tensor) -> torch.Tensor:  # (1, V) -> (1,)
            if temperature <= 0:
                return logits.argmax(-1)
            qs.append(filt(logits[0]))
            return sample(qs[-1], gen)[None]

        step = self._stepper(self.draft, views, draft=True)
        return [int(t[0]) for t in generate_step(step, torch.tensor([[last]]), g, sampler=pick)], qs

    def generate(self, prompt: Sequence[int], max_new_tokens: int, gamma: int = 4, temperature: float = 0.0,
                 top_k: int = 0, top_p: float = 1.0, seed: int | None = None) -> tuple[list[int], SpecStats]:
        out: list[int] = []
        stats = SpecStats(per_position_drafted=[0] * gamma, per_position_accepted=[0] * gamma)
        for ev in self.stream(prompt, max_new_tokens, gamma, temperature, top_k, top_p, seed):
            out += ev.tokens
            stats = ev.stats
        return out, stats

    @torch.no_grad()
    def verifier_generate(self, prompt: Sequence[int], max_new_tokens: int, temperature: float = 0.0, top_k: int = 0,
                          top_p: float = 1.0, seed: int | None = None) -> tuple[list[int], list[float]]:
        """Autoregressive decoding of the verifier view (fp weights, x8 cache, same flush rule), one token per
        pass: the reference speculative decoding must reproduce. Returns (tokens, top-2 logit gap per token)."""
        views, gaps = self._views(), []
        self._prefill(list(prompt), views)
        step = self._stepper(self.model, views, draft=False, commit=True, gaps=gaps)
        tokens = generate_step(step, torch.tensor([[int(prompt[-1])]]), max_new_tokens,
                               sampler=make_sampler(temperature, top_k, top_p, _generator(seed)))
        return [int(t[0]) for t in tokens], gaps

    @torch.no_grad()
    def plain_stream(self, prompt: Sequence[int], max_new_tokens: int, temperature: float = 0.0, top_k: int = 0,
                     top_p: float = 1.0, seed: int | None = None) -> Iterator[SpecEvent]:
        """The no-speculation baseline: the verifier's network (fp32, or bf16 packed weights) with a plain fp32 KV
        cache, one token per event."""
        gen = _generator(seed)
        prompt = list(prompt)
        if not prompt:
            raise EdgeZooError("empty prompt", "give at least one byte of prompt")
        stats, t0 = SpecStats(), time.perf_counter()
        step = cached_step(self.model, self._cache_types()[1]())
        if len(prompt) > 1:
            step(torch.tensor([prompt[:-1]]))
        stats.prefill_seconds = time.perf_counter() - t0
        tokens = generate_step(step, torch.tensor([prompt[-1:]]), max_new_tokens,
                               sampler=make_sampler(temperature, top_k, top_p, gen))
        for _ in range(max_new_tokens):
            t1 = time.perf_counter()
            last = int(next(tokens)[0])
            stats.verify_seconds += time.perf_counter() - t1
            stats.verify_passes += 1
            stats.new_tokens += 1
            stats.seconds = time.perf_counter() - t0
            yield SpecEvent([last], ["plain"], stats.snapshot())

    @torch.no_grad()
    def cached_logits(self, tokens: Sequence[int], prompt_len: int, draft: bool = False) -> torch.Tensor:
        """Teacher-forced logits (T - prompt_len, V) for tokens[prompt_len:], read through this decoder's cache
        (verifier view, or the draft network and view when `draft`), in chunks that never span a flush point."""
        views, tokens = self._views(), list(tokens)
        self._prefill(tokens[:prompt_len], views)
        net, out, i = (self.draft if draft else self.model), [], prompt_len - 1
        while i < len(tokens) - 1:
            n = max(1, min(len(tokens) - 1 - i, views.room() + 1))
            out.append(self._pass(net, tokens[i:i + n], views, draft=draft))
            views.commit()
            i += n
        return torch.cat(out)

    def kv_cache_bytes(self, context: int) -> dict[str, int]:
        """Bytes of the hierarchical cache at `context` tokens (fp16 buffer and scales, 8-bit codes) vs fp16 / fp32."""
        a = self.model.args
        return cache_bytes(a.kv_heads(), a.head_dim, context, self.kv_group, self.residual)


def _generator(seed: int | None) -> torch.Generator:
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    return gen


def _greedy_decide(drafts: list[int], logits: torch.Tensor) -> tuple[list[int], list[str]]:
    target = logits.argmax(-1).tolist()  # (g + 1,)
    n = 0
    while n < len(drafts) and drafts[n] == target[n]:
        n += 1
    return drafts[:n] + [target[n]], ["accepted"] * n + ["corrected" if n < len(drafts) else "bonus"]


def _sample_decide(drafts: list[int], qs: list[torch.Tensor], logits: torch.Tensor, filt, gen
                   ) -> tuple[list[int], list[str]]:
    for i, (x, q) in enumerate(zip(drafts, qs)):
        ok, tok = speculative_accept(filt(logits[i]), q, torch.tensor([x]), gen)
        if not bool(ok[0]):
            return drafts[:i] + [int(tok[0])], ["accepted"] * i + ["corrected"]
    bonus = int(sample(filt(logits[len(drafts)]), gen))
    return drafts + [bonus], ["accepted"] * len(drafts) + ["bonus"]


def _count(stats: SpecStats, g: int, n_acc: int, kinds: list[str], emitted: int) -> None:
    stats.drafted += g
    stats.accepted += n_acc
    stats.corrected += "corrected" in kinds
    stats.draft_passes += g
    stats.verify_passes += 1
    stats.new_tokens += emitted
    for i in range(g):
        stats.per_position_drafted[i] += 1
        stats.per_position_accepted[i] += i < n_acc
