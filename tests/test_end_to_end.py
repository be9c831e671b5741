"""The whole spine on tiny configs: train -> export (torch, ONNX, MLX, Core ML) -> profile -> store, then reuse."""

from __future__ import annotations

import dataclasses
import sys

import yaml

import models
from app.pipeline import RunPlan, run
from app.workspace import Workspace
from profiles.measure import Scenario


def test_pipeline_all_formats_then_reuse(tmp_path) -> None:
    recipe = tmp_path / "tiny_resnet.yaml"
    args = dataclasses.asdict(models.get("resnet").args_cls.tiny())
    recipe.write_text(yaml.safe_dump({"model": "resnet", "model_args": args, "epochs": 2, "batch_size": 128, "lr": 0.01}))
    plan = RunPlan(recipes=(str(recipe),), format_specs={"torch": ("none",), "onnx": ("none", "int8"),
                                                         "mlx": ("none", "int4"), "coreml": ("none", "palette4")},
                   scenario=Scenario(warmup=2, min_iters=70, min_seconds=0.05))
    ws = Workspace.resolve(tmp_path / "ws")
    logs: list[str] = []
    rows = run(ws, plan, log=logs.append)

    by = {(r["format"], r["compression"]): r for r in rows}
    assert set(by) == {("torch", "none"), ("onnx", "none"), ("onnx", "int8"), ("mlx", "none"), ("mlx", "int4-b32"),
                       ("coreml", "none"), ("coreml", "palette4")}
    for fmt in ("torch", "onnx", "mlx"):
        for (f, _), r in by.items():
            if f == fmt:
                assert r["status"] == "ok", r
                assert r["p50_ms"] > 0 and r["peak_rss_bytes"] > 0 and r["accuracy"] is not None and r["parity_sqnr_db"]
    coreml_status = "ok" if sys.platform == "darwin" else "unavailable"
    assert by[("coreml", "none")]["status"] == coreml_status
    assert by[("onnx", "int8")]["size_bytes"] < by[("onnx", "none")]["size_bytes"]
    assert by[("mlx", "int4-b32")]["size_bytes"] < by[("mlx", "none")]["size_bytes"]
    assert by[("coreml", "palette4")]["size_bytes"] < by[("coreml", "none")]["size_bytes"]

    store = ws.store()
    n = store.count()
    logs.clear()
    again = run(ws, plan, log=logs.append)
    assert store.count() == n, "a second run must reuse checkpoints, artifacts and measurements"
    assert any(line.startswith("reuse") for line in logs)
    assert [r["id"] for r in again] == [r["id"] for r in rows]
