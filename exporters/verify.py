"""Numeric parity of an artifact's outputs against the fp32 torch reference (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_TOP1_AGREEMENT = 0.8  # below this a compressed model is "wrong", however fast


def sqnr_db(out: np.ndarray, ref: np.ndarray) -> float:
    noise = float(np.sum((out.astype(np.float64) - ref) ** 2))
    signal = float(np.sum(ref.astype(np.float64) ** 2))
    return float("inf") if noise == 0 else float(10.0 * np.log10(max(signal, 1e-30) / noise))


def numeric_parity(out: np.ndarray, ref: np.ndarray, min_sqnr_db: float | None = None) -> dict[str, Any]:
    """Parity of `out` with `ref`: top-1 agreement >= MIN_TOP1_AGREEMENT, or, with `min_sqnr_db`, SQNR at least that
    (seeded random weights, app/deploy.py: their logits differ between inputs by less than quantization noise, so
    top-1 agreement says nothing there)."""
    out = np.asarray(out, dtype=np.float32).reshape(ref.shape)
    finite = bool(np.isfinite(out).all())
    agree = float((out.argmax(-1) == ref.argmax(-1)).mean())
    sqnr = sqnr_db(out, ref)
    ok = agree >= MIN_TOP1_AGREEMENT if min_sqnr_db is None else sqnr >= min_sqnr_db
    return {"max_abs_err": float(np.abs(out - ref).max()), "sqnr_db": sqnr, "top1_agreement": agree,
            "n": int(ref.shape[0]), "ok": finite and ok,
            **({"criterion": f"SQNR >= {min_sqnr_db:g} dB"} if min_sqnr_db is not None else {})}



def size_parity(model: Any, run: Any, sizes: tuple[int, ...], folder: Any, n: int = 64) -> tuple[list[int], dict]:
    """A multi-size export checked at each square input size: `run(x)` (the format's logits for a numpy batch) against
    the torch `model` on the artifact's first `n` held-out images (eval.npz) resized to that size. Returns the sizes
    whose outputs agree and the parity per size (or the error a size raised)."""
    from pathlib import Path

    import torch

    from trainers.data import resize_bilinear

    base = np.load(Path(folder) / "eval.npz")["x"][:n]
    ok, report = [], {}
    for size in sizes:
        x = resize_bilinear(base, size)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        try:
            parity = numeric_parity(np.asarray(run(x)), ref)
        except Exception as e:  # a size the format rejects is reported, not raised: the base size still works
            report[str(size)] = {"ok": False, "error": f"{e.__class__.__name__}: {str(e).strip()[:160]}"}
            continue
        report[str(size)] = parity
        if parity["ok"]:
            ok.append(size)
    return ok, report
