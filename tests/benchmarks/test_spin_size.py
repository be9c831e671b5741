"""SPIN artifact size vs the unshared model at equal depth, per format.

A depth-8 ConvMixer (C=64) with 8 (unshared), 4 and 2 unique pointwise convs, exported through the normal
pipeline. Asserted exactly: the parameter bytes a shared export saves (manifest `weight_bytes`, unshared minus
shared) equal the bytes of the pointwise tensors it no longer stores, computed from the architecture's own
parameter shapes (Core ML: each tensor is a weight.bin blob with a 64-byte header, data padded to 64 bytes).
The whole file (`size_bytes`) saves that plus a little graph metadata: printed, and checked within a few percent.
Run: `python -m pytest -m benchmark -s tests/benchmarks/test_spin_size.py`
or `python -m tests.benchmarks.test_spin_size`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from exporters.artifact import export_checkpoint
from models.registry import build
from tests.exporters.test_spin_export import DEPTH, DIM, spin_checkpoint

pytestmark = pytest.mark.benchmark
FORMATS = ("onnx", "mlx", "coreml")
SHARES = (0, 4, 2)
COREML_BLOB_HEADER = 64  # coremltools' weight.bin: a 64-byte metadata record per blob, data aligned to 64 bytes


def stored_bytes(fmt: str, nbytes: int) -> int:
    if fmt == "coreml":
        return COREML_BLOB_HEADER + -(-nbytes // 64) * 64
    return nbytes


def pointwise_bytes(fmt: str, share: int) -> int:
    """Bytes the format stores for the unique pointwise tensors of a ConvMixer with this sharing."""
    model = build("spin_convmixer", {"dim": DIM, "depth": DEPTH, "share": share})
    return sum(stored_bytes(fmt, p.numel() * p.element_size()) for p in model.pointwise.parameters())


def size_table(root: Path) -> list[dict]:
    rows = []
    ckpts = {s: spin_checkpoint(root, s) for s in SHARES}
    for fmt in FORMATS:
        man = {s: export_checkpoint(ck, fmt, "none", out_dir=root / fmt / str(s)).manifest for s, ck in ckpts.items()}
        for s in SHARES:
            rows.append({"format": fmt, "unique_pw": s or DEPTH, "size_bytes": man[s]["size_bytes"],
                         "vs_unshared": man[s]["size_bytes"] / man[0]["size_bytes"],
                         "saved_bytes": man[0]["size_bytes"] - man[s]["size_bytes"],
                         "saved_weight_bytes": man[0]["weight_bytes"] - man[s]["weight_bytes"],
                         "saved_expected": pointwise_bytes(fmt, 0) - pointwise_bytes(fmt, s)})
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"\nSPIN ConvMixer D={DEPTH}, C={DIM}: artifact size vs unshared (equal depth)")
    print(f"{'format':8} {'unique pw':>9} {'size_bytes':>11} {'x unshared':>10} {'saved file':>10} "
          f"{'saved params':>12} {'expected':>9}")
    for r in rows:
        print(f"{r['format']:8} {r['unique_pw']:>9} {r['size_bytes']:>11,} {r['vs_unshared']:>10.3f} "
              f"{r['saved_bytes']:>10,} {r['saved_weight_bytes']:>12,} {r['saved_expected']:>9,}")


def test_spin_size_table() -> None:
    with tempfile.TemporaryDirectory() as d:
        rows = size_table(Path(d))
    print_table(rows)
    assert len(rows) == len(FORMATS) * len(SHARES)
    for r in rows:
        assert r["saved_weight_bytes"] == r["saved_expected"], r
        assert r["saved_expected"] * 0.97 <= r["saved_bytes"] <= r["saved_expected"] * 1.06 + 1, r
    assert {r["saved_expected"] for r in rows if r["format"] == "onnx"} == {0, 4 * (DIM * DIM + DIM) * 4,
                                                                            6 * (DIM * DIM + DIM) * 4}


if __name__ == "__main__":
    test_spin_size_table()
