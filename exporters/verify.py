"""Numeric parity of an artifact's outputs against the fp32 torch reference (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_TOP1_AGREEMENT = 0.8  # below this a compressed model is "wrong", however fast


def sqnr_db(out: np.ndarray, ref: np.ndarray) -> float:
    noise = float(np.sum((out.astype(np.float64) - ref) ** 2))
    signal = float(np.sum(ref.astype(np.float64) ** 2))
    return float("inf") if noise == 0 else float(10.0 * np.log10(max(signal, 1e-30) / noise))


def numeric_parity(out: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    out = np.asarray(out, dtype=np.float32).reshape(ref.shape)
    finite = bool(np.isfinite(out).all())
    agree = float((out.argmax(-1) == ref.argmax(-1)).mean())
    return {"max_abs_err": float(np.abs(out - ref).max()), "sqnr_db": sqnr_db(out, ref), "top1_agreement": agree,
            "n": int(ref.shape[0]), "ok": finite and agree >= MIN_TOP1_AGREEMENT}

