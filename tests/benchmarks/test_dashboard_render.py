"""Time to first render of the Trade-offs page over 10,000 synthetic records.

The README's target is a first render under 3 s on this machine; an absolute time depends on the machine and its
load, so what is asserted is the ratio behind it, measured in the same run: ten times the records (1,000 -> 10,000)
costs less than 3x the first render (the page's cost is not proportional to the store). The absolute figure is
printed beside the 3 s target. Counts (records, plotted points, the format filter) are asserted exactly."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.dashboard import data as D
from tests.app import synthetic

DASH = Path(__file__).resolve().parents[2] / "app" / "dashboard"
N = 10_000
N_SMALL = 1_000
MAX_RENDER_RATIO = 3.0  # first render at N / first render at N_SMALL


def first_render(ws, monkeypatch: pytest.MonkeyPatch):
    """(seconds, AppTest) of a cold-cache first render of Trade-offs over workspace `ws`."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(ws.root))
    D.load_flat.clear()
    t0 = time.perf_counter()
    at = AppTest.from_file(str(DASH / "views" / "tradeoffs.py"), default_timeout=60).run()
    seconds = time.perf_counter() - t0
    assert not at.exception
    return seconds, at


def metric(at, label: str) -> int:
    return int(next(m.value for m in at.metric if m.label == label))


@pytest.mark.benchmark
def test_tradeoffs_first_render_10k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = synthetic.build(tmp_path / "small", n=N_SMALL, use_add=False)
    t0 = time.perf_counter()
    ws = synthetic.build(tmp_path / "ws", n=N, use_add=False)
    build_s = time.perf_counter() - t0

    D.load_flat.clear()
    t0 = time.perf_counter()
    df = D.flat(ws)
    load_s = time.perf_counter() - t0
    assert len(df) == N

    first_render(small, monkeypatch)  # imports (streamlit, plotly, the page's modules) are not the page's cost
    small_s, _ = first_render(small, monkeypatch)
    first_s, at = first_render(ws, monkeypatch)
    plotted = len(df.dropna(subset=["accuracy", "p50_ms"]))
    assert metric(at, "records (filtered)") == N and metric(at, "plotted") == plotted
    spec_all_kb = len(at.get("plotly_chart")[0].proto.spec) / 1024
    t0 = time.perf_counter()
    at.run()
    rerun_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    at.sidebar.multiselect(key="filter_format").set_value(["onnx"]).run()
    filter_s = time.perf_counter() - t0
    spec_kb = len(at.get("plotly_chart")[0].proto.spec) / 1024
    assert metric(at, "records (filtered)") == int((df["format"] == "onnx").sum()) < N
    assert spec_kb < spec_all_kb

    ratio = first_s / small_s
    print(f"\ndashboard Trade-offs over {len(df)} records (store {ws.store_path.stat().st_size / 2**20:.1f} MiB, "
          f"built in {build_s:.1f} s)")
    print(f"  data load (one SQL query -> pandas, cold): {load_s * 1e3:8.1f} ms")
    print(f"  first render (AppTest, cold cache):        {first_s * 1e3:8.1f} ms   README target < 3000 ms")
    print(f"  first render over {N_SMALL:,} records:          {small_s * 1e3:8.1f} ms")
    print(f"  ratio {N:,} / {N_SMALL:,} records:              {ratio:8.2f}      target < {MAX_RENDER_RATIO}")
    print(f"  rerun (warm cache):                        {rerun_s * 1e3:8.1f} ms")
    print(f"  filter change (format = onnx):             {filter_s * 1e3:8.1f} ms")
    print(f"  plotly spec before / after filter:         {spec_all_kb:8.0f} / {spec_kb:.0f} KiB")
    assert ratio < MAX_RENDER_RATIO, f"first render {first_s:.2f} s at {N} records vs {small_s:.2f} s at {N_SMALL}"


@pytest.mark.benchmark
def test_tradeoffs_browser_first_plot_10k(tmp_path: Path) -> None:
    """End to end in headless chromium (software WebGL here): page load to plotted points, 10,000 records."""
    import subprocess
    import sys

    from tests.app.test_dashboard_browser import ARGS, CHROMIUM, POINTS_JS, free_port, wait_healthy

    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    ws = synthetic.build(tmp_path / "ws", n=N, use_add=False)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from app.cli import main; main()", "dashboard", "-w", str(ws.root),
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=DASH.parents[1])
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t0 = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/tradeoffs")  # the root opens the Papers page
            page.get_by_text("records (filtered)").wait_for(timeout=60_000)
            metrics_s = time.perf_counter() - t0
            page.wait_for_function(f"({POINTS_JS})() > 0", timeout=60_000, polling=100)
            plot_s = time.perf_counter() - t0
            points = page.evaluate(POINTS_JS)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    D.load_flat.clear()
    assert points == len(D.flat(ws).dropna(subset=["accuracy", "p50_ms"]))  # every plottable record is drawn
    print(f"\nbrowser (headless chromium, no GPU), {N} records, {points} plotted:")
    print(f"  page load to metrics shown: {metrics_s * 1e3:8.0f} ms")
    print(f"  page load to points plotted: {plot_s * 1e3:7.0f} ms")
