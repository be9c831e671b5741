"""Every dashboard page under streamlit's AppTest, over a small synthetic store."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.dashboard import data as D, jobs
from tests.app import synthetic

DASH = Path(__file__).resolve().parents[2] / "app" / "dashboard"


@pytest.fixture(scope="module")
def ws_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic.build(tmp_path_factory.mktemp("dash") / "ws", n=60).root


@pytest.fixture
def ws(ws_root: Path, monkeypatch: pytest.MonkeyPatch) -> synthetic.Workspace:
    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(ws_root))
    return synthetic.Workspace(ws_root)


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(DASH / "views" / f"{name}.py"), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def figure(at: AppTest, i: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[i].proto.spec)


def points(fig: dict) -> int:
    return sum(len(t["x"]["_inputArray"] if isinstance(t["x"], dict) and "_inputArray" in t["x"] else _decode(t["x"]))
               for t in fig["data"] if t["name"] != "Pareto front")


def _decode(x) -> list:
    if isinstance(x, dict):  # plotly's binary encoding {"dtype", "bdata"}
        import base64

        import numpy as np

        return list(np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"]))
    return x


def wait(job: jobs.Job, seconds: float) -> None:
    deadline = time.time() + seconds
    while job.status() == "running" and time.time() < deadline:
        time.sleep(0.2)


def test_home_opens_papers_first_and_every_page(ws) -> None:
    at = AppTest.from_file(str(DASH / "Home.py"), default_timeout=30).run()
    assert not at.exception
    assert at.title[0].value == "Papers"  # the root redirects to the first page, at its own URL
    for view, title in (("tradeoffs", "Trade-offs"), ("zoo", "Zoo"), ("papers", "Papers")):
        at.switch_page(f"views/{view}.py").run()
        assert not at.exception and at.title[0].value == title


def test_tradeoffs_plot_filters_and_front(ws) -> None:
    at = page("tradeoffs")
    fig = figure(at)
    assert points(fig) == 45  # 60 records, 15 Core ML rows unavailable (no latency)
    assert "Pareto front" in [t["name"] for t in fig["data"]]
    assert "model: %{customdata[1]}" in fig["data"][0]["hovertemplate"]
    at.sidebar.multiselect(key="filter_format").set_value(["onnx"]).run()
    assert not at.exception
    fig = figure(at)
    assert points(fig) == 15
    assert {t["name"] for t in fig["data"]} == {"onnx", "Pareto front"}


def test_tradeoffs_marker_size_toggle(ws) -> None:
    at = page("tradeoffs")
    by_size = figure(at)["data"][0]["marker"]["size"]
    at.radio(key="size_by").set_value("peak memory").run()
    assert _decode(figure(at)["data"][0]["marker"]["size"]) != _decode(by_size)


def test_pareto_front_is_non_dominated() -> None:
    import pandas as pd

    df = pd.DataFrame({"p50_ms": [1.0, 2.0, 3.0, 2.5, 0.5], "accuracy": [0.9, 0.95, 0.99, 0.94, 0.5]})
    assert D.pareto_front(df)["p50_ms"].tolist() == [0.5, 1.0, 2.0, 3.0]


def test_compare_two_records(ws) -> None:
    at = page("compare")
    assert len(at.multiselect(key="compare_ids").value) == 2
    assert len(at.dataframe[0].value.columns) == 2
    assert figure(at)["data"][0]["type"] == "box"
    at.radio(key="dist_kind").set_value("violin").run()
    assert figure(at)["data"][0]["type"] == "violin"
    assert len(at.get("plotly_chart")) == 3  # latency, memory, parity


def claim(paper: str, verdict: str, quick: bool, reason: str = "0.98 > 0.95") -> dict:
    from trainers.claims import ClaimResult, seed_summary

    return ClaimResult(paper=paper, claim="residuals train deeper nets", paper_numbers={"top1": "0.96 (ImageNet)"},
                       measured={"resnet": seed_summary([0.98, 0.97])}, verdict=verdict, reason=reason,
                       quick=quick, seeds=[0, 1]).to_dict()


def test_zoo_cards_and_claims(ws) -> None:
    at = page("zoo")
    assert "digits_resnet" in [h.value for h in at.header]
    assert any(t["name"] == "val_accuracy" for t in figure(at)["data"])
    assert any("no claim check run" in i.value and "edgezoo reproduce baselines" in i.value for i in at.info)
    store = ws.store()
    # digits_resnet is deployed by the baselines plug-in: claims match on that key, not on the model's name
    ids = [store.add_claim(claim("baselines", "pass", quick=True)),
           store.add_claim(claim("resnet", "fail", quick=False, reason="not this checkpoint's paper"))]
    store.close()
    try:
        at = page("zoo")
        assert not at.success and not at.error  # a quick pass is not a full pass; the "resnet" claim is not shown
        quick = next(i.value for i in at.info if "0.98 > 0.95" in i.value)
        assert "pass — quick run" in quick and "smoke test" in quick
        assert not any("no claim check run" in i.value for i in at.info)
        store = ws.store()
        ids.append(store.add_claim(claim("baselines", "pass", quick=False)))
        store.close()
        at = page("zoo")
        assert "pass" in at.success[0].value and "quick" not in at.success[0].value
    finally:
        with sqlite3.connect(ws.store_path) as conn:
            conn.executemany("DELETE FROM claims WHERE id=?", [(i,) for i in ids])


def test_zoo_matches_checkpoints_to_paper_keys() -> None:
    from app.dashboard import zoo
    from trainers.papers import papers

    plugins = papers()
    assert zoo.paper_keys(Path("lcs_l"), {"model": "lcs_cnn", "paper": {"key": "lcs"}}, plugins) == {"lcs"}
    assert zoo.paper_keys(Path("line"), {"model": "lcs_cnn", "paper": {"key": "lcs"}}, plugins) == {"subspaces"}
    assert zoo.paper_keys(Path("my_run"), {"model": "lcs_cnn", "paper": {"key": "lcs"}}, plugins) == {"lcs"}
    assert zoo.paper_keys(Path("my_run"), {"model": "convmixer", "paper": {}}, plugins) == {"baselines"}
    # the main LM checkpoint is deployed by three plug-ins: all three claims belong to it
    assert zoo.paper_keys(Path("openelm_main"), {"model": "openelm"}, plugins) == {"openelm", "seedlm", "quantspec"}
    assert zoo.verdict_label("pass", 1) == "pass (quick)" and zoo.verdict_label("pass (quick)", 1) == "pass (quick)"
    assert zoo.verdict_label("odd", 0) == "odd"


def test_devices_catalog_and_predictions(ws) -> None:
    at = page("devices")
    assert len(at.dataframe[0].value) >= 1  # the catalog
    at.selectbox(key="predict_device").set_value("raspberry-pi-5").run()
    predicted = at.dataframe[1].value
    assert len(predicted) == 60 and predicted["predicted_ms"].gt(0).all()  # 'unavailable' Core ML rows too
    fig = figure(at)
    assert "predicted" in fig["layout"]["xaxis"]["title"]["text"]
    assert len(_decode(fig["data"][0]["x"])) == 45  # ok records measured on this machine, vs the host profile


def test_reports_job_writes_downloads(ws) -> None:
    at = page("reports")
    at.button(key="generate").click().run()
    job = [j for j in jobs.list_jobs(ws) if j.argv[0] == "report"][0]
    wait(job, 90)
    assert job.status() == "ok", job.lines()
    at = page("reports")
    assert len(at.get("download_button")) == 2  # HTML and Markdown


def test_run_page_launches_a_job_and_shows_its_failure(ws) -> None:
    at = page("run")
    assert "edgezoo run -w" in at.code[0].value
    at.selectbox(key="job_kind").set_value("export").run()
    at.text_input(key="export_spec").set_value("int8").run()
    at.button(key="launch").click().run()
    assert not at.exception
    job = next(j for j in jobs.list_jobs(ws) if j.argv[0] == "export")  # other tests start jobs in this workspace
    wait(job, 180)
    assert job.status() == "failed", (job.status(), job.lines()[-5:])
    at = page("run")
    errors = [e.value for e in at.error]
    assert any("error:" in e and "model.safetensors" in e for e in errors), errors  # the zoo card has no weights


def test_run_page_lists_every_plugins_recipes_and_runs_one_paper(ws, monkeypatch: pytest.MonkeyPatch) -> None:
    from trainers.papers import config_dirs, papers

    started: list[list[str]] = []
    monkeypatch.setattr(jobs, "start", lambda _ws, argv: started.append(argv) or jobs.Job(Path("/x/j"), argv, 0, 0.0))
    at = page("run")
    keys = [p.key for p in papers()]
    assert at.code[0].value.startswith(f"edgezoo run -w {ws.root} --papers ")
    assert sorted(at.code[0].value.split("--papers ")[1].split()[0].split(",")) == sorted(keys)
    at.multiselect(key="run_papers").set_value(["lcs", "spin"]).run()
    at.multiselect(key="run_formats").set_value(["onnx"]).run()
    assert at.code[0].value == f"edgezoo run -w {ws.root} --papers lcs,spin -f onnx -t 2"
    at.selectbox(key="job_kind").set_value("train").run()
    options = at.selectbox(key="train_recipe").options
    assert len(options) == sum(len(list(d.glob("*.yaml"))) for d in config_dirs()) > 0
    assert {o.split("/")[0] for o in options} == {p.key for p in papers() if p.configs.is_dir()}
    at.selectbox(key="train_recipe").set_value("lcs/lcs_l").run()
    assert "trainers/lcs/configs/lcs_l.yaml -w" in at.code[0].value
    at.button(key="run_paper_spin").click().run()
    assert not at.exception and started == [["run", "-w", str(ws.root), "--papers", "spin", "-t", "2"]]


def test_job_runner_success(ws) -> None:
    job = jobs.start(ws, ["--help"])
    wait(job, 30)
    assert job.status() == "ok" and any("Usage" in s for s in job.lines())


def test_no_torch_at_startup(ws_root: Path) -> None:
    """Pages render without importing torch (a fresh interpreter: the test session already has it)."""
    code = ("import sys; from streamlit.testing.v1 import AppTest\n"
            "for p in ['Home', *['views/' + n for n in ('papers', 'compare', 'zoo', 'knob', 'devices', 'run', 'reports',"
            " 'lm')]]:\n"
            f"    AppTest.from_file('{DASH}/' + p + '.py', default_timeout=30).run()\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "EDGEZOO_WORKSPACE": str(ws_root)}, cwd=DASH.parents[1])
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]


def test_serve_command_binds_loopback_headless(ws) -> None:
    from app.dashboard import serve

    cmd = serve.command()
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("Home.py")
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"
    assert serve.environment(ws)["EDGEZOO_WORKSPACE"] == str(ws.root)


@pytest.mark.parametrize("name", ["tradeoffs", "compare", "zoo", "run", "reports"])
def test_pages_on_an_empty_workspace(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(tmp_path / "empty"))
    at = page(name)
    if name in ("tradeoffs", "compare", "zoo"):
        assert any("No results yet" in i.value or "No checkpoints" in i.value for i in at.info)
