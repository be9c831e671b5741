"""QuantSpec decoding benchmark: acceptance, verifier passes per token and decode tokens/s of self-speculative
decoding beside plain fp32 decoding on the same prompts, turned into store records (the LM record shape of
profiles/lm_measure.py: one record per (gamma, context length, mode)).

Runs in-process on the torch model (the decode loop is host code). With the default runtime ("fake") a draft pass
costs about as much as a verifier pass (fake-quantized weights are still fp32, and a small model is overhead-bound),
so c ~ 1 and the measured speed-up is below 1. Runtime "int4" runs the weights packed (bf16 verifier, 4-bit
MatMulNBits draft, KV caches grown in place): on a bandwidth-bound model (trainers/quantspec/configs/
quantspec_bandwidth.yaml, 43M parameters) the draft is then really cheaper than the verifier.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from models.speculative import QuantSpecDecoder, SpecEvent, SpecStats, analytic_speedup
from profiles.stats import summarize

COMPRESSION = "quantspec-w4kv4/8"
RUNTIMES = {"fake": "fp32 verifier, fake-quantized fp32 draft",
            "int4": "bf16 verifier (oneDNN), 4-bit MatMulNBits draft (models/packed_runtime.py)"}
MODES = {"greedy": 0.0, "sample": 1.0}  # mode -> temperature
MAX_PROMPTS = 1000  # per context; each is decoded twice (speculative and plain)


def val_prompts(n: int, length: int, tail: int = 0) -> list[list[int]]:
    """n windows of `length` (+ `tail` following) bytes, evenly spaced over the validation split."""
    from trainers.text import load_text

    val = load_text().val
    span = length + tail
    if span > len(val):
        raise ValueError(f"validation split has {len(val)} bytes, need {span}")
    starts = torch.linspace(0, len(val) - span, n).long().tolist()
    return [val[s:s + span].tolist() for s in starts]


def _drain(events: Iterator[SpecEvent]) -> tuple[SpecStats, list[float]]:
    """Run a stream to its end; per-token latency samples (event wall time / tokens in the event)."""
    stats, samples, last = SpecStats(), [], None
    for ev in events:
        now = ev.stats.seconds
        dt = now - (ev.stats.prefill_seconds if last is None else last)
        samples += [dt / len(ev.tokens)] * len(ev.tokens)
        stats, last = ev.stats, now
    return stats, samples


def pooled(stats: list[SpecStats]) -> dict[str, Any]:
    """Pool per-prompt stats: ratios of sums (tokens/s over all decode time, acceptance over all drafts)."""
    tot = SpecStats(per_position_drafted=[0] * max((len(s.per_position_drafted) for s in stats), default=0))
    tot.per_position_accepted = list(tot.per_position_drafted)
    for s in stats:
        for f in ("new_tokens", "drafted", "accepted", "verify_passes", "draft_passes", "seconds", "corrected",
                  "prefill_seconds", "draft_seconds", "verify_seconds"):
            setattr(tot, f, getattr(tot, f) + getattr(s, f))
        for i, (d, a) in enumerate(zip(s.per_position_drafted, s.per_position_accepted)):
            tot.per_position_drafted[i] += d
            tot.per_position_accepted[i] += a
    out = tot.to_dict()
    out["per_position_acceptance"] = [a / d if d else math.nan
                                      for a, d in zip(tot.per_position_accepted, tot.per_position_drafted)]
    return out


def compare_speed(dec: QuantSpecDecoder, prompts: list[list[int]], new_tokens: int, gamma: int,
                  temperature: float = 0.0, seed: int = 0) -> dict[str, Any]:
    """Plain and speculative decoding on each prompt, interleaved (load drift hits both alike)."""
    spec, plain, lat = [], [], []
    list(dec.stream(prompts[0][:8], 4, gamma, temperature, seed=seed))  # warm-up
    list(dec.plain_stream(prompts[0][:8], 4, temperature, seed=seed))
    for i, p in enumerate(prompts):
        plain.append(_drain(dec.plain_stream(p, new_tokens, temperature, seed=seed + i))[0])
        st, samples = _drain(dec.stream(p, new_tokens, gamma, temperature, seed=seed + i))
        spec.append(st)
        lat += samples
    s, b = pooled(spec), pooled(plain)
    alpha = s["token_acceptance"]
    return {"spec": s, "plain": b, "latency": summarize(lat),
            "speedup_vs_plain": s["decode_tokens_per_s"] / b["decode_tokens_per_s"],
            "analytic_speedup": analytic_speedup(alpha, gamma, s["cost_ratio"]) if not math.isnan(alpha) else math.nan}


def decoder(model, kv_group: int = 32, residual: int = 32, runtime: str = "fake") -> QuantSpecDecoder:
    """The benchmark's decoder: 4-bit draft weights in groups of 32, or for the int4 runtime the largest group
    up to 128 that the model's widths allow."""
    from models.packed_runtime import int4_group

    group = int4_group(model) if runtime == "int4" else 32
    return QuantSpecDecoder(model, kv_group=kv_group, residual=residual, runtime=runtime, weight_group=group)


def bench(model, gammas: list[int], contexts: list[int], new_tokens: int = 64, n_prompts: int = 3,
          modes: Sequence[str] = ("greedy",), kv_group: int = 32, residual: int = 32, threads: int = 1,
          log=lambda s: None, runtime: str = "fake") -> list[dict[str, Any]]:
    """One row per (gamma, context, mode) with the speculative and plain figures."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        dec = decoder(model, kv_group, residual, runtime)
        rows = []
        for ctx in contexts:
            prompts = val_prompts(n_prompts, ctx)
            for mode in modes:
                for g in gammas:
                    t0 = time.perf_counter()
                    r = compare_speed(dec, prompts, new_tokens, g, MODES[mode])
                    rows.append({"gamma": g, "context": ctx, "mode": mode, "new_tokens": new_tokens,
                                 "runtime": runtime, "prompts": n_prompts, "kv_bytes": dec.kv_cache_bytes(ctx + new_tokens),
                                 "weight_bits": dec.weight_report["bits_per_weight"],
                                 "seconds": time.perf_counter() - t0, **r})
                    log(f"gamma {g} ctx {ctx} {mode}: acceptance {r['spec']['acceptance_rate']:.3f}, "
                        f"{r['spec']['decode_tokens_per_s']:.0f} vs {r['plain']['decode_tokens_per_s']:.0f} tok/s")
        return rows
    finally:
        torch.set_num_threads(old)


def to_record(row: dict[str, Any], checkpoint: str | None, threads: int) -> dict[str, Any]:
    from profiles import record as R

    s, kv = row["spec"], row["kv_bytes"]
    figures = {"acceptance_rate": s["acceptance_rate"], "token_acceptance": s["token_acceptance"],
               "per_position_acceptance": s["per_position_acceptance"],
               "accepted_per_verify": s["accepted_per_verify"],
               "verify_passes_per_token": s["verify_passes_per_token"], "cost_ratio": s["cost_ratio"],
               "analytic_speedup": row["analytic_speedup"], "decode_tokens_per_s": s["decode_tokens_per_s"],
               "plain_decode_tokens_per_s": row["plain"]["decode_tokens_per_s"],
               "speedup_vs_plain": row["speedup_vs_plain"], "kv_cache_bytes": kv["quantspec"],
               "kv_cache_bytes_fp16": kv["fp16"], "kv_cache_bytes_fp32": kv["fp32"],
               "kv_cache_context": row["context"] + row["new_tokens"], "seconds": row["seconds"]}
    record = R.Record(
        model="openelm", paper="quantspec", runtime="torch", runtime_version=torch.__version__, threads=threads,
        artifact=R.Artifact(format="torch", compression=COMPRESSION + _runtime_suffix(row), bits_per_weight=row["weight_bits"],
                            checkpoint=checkpoint, nulls=frozenset({"checkpoint"})),
        scenario=R.Scenario("lm-specdec", extra={**{k: row[k] for k in ("gamma", "context", "mode", "new_tokens",
                                                                        "prompts")},
                                                 "runtime": row.get("runtime", "fake")}),
        latency=R.Latency.from_dict(row["latency"]), extra=figures)
    return record.to_dict()


def _runtime_suffix(row: dict[str, Any]) -> str:
    runtime = row.get("runtime", "fake")
    return "" if runtime == "fake" else f"-{runtime}"


def check_runtime(runtime: str) -> None:
    from models.errors import EdgeZooError

    if runtime not in RUNTIMES:
        raise EdgeZooError(f"unknown runtime {runtime!r}", f"pass --runtime with one of: {', '.join(RUNTIMES)}")


def check_settings(gammas: Sequence[int], contexts: Sequence[int], new_tokens: int, n_prompts: int,
                   modes: Sequence[str], threads: int, kv_group: int, residual: int, runtime: str = "fake") -> None:
    """The benchmark's own inputs, before any model is loaded."""
    from models.errors import EdgeZooError
    from models.kv_quant import HierarchicalKVCache

    check_runtime(runtime)

    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise EdgeZooError(f"unknown mode(s) {bad or list(modes)}", f"use one or both of: {', '.join(MODES)}")
    for what, values in (("gammas", gammas), ("contexts", contexts)):
        if not values or min(values) < 1:
            raise EdgeZooError(f"{what} {list(values)} must be a non-empty list of integers >= 1", f"e.g. --{what} 2,4")
    for what, value, high in (("new tokens", new_tokens, None), ("prompts", n_prompts, MAX_PROMPTS),
                              ("threads", threads, 256), ("residual", residual, None)):
        if value < 1 or (high is not None and value > high):
            upto = f" and <= {high}" if high else ""
            raise EdgeZooError(f"{what} = {value} is out of range", f"pass {what} >= 1{upto}")
    if max(gammas) > new_tokens:
        raise EdgeZooError(f"gamma {max(gammas)} exceeds the {new_tokens} new tokens per prompt",
                           "pass --gammas values of at most --tokens")
    HierarchicalKVCache(1, kv_group, residual)  # an even G and an R that is a multiple of it


def check_model_fits(args, contexts: Sequence[int], new_tokens: int, tokenizer: str | None = None) -> None:
    """Prompts are validation-text bytes: a byte vocabulary, and each context within the model's context and the
    validation text. Decoding may run past the model's context (the card's wall-clock runs do), by at most as many
    new tokens as the context holds."""
    from models.errors import EdgeZooError
    from models.generation.prompt import require_byte_vocab
    from trainers.text import load_text

    require_byte_vocab(args, tokenizer)
    if new_tokens > args.max_context_length:
        raise EdgeZooError(f"{new_tokens:,} new tokens per prompt exceed the model's context of "
                           f"{args.max_context_length:,} tokens", f"pass --tokens {args.max_context_length:,} or less")
    limits = {"the model's context": args.max_context_length, "the validation text": len(load_text().val)}
    for ctx in contexts:
        for what, limit in limits.items():
            if ctx > limit:
                raise EdgeZooError(f"context {ctx:,} is longer than {what} ({limit:,} bytes)",
                                   f"pass --contexts values of at most {min(limits.values()):,}")


def measure_specdec(ckpt: Path, gammas: list[int], contexts: list[int], new_tokens: int = 64, n_prompts: int = 3,
                    modes: Sequence[str] = ("greedy",), threads: int = 1, kv_group: int = 32, residual: int = 32,
                    log=lambda s: None, runtime: str = "fake") -> list[dict[str, Any]]:
    """Load an LM checkpoint and benchmark it; returns records for profiles.store.Store.add."""
    from models import checkpoint

    check_settings(gammas, contexts, new_tokens, n_prompts, modes, threads, kv_group, residual, runtime)
    model, card = checkpoint.load_lm(Path(ckpt))
    check_model_fits(model.args, contexts, new_tokens, card.get("tokenizer"))
    rows = bench(model, gammas, contexts, new_tokens, n_prompts, modes, kv_group, residual, threads, log, runtime)
    return [to_record(r, str(ckpt), threads) for r in rows]
