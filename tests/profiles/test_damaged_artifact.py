"""A damaged artifact is measured as damaged: weights corrupted inside the ONNX file (manifest sha256 updated, so
only the numbers differ and the integrity check passes) give a different accuracy from the undamaged artifact and
a ParityMismatch failure record, not an ok row with a fast, wrong model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from exporters.artifact import MANIFEST, dir_sha256, export_checkpoint, load_artifact
from profiles.measure import Scenario, measure

QUICK = Scenario(warmup=2, min_iters=20, min_seconds=0.01, max_seconds=5.0)


@pytest.fixture(scope="module")
def reference(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory):
    return export_checkpoint(tiny_checkpoint, "onnx", "none", out_dir=tmp_path_factory.mktemp("damaged") / "ref")


def damage(src: Path, dst: Path) -> str:
    """Copy an ONNX artifact and zero the classifier's weight matrix in place (the largest 2-D initializer);
    returns its name. The graph, names and shapes stay; the manifest's sha256 is updated to the new file."""
    shutil.copytree(src, dst)
    path = dst / "model.onnx"
    model = onnx.load(str(path))
    target = max((t for t in model.graph.initializer if len(t.dims) == 2), key=lambda t: int(np.prod(t.dims)))
    w = numpy_helper.to_array(target)
    target.CopyFrom(numpy_helper.from_array(np.zeros_like(w), target.name))
    onnx.save(model, str(path))
    manifest = json.loads((dst / MANIFEST).read_text())
    manifest["sha256"] = dir_sha256(path)
    (dst / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return target.name


def test_damaged_weights_fail_parity_and_change_accuracy(reference, tmp_path: Path) -> None:
    name = damage(reference.path, tmp_path / "damaged")
    damaged = load_artifact(tmp_path / "damaged")
    before, after = onnx.load(str(reference.model_file)), onnx.load(str(damaged.model_file))
    assert [n.op_type for n in before.graph.node] == [n.op_type for n in after.graph.node]
    shapes = lambda m: {t.name: list(t.dims) for t in m.graph.initializer}  # noqa: E731
    assert shapes(before) == shapes(after)
    assert not numpy_helper.to_array(next(t for t in after.graph.initializer if t.name == name)).any()

    ok = measure(reference, scenario=QUICK)
    bad = measure(damaged, scenario=QUICK)
    assert ok["status"] == "ok" and ok["parity"]["ok"], ok.get("error_message")
    assert bad["status"] == "failed" and bad["error_class"] == "ParityMismatch", bad.get("error_message")
    assert not bad["parity"]["ok"] and bad["parity"]["top1_agreement"] < ok["parity"]["top1_agreement"]
    assert bad["accuracy"]["n"] == ok["accuracy"]["n"]
    assert bad["accuracy"]["value"] != ok["accuracy"]["value"]
    y = np.load(damaged.path / "eval.npz")["y"]  # zero classifier weights: constant logits, one class for every image
    assert min(abs(bad["accuracy"]["value"] - float((y == c).mean())) for c in np.unique(y)) < 1e-9
    assert "torch reference" in bad["error_message"] and bad["latency"]["n"] > 0  # timed, then refused

