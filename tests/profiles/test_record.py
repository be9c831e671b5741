"""Records from the real producers on tiny configs (a vision measurement, an LM measurement, a pipeline failure and
an interrupted measurement) round-trip through the store and profiles.record unchanged, and the query layer finds
each by kind and paper; one Pareto front takes its direction from the quality metric."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from profiles import query
from profiles.record import Record, RecordError, Status
from profiles.store import Store


@pytest.fixture(scope="module")
def produced(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    import torch

    from app.pipeline import failure_record
    from exporters.artifact import export_checkpoint
    from exporters.lm.artifact import export_lm
    from models import checkpoint
    from models.openelm import ModelArgs, OpenELM
    from profiles.launcher import interrupted_result
    from profiles.lm_measure import measure_lm
    from profiles.measure import Scenario, measure

    root = tmp_path_factory.mktemp("records")
    art = export_checkpoint(tiny_checkpoint, "onnx", "none", out_dir=root / "resnet-onnx")
    vision = measure(art, threads=1, scenario=Scenario(warmup=2, min_iters=70, min_seconds=0.05))
    torch.manual_seed(0)
    ckpt = checkpoint.save(OpenELM(ModelArgs.tiny()), root / "openelm", {"note": "random init"})
    folder = export_lm(ckpt, "torch", "none", root / "openelm-torch")
    lm = measure_lm(folder, threads=1, prompt_len=8, new_tokens=4, context=32, eval_windows=4, repeats=1, timeout=120)
    failed = failure_record("export", "lcs", "resnet", "coreml", "int8", ValueError("no converter"))
    interrupted = Record.from_dict(vision).updated(interrupted_result("profiling")).to_dict()
    return {"vision": {**vision, "paper": "lcs"}, "lm": lm, "failed": failed, "interrupted": interrupted}


@pytest.fixture(scope="module")
def stored(produced: dict[str, dict], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    store = Store(tmp_path_factory.mktemp("store") / "results.db")
    ids = {name: store.add(rec) for name, rec in produced.items()}
    by_id = {r["id"]: r for r in store.records()}
    store.close()
    return {name: by_id[rid] for name, rid in ids.items()}


def test_producers_make_valid_records(produced: dict[str, dict]) -> None:
    assert produced["vision"]["status"] == "ok" and produced["vision"]["accuracy"]["metric"] == "top1"
    assert produced["vision"]["latency"]["n"] >= 70 and len(produced["vision"]["latency"]["samples_ms"]) >= 70
    assert produced["lm"]["status"] == "ok" and produced["lm"]["accuracy"]["metric"] == "bits_per_byte"
    assert produced["failed"]["status"] == "failed" and produced["failed"]["error_class"] == "ValueError"
    assert produced["interrupted"]["status"] == "interrupted"
    kinds = {name: Record.from_dict(r).kind for name, r in produced.items()}
    assert kinds == {"vision": "classify", "lm": "lm-generate", "failed": "classify", "interrupted": "classify"}
    assert not Record.from_dict(produced["lm"]).quality.higher_is_better
    assert Record.from_dict(produced["vision"]).quality.higher_is_better


@pytest.mark.parametrize("name", ["vision", "lm", "failed", "interrupted"])
def test_stored_records_round_trip_unchanged(stored: dict[str, dict], name: str) -> None:
    rec = stored[name]
    assert Record.from_dict(rec).to_dict() == rec


def test_old_shapes_round_trip_and_bad_shapes_are_refused() -> None:
    old = {"created": "2024-01-01T00:00:00", "model": "resnet", "artifact": {"format": "onnx"}, "status": "failed",
           "error_class": "Timeout", "scenario": {"batch": 1}, "latency": {"n": 3, "p90_ms": None}, "unknown": [1]}
    assert Record.from_dict(old).to_dict() == old
    with pytest.raises(RecordError):
        Record.from_dict({**old, "status": "done"})
    with pytest.raises(RecordError):
        Record.from_dict({**old, "scenario": {"kind": "translate"}})
    with pytest.raises(RecordError):
        Record(model="m", threads=0, status=Status("ok"))


def test_query_by_kind_and_paper(stored: dict[str, dict]) -> None:
    recs = sorted(stored.values(), key=lambda r: r["id"])
    kinds = query.by_kind(recs)
    assert [r["id"] for r in kinds["lm-generate"]] == [stored["lm"]["id"]]
    assert {r["id"] for r in kinds["classify"]} == {stored[n]["id"] for n in ("vision", "failed", "interrupted")}
    lcs = SimpleNamespace(key="lcs", title="Learning Compressible Subspaces")
    assert {r["id"] for r in query.of_paper(recs, lcs)} == {stored["vision"]["id"], stored["failed"]["id"]}
    # the interrupted re-measurement of the vision artifact is the newest record of that key
    newest = {r["id"] for r in query.latest(recs)}
    assert stored["interrupted"]["id"] in newest and stored["vision"]["id"] not in newest


def test_one_pareto_front_direction_from_the_metric() -> None:
    def rec(ms: float, value: float, metric: str) -> dict:
        return {"latency": {"median_ms": ms}, "accuracy": {"metric": metric, "value": value}}

    top1 = [rec(1, 0.5, "top1"), rec(2, 0.9, "top1"), rec(3, 0.8, "top1"), rec(4, 0.95, "top1")]
    assert [r["latency"]["median_ms"] for r in query.pareto_front(top1)] == [1, 2, 4]
    bpb = [rec(1, 3.0, "bits_per_byte"), rec(2, 2.0, "bits_per_byte"), rec(3, 2.5, "bits_per_byte")]
    assert [r["latency"]["median_ms"] for r in query.pareto_front(bpb)] == [1, 2]
    assert query.front_positions([1.0, float("nan"), 2.0], [0.1, 0.9, 0.2]) == [0, 2]
