"""The Papers page under AppTest, over a store filled by the real producers on tiny configs: a tiny ResNet trained one
epoch, exported to ONNX and measured (filed under the `lcs` plug-in), a tiny OpenELM exported and measured as a
language model (`openelm`), and claim checks stored as `edgezoo reproduce` stores them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.workspace import Workspace
from trainers.claims import ClaimResult, seed_summary
from trainers.papers import papers

VIEWS = Path(__file__).resolve().parents[2] / "app" / "dashboard" / "views"
VISION = ("none", "int8")  # ONNX compressions of the tiny ResNet
LM = ("none", "int8")      # torch compressions of the tiny OpenELM
GAMMAS = (2, 4)            # QuantSpec draft lengths benchmarked on it
WITH_RECORDS = ("lcs", "openelm", "quantspec")


def add_vision(ws: Workspace, ckpt: Path) -> None:
    from exporters.artifact import export_checkpoint
    from profiles.measure import Scenario, measure

    store = ws.store()
    for comp in VISION:
        art = export_checkpoint(ckpt, "onnx", comp, out_dir=ws.artifacts / f"resnet-onnx-{comp}")
        record = measure(art, threads=1, scenario=Scenario(warmup=2, min_iters=70, min_seconds=0.05))
        record["paper"] = "lcs"
        store.add(record)
    store.close()


def add_lm(ws: Workspace) -> Path:
    import torch

    from exporters.lm.artifact import export_lm
    from models import checkpoint
    from models.openelm import ModelArgs, OpenELM
    from profiles.lm_measure import measure_lm

    torch.manual_seed(0)
    ckpt = checkpoint.save(OpenELM(ModelArgs.tiny()), ws.zoo / "tiny_openelm", {"note": "random init"})
    store = ws.store()
    for comp in LM:
        folder = export_lm(ckpt, "torch", comp, ws.artifacts / f"openelm-torch-{comp}")
        store.add(measure_lm(folder, threads=1, prompt_len=8, new_tokens=4, context=32, eval_windows=4, repeats=1,
                             timeout=120))
    store.close()
    return ckpt


def add_specdec(ws: Workspace, ckpt: Path) -> None:
    from profiles.specdec_measure import measure_specdec

    store = ws.store()
    for rec in measure_specdec(ckpt, gammas=list(GAMMAS), contexts=[16], new_tokens=8, n_prompts=1, kv_group=8,
                               residual=8):
        store.add(rec)
    store.close()


def add_claims(ws: Workspace) -> None:
    store = ws.store()
    store.add_claim(ClaimResult(paper="lcs", claim="one line matches per-sparsity models",
                                paper_numbers={"cifar10": "within 1 pt at 90 % sparsity"},
                                measured={"lcs_l@0.9": seed_summary([0.91, 0.93]),
                                          "indep@0.9": seed_summary([0.9, 0.92])},
                                verdict="pass", reason="0.92 >= 0.91 - 0.03", quick=True, seeds=[0, 1]).to_dict())
    store.add_claim(ClaimResult(paper="openelm", claim="layer-wise beats isotropic", paper_numbers={"bpb gain": 0.02},
                                measured={"layerwise": seed_summary([2.50, 2.52]),
                                          "isotropic": seed_summary([2.40, 2.41])},
                                verdict="fail", reason="2.51 > 2.405 bpb", seeds=[0, 1]).to_dict())
    store.close()


@pytest.fixture(scope="module")
def ws_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import tiny_recipe
    from trainers.loop import train

    ws = Workspace(tmp_path_factory.mktemp("papers") / "ws")
    train(tiny_recipe("resnet", epochs=1), ws.zoo / "tiny_resnet", progress=False)  # one model, not the session's all
    add_vision(ws, ws.zoo / "tiny_resnet")
    add_specdec(ws, add_lm(ws))
    add_claims(ws)
    return ws.root


@pytest.fixture
def ws(ws_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(ws_root))
    return ws_root


def page() -> AppTest:
    at = AppTest.from_file(str(VIEWS / "papers.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def figure(at: AppTest, key: str) -> dict:
    found = [e for e in at.get("plotly_chart") if e.proto.id.endswith(f"-{key}")]
    assert found, f"no plot with key {key}"
    return json.loads(found[0].proto.spec)


def artifacts(at: AppTest, model: str):
    """The artifacts table of the section whose records are of this model."""
    return next(d.value for d in at.dataframe if "compression" in d.value.columns and set(d.value["model"]) == {model})


def values(v) -> list:
    if isinstance(v, dict):  # plotly's binary encoding
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def test_one_section_per_discovered_paper_baselines_last(ws: Path) -> None:
    at = page()
    found = papers()
    titles = [h.value for h in at.header]
    assert sorted(titles) == sorted(p.title for p in found) and len(found) >= 2
    assert titles[-1] == next(p.title for p in found if p.baseline)
    overview = at.dataframe[0].value
    assert sorted(overview["paper"]) == sorted(p.key for p in found)
    counts = dict(zip(overview["paper"], overview["records"]))
    assert counts["lcs"] == len(VISION) and counts["openelm"] == len(LM) and counts["quantspec"] == len(GAMMAS)
    codes = [c.value for c in at.code]
    for p in found:
        assert any(f"edgezoo run --papers {p.key} -w {ws}" in c for c in codes)
        assert any(f"edgezoo reproduce {p.key}" in c for c in codes) == (p.claim is not None)
    cards = [e.label for e in at.expander if e.label == "Spec card"]
    assert len(cards) == sum(p.card is not None for p in found)


def test_vision_records_table_plot_and_quick_verdict(ws: Path) -> None:
    at = page()
    table = artifacts(at, "resnet")
    assert list(table["compression"]) == list(VISION) and set(table["format"]) == {"onnx"}
    assert set(table["metric"]) == {"top-1 accuracy (higher is better)"}
    assert table["quality"].between(0, 1).all() and (table["p50 ms"] > 0).all() and (table["size MiB"] > 0).all()
    assert "decode tok/s" not in table  # a column no row fills is left out
    fig = figure(at, "tradeoff_lcs_top1")
    assert fig["layout"]["yaxis"]["title"]["text"] == "top-1 accuracy (higher is better)"
    assert fig["layout"]["xaxis"]["title"]["text"] == "size on disk (MiB, log)"
    assert {t["name"] for t in fig["data"]} == {*VISION, "Pareto front"}
    at.radio(key="x_lcs").set_value("latency (p50)").run()
    assert figure(at, "tradeoff_lcs_top1")["layout"]["xaxis"]["title"]["text"] == "p50 latency (ms, log)"
    quick = [i.value for i in at.info if "one line matches per-sparsity models" in i.value]
    assert quick and "pass — quick run" in quick[0] and not any("per-sparsity" in s.value for s in at.success)
    ours = next(d.value for d in at.dataframe if "arm" in d.value.columns and "lcs_l@0.9" in set(d.value["arm"]))
    assert ours.set_index("arm").loc["lcs_l@0.9", "mean"] == pytest.approx(0.92)
    assert any("paper reports" in d.value.columns and "within 1 pt" in d.value.to_string() for d in at.dataframe)


def test_lm_records_plot_bits_per_byte_lower_is_better(ws: Path) -> None:
    at = page()
    table = artifacts(at, "openelm")
    assert list(table["compression"]) == list(LM) and set(table["metric"]) == {"bits per byte (lower is better)"}
    assert (table["decode tok/s"] > 0).all() and (table["quality"] > 0).all() and "p50 ms" not in table
    fig = figure(at, "tradeoff_openelm_bits_per_byte")
    assert fig["layout"]["yaxis"]["title"]["text"] == "bits per byte (lower is better)"
    front = next(t for t in fig["data"] if t["name"] == "Pareto front")
    bpb = [y for t in fig["data"] if t["name"] != "Pareto front" for y in values(t["y"])]
    assert min(bpb) in values(front["y"])  # the lowest bpb is on the front, never the highest alone
    assert not any(t["name"] == "top1" for t in fig["data"])
    at.radio(key="x_openelm").set_value("latency (p50)").run()
    x_title = figure(at, "tradeoff_openelm_bits_per_byte")["layout"]["xaxis"]["title"]["text"]
    assert x_title.startswith("p50 decode step (ms per token")
    failed = [e.value for e in at.error if "layer-wise beats isotropic" in e.value]
    assert failed and failed[0].startswith("**fail**")


def test_speculative_decoding_rows_without_a_quality_metric(ws: Path) -> None:
    at = page()
    table = next(d.value for d in at.dataframe if "acceptance" in d.value.columns)
    assert list(table["γ"]) == list(GAMMAS) and table["acceptance"].between(0, 1).all()
    assert (table["speed-up vs plain"] > 0).all() and "quality" not in table and "p50 ms" not in table
    assert not [c for c in at.get("plotly_chart") if "quantspec" in c.proto.id]
    assert any("No record here has a quality value" in c.value for c in at.caption)


def test_papers_without_records_or_claims_say_how(ws: Path) -> None:
    at = page()
    infos = " ".join(i.value for i in at.info)
    for p in papers():
        if p.key not in WITH_RECORDS and p.deployables:
            assert f"No records for `{p.key}`" in infos and f"edgezoo run --papers {p.key}" in infos
        if p.key not in ("lcs", "openelm") and p.claim is not None:
            assert f"No claim run yet: `edgezoo reproduce {p.key}" in infos
    assert len(at.get("plotly_chart")) == 2  # only the two papers with a quality metric plot


def test_plugin_dashboard_gets_its_records(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st

    import trainers.lcs
    import trainers.spin

    def section(df) -> None:
        st.markdown(f"lcs extra: {len(df)} records, formats {sorted(set(df['artifact.format']))}")

    def broken(df) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(trainers.lcs, "PAPER", dataclasses.replace(trainers.lcs.PAPER, dashboard=section))
    monkeypatch.setattr(trainers.spin, "PAPER", dataclasses.replace(trainers.spin.PAPER, dashboard=broken))
    at = page()
    assert any(m.value == "lcs extra: 2 records, formats ['onnx']" for m in at.markdown)
    assert any("`spin` plug-in's dashboard section failed: ValueError: boom" in e.value for e in at.error)


def test_page_without_a_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(tmp_path / "none"))
    at = page()
    assert len(at.header) == len(papers()) and not at.get("plotly_chart")
    assert all(r == 0 for r in at.dataframe[0].value["records"])
