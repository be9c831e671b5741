"""Latency statistics over raw samples (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_SAMPLES_P90 = 64
MIN_SAMPLES_P99 = 662


def bootstrap_median_ci(samples: np.ndarray, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // max(len(samples), 1))  # bounded memory for long sample runs
    medians = np.concatenate([
        np.median(samples[rng.integers(0, len(samples), size=(min(chunk, resamples - i), len(samples)))], axis=1)
        for i in range(0, resamples, chunk)])
    lo, hi = np.quantile(medians, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def trimmed_mean(samples: np.ndarray, cut: float = 0.1) -> float:
    s = np.sort(samples)
    k = int(len(s) * cut)
    return float(s[k:len(s) - k].mean()) if len(s) > 2 * k else float(s.mean())


def summarize(samples_s: list[float] | np.ndarray) -> dict[str, Any]:
    """Derived stats in milliseconds. p90/p99 are None when there are too few samples to mean anything."""
    s = np.asarray(samples_s, dtype=np.float64) * 1e3
    if s.size == 0:
        return {"n": 0}
    lo, hi = bootstrap_median_ci(s)
    mean = float(s.mean())
    std = float(s.std(ddof=1)) if s.size > 1 else 0.0
    return {
        "n": int(s.size),
        "median_ms": float(np.median(s)),
        "p90_ms": float(np.quantile(s, 0.9)) if s.size >= MIN_SAMPLES_P90 else None,
        "p99_ms": float(np.quantile(s, 0.99)) if s.size >= MIN_SAMPLES_P99 else None,
        "mean_ms": mean,
        "trimmed_mean_ms": trimmed_mean(s),
        "std_ms": std,
        "cv": std / mean if mean > 0 else None,
        "min_ms": float(s.min()),
        "max_ms": float(s.max()),
        "median_ci95_ms": [lo, hi],
    }
