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
    at.selectbox(key="export_spec").set_value("int8").run()
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
    assert job.status() == "ok" and any("Usage" in s for s in job.lines(n=10_000))  # the help's first line


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


@pytest.fixture
def run_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> synthetic.Workspace:
    """A workspace with a vision and a language-model checkpoint card and one artifact folder of each kind."""
    ws = synthetic.Workspace(tmp_path / "ws")
    synthetic.write_card(ws)
    synthetic.write_lm_card(ws)
    for folder, lm in (("resnet-0123456789/onnx-int8", False), ("openelm_tiny-0123456789/lm-onnx-int4", True)):
        synthetic.write_manifest(ws.artifacts / folder, lm=lm)
    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(ws.root))
    return ws


def launched(at: AppTest, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The argv the Launch button starts (jobs.start is replaced: nothing runs)."""
    started: list[list[str]] = []
    monkeypatch.setattr(jobs, "start", lambda _ws, argv: started.append(argv) or jobs.Job(Path("/x/j"), argv, 0, 0.0))
    at.button(key="launch").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(started) == 1 and at.code[0].value == "edgezoo " + " ".join(started[0])
    return started[0]


def run_page(kind: str) -> AppTest:
    at = page("run")
    at.selectbox(key="job_kind").set_value(kind).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_run_page_export_specs_follow_format_and_task(run_ws, monkeypatch: pytest.MonkeyPatch) -> None:
    from exporters.compression.spec import parse_spec
    from exporters.formats import FORMATS

    at = run_page("export")
    vision, lm = str(run_ws.zoo / "digits_resnet"), str(run_ws.zoo / "openelm_tiny")
    assert at.selectbox(key="export_ckpt").options == ["digits_resnet (classification)", "openelm_tiny (lm)"]
    assert at.selectbox(key="export_fmt").options == list(FORMATS)
    for fmt in FORMATS:
        at.selectbox(key="export_fmt").set_value(fmt).run()
        for ckpt, task in ((vision, "classification"), (lm, "lm")):
            at.selectbox(key="export_ckpt").set_value(ckpt).run()
            specs = at.selectbox(key="export_spec").options
            assert specs and all(parse_spec(s, fmt, task) for s in specs)  # each one the CLI accepts
            assert len({parse_spec(s, fmt, task).name for s in specs}) == len(specs)
            assert ("palette4" in specs) == (fmt == "coreml" and task == "classification")
            assert ("seedlm4" in specs) == (task == "lm")
    at.selectbox(key="export_fmt").set_value("coreml").run()
    at.selectbox(key="export_ckpt").set_value(vision).run()
    at.selectbox(key="export_spec").set_value("palette4").run()
    assert launched(at, monkeypatch) == ["export", "coreml", vision, "-c", "palette4", "-w", str(run_ws.root)]
    at.selectbox(key="export_ckpt").set_value(lm).run()
    at.selectbox(key="export_fmt").set_value("mlx").run()
    at.selectbox(key="export_spec").set_value("seedlm3").run()
    assert launched(at, monkeypatch) == ["export", "mlx", lm, "-c", "seedlm3", "-w", str(run_ws.root)]
    at.text_input(key="export_custom").set_value("int4:block=64").run()  # the CLI judges it: no LM block 64
    assert launched(at, monkeypatch)[3:5] == ["-c", "int4:block=64"]


def test_run_page_profiles_vision_and_lm_artifacts(run_ws, monkeypatch: pytest.MonkeyPatch) -> None:
    vision = str(run_ws.artifacts / "resnet-0123456789" / "onnx-int8")
    lm = str(run_ws.artifacts / "openelm_tiny-0123456789" / "lm-onnx-int4")
    at = run_page("profile")
    assert at.multiselect(key="profile_artifacts").options == ["resnet-0123456789/onnx-int8"]
    at.multiselect(key="profile_artifacts").set_value([vision]).run()
    at.number_input(key="profile_threads").set_value(4).run()
    assert launched(at, monkeypatch) == ["profile", vision, "-w", str(run_ws.root), "-t", "4"]
    at = run_page("lm profile")
    assert at.selectbox(key="lm_profile_artifact").options == ["openelm_tiny-0123456789/lm-onnx-int4"]
    assert launched(at, monkeypatch) == ["lm", "profile", lm, "-w", str(run_ws.root), "-t", "2"]


def test_run_page_specdec_bench_defaults_and_limits(run_ws, monkeypatch: pytest.MonkeyPatch) -> None:
    lm = str(run_ws.zoo / "openelm_tiny")
    at = run_page("specdec bench")
    assert at.selectbox(key="specdec_ckpt").options == ["openelm_tiny (lm)"]  # vision checkpoints are not offered
    assert at.number_input(key="specdec_tokens").max == 128  # the card's context
    assert launched(at, monkeypatch) == ["specdec", "bench", lm, "--gammas", "2,4,6", "--contexts", "128,480",
                                         "--tokens", "64", "--prompts", "3", "--modes", "greedy", "-t", "1",
                                         "-w", str(run_ws.root)]  # the CLI's defaults
    at.text_input(key="specdec_gammas").set_value("1, 3").run()
    at.text_input(key="specdec_contexts").set_value("64").run()
    at.number_input(key="specdec_tokens").set_value(16).run()
    at.text_input(key="specdec_modes").set_value("greedy,sample").run()
    argv = launched(at, monkeypatch)
    assert argv[3:11] == ["--gammas", "1,3", "--contexts", "64", "--tokens", "16", "--prompts", "3"]
    assert argv[11:13] == ["--modes", "greedy,sample"]


def test_run_page_reproduce_and_report(run_ws, monkeypatch: pytest.MonkeyPatch) -> None:
    from trainers.papers import discover

    at = run_page("reproduce")
    keys = at.selectbox(key="reproduce_paper").options
    assert [k.split(" — ")[0] for k in keys] == [k for k, p in discover().items() if p.claim is not None]
    at.selectbox(key="reproduce_paper").set_value("spin").run()
    assert launched(at, monkeypatch) == ["reproduce", "spin", "-w", str(run_ws.root)]
    at.checkbox(key="reproduce_quick").check().run()
    at.text_input(key="reproduce_seeds").set_value("0, 1").run()
    assert launched(at, monkeypatch) == ["reproduce", "spin", "-w", str(run_ws.root), "--quick", "--seeds", "0,1"]
    at = run_page("report")
    assert launched(at, monkeypatch) == ["report", "-w", str(run_ws.root), "--device", "host"]


def test_run_page_without_inputs_launches_nothing(run_ws) -> None:
    import shutil

    shutil.rmtree(run_ws.zoo)
    shutil.rmtree(run_ws.artifacts)
    for kind in ("export", "profile", "lm profile", "specdec bench"):
        at = run_page(kind)
        assert at.button(key="launch").disabled and at.code[0].value == "pick what to run above"
