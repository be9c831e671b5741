"""`edgezoo lm`: the tiny byte LM through train -> export -> profile -> store, and a clear error on bad input."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from app.cli import app

runner = CliRunner()


def test_lm_run_stores_llm_records(tmp_path) -> None:
    r = runner.invoke(app, ["lm", "run", "--recipe", "openelm_tiny", "--formats", "torch,mlx",
                            "--compressions", "none,int4", "-w", str(tmp_path)])
    assert r.exit_code == 0, r.output
    rows = json.loads(runner.invoke(app, ["results", "-w", str(tmp_path), "--json"]).output)
    assert len(rows) == 4 and all(x["status"] == "ok" for x in rows)
    for x in rows:
        assert x["ttft_s"] > 0 and x["decode_tokens_per_s"] > 0 and x["memory"]["peak_rss_bytes"] > 0
        assert 0 < x["accuracy"]["value"] < 8  # bits per byte on held-out text
    bpb = {(x["runtime"], x["artifact"]["compression"]): x["accuracy"]["value"] for x in rows}
    assert abs(bpb[("torch", "none")] - bpb[("mlx", "none")]) < 1e-2  # same weights, two runtimes
    again = runner.invoke(app, ["lm", "run", "--recipe", "openelm_tiny", "--formats", "torch,mlx",
                                "--compressions", "none,int4", "-w", str(tmp_path)])
    assert again.exit_code == 0 and again.output.count("(reused:") == 4  # exports reused, measured again
    assert len(json.loads(runner.invoke(app, ["results", "-w", str(tmp_path), "--json"]).output)) == 8


def test_lm_export_missing_checkpoint(tmp_path) -> None:
    r = runner.invoke(app, ["lm", "export", str(tmp_path / "nope"), "-w", str(tmp_path)])
    assert r.exit_code == 2 and r.output.startswith("error: checkpoint") and "does not exist" in r.output
