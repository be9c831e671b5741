from __future__ import annotations

import numpy as np

from profiles.stats import MIN_SAMPLES_P90, summarize


def test_summary_of_known_samples() -> None:
    s = summarize(np.arange(1, 1001) / 1e3)  # 1..1000 ms
    assert s["n"] == 1000 and abs(s["median_ms"] - 500.5) < 1e-9
    assert abs(s["p90_ms"] - 900.1) < 0.2 and s["p99_ms"] is not None
    lo, hi = s["median_ci95_ms"]
    assert lo < s["median_ms"] < hi and hi - lo < 100
    assert abs(s["trimmed_mean_ms"] - 500.5) < 1e-6 and 0.5 < s["cv"] < 0.6


def test_tail_percentiles_need_enough_samples() -> None:
    s = summarize(np.ones(MIN_SAMPLES_P90 - 1) * 1e-3)
    assert s["p90_ms"] is None and s["p99_ms"] is None and s["median_ms"] == 1.0


def test_bootstrap_bounded_memory_for_long_runs() -> None:
    s = summarize(np.random.default_rng(0).random(50_000) * 1e-3)
    assert s["median_ci95_ms"][0] <= s["median_ms"] <= s["median_ci95_ms"][1]
