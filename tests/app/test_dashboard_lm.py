"""The Language models page under AppTest, over a store holding vision, LM (`edgezoo lm profile`) and QuantSpec
(`edgezoo specdec bench`) records; and the vision pages leaving LM records out."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from profiles.lm_measure import COREML_UNAVAILABLE, RUNTIME_OF
from profiles.specdec_measure import to_record
from tests.app import synthetic

VIEWS = Path(__file__).resolve().parents[2] / "app" / "dashboard" / "views"
LINE = "openelm-openelm_default"
COMPRESSIONS = ("none", "int8", "int4", "seedlm4", "seedlm3")
BPB = {"none": 2.465, "int8": 2.466, "int4": 2.49, "seedlm4": 2.50, "seedlm3": 2.60}
BITS = {"none": 32.0, "int8": 8.5, "int4": 4.5, "seedlm4": 4.0, "seedlm3": 3.0}
N_VISION = 12  # synthetic.build: 3 of them Core ML "unavailable"


def lm_record(fmt: str, comp: str, status: str = "ok", decode: float = 200.0, line: str = LINE) -> dict:
    """The record shape of profiles.lm_measure.measure_lm (parent fields + the child's result)."""
    runtime = RUNTIME_OF[fmt]
    scenario = {"folder": f"/ws/artifacts/{line}-{fmt}-{comp}", "runtime": runtime, "threads": 2, "prompt_len": 32,
                "new_tokens": 32, "context": 64, "eval_windows": 64, "byte_vocab": True, "kind": "lm-generate"}
    rec = {"created": "2026-01-01T00:00:00+0000", "model": "openelm", "paper": "openelm",
           "artifact": {"format": fmt, "compression": comp, "size_bytes": int(3.7e6 * BITS[comp] / 32),
                        "bits_per_weight": BITS[comp]},
           "runtime": runtime, "threads": 2, "scenario": scenario, "cache_key": None}
    if status == "unavailable":
        return {**rec, "status": status, "error_class": "RuntimeUnavailable", "error_message": COREML_UNAVAILABLE}
    if status == "failed":
        return {**rec, "status": status, "error_class": "ChildCrashed", "error_message": "Segmentation fault"}
    bpb = BPB[comp]
    return {**rec, "runtime_version": "1.0", "load_seconds": 1.5, "status": "ok",
            "accuracy": {"metric": "bits_per_byte", "value": bpb, "perplexity": 2 ** bpb,
                         "dataset": "pydoc_data.topics validation (last 10 %)", "n": 4096},
            "ttft_s": 0.01, "prefill_tokens_per_s": 3200.0, "decode_tokens_per_s": decode,
            "latency": {"n": 32, "median_ms": 1e3 / decode, "p90_ms": None, "mean_ms": 1e3 / decode},
            "memory": {"peak_rss_bytes": 340 * 2**20, "label": "OS peak RSS (VmHWM after load)"}}


def spec_record(gamma: int, context: int, acceptance: float) -> dict:
    """A QuantSpec record made by profiles.specdec_measure.to_record from a bench() row (no model run)."""
    spec = {"acceptance_rate": acceptance, "token_acceptance": acceptance,
            "per_position_acceptance": [acceptance] * (gamma - 1) + [math.nan],  # NaN: a position never drafted
            "accepted_per_verify": acceptance * gamma, "verify_passes_per_token": 1 / (1 + acceptance * gamma),
            "cost_ratio": 0.95, "decode_tokens_per_s": 150.0 + gamma}
    kv = {"quantspec": 100 * (context + 64), "fp16": 400 * (context + 64), "fp32": 800 * (context + 64)}
    row = {"gamma": gamma, "context": context, "mode": "greedy", "new_tokens": 64, "prompts": 3, "kv_bytes": kv,
           "weight_bits": 4.5, "seconds": 2.0, "spec": spec, "plain": {"decode_tokens_per_s": 200.0},
           "latency": {"n": 192, "median_ms": 6.0}, "speedup_vs_plain": (150.0 + gamma) / 200.0,
           "analytic_speedup": 0.9}
    return to_record(row, f"/ws/zoo/{LINE}", threads=1)


def lm_records() -> list[dict]:
    """Added in this order (ids ascend): an older run of torch/int8 and of another checkpoint first."""
    recs = [lm_record("torch", "int8", decode=50.0), lm_record("torch", "none", line="openelm-other")]
    recs += [lm_record(f, c, decode=100.0 * (i + 1)) for f in ("torch", "onnx") for i, c in enumerate(COMPRESSIONS)]
    recs += [lm_record("coreml", c, "unavailable") for c in ("none", "int4")]
    recs += [lm_record("mlx", "seedlm3", "failed")]
    recs += [spec_record(4, 128, 0.1)]  # superseded below
    recs += [spec_record(g, ctx, 0.8 - 0.05 * g) for ctx in (128, 480) for g in (2, 4, 6)]
    return recs


@pytest.fixture(scope="module")
def ws_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = synthetic.build(tmp_path_factory.mktemp("lm") / "ws", n=N_VISION)
    store = ws.store()
    for r in lm_records():
        store.add(r)
    store.close()
    return ws.root


@pytest.fixture
def ws(ws_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(ws_root))
    return ws_root


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(VIEWS / f"{name}.py"), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table(at: AppTest, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def figures(at: AppTest) -> dict[str, dict]:
    """Plotly specs by y-axis title."""
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {f["layout"]["yaxis"]["title"]["text"]: f for f in figs}


def values(v) -> list:
    if isinstance(v, dict):  # plotly's binary encoding
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def test_lm_artifacts_table_charts_and_failures(ws: Path) -> None:
    at = page("lm")
    assert at.selectbox(key="lm_line").options == ["openelm-openelm_default", "openelm-other"]
    assert at.selectbox(key="lm_line").value == LINE  # the line of the newest record
    ok = table(at, "TTFT (ms)")
    assert len(ok) == 10 and set(ok["runtime"]) == {"torch", "onnxruntime"}
    assert list(dict.fromkeys(ok["compression"])) == list(COMPRESSIONS)
    torch_int8 = ok[(ok["format"] == "torch") & (ok["compression"] == "int8")]
    assert torch_int8["decode tok/s"].tolist() == [200.0]  # the newer run, not the 50 tok/s one
    assert ok["perplexity"].tolist() == pytest.approx([2 ** b for b in ok["bits/byte"]])
    assert ok["size MiB"].max() == pytest.approx(3.7e6 / 2**20)

    figs = figures(at)
    decode, bpb = figs["decode tokens/s (higher is better)"], figs["validation bits per byte (lower is better)"]
    for fig in (decode, bpb):
        assert [t["name"] for t in fig["data"]] == ["torch", "onnxruntime"]  # Core ML / failed MLX not plotted
        assert all(t["type"] == "bar" and list(t["x"]) == list(COMPRESSIONS) for t in fig["data"])
    assert values(decode["data"][1]["y"]) == [100.0, 200.0, 300.0, 400.0, 500.0]
    assert values(bpb["data"][0]["y"]) == pytest.approx([BPB[c] for c in COMPRESSIONS])

    unavailable = table(at, "reason")
    assert unavailable["compression"].tolist() == ["none", "int4"] and set(unavailable["runtime"]) == {"coreml"}
    assert all("macOS" in r for r in unavailable["reason"])
    assert "1 LM profiling run(s) failed" in at.error[0].value
    failed = table(at, "error")
    assert failed[["format", "status"]].values.tolist() == [["mlx", "failed"]]
    assert "Segmentation fault" in failed["error"].iloc[0]

    at.selectbox(key="lm_line").set_value("openelm-other").run()
    assert not at.exception
    assert table(at, "TTFT (ms)")[["format", "compression"]].values.tolist() == [["torch", "none"]]


def test_speculative_decoding_section(ws: Path) -> None:
    at = page("lm")
    figs = figures(at)
    acc = figs["acceptance rate (accepted / drafted)"]
    assert [t["name"] for t in acc["data"]] == ["context 128", "context 480"]
    assert values(acc["data"][0]["x"]) == [2, 4, 6]
    assert values(acc["data"][0]["y"]) == pytest.approx([0.7, 0.6, 0.5])  # gamma 4: the newer record, not 0.1
    speed = figs["speed-up vs plain decoding (tok/s ratio)"]
    assert {t["name"] for t in speed["data"]} == {"context 128", "context 480", "context 128 (analytic)",
                                                  "context 480 (analytic)"}
    assert values(speed["data"][0]["y"]) == pytest.approx([0.76, 0.77, 0.78])
    assert "verifier passes per generated token" in figs
    kv = figs["KV cache (KiB)"]
    assert [t["name"] for t in kv["data"]] == ["QuantSpec (4-bit + 4-bit residual)", "fp16", "fp32"]
    assert list(kv["data"][0]["x"]) == ["192 tokens", "544 tokens"]
    spec = table(at, "passes/token")
    assert len(spec) == 6 and spec["KV bytes fp16"].tolist() == [400 * 192] * 3 + [400 * 544] * 3
    captions = " ".join(c.value for c in at.caption)
    assert "this machine's CPU (1 thread(s))" in captions
    assert "edgezoo specdec bench CKPT" in captions and "edgezoo demo specdec" in captions


def test_tradeoffs_never_mixes_quality_metrics(ws: Path) -> None:
    at = page("tradeoffs")
    assert at.radio(key="metric").options == ["top-1 accuracy (higher is better)", "bits per byte (lower is better)"]
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    plotted = sum(len(values(t["x"])) for t in fig["data"] if t["name"] != "Pareto front")
    assert plotted == N_VISION - 3  # top-1 first: without the LM records, whose bpb would otherwise plot here
    assert [m.value for m in at.metric if m.label == "records (filtered)"] == ["12"]
    assert {t["name"] for t in fig["data"]} <= {"torch", "onnx", "mlx", "Pareto front"}
    assert fig["layout"]["yaxis"]["title"]["text"] == "top-1 accuracy (higher is better)"

    at.radio(key="metric").set_value("bits_per_byte").run()
    assert not at.exception
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert fig["layout"]["yaxis"]["title"]["text"] == "bits per byte (lower is better)"
    assert fig["layout"]["xaxis"]["title"]["text"].startswith("p50 decode step (ms per token")
    ys = [y for t in fig["data"] if t["name"] != "Pareto front" for y in values(t["y"])]
    assert len(ys) == 12 and min(ys) > 2  # ok lm-generate records only: bpb, no vision top-1 among them
    front = next(t for t in fig["data"] if t["name"] == "Pareto front")
    fx, fy = values(front["x"]), values(front["y"])
    assert fy == sorted(fy, reverse=True) and fy[-1] == min(ys)  # slower points on the front have lower bpb
    assert fx == sorted(fx)
    # 10 lm-generate artifacts + 2 older, 2 Core ML unavailable, 1 failed, 7 QuantSpec (no bpb): all LM records
    assert [m.value for m in at.metric if m.label == "records (filtered)"] == ["22"]
    at = page("compare")
    assert len(at.multiselect(key="compare_ids").options) == N_VISION


def test_empty_states_name_the_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(tmp_path / "none"))
    infos = " ".join(i.value for i in page("lm").info)
    assert "make run-lm" in infos and "edgezoo lm run" in infos and "edgezoo specdec bench CKPT" in infos
    ws = synthetic.build(tmp_path / "vision", n=3)  # vision records only
    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(ws.root))
    at = page("lm")
    assert len(at.info) == 2 and not at.get("plotly_chart") and not at.dataframe


def test_vision_pages_on_an_lm_only_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = synthetic.Workspace(tmp_path / "ws").store()
    store.add(lm_record("torch", "none"))
    store.close()
    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(tmp_path / "ws"))
    at = page("tradeoffs")  # one quality metric: bits per byte, lower is better
    assert at.radio(key="metric").options == ["bits per byte (lower is better)"]
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert fig["layout"]["yaxis"]["title"]["text"] == "bits per byte (lower is better)"
    assert values(fig["data"][0]["y"]) == [BPB["none"]]
