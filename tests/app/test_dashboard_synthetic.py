"""The synthetic dashboard records have the shape of the real producer's: built through profiles.record.Record, and
keyed like a record `profiles.measure.measure` makes for a tiny ONNX export."""

from __future__ import annotations

import random
from typing import Any

from profiles.record import Record
from tests.app import synthetic


def keys(d: dict[str, Any], prefix: str = "") -> set[str]:
    """Every key path of nested mappings (`artifact.cost.flops`), values aside."""
    out = set()
    for k, v in d.items():
        out.add(prefix + k)
        if isinstance(v, dict):
            out |= keys(v, f"{prefix}{k}.")
    return out


def synthetic_record(fmt: str, status: str = "ok") -> dict[str, Any]:
    rng = random.Random(0)
    return next(r for i in range(60) if (r := synthetic.make_record(i, rng))["artifact"]["format"] == fmt
                and r["status"] == status)


def test_synthetic_records_round_trip_through_record() -> None:
    rng = random.Random(0)
    for i in range(60):
        r = synthetic.make_record(i, rng)
        assert Record.from_dict(r).to_dict() == r


def test_synthetic_record_has_the_real_producers_keys(tiny_checkpoint, tmp_path) -> None:
    from exporters.artifact import export_checkpoint
    from profiles.measure import Scenario, measure

    art = export_checkpoint(tiny_checkpoint, "onnx", "none", out_dir=tmp_path / "onnx")
    real = measure(art, scenario=Scenario(warmup=2, min_iters=70, min_seconds=0.05))
    assert real["status"] == "ok", real
    fake = synthetic_record("onnx")
    assert keys(fake) == keys(real), (sorted(keys(fake) - keys(real)), sorted(keys(real) - keys(fake)))
