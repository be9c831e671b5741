"""Bad input through the CLI: one-line error naming the fix, non-zero exit, failure records, store intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from app.cli import app
from exporters.artifact import export_checkpoint
from models import checkpoint

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def error_line(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture
def broken_ckpt(tiny_checkpoints, tmp_path):
    import shutil

    dst = tmp_path / "broken"
    shutil.copytree(tiny_checkpoints["resnet"], dst)
    w = dst / checkpoint.WEIGHTS
    w.write_bytes(w.read_bytes()[:100])
    return dst


def test_help_is_fast_and_torch_free() -> None:
    code = "import sys, app.cli; assert 'torch' not in sys.modules and 'onnxruntime' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_checkpoint(tmp_path) -> None:
    r = invoke("export", "onnx", str(tmp_path / "nope"), "-w", str(tmp_path))
    assert r.exit_code == 2 and "does not exist" in error_line(r) and "edgezoo train" in error_line(r)


def test_truncated_checkpoint(broken_ckpt, tmp_path) -> None:
    r = invoke("export", "onnx", str(broken_ckpt), "-w", str(tmp_path))
    assert r.exit_code == 2 and "corrupt or truncated" in error_line(r)


def test_unknown_compress_spec(tiny_checkpoints, tmp_path) -> None:
    r = invoke("export", "onnx", str(tiny_checkpoints["resnet"]), "--compress", "int3", "-w", str(tmp_path))
    assert r.exit_code == 2 and "unknown compression spec 'int3'" in error_line(r) and "use one of" in error_line(r)


def test_profile_random_bytes_artifact_records_failure_and_keeps_store(tiny_checkpoints, tmp_path) -> None:
    ws = tmp_path / "ws"
    good = export_checkpoint(tiny_checkpoints["resnet"], "onnx", "none", out_dir=tmp_path / "good")
    ok = invoke("profile", str(good.path), "-w", str(ws), "--json")
    assert ok.exit_code == 0, ok.output
    bad = tmp_path / "random.onnx"
    bad.write_bytes(os.urandom(2048))
    r = invoke("profile", str(bad), "-w", str(ws))
    assert r.exit_code == 1 and "error:" in r.output
    rows = json.loads(invoke("results", "-w", str(ws), "--json").output)
    assert [x["status"] for x in rows] == ["ok", "failed"]
    assert rows[1]["error_message"]


def test_profile_missing_path(tmp_path) -> None:
    r = invoke("profile", str(tmp_path / "nope.onnx"), "-w", str(tmp_path))
    assert r.exit_code == 1 and "does not exist" in error_line(r)


def test_unknown_runtime(tiny_checkpoints, tmp_path) -> None:
    good = export_checkpoint(tiny_checkpoints["resnet"], "onnx", "none", out_dir=tmp_path / "good")
    r = invoke("profile", str(good.path), "--runtime", "tensorrt", "-w", str(tmp_path))
    assert r.exit_code == 1 and "tensorrt" in r.output


def test_corrupt_store(tmp_path) -> None:
    (tmp_path / "results.db").write_bytes(b"garbage" * 200)
    r = invoke("results", "-w", str(tmp_path))
    assert r.exit_code == 2 and "not a readable SQLite database" in error_line(r)


def test_bad_recipe(tmp_path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("model: resnet\nlearning_rate: 1\n")
    r = invoke("train", str(p), "-w", str(tmp_path))
    assert r.exit_code == 2 and "unknown keys ['learning_rate']" in error_line(r)


def test_exporters_console_script(tiny_checkpoints, tmp_path) -> None:
    from exporters.cli import app as exporters_app

    r = runner.invoke(exporters_app, ["onnx", str(tiny_checkpoints["resnet"]), "-c", "int8", "-o", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["verification"]["ok"]
