"""Verdict logic of every paper claim, table-driven: synthetic measured numbers that make each verdict happen.

Every table holds at least one pass, one fail per condition and one inconclusive row, so a verdict function that
always answers the same word fails here. One-seed rows check that a single seed never supports a plain pass.
"""

from __future__ import annotations

import pytest

from trainers.claims import ClaimResult, combine, compare, label_verdict, seed_summary
from trainers.lcs import claim as lcs
from trainers.openelm import claim as openelm
from trainers.spin import claim as spin
from trainers.subspaces import claim as subspaces


def tight(mean: float) -> dict:
    """Three seeds 0.001 apart: any difference above ~0.002 is decisive."""
    return seed_summary([mean - 0.001, mean, mean + 0.001])


def summaries(means: dict[str, float], over: dict[str, object]) -> dict[str, dict]:
    """`means` as tight three-seed summaries; `over` replaces entries by a float (tight) or a list (per seed)."""
    out = {k: tight(v) for k, v in means.items()}
    out.update({k: seed_summary(v) if isinstance(v, list) else tight(v) for k, v in over.items()})
    return out


def one_seed(means: dict[str, float]) -> dict[str, dict]:
    return {k: seed_summary([v]) for k, v in means.items()}


# ----------------------------------------------------------------------------- compare, combine, labels

@pytest.mark.parametrize("a,b,kwargs,expected", [
    ([0.90, 0.91, 0.92], [0.80, 0.81, 0.82], {}, "pass"),
    ([0.80, 0.81, 0.82], [0.90, 0.91, 0.92], {}, "fail"),
    ([0.80, 0.90], [0.84, 0.86], {}, "inconclusive"),                        # difference below the pooled std
    ([0.80, 0.92], [0.84, 0.86], {"allow_inconclusive": False}, "pass"),      # the card forbids inconclusive
    ([1.90, 1.91], [2.00, 2.01], {"higher_is_better": False}, "pass"),       # bpb: lower wins
    ([1.90, 1.91], [2.00, 2.01], {}, "fail"),
    ([0.780, 0.781], [0.800, 0.801], {"margin": -0.03}, "pass"),               # within 3 points
    ([0.780, 0.781], [0.800, 0.801], {"margin": -0.01}, "fail"),               # not within 1 point
    ([0.95, 0.951], [0.80, 0.801], {"margin": 0.10}, "pass"),                  # beats by at least 10 points
    ([0.85, 0.851], [0.80, 0.801], {"margin": 0.10}, "fail"),
    ([0.9], [0.8], {}, "inconclusive"),                                       # one seed: no spread to judge by
    ([0.9], [0.8, 0.81], {}, "inconclusive"),
    ([0.9], [0.8], {"allow_inconclusive": False}, "pass"),
])
def test_compare(a, b, kwargs, expected) -> None:
    assert compare(seed_summary(a), seed_summary(b), **kwargs) == expected


@pytest.mark.parametrize("parts,expected", [
    (["pass", "pass"], "pass"), (["pass", "inconclusive"], "inconclusive"), (["inconclusive", "fail", "pass"], "fail"),
    ([], "pass")])
def test_combine(parts, expected) -> None:
    assert combine(parts) == expected


@pytest.mark.parametrize("verdict,quick,expected", [
    ("pass", True, "pass (quick)"), ("fail", True, "fail (quick)"), ("inconclusive", True, "inconclusive (quick)"),
    ("pass (quick)", True, "pass (quick)"), ("pass", False, "pass"), ("fail", False, "fail")])
def test_quick_verdicts_are_labelled_in_the_result(verdict, quick, expected) -> None:
    assert label_verdict(verdict, quick) == expected
    r = ClaimResult(paper="p", claim="c", paper_numbers={}, measured={}, verdict=verdict, reason="r", quick=quick)
    assert r.verdict == expected and r.to_dict()["verdict"] == expected


def test_unknown_verdict_is_refused() -> None:
    with pytest.raises(ValueError):
        label_verdict("passed", False)


def test_quick_label_is_printed_and_stored(tmp_path, capsys) -> None:
    from app.claims_view import print_claim
    from profiles.store import Store

    r = ClaimResult(paper="p", claim="c", paper_numbers={}, measured={"arm": seed_summary([0.5])}, verdict="pass",
                    reason="r", quick=True, seeds=[0])
    print_claim(r)
    assert "verdict: pass (quick)" in capsys.readouterr().out
    store = Store(tmp_path / "results.db")
    store.add_claim(r.to_dict())
    assert [c["verdict"] for c in store.claims("p")] == ["pass (quick)"]
    store.close()


# ----------------------------------------------------------------------------- LCS (card 13)

LCS = {"lcs_l@mid_mean": 0.90, "indep@mid_mean": 0.91, "lcs_p@mid_mean": 0.89, "posthoc@mid_mean": 0.60,
       "lcs_l@0.9": 0.88, "posthoc@0.9": 0.50, "lcs_l@0.95": 0.85, "posthoc@0.95": 0.30,
       "lcs_l@0": 0.95, "indep@0": 0.955, "lcs_l@bn_mean": 0.90, "lcs_l_bn@bn_mean": 0.40}


@pytest.mark.parametrize("over,expected", [
    ({}, "pass"),
    ({"lcs_l@mid_mean": 0.87}, "fail"),                        # 4 points below the independent models
    ({"posthoc@0.9": 0.95}, "fail"),                           # post-hoc pruning wins at 90 %
    ({"posthoc@0.95": 0.90}, "fail"),                          # ... or at 95 %
    ({"lcs_l@0": 0.93}, "fail"),                               # dense end 2.5 points below dense
    ({"lcs_l_bn@bn_mean": 0.95}, "fail"),                      # BatchNorm control beats GroupNorm
    ({"lcs_l@mid_mean": [0.80, 0.96]}, "inconclusive"),        # mean exactly at the 3-point line, wide spread
    ({"lcs_l@0.9": [0.40, 0.60]}, "inconclusive"),
])
def test_lcs_verdict(over, expected) -> None:
    outcome, reason = lcs.verdict(summaries(LCS, over))
    assert outcome == expected, reason
    assert "post-hoc @0.9" in reason and "lcs_l@mid_mean=" in reason


def test_lcs_verdict_without_95_in_the_grid() -> None:
    m = summaries({k: v for k, v in LCS.items() if "0.95" not in k}, {})
    outcome, reason = lcs.verdict(m)
    assert outcome == "pass" and "@0.95" not in reason


def test_lcs_one_seed_cannot_pass() -> None:
    assert lcs.verdict(one_seed(LCS))[0] == "inconclusive"


# ----------------------------------------------------------------------------- subspaces (card 14)

SUB = {"A_noisy": 0.80, "B_mid_noisy": 0.85, "A_clean": 0.95, "B_mid_clean": 0.95, "B_min_line": 0.93,
       "B_min_end": 0.94, "D_mid": 0.50, "D_end_mean": 0.95, "B_ensemble": 0.96, "B_best_end": 0.95,
       "B_cos2": 0.01, "C_cos2": 0.50}


@pytest.mark.parametrize("over,expected", [
    ({}, "pass"),
    ({"B_mid_noisy": 0.75}, "fail"),                           # 1: midpoint loses under label noise
    ({"B_mid_clean": 0.93}, "fail"),                           # 2: 2 points below standard training
    ({"B_min_line": 0.90}, "fail"),                            # 3a: the line dips 4 points
    ({"D_mid": 0.90}, "fail"),                                 # 3b: no barrier between independent models
    ({"B_ensemble": 0.94}, "fail"),                            # 4a: no ensemble gain
    ({"B_cos2": 0.60}, "fail"),                                # 4b: endpoints less diverse than beta=0
    ({"B_mid_noisy": [0.70, 0.90]}, "inconclusive"),           # 1 within the spread
    ({"D_mid": [0.75, 0.95]}, "inconclusive"),                 # 3b: gap of 10 points, exactly at the margin
])
def test_subspaces_verdict(over, expected) -> None:
    outcome, reason = subspaces.verdict(summaries(SUB, over))
    assert outcome == expected, reason
    assert "3b barrier" in reason and "D_mid=" in reason


def test_subspaces_one_seed_cannot_pass() -> None:
    assert subspaces.verdict(one_seed(SUB))[0] == "inconclusive"


# ----------------------------------------------------------------------------- OpenELM (card 01)

@pytest.mark.parametrize("layerwise,isotropic,expected", [
    ([1.90, 1.91, 1.92], [2.00, 2.01, 2.02], "pass"),          # lower bpb
    ([2.10, 2.11, 2.12], [2.00, 2.01, 2.02], "fail"),
    ([1.90, 2.10, 2.00], [1.99, 2.01, 2.00], "inconclusive"),  # gap below the pooled std
    ([1.90], [2.00], "inconclusive"),                          # one seed (the quick run)
])
def test_openelm_verdict(layerwise, isotropic, expected) -> None:
    m = {"layerwise": seed_summary(layerwise), "isotropic": seed_summary(isotropic)}
    outcome, reason = openelm.verdict_openelm(m)
    assert outcome == expected, reason
    assert f"{len(layerwise)} seed(s)" in reason


# ----------------------------------------------------------------------------- SeedLM (card 03)

SEEDLM = {"seedlm4": 2.00, "rtn3_g32": 2.20, "seedlm3": 2.30, "rtn2_g32": 2.80, "rtn4_g128": 1.95, "fp32": 1.90}


@pytest.mark.parametrize("over,rel_wins,expected", [
    ({}, [True, True, True], "pass"),
    ({}, [True, False, True], "fail"),                         # one tensor with higher error than RTN
    ({"seedlm4": 2.30}, [True] * 3, "fail"),                   # SeedLM-4 worse than RTN-3/g32
    ({"seedlm3": 2.90}, [True] * 3, "fail"),                   # SeedLM-3 worse than RTN-2/g32
    ({"seedlm4": [1.90, 2.50]}, [True] * 3, "inconclusive"),   # within the spread
    ({}, [], "inconclusive"),                                  # no tensor compared
])
def test_seedlm_verdict(over, rel_wins, expected) -> None:
    m = summaries(SEEDLM, over)
    m["rtn4_g128"]["bits_per_weight"] = 4.25
    outcome, reason = openelm.verdict_seedlm(m, rel_wins)
    assert outcome == expected, reason
    assert f"{sum(rel_wins)}/{len(rel_wins)} tensors" in reason and "4.25 b/w" in reason


def test_seedlm_one_seed_cannot_pass() -> None:
    assert openelm.verdict_seedlm(one_seed(SEEDLM), [True])[0] == "inconclusive"


# ----------------------------------------------------------------------------- SPIN (card 10): the one-seed quick run

SPIN = dict(zip(["(i) vanilla D8", "(ii) shared D8 r2 sequential", "(ii) shared D8 r2 strided",
                 "(ii) shared D8 r2 random", "(iii) vanilla D4", "(iv) WF-mean from (i)",
                 "(v) shared sequential scratch"], [0.90, 0.88, 0.87, 0.875, 0.85, 0.89, 0.86]))


@pytest.mark.parametrize("over,expected", [
    ({}, "inconclusive"),                                      # would pass with three seeds
    ({"(ii) shared D8 r2 random": 0.95}, "fail"),              # mapping spread is a threshold, not a comparison
])
def test_spin_one_seed(over, expected) -> None:
    assert spin.verdict(one_seed({**SPIN, **over}))[0] == expected
    assert spin.verdict(summaries(SPIN, over))[0] == ("pass" if not over else "fail")
