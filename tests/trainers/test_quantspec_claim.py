"""Card 02 claim: the quick smoke run end to end, the verdict logic on synthetic results, the full settings."""

from __future__ import annotations

import copy

from trainers.claims import seed_summary
from trainers.quantspec.claim import FULL, _recipe, _verdict


def _seed(**over) -> dict:
    s = {"mismatch_gaps": [], "exact_frac": 1.0, "mismatches": 0, "runs": 36, "bpb_x8": 1.801, "bpb_fp": 1.800,
         "chi2": {"rule": 0.4, "e2e": 0.6}}
    s.update(over)
    return s


def _m(q: list[float], sparse: list[float]) -> dict:
    """The verdict reads per-token acceptance (alpha); accepted/drafted is reported beside it."""
    return {"token_acceptance_g4": seed_summary(q), "token_acceptance_sparse_g4": seed_summary(sparse),
            "acceptance_g4": seed_summary(q), "acceptance_sparse_g4": seed_summary(sparse),
            "bpb_x8_cache": seed_summary([1.801] * len(q)), "bpb_fp_cache": seed_summary([1.8] * len(q))}


def test_verdict_logic_can_fail_each_condition() -> None:
    good = [_seed(), _seed(), _seed()]
    m = _m([0.9, 0.91, 0.92], [0.6, 0.62, 0.61])
    assert _verdict(good, m)[0] == "pass"
    near_tie = copy.deepcopy(good)
    near_tie[1].update(mismatch_gaps=[3e-5], mismatches=1, exact_frac=35 / 36)
    assert _verdict(near_tie, m)[0] == "pass"  # one near-tie flip is within the card's 49/50
    for bad in ({"mismatch_gaps": [0.2], "mismatches": 1, "exact_frac": 35 / 36},  # a real divergence
                {"mismatch_gaps": [1e-5, 2e-5], "mismatches": 2, "exact_frac": 34 / 36},  # too many, even at ties
                {"bpb_x8": 1.81},  # x8 cache 0.01 bpb worse
                {"chi2": {"rule": 1e-4, "e2e": 0.5}},
                {"chi2": {"rule": 0.5, "e2e": 0.005}}):  # the card's p > 0.01, per test
        seeds = [_seed(), _seed(**bad), _seed()]
        verdict, reason = _verdict(seeds, m)
        assert verdict == "fail", bad
        assert "(1)" in reason and "(4)" in reason
    assert _verdict(good, _m([0.6, 0.62, 0.61], [0.9, 0.91, 0.92]))[0] == "fail"  # sparse draft accepts more
    assert _verdict(good, _m([0.70, 0.60, 0.80], [0.69, 0.61, 0.79]))[0] == "inconclusive"


def test_full_settings_follow_the_card() -> None:
    r = _recipe(0, quick=False)
    assert (r.name, r.preset, r.context, r.batch_size, r.steps, r.lr, r.warmup, r.eval_every) == (
        "claim_isotropic512_s0", "isotropic", 512, 4, 800, 3e-3, 50, 200)
    assert FULL.group == FULL.residual == 32 and (FULL.prompt, FULL.new) == (512, 128) and FULL.gammas == (2, 4, 6)
    assert (FULL.sink + FULL.recent) * 16 == FULL.prompt * 4  # sparse fp16 tokens = 4-bit cache bytes over 512
    assert FULL.rule_draws == 20_000 and 10 <= FULL.prompts <= 20 and set(FULL.wall_contexts) == {128, 480}


def test_quick_claim_runs() -> None:
    from trainers.claims import reproduce

    res = reproduce("quantspec", quick=True)
    assert res.verdict.endswith("(quick)") and res.paper == "quantspec" and res.quick
    m = res.measured
    for g in (2, 4, 6):
        assert 0 <= m[f"acceptance_g{g}"]["mean"] <= 1 and len(m[f"acceptance_g{g}"]["per_position"]) == g
        assert 0 < m[f"verify_passes_per_token_g{g}"]["mean"] <= 1
    assert m["exact_runs_frac"]["runs_per_seed"] == 9 and 0 <= m["chi2_p_rule"]["mean"] <= 1
    assert m["tok_s_plain_ctx40"]["mean"] > 0 and m["kv_bytes_quantspec_vs_fp16"]["mean"] < 1
    assert abs(m["bpb_x8_cache"]["mean"] - m["bpb_fp_cache"]["mean"]) < 0.05
