"""A paper is one plug-in: a throw-away folder declaring PAPER appears in `edgezoo models`, `edgezoo run`,
`edgezoo reproduce`, the dashboard's Papers page and the report without touching another file."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest
import yaml

import models
import trainers
from tests.app.cli_harness import invoke

VIEWS = Path(__file__).resolve().parents[2] / "app" / "dashboard" / "views"
PLUGIN = '''
"""A toy paper: a tiny ResNet on digits, for the plug-in test."""

from trainers.adapters import train_classifier
from trainers.claims import ClaimResult, seed_summary
from trainers.papers import Deployable, Paper, lazy


def reproduce(quick=False, seeds=None):
    a, b = seed_summary([0.9, 0.92]), seed_summary([0.5, 0.52])
    return ClaimResult(paper="toy", claim="toys beat coins", paper_numbers={"acc": 0.9}, measured={"toy": a, "coin": b},
                       verdict="pass", reason="0.91 > 0.51", quick=quick, seeds=[0, 1])


PAPER = Paper(key="toy", title="Toy Paper on Plug-ins", arxiv="0000.00000", code="https://example.org/toy",
              summary="A throw-away plug-in.", models=("resnet",), train=train_classifier,
              claim=lazy("trainers.zz_toy", "reproduce"), card="card.md",
              deployables=(Deployable(recipe="configs/toy_resnet.yaml", exports={{"onnx": ("none",)}},
                                      overrides=("lr=0.02",)),))
'''


@pytest.fixture()
def toy_plugin(tmp_path, monkeypatch):
    root = tmp_path / "plugins"
    pkg = root / "zz_toy"
    (pkg / "configs").mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(PLUGIN).replace("{{", "{").replace("}}", "}"))
    (pkg / "card.md").write_text("# Toy card\n\nThe toy claim, section 5.\n")
    args = dataclasses.asdict(models.get("resnet").args_cls.tiny())
    (pkg / "configs" / "toy_resnet.yaml").write_text(yaml.safe_dump(
        {"model": "resnet", "model_args": args, "epochs": 1, "batch_size": 128, "lr": 0.01}))
    monkeypatch.setattr(trainers, "__path__", [*trainers.__path__, str(root)])
    return pkg


def test_plugin_reaches_models_run_reproduce_dashboard_and_report(toy_plugin, tmp_path, capsys) -> None:
    ws = tmp_path / "ws"
    listed = invoke(["models"], capsys)
    assert listed.code == 0 and "toy" in listed.out and "Toy Paper on Plug-ins" in listed.out

    ran = invoke(["run", "--papers", "toy", "--json", "-w", str(ws)], capsys)
    assert ran.code == 0, ran.err
    rows = json.loads(ran.out)
    assert [(r["paper"], r["format"], r["status"]) for r in rows] == [("toy", "onnx", "ok")]

    claimed = invoke(["reproduce", "toy", "--quick", "-w", str(ws)], capsys)
    assert claimed.code == 0, claimed.err
    from profiles.store import Store

    claims = Store(ws / "results.db").claims("toy")
    assert [c["verdict"] for c in claims] == ["pass (quick)"]

    again = invoke(["run", "--papers", "toy", "--json", "-w", str(ws)], capsys)
    assert [r["id"] for r in json.loads(again.out)] == [r["id"] for r in rows]  # reused: checkpoint, artifact, record

    # the dashboard's Papers page (same process, so the plug-in path applies) and the device report
    from streamlit.testing.v1 import AppTest

    monkey = pytest.MonkeyPatch()
    monkey.setenv("EDGEZOO_WORKSPACE", str(ws))
    try:
        at = AppTest.from_file(str(VIEWS / "papers.py"), default_timeout=60).run()
    finally:
        monkey.undo()
    assert not at.exception, [e.value for e in at.exception]
    page = " ".join(str(m.value) for m in (*at.markdown, *at.header, *at.subheader, *at.caption, *at.code))
    assert "Toy Paper on Plug-ins" in page and "edgezoo reproduce toy" in page

    from app.workspace import Workspace
    from profiles.report import write_report

    md = write_report(Workspace.resolve(ws), outs=[tmp_path / "r.md"])[0].read_text()
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert "## Paper: Toy Paper on Plug-ins" in headings, headings
    assert "Verdict: pass (quick run" in md


def test_a_deployables_own_settings_come_before_the_users(toy_plugin) -> None:
    from app.pipeline import RunPlan, plan_jobs

    (job,) = plan_jobs(RunPlan(papers=("toy",)))
    assert job.overrides == ("lr=0.02",)
    (job,) = plan_jobs(RunPlan(papers=("toy",), overrides=("lr=0.03",)))
    assert job.overrides == ("lr=0.02", "lr=0.03")  # the user's --set wins
