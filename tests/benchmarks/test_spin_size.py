"""SPIN artifact size vs the unshared model at equal depth, per format (figures printed, not asserted on time).

A depth-8 ConvMixer (C=64) with 8 (unshared), 4 and 2 unique pointwise convs, exported through the normal
pipeline; size_bytes is the manifest's (the whole .onnx / .mlxfn / .mlpackage).
Run: `python -m pytest -m benchmark -s tests/benchmarks/test_spin_size.py` or `python -m tests.benchmarks.test_spin_size`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from exporters.artifact import export_checkpoint
from tests.exporters.test_spin_export import DEPTH, PW_BYTES, spin_checkpoint

pytestmark = pytest.mark.benchmark
FORMATS = ("onnx", "mlx", "coreml")
SHARES = (0, 4, 2)


def size_table(root: Path) -> list[dict]:
    rows = []
    ckpts = {s: spin_checkpoint(root, s) for s in SHARES}
    for fmt in FORMATS:
        sizes = {s: export_checkpoint(ck, fmt, "none", out_dir=root / fmt / str(s)).manifest["size_bytes"]
                 for s, ck in ckpts.items()}
        for s in SHARES:
            unique = s or DEPTH
            rows.append({"format": fmt, "unique_pw": unique, "size_bytes": sizes[s],
                         "vs_unshared": sizes[s] / sizes[0], "pw_ratio_expected": unique / DEPTH,
                         "saved_bytes": sizes[0] - sizes[s], "saved_expected": (DEPTH - unique) * PW_BYTES})
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"\nSPIN ConvMixer D={DEPTH}, C=64: artifact size vs unshared (equal depth)")
    print(f"{'format':8} {'unique pw':>9} {'size_bytes':>11} {'x unshared':>10} {'saved':>8} {'saved expected':>15}")
    for r in rows:
        print(f"{r['format']:8} {r['unique_pw']:>9} {r['size_bytes']:>11,} {r['vs_unshared']:>10.3f} "
              f"{r['saved_bytes']:>8,} {r['saved_expected']:>15,}")


def test_spin_size_table() -> None:
    with tempfile.TemporaryDirectory() as d:
        rows = size_table(Path(d))
    print_table(rows)
    assert len(rows) == len(FORMATS) * len(SHARES)


if __name__ == "__main__":
    test_spin_size_table()
