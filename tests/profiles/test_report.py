"""Device reports from a synthetic store (and one real tiny export): tables, an inlined plotly figure, no CDN,
predictions labelled as such, and clear errors for a bad device or an empty store."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from typer.testing import CliRunner

from app.workspace import Workspace
from profiles import hostbench
from profiles.catalog import Device, UnknownDeviceError
from profiles.device import fingerprint
from profiles.report import ReportError, write_report
from profiles.store import Store

COST = {"flops": 1_500_000, "activation_bytes": 66_000}


def rec(model: str, fmt: str, comp: str, p50: float | None, acc: float | None, status: str = "ok", **extra) -> dict:
    r = {"model": model, "cache_key": f"{model}-{fmt}-{comp}", "status": status, "runtime": "onnxruntime", "threads": 2,
         "runtime_version": "1.0", "device": fingerprint(), "environment": {"python": "3.11", "numpy": "2.3"},
         "scenario": {"batch": 1, "warmup": 20, "min_iters": 200, "min_seconds": 1.0, "max_seconds": 20.0},
         "artifact": {"format": fmt, "compression": comp, "size_bytes": 300_000, "bits_per_weight": 32.0,
                      "weight_bytes": 300_000, "cost": COST}, "input_shapes": [[1, 1, 8, 8]]}
    if p50 is not None:
        r.update(latency={"median_ms": p50, "p90_ms": p50 * 1.2}, memory={"peak_rss_bytes": 50 << 20},
                 accuracy={"value": acc}, parity={"sqnr_db": 60.0, "max_abs_err": 1e-4, "top1_agreement": 1.0, "ok": True})
    return {**r, **extra}


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Workspace:
    """A synthetic store; the host benchmark is replaced by fixed figures so the test is fast and exact."""
    monkeypatch.setattr(hostbench, "measure_host", lambda threads: Device(
        name="host", title="test host", kind="host", vendor="measured", peak={"fp32": 5e10, "fp16": None, "int8": None},
        memory_bandwidth=1e10, memory_bytes=None, compute_units=threads, method="fixed for the test"))
    w = Workspace(tmp_path / "ws")
    store = Store(w.store_path)
    for r in [rec("resnet", "onnx", "none", 0.05, 0.99), rec("resnet", "onnx", "int8", 0.20, 0.98),
              rec("resnet", "onnx", "fp16", 0.04, 0.97), rec("convmixer", "onnx", "none", 0.30, 0.995),
              rec("resnet", "coreml", "fp16", None, None, status="unavailable", runtime="coreml",
                  error_class="RuntimeUnavailable", error_message="Core ML predicts on macOS only"),
              rec("resnet", "onnx", "prune50", None, None, status="failed", error_class="ParityMismatch",
                  error_message="outputs disagree"),
              rec("foreign", "onnx", "unknown", 0.01, None, artifact={"format": "onnx", "foreign": True})]:
        store.add(r)
    store.close()
    return w


def test_html_and_markdown_report(ws) -> None:
    paths = write_report(ws, device="apple-m4-ane", outs=[])
    assert [p.suffix for p in paths] == [".html", ".md"] and all(p.parent == ws.reports for p in paths)
    soup = BeautifulSoup(paths[0].read_text(), "html.parser")
    captions = [t.caption.get_text() for t in soup.find_all("table")]
    assert {"Results: resnet", "Results: convmixer", "Parity", "Failures"} <= set(captions)
    predicted = next(t for t in soup.find_all("table") if t.caption.get_text().startswith("Predicted latency"))
    assert "predicted" in predicted.caption.get_text() and "predicted ms" in predicted.get_text()
    assert "fp16" in predicted.get_text()  # Core ML fp16 is predicted on the Neural Engine's fp16 peak
    assert soup.find_all("div", class_="plotly-graph-div"), "no plotly figure"
    assert not [s for s in soup.find_all("script") if s.get("src", "").startswith(("http://", "https://", "//"))]
    assert any(len(s.get_text()) > 1_000_000 for s in soup.find_all("script")), "plotly.js is not inlined"
    assert "VmHWM" in soup.get_text() and "ParityMismatch" in soup.get_text()
    md = paths[1].read_text()
    assert "| format | compression | runtime | size |" in md and "**Results: resnet**" in md
    assert "Predicted latency on apple-m4-ane (predicted" in md and "foreign file" in md


def test_host_report_compares_measured_and_predicted(ws) -> None:
    (md,) = write_report(ws, device=None, outs=[ws.root / "host.md"])
    text = md.read_text()
    # 1.5 MFLOP at 50 GFLOP/s = 0.030 ms; 366 kB at 10 GB/s = 0.0366 ms -> memory-bound, 0.0366 ms predicted
    assert "| resnet | onnx | none | onnxruntime | 2 | 0.0500 | 0.0366 | +26.8% | 1.4 | 73.2% | memory |" in text
    assert "Median |error|" in text or "Median \\|error\\|" in text


def test_bad_device_names_the_catalog(ws) -> None:
    with pytest.raises(UnknownDeviceError, match="raspberry-pi-5"):
        write_report(ws, device="pi-6", outs=[])


def test_bad_suffix(ws) -> None:
    with pytest.raises(ReportError, match="FILE.html or FILE.md"):
        write_report(ws, device=None, outs=[ws.root / "r.pdf"])


def test_empty_or_missing_store(tmp_path) -> None:
    with pytest.raises(ReportError, match="edgezoo run"):
        write_report(Workspace(tmp_path / "none"), device=None, outs=[])
    w = Workspace(tmp_path / "empty")
    Store(w.store_path).close()
    with pytest.raises(ReportError, match="empty.*edgezoo run"):
        write_report(w, device=None, outs=[])


def test_cli_report(ws) -> None:
    from app.cli import app

    r = CliRunner().invoke(app, ["report", "-w", str(ws.root), "--device", "nope"])
    assert r.exit_code == 2 and "jetson-orin-nano" in r.output
    r = CliRunner().invoke(app, ["report", "-w", str(ws.root), "--device", "jetson-orin-nano", "-o", str(ws.root / "j.md")])
    assert r.exit_code == 0 and "j.md" in r.output and (ws.root / "j.md").exists()


def test_real_export_gets_cost_and_prediction(tiny_checkpoint, tmp_path, monkeypatch) -> None:
    """A real tiny ONNX export: the manifest carries the cost, the record passes it on, the report predicts it."""
    from exporters.artifact import export_checkpoint
    from profiles.measure import Scenario, measure

    monkeypatch.setattr(hostbench, "measure_host", lambda threads: hostbench.Device(
        name="host", title="test host", kind="host", vendor="measured", peak={"fp32": 5e10, "fp16": None, "int8": None},
        memory_bandwidth=1e10, memory_bytes=None, compute_units=threads, method="fixed"))
    art = export_checkpoint(tiny_checkpoint, "onnx", "int8", out_dir=tmp_path / "a")
    cost = art.manifest["cost"]
    assert cost["flops"] > 0 and cost["activation_bytes"] > 4 * 64
    r = measure(art, scenario=Scenario(warmup=2, min_iters=20, min_seconds=0.0, max_seconds=5.0))
    assert r["status"] == "ok" and r["artifact"]["cost"] == cost and r["artifact"]["weight_bytes"] > 0
    w = Workspace(tmp_path / "ws")
    Store(w.store_path).add(r)
    (md,) = write_report(w, device="raspberry-pi-5", outs=[tmp_path / "r.md"])
    assert "| resnet | onnx | int8 | int8 |" in md.read_text()  # ONNX dynamic int8 uses the int8 peak


def test_lm_records_get_their_own_table_not_the_vision_sections(ws) -> None:
    store = Store(ws.store_path)
    lm = rec("openelm", "onnx", "int4", 0.4, 2.61, scenario={"kind": "lm-generate"}, ttft_s=0.002,
             decode_tokens_per_s=2100.0, cache_key=None)
    store.add({**lm, "accuracy": {"metric": "bits_per_byte", "value": 2.61}})
    store.close()
    md = write_report(ws, device="host", outs=[ws.reports / "r.md"])[0].read_text()
    assert "**LM artifacts**" in md and "| onnx | int4 | onnxruntime | ok | 2.6100 | 2.0 | 2100 |" in md
    assert "**Results: openelm**" not in md  # not mixed into the vision tables or the accuracy/latency Pareto


@pytest.fixture
def papers_ws(tiny_checkpoint, tmp_path, monkeypatch) -> Workspace:
    """Records from the real producers on tiny configs (an ONNX ResNet filed under `lcs`, a tiny OpenELM measured as
    a language model and benchmarked with QuantSpec) and claim checks as `edgezoo reproduce` stores them."""
    from tests.app.test_dashboard_papers import add_claims, add_lm, add_specdec, add_vision

    monkeypatch.setattr(hostbench, "measure_host", lambda threads: Device(
        name="host", title="test host", kind="host", vendor="measured", peak={"fp32": 5e10, "fp16": None, "int8": None},
        memory_bandwidth=1e10, memory_bytes=None, compute_units=threads, method="fixed for the test"))
    w = Workspace(tmp_path / "ws")
    add_vision(w, tiny_checkpoint)
    add_specdec(w, add_lm(w))
    add_claims(w)
    return w


def test_one_section_per_paper_with_records_and_claim_verdict(papers_ws) -> None:
    from trainers.papers import papers

    html, md = write_report(papers_ws, device=None, outs=[papers_ws.root / "r.html", papers_ws.root / "r.md"])
    soup = BeautifulSoup(html.read_text(), "html.parser")
    found = sorted(papers(), key=lambda p: p.baseline)
    sections = [h.get_text() for h in soup.find_all("h2") if h.get_text().startswith("Paper: ")]
    assert sections == [f"Paper: {p.title}" for p in found]  # discovery order, the baselines last

    def table(caption: str) -> list[dict[str, str]]:
        t = next(t for t in soup.find_all("table") if t.caption.get_text() == caption)
        heads = [th.get_text() for th in t.find_all("th")]
        return [dict(zip(heads, [td.get_text() for td in tr.find_all("td")])) for tr in t.tbody.find_all("tr")]

    lcs = table("lcs: artifacts (newest record each)")
    assert [r["compression"] for r in lcs] == ["none", "int8"] and {r["format"] for r in lcs} == {"onnx"}
    assert {r["metric"] for r in lcs} == {"top-1 accuracy (higher is better)"}
    assert all(0 <= float(r["quality"]) <= 1 and float(r["p50 ms"]) > 0 for r in lcs) and "decode tok/s" not in lcs[0]
    lm = table("openelm: artifacts (newest record each)")
    assert {r["metric"] for r in lm} == {"bits per byte (lower is better)"} and "p50 ms" not in lm[0]
    assert all(float(r["decode tok/s"]) > 0 and float(r["quality"]) > 0 for r in lm)
    spec = table("quantspec: artifacts (newest record each)")
    assert [r["γ"] for r in spec] == ["2", "4"] and all(0 <= float(r["acceptance"]) <= 1 for r in spec)

    text = soup.get_text()
    assert "Verdict: pass (quick run: smoke scale, not the full check)" in text
    assert "Verdict: fail" in text and "2.51 > 2.405 bpb" in text
    assert table("lcs: the paper reports (at its scale, not reproduced here)") == [
        {"setting": "cifar10", "paper reports": "within 1 pt at 90 % sparsity"}]
    ours = {r["arm"]: r for r in table("lcs: measured here (mean and std over seeds)")}
    assert ours["lcs_l@0.9"]["mean"] == "0.9200" and ours["lcs_l@0.9"]["seeds"] == "2"
    for p in found:
        if p.key not in ("lcs", "openelm", "quantspec") and p.deployables:
            assert f"No records for `{p.key}` yet: `edgezoo run --papers {p.key}`" in text
        if p.key not in ("lcs", "openelm") and p.claim is not None:
            assert f"No claim run yet: `edgezoo reproduce {p.key}`" in text

    md_text = md.read_text()
    assert all(f"## Paper: {p.title}" in md_text for p in found)
    assert "**lcs: artifacts (newest record each)**" in md_text and "top-1 accuracy (higher is better)" in md_text
    assert "| bits per byte (lower is better) |" in md_text
    assert "Verdict: pass (quick run: smoke scale, not the full check)" in md_text
    assert "| lcs_l@0.9 | 0.9200 | 0.0141 | 2 | 0.91, 0.93 |" in md_text
