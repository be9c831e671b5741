"""A model defined only here (not registered) through the Python API: export to every format with the standard
compressions, names and dynamic axes from its code, op coverage, the README example run verbatim, .pt2 files."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from exporters.own import check, export
from exporters.own_source import ModelSourceError

README = Path(__file__).resolve().parents[2] / "README.md"


class Tagger(nn.Module):
    """Two named inputs and a sequence axis: what a user's model looks like, not a zoo architecture."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Linear(6, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head((torch.relu(self.embed(tokens)) * mask).mean(1))


class Cumulative(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 3)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(self.proj(feats), -1)  # MLX's translator has no cumsum


class FoldsBatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.view(1, -1))  # the batch is folded away: only the example's batch size works


def spread(outputs: np.ndarray) -> float:
    return float(np.std(outputs))


def _inputs(seq: int = 5, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(batch, seq, 6), torch.ones(batch, seq, 1)


def test_readme_example_runs_verbatim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    section = README.read_text().split("## Your own model\n", 1)[1]  # the README's example, as written there
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {"__name__": "example"})  # noqa: S102 - the README's own text
    from app.api import compare

    rows = compare(workspace=tmp_path / "my-ws")
    by_format = {r["format"]: r for r in rows}
    assert set(by_format) == {"onnx", "mlx", "coreml"} and all(r["paper"] is None for r in rows)
    assert by_format["onnx"]["status"] == "ok" and by_format["onnx"]["compression"] == "int8-static"
    assert 0.0 <= by_format["onnx"]["accuracy"] <= 1.0 and by_format["onnx"]["parity_ok"]
    assert by_format["coreml"]["status"] == "unavailable"
    assert list((tmp_path / "my-ws" / "reports").glob("report-*.md"))


def test_names_dynamic_axes_and_static_int8(tmp_path: Path) -> None:
    import onnx

    art = export(Tagger(), _inputs(), "onnx", "int8-static", workspace=tmp_path, output_names=["tags"],
                 dynamic={"tokens": {1: ("seq", 1, 64)}, "mask": {1: ("seq", 1, 64)}},
                 eval_data=(_inputs(7, 32), None), metric=spread)
    graph = onnx.load(str(art.model_file)).graph
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert dims == {"tokens": ["batch", "seq", 6], "mask": ["batch", "seq", 1]}
    assert [o.name for o in graph.output] == ["tags"]
    assert "QuantizeLinear" in art.manifest["export_details"]["ops"]
    assert art.manifest["export_details"]["calibration_rows"] == 32
    assert art.manifest["calibration"] == "the user's evaluation inputs"
    quality = art.manifest["quality"]  # the metric on the artifact's own outputs
    assert art.manifest["verification"]["ok"] and quality["metric"] == "spread" and quality["value"] > 0
    data = np.load(art.path / "eval.npz")
    assert "y" not in data.files and data["x_1"].shape == (32, 7, 1)  # no labels: accuracy not measured


@pytest.mark.parametrize("fmt", [pytest.param("onnx", marks=pytest.mark.slow), "mlx"])
def test_a_model_without_a_batch_axis_is_exported_at_its_example_batch(fmt: str, tmp_path: Path) -> None:
    rows = torch.randn(5, 1, 2, 4)
    art = export(FoldsBatch(), rows[0], fmt, workspace=tmp_path, eval_data=(rows[:, 0], None))
    assert art.manifest["inputs"][0]["shape"] == [1, 2, 4] and not art.manifest["export_details"]["dynamic_batch"]
    assert art.manifest["verification"]["ok"] and art.manifest["verification"]["n"] == 5


def test_check_names_the_missing_op_and_where(tmp_path: Path) -> None:
    rep = check(Cumulative(), torch.randn(2, 4), formats=("mlx",))
    (op, where), = rep["formats"]["mlx"]["missing"].items()
    assert op == "aten.cumsum.default" and "test_own_model.py" in where[0] and "cumsum" in where[0]
    with pytest.raises(Exception, match=r"mlx has no aten.cumsum.default .*test_own_model.py"):
        export(Cumulative(), torch.randn(2, 4), "mlx", workspace=tmp_path)
    assert not list(tmp_path.rglob("*.partial"))


def test_pt2_from_another_torch_version_is_refused(tmp_path: Path) -> None:
    good = tmp_path / "tagger.pt2"
    torch.export.save(torch.export.export(Tagger(), _inputs()), str(good))
    old = tmp_path / "old.pt2"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("models/model.json"):
                data = json.dumps({**json.loads(data), "torch_version": "2.1.0"}).encode()
            dst.writestr(item, data)
    with pytest.raises(ModelSourceError, match=r"saved by torch 2\.1\.0.*re-export it under torch"):
        export(old, None, "onnx", workspace=tmp_path)
    art = export(good, None, "mlx", "int8", workspace=tmp_path)  # inputs and names from the program itself
    assert [i["name"] for i in art.manifest["inputs"]] == ["tokens", "mask"] and art.manifest["verification"]["ok"]


def test_onnx_file_takes_the_onnx_compressions(tmp_path: Path) -> None:
    fp32 = export(Tagger(), _inputs(), "onnx", workspace=tmp_path)
    art = export(fp32.model_file, None, "onnx", "int4", workspace=tmp_path, name="tagger-file")
    assert art.manifest["model"] == "tagger-file" and art.manifest["verification"]["ok"]
    assert art.manifest["quality"]["value"] is None  # no labels, no metric: not measured
    with pytest.raises(ModelSourceError, match="converts to onnx only"):
        export(fp32.model_file, None, "coreml", workspace=tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "coreml", "mlx"])
def test_every_standard_compression(fmt: str, tmp_path: Path) -> None:
    from exporters.compression.spec import DEFAULT_SPECS

    specs = (*DEFAULT_SPECS, *(["int8-static"] if fmt == "onnx" else ["palette4"] if fmt == "coreml" else []))
    for spec in specs:
        art = export(Tagger(), _inputs(), fmt, spec, workspace=tmp_path, dynamic={"tokens": {1: ("seq", 1, 64)},
                                                                                  "mask": {1: ("seq", 1, 64)}})
        assert art.manifest["verification"]["ok"], (spec, art.manifest["verification"])
        assert [i["name"] for i in art.manifest["inputs"]] == ["tokens", "mask"]


@pytest.mark.slow
def test_zoo_classifier_int8_static_calibrates_on_the_validation_split(tiny_checkpoint: Path, tmp_path: Path) -> None:
    art = export(tiny_checkpoint, None, "onnx", "int8-static", workspace=tmp_path)
    details = art.manifest["export_details"]
    assert "quantize_static" in details["tool"] and "validation split" in details["calibration_data"]
    assert details["calibration_rows"] == 256  # of 270 validation images: never the test split accuracy uses
    assert "QuantizeLinear" in details["ops"] and art.manifest["verification"]["ok"]


def test_listed_sizes_become_core_ml_enumerated_shapes(tmp_path: Path) -> None:
    from exporters.coreml_common import load_coremltools

    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    side = {2: ("side", [8, 16]), 3: ("side", [8, 16])}
    art = export(model.eval(), torch.randn(1, 1, 8, 8), "coreml", workspace=tmp_path, dynamic={"input": side})
    desc = load_coremltools().models.MLModel(str(art.model_file), skip_model_load=True).get_spec().description
    shapes = [tuple(s.shape) for s in desc.input[0].type.multiArrayType.enumeratedShapes.shapes]
    assert shapes == [(1, 1, 8, 8), (1, 1, 16, 16)] and art.manifest["verification"]["ok"]


@pytest.mark.slow
def test_profile_records_the_metric_or_not_measured(tmp_path: Path) -> None:
    from app.api import compare, profile

    with_metric = export(Tagger(), _inputs(), "onnx", workspace=tmp_path, eval_data=(_inputs(5, 8), None),
                         metric=spread, name="tagger-metric")
    plain = export(Tagger(), _inputs(), "onnx", "fp16", workspace=tmp_path, name="tagger-plain")
    assert profile(with_metric, workspace=tmp_path)["accuracy"]["metric"] == "spread"
    assert profile(plain, workspace=tmp_path).get("accuracy") is None  # no labels, no metric: not measured
    assert {r["model"] for r in compare(workspace=tmp_path)} == {"tagger-metric", "tagger-plain"}
