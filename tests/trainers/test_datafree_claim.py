"""Data-free claim (card 15): each verdict (pass, fail, inconclusive) from a table of seed summaries, the quick run
labelled, and the plug-in's declaration."""

from __future__ import annotations

import pytest

from trainers.claims import seed_summary
from trainers.datafree import PAPER
from trainers.datafree import claim


def _measured(**changes: list[float]) -> dict:
    """A passing table (3 seeds): data-free well above RTN at 2/3 bits, close to real data, 8 bits at float."""
    base = {"float": [0.99, 0.98, 0.99], "rtn@2": [0.40, 0.45, 0.42], "datafree@2": [0.95, 0.96, 0.94],
            "real@2": [0.96, 0.97, 0.95], "rtn@3": [0.93, 0.94, 0.95], "datafree@3": [0.98, 0.98, 0.99],
            "real@3": [0.98, 0.99, 0.99], "datafree@4": [0.99, 0.98, 0.99], "real@4": [0.99, 0.98, 0.99],
            "rtn@8": [0.99, 0.98, 0.99], "datafree@8": [0.99, 0.98, 0.99], "real@8": [0.99, 0.98, 0.99],
            "prune@0.9": [0.30, 0.25, 0.35], "prune_refit@0.9": [0.80, 0.85, 0.82]}
    base.update(changes)
    return {k: seed_summary(v) for k, v in base.items()}


@pytest.mark.parametrize("changes,expected,condition", [
    ({}, "pass", None),
    ({"datafree@2": [0.30, 0.35, 0.32]}, "fail", "1 datafree > RTN @2 bits: fail"),
    ({"datafree@3": [0.90, 0.91, 0.90]}, "fail", "2 datafree >= real - 3 pts @3 bits: fail"),
    ({"rtn@8": [0.97, 0.96, 0.97]}, "fail", "3 rtn @8 bits within 0.5 pts of float: fail"),
    ({"prune_refit@0.9": [0.30, 0.26, 0.34]}, "inconclusive", "4 refit > no refit @90 %: inconclusive"),
    ({"datafree@3": [0.94, 0.96, 0.93], "real@3": [0.95, 0.96, 0.95]}, "inconclusive",
     "1 datafree > RTN @3 bits: inconclusive"),
])
def test_verdict_table(changes, expected, condition) -> None:
    verdict, reason = claim.verdict(_measured(**changes))
    assert verdict == expected
    if condition:
        assert condition in reason


@pytest.mark.slow
def test_quick_run_is_labelled_and_measures_every_arm() -> None:
    result = claim.reproduce(quick=True)
    assert result.quick and result.verdict.endswith("(quick)")
    for key in ("float", "rtn@2", "datafree@3", "real@4", "prune@0.9", "prune_refit@0.9", "wall_sequential",
                "wall_parallel", "sec_per_layer@3", "mse_datafree@2:head", "mse_rtn@2:head"):
        assert key in result.measured, key
    assert 0.0 <= result.measured["datafree@8"]["mean"] <= 1.0


def test_plugin_declares_datafree_exports() -> None:
    from exporters.compression import parse_spec

    (dep,) = PAPER.deployables
    assert set(dep.exports) == {"onnx", "mlx", "coreml"}
    for fmt, specs in dep.exports.items():
        assert any(s.startswith("datafree") for s in specs)
        for s in specs:
            parse_spec(s, fmt)
    from trainers.papers import get

    assert get("datafree").recipe_path(dep.recipe).is_file()


def test_dashboard_table_keeps_the_newest_row_per_artifact() -> None:
    import pandas as pd

    from trainers.datafree import dashboard

    assert dashboard.artifact_table(pd.DataFrame()).empty
    rows = pd.DataFrame({"id": [1, 2, 3], "artifact.format": ["onnx", "onnx", "onnx"],
                         "artifact.compression": ["datafree3", "datafree3", "none"],
                         "artifact.bits_per_weight": [4.36, 4.36, 32.2], "accuracy.value": [0.90, 0.99, 0.99],
                         "latency.median_ms": [0.06, 0.05, 0.02], "status": ["ok", "ok", "ok"]})
    table = dashboard.artifact_table(rows)
    assert list(table["compression"]) == ["none", "datafree3"] and list(table["accuracy"]) == [0.99, 0.99]
    assert dashboard.figure(table) is not None
