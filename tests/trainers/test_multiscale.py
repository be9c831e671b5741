"""The multi-scale plug-in: its claim's verdict table (each verdict made to happen), a sampler recipe through the one
training loop (steps, sizes and pixels on the card), export at enumerated sizes in ONNX, MLX and Core ML, profiles
with an input-resolution scenario, and the plug-in's dashboard section."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trainers.claims import seed_summary
from trainers.multiscale.claim import verdict

SIZES = [16, 24, 32, 40, 48]


def measured(steps: float = 0.67, pixels: float = 0.75, robust: list[float] = (0.02, 0.03, 0.025),
             base: list[float] = (0.0, -0.005, 0.002), cur: list[float] = (-0.004, 0.0, -0.002)) -> dict:
    return {"ratio/steps_vbs_over_ssc": seed_summary([steps] * 3),
            "ratio/pixels_curriculum_over_vbs": seed_summary([pixels] * 3),
            "diff/vbs-ssc/acc_off_base": seed_summary(list(robust)),
            "diff/vbs-ssc/acc32": seed_summary(list(base)),
            "diff/curriculum-vbs/acc32": seed_summary(list(cur))}


@pytest.mark.parametrize("kwargs,expected,names", [
    ({}, "pass", ""),
    ({"steps": 0.8}, "fail", "1 steps"),
    ({"pixels": 0.9}, "fail", "4a pixels"),
    ({"robust": (-0.02, -0.03, -0.025)}, "fail", "2 off-base"),
    ({"base": (-0.03, -0.04, -0.035)}, "fail", "3 accuracy at 32"),
    ({"cur": (-0.05, -0.04, -0.06)}, "fail", "4b accuracy"),
    ({"robust": (0.05, -0.04, 0.0)}, "inconclusive", "2 off-base"),
    ({"base": (0.03, -0.05, -0.01)}, "inconclusive", "3 accuracy at 32"),
])
def test_verdict_table(kwargs: dict, expected: str, names: str) -> None:
    outcome, reason = verdict(measured(**kwargs))
    assert outcome == expected, reason
    for part in reason.split("; "):  # the named condition decides; every other one passes
        assert part.endswith(expected if names and part.startswith(names) else "pass"), part


@pytest.fixture(scope="module")
def ms_checkpoint(tmp_path_factory) -> Path:
    """A tiny variable-batch multi-scale checkpoint trained for one epoch through trainers.loop."""
    from trainers.loop import train
    from trainers.recipe import load_recipe

    recipe = load_recipe("ms_msc_vbs", ["epochs=1", "model_args.channels=[4,8]", "batch_size=16"])
    out = tmp_path_factory.mktemp("ms") / "ms_msc_vbs"
    train(recipe, out, progress=False)
    return out


def test_loop_records_sizes_steps_and_pixels(ms_checkpoint: Path) -> None:
    from trainers.samplers import MultiScaleSampler, SamplerConfig

    card = json.loads((ms_checkpoint / "card.json").read_text())
    assert card["input_sizes"] == SIZES
    expected = MultiScaleSampler(SamplerConfig(**card["recipe"]["sampler"]), 16, 1200, 1, seed=0)
    assert card["sampler"]["optimizer_steps"] == expected.total_steps()
    assert card["sampler"]["pixels"] == sum(b * h * w for h, w, b in expected.steps(0))
    assert card["sampler"]["pairs"] == [[16, 16, 64], [24, 24, 28], [32, 32, 16], [40, 40, 10], [48, 48, 7]]


@pytest.mark.parametrize("fmt", [pytest.param("onnx", marks=pytest.mark.slow), "mlx"])
def test_export_at_enumerated_sizes_and_profile_each(ms_checkpoint: Path, fmt: str, tmp_path: Path) -> None:
    from exporters.artifact import export_checkpoint
    from profiles.measure import Scenario, measure, per_input_size
    from profiles.query import artifact_key

    art = export_checkpoint(ms_checkpoint, fmt, "none", out_dir=tmp_path / fmt)
    assert art.manifest["input_sizes"] == SIZES
    assert all(p["ok"] for p in art.manifest["export_details"]["size_parity"].values())
    assert art.manifest["inputs"][0]["shape"][1:] == [1, 32, 32]  # declared at the base size
    quick = Scenario(warmup=1, min_iters=3, min_seconds=0.0)
    scenarios = per_input_size(quick, art.manifest)
    assert [s.input_size for s in scenarios] == SIZES
    recs = [measure(art, scenario=s, threads=1) for s in (scenarios[0], scenarios[2])]
    for rec, size in zip(recs, (16, 32)):
        assert rec["status"] == "ok", rec.get("error_message")
        assert rec["scenario"]["input_size"] == size and rec["input_shapes"][0][-2:] == [size, size]
        assert 0.0 <= rec["accuracy"]["value"] <= 1.0 and str(size) in rec["accuracy"]["dataset"] or size == 32
    assert "parity" in recs[1] and "parity" not in recs[0]  # the reference exists at the base size only
    assert artifact_key(recs[0]) != artifact_key(recs[1])  # one row per size in the query layer


def test_scenario_without_size_keeps_its_key() -> None:
    from profiles.measure import Scenario, per_input_size, settings

    assert "input_size" not in settings(Scenario()) and settings(Scenario(input_size=24))["input_size"] == 24
    assert per_input_size(None, {}) == [Scenario()]


def test_summary_rows_name_the_input_size() -> None:
    from app.summary import row_cells

    row = {"paper": "multiscale", "model": "lcs_cnn", "format": "onnx", "compression": "none", "runtime": "ort",
           "status": "ok", "input_size": 16}
    assert row_cells(row)[1] == "lcs_cnn @16px" and row_cells({**row, "input_size": None})[1] == "lcs_cnn"


def test_child_resizes_inputs_to_the_scenario_size() -> None:
    from profiles.child import at_input_size

    specs = [{"name": "input", "shape": [None, 1, 32, 32], "dtype": "float32"}]
    assert at_input_size(specs, 48)[0]["shape"] == [None, 1, 48, 48]
    assert at_input_size(specs, None) == specs


@pytest.mark.slow
def test_coreml_declares_enumerated_sizes(ms_checkpoint: Path, tmp_path: Path) -> None:
    from exporters.artifact import export_checkpoint
    from exporters.coreml import enumerated_sizes

    art = export_checkpoint(ms_checkpoint, "coreml", "int8", out_dir=tmp_path / "coreml")
    assert art.manifest["input_sizes"] == SIZES == enumerated_sizes(art.model_file)
    assert art.manifest["verification"]["ok"], art.manifest["verification"]
    assert art.manifest["inputs"][0]["shape"] == [1, 1, 32, 32]  # enumerated shapes fix the batch at 1


def test_dashboard_rows_per_arm_and_size() -> None:
    import pandas as pd

    from trainers.multiscale.dashboard import per_size

    df = pd.DataFrame({"status": ["ok"] * 3 + ["failed"], "scenario.input_size": [16, 32, 16, 16],
                       "latency.median_ms": [0.1, 0.2, 0.3, 0.4], "accuracy.value": [0.5, 0.9, 0.6, 0.7],
                       "artifact.format": ["onnx"] * 4, "artifact.compression": ["none"] * 4,
                       "artifact.path": ["/w/artifacts/a/onnx-none"] * 2 + ["/w/artifacts/b/onnx-none"] * 2,
                       "id": [1, 2, 3, 4]})
    rows = per_size(df, {"/w/artifacts/a/onnx-none": "ms_ssc_fbs", "/w/artifacts/b/onnx-none": "ms_msc_vbs"})
    assert sorted(rows["arm"].unique()) == ["ms_msc_vbs", "ms_ssc_fbs"]
    assert rows[rows["arm"] == "ms_msc_vbs"]["latency.median_ms"].tolist() == [0.3]  # failed rows left out
    assert np.isclose(rows[(rows["arm"] == "ms_ssc_fbs")]["accuracy.value"].sum(), 1.4)


@pytest.mark.slow
def test_torchrun_two_ranks_take_the_same_multiscale_steps(tmp_path: Path) -> None:
    """Under torchrun (2 gloo processes) both ranks draw the same sizes and step counts from the shared seed: a
    disagreement would hang DDP's all-reduce (timeout) instead of writing the checkpoint."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    script = tmp_path / "ddp.py"
    script.write_text(
        "import sys; sys.path.insert(0, %r)\n"
        "from trainers.loop import train\n"
        "from trainers.recipe import load_recipe\n"
        "train(load_recipe('ms_msc_vbs', ['epochs=2', 'model_args.channels=[4,8]', 'batch_size=8']), %r, "
        "progress=False)\n" % (str(root), str(tmp_path / "ddp")))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           "29547", str(script)], capture_output=True, text=True, timeout=300, env=env, cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    card = json.loads((tmp_path / "ddp" / "card.json").read_text())
    assert card["world_size"] == 2 and card["input_sizes"] == SIZES
    from trainers.samplers import MultiScaleSampler, SamplerConfig

    per_rank = MultiScaleSampler(SamplerConfig(**card["recipe"]["sampler"]), 8, 1200, 2, seed=0, rank=1, world=2)
    assert card["sampler"]["optimizer_steps"] == per_rank.total_steps()  # rank 0's count equals rank 1's plan


def _papers_section(artifact: str) -> None:
    import pandas as pd

    from trainers.multiscale.dashboard import section

    rows = {"id": [1, 2, 3], "status": ["ok", "ok", "ok"], "scenario.input_size": [16, 32, 48],
            "latency.median_ms": [0.1, 0.2, 0.4], "accuracy.value": [0.6, 0.95, 0.9],
            "artifact.format": ["onnx"] * 3, "artifact.compression": ["none"] * 3, "artifact.path": [artifact] * 3}
    section(pd.DataFrame(rows) if artifact else pd.DataFrame())


@pytest.mark.parametrize("with_records", [True, False])
def test_dashboard_section_renders(with_records: bool, tmp_path: Path) -> None:
    """The section as the Papers page calls it: one latency and one accuracy line per arm over the sizes (the arm
    named by the artifact's manifest); a hint and no chart without records."""
    from streamlit.testing.v1 import AppTest

    from tests.app.test_dashboard_papers import values

    art = tmp_path / "artifacts" / "onnx-none"
    art.mkdir(parents=True)
    (art / "manifest.json").write_text(json.dumps({"checkpoint": str(tmp_path / "zoo" / "ms_msc_vbs")}))
    at = AppTest.from_function(_papers_section, args=(str(art) if with_records else "",), default_timeout=60).run()
    assert not at.exception
    charts = at.get("plotly_chart")
    if with_records:
        spec = json.loads(charts[0].proto.spec)
        assert [t["name"] for t in spec["data"]] == ["ms_msc_vbs"] * 2
        assert [values(t["y"]) for t in spec["data"]] == [[0.1, 0.2, 0.4], [0.6, 0.95, 0.9]]
    else:
        assert not charts and "edgezoo run --papers multiscale" in at.info[0].value


@pytest.mark.slow
def test_quick_reproduce_is_labelled_and_stored(capsys, tmp_path: Path) -> None:
    """`edgezoo reproduce multiscale --quick`: two seeds of three epochs per arm, the verdict labelled quick, printed
    beside the paper's numbers and stored."""
    from tests.app.cli_harness import invoke
    from trainers.claims import label_verdict
    from trainers.multiscale.claim import verdict

    res = invoke(["reproduce", "multiscale", "--quick", "-w", str(tmp_path)], capsys)
    assert res.code == 0, res.err
    assert "(quick)" in res.out and "paper" in res.out
    import sqlite3

    row = sqlite3.connect(tmp_path / "results.db").execute("SELECT verdict, result FROM claims").fetchone()
    result = json.loads(row[1])
    assert row[0].endswith("(quick)") and row[0] == label_verdict(verdict(result["measured"])[0], True)
    assert result["measured"]["ssc_fbs/optimizer_steps"]["per_seed"] == [57.0, 57.0]  # 3 epochs x ceil(1200 / 64)
