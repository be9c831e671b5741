"""The Devices page shows the per-operator model's leave-one-architecture-out predictions against this machine's
measured medians (plotly, with the error), from store records whose ONNX files are on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.workspace import Workspace
from profiles.device import fingerprint
from profiles.record import Artifact, Device, Latency, Record, Scenario
from tests.profiles.test_latency_model import tiny_cnn

DEVICES = Path(__file__).resolve().parents[2] / "app" / "dashboard" / "views" / "devices.py"


def test_devices_page_shows_held_out_predictions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.resolve(tmp_path / "ws")
    store = ws.store()
    for i, (arch, ms) in enumerate([("a", 2.0), ("a", 2.2), ("b", 3.0), ("c", 2.5)]):
        folder = tmp_path / f"{arch}{i}"
        folder.mkdir()
        tiny_cnn(folder / "model.onnx", cast_last=bool(i % 2))
        store.add(Record(model=arch, artifact=Artifact(path=str(folder), format="onnx", compression="none"),
                         runtime="onnxruntime", threads=2, scenario=Scenario("classify"),
                         device=Device.from_dict(fingerprint()), latency=Latency(median_ms=ms),
                         extra={"scale": "deploy"}))
    store.close()
    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(ws.root))
    at = AppTest.from_file(str(DEVICES), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    labels = {m.label: m.value for m in at.metric}
    assert labels["artifacts"] == "4" and "artifacts within ±10 %" in labels
    fig = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
               if "per-operator" in json.loads(c.proto.spec)["layout"]["xaxis"]["title"]["text"])
    assert all("error" in t for t in fig["data"][0]["text"])
