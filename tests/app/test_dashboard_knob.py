"""The Compression knob page under AppTest, over a synthetic store of `edgezoo sweep lcs` records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app import synthetic

PAGE = Path(__file__).resolve().parents[2] / "app" / "dashboard" / "views" / "knob.py"
ALPHAS = (0.025, 0.25, 0.5, 0.75, 1.0)
ACC = {0.025: 0.41, 0.25: 0.93, 0.5: 0.975, 0.75: 0.98, 1.0: 0.985}  # a trained LCS+L line's shape
FOLDER = "lcs_cnn-0123456789"  # artifacts/<model>-<checkpoint hash>/<fmt>-<spec>


def lcs_record(alpha: float, fmt: str, p50: float = 0.2, accuracy: float | None = None) -> dict:
    """One plausible sweep record: dense storage (onnx, mlx) keeps its size, Core ML stores sparse weights."""
    name = f"lcs-a{alpha:.2f}" if round(alpha, 2) == alpha else f"lcs-a{alpha:.3f}"
    sparsity = round(0.99 * (1 - alpha), 4)  # first conv stays dense
    size = 490_000 if fmt != "coreml" else int(490_000 * (1 - sparsity) + 60_000 * sparsity)
    art = {"path": f"/ws/artifacts/{FOLDER}/{fmt}-{name}", "format": fmt, "compression": name,
           "compression_config": {"method": "lcs", "alpha": alpha}, "size_bytes": size, "bits_per_weight": 32.0,
           "sparsity": sparsity}
    base = {"created": "2026-01-01T00:00:00", "cache_key": f"{fmt}{alpha}", "model": "lcs_cnn",
            "paper": "LCS: Learning Compressible Subspaces", "paper_arxiv": "2110.04252", "artifact": art,
            "runtime": {"onnx": "onnxruntime", "mlx": "mlx", "coreml": "coreml"}[fmt], "threads": 1,
            "device": synthetic.DEVICE}
    if fmt == "coreml":
        return {**base, "status": "unavailable", "error_class": "RuntimeUnavailable",
                "error_message": "Core ML prediction needs macOS"}
    return {**base, "status": "ok", "latency": {"n": 50, "median_ms": p50, "p90_ms": 1.2 * p50},
            "accuracy": {"metric": "top1", "value": ACC[alpha] if accuracy is None else accuracy, "n": 270}}


@pytest.fixture
def lcs_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = synthetic.build(tmp_path / "ws", n=12)  # other records too: the page must pick out the lcs-a* ones
    store = ws.store()
    for fmt in ("onnx", "mlx", "coreml"):
        for i, a in enumerate(ALPHAS):
            store.add(lcs_record(a, fmt, p50=0.3 + 0.01 * i if fmt == "onnx" else 0.5))
    store.add(lcs_record(0.5, "onnx", p50=0.31, accuracy=0.97))  # a re-run: the latest record wins
    store.close()
    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(ws.root))
    return ws.root


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str, i: int = 0) -> str:
    return [m for m in at.metric if m.label == label][i].value


def test_knob_without_sweeps_says_how_to_make_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = synthetic.build(tmp_path / "ws", n=12)
    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(ws.root))
    at = run(AppTest.from_file(str(PAGE), default_timeout=30))
    assert "edgezoo sweep lcs CKPT --alphas" in at.info[0].value
    assert not at.get("plotly_chart")


def test_knob_slider_moves_the_metrics_and_the_marker(lcs_ws: Path) -> None:
    at = run(AppTest.from_file(str(PAGE), default_timeout=30))
    assert at.selectbox(key="knob_line").options == [FOLDER]
    slider = at.select_slider(key="knob_alpha")
    assert slider.options == [f"{a:g}" for a in ALPHAS] and slider.value == 1.0  # starts at the dense end
    assert metric(at, "accuracy") == "0.985" and metric(at, "sparsity") == "0.000"
    assert len(at.metric) == 12  # onnx, mlx, coreml x 4 metrics
    slider.set_value(0.25)
    run(at)
    assert metric(at, "accuracy") == "0.930" and metric(at, "sparsity") == "0.743"
    assert [m for m in at.metric if m.label == "accuracy"][0].delta == "-0.055"  # vs the dense end
    assert metric(at, "size on disk (kB)", 2) == f"{lcs_record(0.25, 'coreml')['artifact']['size_bytes'] / 1e3:.1f}"
    assert metric(at, "p50 (ms)", 2) == "—"  # Core ML on Linux: unavailable
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(figs) == 3
    assert all(f["layout"]["shapes"][0]["x0"] == 0.25 for f in figs)
    acc_traces = {t["name"] for t in figs[0]["data"]}
    assert acc_traces == {"onnx / onnxruntime", "mlx / mlx"}  # Core ML has no accuracy here
    assert {t["name"] for t in figs[1]["data"]} == acc_traces | {"coreml / coreml"}  # but it has a size
    at.select_slider(key="knob_alpha").set_value(0.5)  # a fresh handle: the old one is stale after run
    run(at)
    assert metric(at, "accuracy", 1) == "0.970"  # onnx (cards: mlx, onnx, coreml): the re-run at alpha 0.5, not the first record
