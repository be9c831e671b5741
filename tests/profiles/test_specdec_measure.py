"""QuantSpec benchmark records (profiles/specdec_measure.py) and the `edgezoo specdec` commands."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from app.cli import app
from models import checkpoint
from models.errors import EdgeZooError
from models.openelm import ModelArgs, OpenELM
from models.registry import build
from profiles.specdec_measure import COMPRESSION, measure_specdec, val_prompts
from profiles.store import Store

runner = CliRunner()


@pytest.fixture(scope="module")
def lm_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return checkpoint.save(OpenELM(ModelArgs.tiny()), tmp_path_factory.mktemp("lm") / "tiny", {"note": "random init"})


def test_bench_records_fit_the_store(lm_ckpt, tmp_path) -> None:
    recs = measure_specdec(lm_ckpt, [1, 3], [16, 40], new_tokens=12, n_prompts=1, modes=["greedy", "sample"],
                           kv_group=8, residual=8)
    keys = {(r["scenario"]["gamma"], r["scenario"]["context"], r["scenario"]["mode"]) for r in recs}
    assert len(recs) == 8 and keys == {(g, c, m) for g in (1, 3) for c in (16, 40) for m in ("greedy", "sample")}
    for r in recs:
        assert (r["runtime"], r["artifact"]["format"], r["artifact"]["compression"]) == ("torch", "torch", COMPRESSION)
        assert 0 <= r["acceptance_rate"] <= 1 and 0 < r["verify_passes_per_token"] <= 1
        assert r["decode_tokens_per_s"] > 0 and r["plain_decode_tokens_per_s"] > 0
        assert r["speedup_vs_plain"] == pytest.approx(r["decode_tokens_per_s"] / r["plain_decode_tokens_per_s"])
        assert r["kv_cache_bytes"] < r["kv_cache_bytes_fp16"] < r["kv_cache_bytes_fp32"]  # 28+ tokens: store in use
        assert len(r["per_position_acceptance"]) == r["scenario"]["gamma"] and r["latency"]["n"] == 12
    store = Store(tmp_path / "results.sqlite")
    ids = [store.add(r) for r in recs]
    rows = store.rows()
    assert len(rows) == 8 and all(x["compression"] == COMPRESSION and x["status"] == "ok" for x in rows)
    back = next(store.records("WHERE id=?", (ids[0],)))
    assert back["acceptance_rate"] == recs[0]["acceptance_rate"] and back["scenario"]["kind"] == "lm-specdec"


def test_bench_rejects_bad_input(lm_ckpt, tmp_path) -> None:
    with pytest.raises(EdgeZooError):
        measure_specdec(lm_ckpt, [2], [16], modes=["beam"])
    with pytest.raises(EdgeZooError):
        measure_specdec(tmp_path / "missing", [2], [16])
    vision = checkpoint.save(build("resnet", {}), tmp_path / "resnet", {})
    with pytest.raises(EdgeZooError, match="not a language model"):
        measure_specdec(vision, [2], [16])
    p = val_prompts(3, 20, tail=5)
    assert len(p) == 3 and all(len(x) == 25 for x in p) and p[0] != p[1]


def test_cli_bench_stores_and_prints(lm_ckpt, tmp_path) -> None:
    r = runner.invoke(app, ["specdec", "bench", str(lm_ckpt), "--gammas", "2", "--contexts", "20", "--tokens", "8",
                            "--prompts", "1", "--kv-group", "8", "--residual", "8", "-w", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "QuantSpec on" in r.output and "acceptance" in r.output
    rows = json.loads(runner.invoke(app, ["results", "-w", str(tmp_path), "--json"]).output)
    assert len(rows) == 1 and rows[0]["paper"] == "quantspec" and rows[0]["scenario"]["gamma"] == 2
    bad = runner.invoke(app, ["specdec", "bench", str(lm_ckpt), "--gammas", "two", "-w", str(tmp_path)])
    assert bad.exit_code == 2 and "error:" in bad.output and "--gammas" in bad.output


def test_cli_generate_colours_tokens(lm_ckpt, tmp_path) -> None:
    r = runner.invoke(app, ["specdec", "generate", str(lm_ckpt), "--prompt", "def f", "--gamma", "3", "--tokens", "12"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("def f") and "accepted" in r.output and "verifier passes/token" in r.output
    missing = runner.invoke(app, ["specdec", "generate", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
