"""The Compression knob page over DynaMoE theta records (as `edgezoo sweep dynamoe` stores them): the theta slider,
bpb, active FFN fraction, active parameters per token and measured p50 per format/runtime; Core ML on Linux has no
latency; with LCS records too, a radio picks the knob."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app import synthetic
from tests.app.test_dashboard_knob import run  # AppTest.run(), failing on any page exception
from tests.app.test_dashboard_knob import lcs_record

PAGE = Path(__file__).resolve().parents[2] / "app" / "dashboard" / "views" / "knob.py"
THETAS = (0.5, 0.7, 0.9)
FRACTION = {0.5: 0.31, 0.7: 0.45, 0.9: 0.78}
BPB = {0.5: 2.95, 0.7: 2.84, 0.9: 2.74}
LINE = "dynamoe_main-0123456789"


def dynamoe_record(theta: float, fmt: str, p50: float) -> dict:
    name = f"dynamoe-t{theta:.2f}"
    active = {"theta": theta, "active_ffn_fraction": FRACTION[theta], "active_params_per_token": 100_000 * theta,
              "compute": {"onnx": "masked dense FFN", "mlx": "per-token slicing", "coreml": "masked dense FFN"}}
    art = {"path": f"/ws/artifacts/{LINE}/lm-{fmt}-{name}", "format": fmt, "compression": name, "size_bytes": 1_000_000,
           "bits_per_weight": 32.0, "active_params": active}
    base = {"created": "2026-01-01T00:00:00", "cache_key": f"{fmt}{theta}", "model": "dynamoe", "paper": "dynamoe",
            "artifact": art, "runtime": {"onnx": "onnxruntime", "mlx": "mlx", "coreml": "coreml"}[fmt], "threads": 1,
            "device": synthetic.DEVICE, "scenario": {"kind": "lm-generate"}}
    if fmt == "coreml":
        return {**base, "status": "unavailable", "error_class": "RuntimeUnavailable",
                "error_message": "Core ML prediction needs macOS"}
    return {**base, "status": "ok", "latency": {"n": 96, "median_ms": p50},
            "accuracy": {"metric": "bits_per_byte", "value": BPB[theta], "n": 4032}}


@pytest.fixture
def moe_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = synthetic.build(tmp_path / "ws", n=8)
    store = ws.store()
    for fmt in ("onnx", "mlx", "coreml"):
        for t in THETAS:
            store.add(dynamoe_record(t, fmt, p50=2.0 if fmt == "onnx" else 1.0 + t))
    store.close()
    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(ws.root))
    return ws.root


def values(at: AppTest, label: str) -> list[str]:
    return [m.value for m in at.metric if m.label == label]


def test_theta_slider_moves_bpb_fraction_and_latency(moe_ws: Path) -> None:
    at = run(AppTest.from_file(str(PAGE), default_timeout=30))
    assert at.selectbox(key="knob_moe_line").options == [LINE]
    slider = at.select_slider(key="knob_theta")
    assert slider.options == ["0.5", "0.7", "0.9"] and slider.value == 0.9
    assert values(at, "active FFN fraction") == ["0.780"] * 3
    assert values(at, "p50 decode (ms)") == ["1.900", "2.000", "—"]  # mlx, onnx measured; Core ML unavailable
    slider.set_value(0.5)
    run(at)
    assert values(at, "bits per byte")[:2] == ["2.9500"] * 2 and values(at, "active FFN fraction")[0] == "0.310"
    assert values(at, "p50 decode (ms)")[0] == "1.500"
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(figs) == 3 and all(f["layout"]["shapes"][0]["x0"] == 0.5 for f in figs)
    assert {t["name"] for t in figs[2]["data"]} == {"onnx / onnxruntime", "mlx / mlx"}  # latency only where measured
    assert any("masked dense FFN" in c.value for c in at.caption)


def test_both_knobs_offer_a_choice(moe_ws: Path) -> None:
    from app.workspace import Workspace

    store = Workspace(moe_ws).store()
    store.add(lcs_record(0.5, "onnx"))
    store.close()
    at = run(AppTest.from_file(str(PAGE), default_timeout=30))
    assert at.radio(key="knob_kind").options == ["LCS α", "DynaMoE θ"]
    at.radio(key="knob_kind").set_value("DynaMoE θ")
    run(at)
    assert at.select_slider(key="knob_theta").value == 0.9
