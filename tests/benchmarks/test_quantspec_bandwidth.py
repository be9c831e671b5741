"""QuantSpec where speculation can pay: a 43M-parameter byte LM (trainers/quantspec/configs/quantspec_bandwidth.yaml,
trained once and cached by recipe hash) decoded with run-time 4-bit draft weights (onnxruntime MatMulNBits) and a
bf16 verifier (oneDNN), the hierarchical KV cache kept (x4 draft view, x8 verify view).

Printed, never asserted on time: (1) the block linears of one pass under each kernel at M = 1 and M = gamma + 1
rows, against fp32; (2) per context, plain decoding of the same bf16 model and speculative decoding, alternated
prompt by prompt in one process (load drift hits both alike), in ROUNDS rounds (the median round reported),
with tokens/s, their ratio, acceptance, per-token alpha, c = draft pass / verify pass time (measured), and the
card's ideal speed-up at that alpha and c; the "fake" row is the fp32 path (fake-quantized draft, fp32 verifier
and plain decoding) on the same model.
Asserted: speculative greedy output equals the verifier view's own greedy output on one prompt.
Run: `python -m tests.benchmarks.test_quantspec_bandwidth` (JSON to $EDGEZOO_BENCH_OUT, default /tmp)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.nn import functional as F

pytestmark = pytest.mark.benchmark
RECIPE = Path(__file__).resolve().parents[2] / "trainers/quantspec/configs/quantspec_bandwidth.yaml"
GAMMA = 4
CONTEXTS = (256, 1024)
RUNS = tuple(("int4", c) for c in CONTEXTS) + (("fake", CONTEXTS[-1]),)  # fake: fp32 + fake-quantized draft
NEW_TOKENS = 64
PROMPTS = 2
ROUNDS = 3  # int4 rows: the figures of the median round (by ratio); every round's ratio is printed too
WEIGHT_GROUP = 128  # what profiles.specdec_measure.decoder picks for this model (models.packed_runtime.int4_group)
KV_GROUP = RESIDUAL = 32


USER_CACHE = os.environ.get("EDGEZOO_CACHE")  # read at import, before the test session isolates the cache


def trained() -> tuple[torch.nn.Module, dict[str, Any]]:
    """The recipe's model from the user's claim cache (trained there once, ~12 CPU minutes: too long to repeat in
    every test session's isolated cache)."""
    from trainers.openelm.claim import cached_fit
    from trainers.openelm.recipe import load_lm_recipe

    t0, session = time.perf_counter(), os.environ.pop("EDGEZOO_CACHE", None)
    if USER_CACHE is not None:
        os.environ["EDGEZOO_CACHE"] = USER_CACHE
    try:
        model, metrics = cached_fit(load_lm_recipe(RECIPE))
    finally:
        os.environ.pop("EDGEZOO_CACHE", None)
        if session is not None:
            os.environ["EDGEZOO_CACHE"] = session
    return model.eval(), {**metrics, "load_or_train_seconds": time.perf_counter() - t0}


def _median_us(fn, repeats: int = 15) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e6)


def kernel_table(model: torch.nn.Module, rows: tuple[int, ...] = (1, GAMMA + 1)) -> list[dict[str, Any]]:
    """Summed median time of every block linear of one pass, per kernel and row count (kernels alternate
    linear by linear, so load hits them alike)."""
    from models.layers.quant import lm_linear_names
    from models.packed_runtime import Bf16Linear, Int4Linear, OrtInt4Linear

    weights = [model.get_submodule(n).weight.detach() for n in lm_linear_names(model)]
    kernels = {"fp32": lambda w: (lambda x: F.linear(x, w)), "bf16 oneDNN": lambda w: Bf16Linear(w),
               f"int4 MatMulNBits g{WEIGHT_GROUP}": lambda w: OrtInt4Linear(w, WEIGHT_GROUP),
               f"int4 torch g{WEIGHT_GROUP}": lambda w: Int4Linear(w, WEIGHT_GROUP)}
    built = {k: [make(w) for w in weights] for k, make in kernels.items()}
    out = []
    for m in rows:
        total = dict.fromkeys(kernels, 0.0)
        for i, w in enumerate(weights):
            x = torch.randn(m, w.shape[1])
            for k in kernels:
                total[k] += _median_us(lambda f=built[k][i], x=x: f(x))
        out += [{"rows": m, "kernel": k, "us_per_pass": v, "vs_fp32": total["fp32"] / v} for k, v in total.items()]
    return out


def speed_table(model: torch.nn.Module) -> list[dict[str, Any]]:
    from models.speculative import analytic_speedup
    from profiles.specdec_measure import compare_speed, decoder, val_prompts

    decoders = {rt: decoder(model, KV_GROUP, RESIDUAL, rt) for rt in dict(RUNS)}
    rows = []
    for runtime, ctx in RUNS:
        dec, load0 = decoders[runtime], os.getloadavg()[0]
        rounds = [compare_speed(dec, val_prompts(PROMPTS, ctx), NEW_TOKENS, GAMMA)
                  for _ in range(ROUNDS if runtime == "int4" else 1)]
        r = sorted(rounds, key=lambda x: x["speedup_vs_plain"])[len(rounds) // 2]  # the median round
        s, p = r["spec"], r["plain"]
        rows.append({"runtime": runtime, "context": ctx, "gamma": GAMMA, "new_tokens": NEW_TOKENS, "prompts": PROMPTS,
                     "plain_tok_s": p["decode_tokens_per_s"], "spec_tok_s": s["decode_tokens_per_s"],
                     "ratio": r["speedup_vs_plain"], "acceptance": s["acceptance_rate"],
                     "alpha": s["token_acceptance"], "c": s["cost_ratio"],
                     "ideal": analytic_speedup(s["token_acceptance"], GAMMA, s["cost_ratio"]),
                     "draft_ms": 1e3 * s["draft_seconds"] / s["draft_passes"],
                     "verify_ms": 1e3 * s["verify_seconds"] / s["verify_passes"],
                     "plain_ms": 1e3 * p["verify_seconds"] / p["verify_passes"],
                     "load_avg_1m": (load0, os.getloadavg()[0]), "weight_bits": dec.weight_report["bits_per_weight"],
                     "round_ratios": [x["speedup_vs_plain"] for x in rounds]})
    return rows


def exact_on_one_prompt(model: torch.nn.Module) -> bool:
    from profiles.specdec_measure import decoder, val_prompts

    dec = decoder(model, KV_GROUP, RESIDUAL, "int4")
    prompt = val_prompts(1, CONTEXTS[0])[0]
    ref, _ = dec.verifier_generate(prompt, 48)
    return dec.generate(prompt, 48, GAMMA)[0] == ref


def report(model: torch.nn.Module, info: dict[str, Any]) -> dict[str, Any]:
    from models.openelm import param_count

    torch.set_num_threads(1)
    out = {"params": param_count(model.args), "train": info, "kernels": kernel_table(model),
           "speed": speed_table(model), "exact": exact_on_one_prompt(model), "threads": 1,
           "torch": torch.__version__}
    print(f"\n{out['params']:,} parameters; load average {os.getloadavg()}")
    print(f"{'rows':>4} {'kernel':<24} {'us/pass':>9} {'fp32/kernel':>11}")
    for k in out["kernels"]:
        print(f"{k['rows']:>4} {k['kernel']:<24} {k['us_per_pass']:>9.0f} {k['vs_fp32']:>11.2f}")
    print(f"{'runtime':<8} {'ctx':>5} {'plain tok/s':>11} {'spec tok/s':>10} {'ratio':>6} {'accept':>6} {'alpha':>6} "
          f"{'c':>5} {'ideal':>6} {'draft ms':>8} {'verify ms':>9} {'plain ms':>8} load, ratio per round")
    for r in out["speed"]:
        print(f"{r['runtime']:<8} {r['context']:>5} {r['plain_tok_s']:>11.2f} {r['spec_tok_s']:>10.2f} "
              f"{r['ratio']:>6.2f} {r['acceptance']:>6.3f} {r['alpha']:>6.3f} {r['c']:>5.3f} {r['ideal']:>6.2f} {r['draft_ms']:>8.1f} "
              f"{r['verify_ms']:>9.1f} {r['plain_ms']:>8.1f} {r['load_avg_1m'][0]:.1f}-{r['load_avg_1m'][1]:.1f} "
              f"rounds {' '.join(f'{x:.2f}' for x in r['round_ratios'])}")
    path = Path(os.environ.get("EDGEZOO_BENCH_OUT", "/tmp")) / "quantspec_bandwidth.json"
    path.write_text(json.dumps(out, indent=1, default=str))
    return out


def test_speculation_with_packed_kernels() -> None:
    model, info = trained()
    out = report(model, info)
    assert out["exact"]
    for r in out["speed"]:
        assert r["acceptance"] > 0 and r["c"] > 0 and np.isfinite(r["ideal"])


if __name__ == "__main__":
    report(*trained())
