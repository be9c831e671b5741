"""A real browser over `edgezoo dashboard`, driven by Playwright: Debian's chromium on Linux (never
`playwright install` there), Playwright's own Chromium on macOS (`make setup` installs it)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.app import synthetic
from trainers.papers import papers

MACOS = sys.platform == "darwin"
CHROMIUM = None if MACOS else shutil.which("chromium")  # None on macOS: Playwright's own browser
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
# plotly keeps binary-encoded arrays ({dtype, bdata}) in gd.data with the decoded array under _inputArray
LEN_JS = ("const len = a => Array.isArray(a) || ArrayBuffer.isView(a) ? a.length "
          ": (a && a._inputArray ? a._inputArray.length : 0);")
PLOT_JS = "document.querySelector('.js-plotly-plot')"
POINTS_JS = f"""() => {{ {LEN_JS} const d = {PLOT_JS};
  return d && d.data ? d.data.filter(t => t.name !== 'Pareto front').reduce((n, t) => n + len(t.x), 0) : -1; }}"""
FRONT_JS = f"() => {{ {LEN_JS} return len({PLOT_JS}.data.find(t => t.name === 'Pareto front').x); }}"

pytestmark = pytest.mark.skipif(not MACOS and CHROMIUM is None,
                                reason="Debian's chromium is not installed (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 40.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dashboard exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"dashboard not healthy at {url} after {timeout} s")


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[str, synthetic.Workspace]]:
    """`edgezoo dashboard` (the CLI command itself) on a free loopback port over a synthetic store."""
    ws = synthetic.build(tmp_path / "ws", n=60)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from app.cli import main; main()", "dashboard", "-w", str(ws.root),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url, ws
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_tradeoffs_filter_changes_pareto_plot(dashboard, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    url, ws = dashboard
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/tradeoffs")  # its own URL, not only the root
        page.wait_for_function(f"({POINTS_JS})() > 0", timeout=30_000)
        before = page.evaluate(POINTS_JS)
        assert page.evaluate(FRONT_JS) >= 1
        box = page.locator(".scatterlayer .point").first.bounding_box()  # the drag layer covers the points
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_selector(".hoverlayer .hovertext", timeout=10_000)
        hover = page.locator(".hoverlayer .hovertext").first.text_content() or ""

        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_test_id("stMultiSelect").filter(has_text="format").click()
        page.get_by_role("option", name="onnx", exact=True).click()
        page.keyboard.press("Escape")
        page.wait_for_function(f"({POINTS_JS})() !== {before} && ({POINTS_JS})() > 0", timeout=20_000)
        after = page.evaluate(POINTS_JS)
        names = page.evaluate("() => document.querySelector('.js-plotly-plot').data.map(t => t.name)")
        shot = tmp_path / "tradeoffs.png"
        page.wait_for_timeout(500)  # let plotly finish drawing before the screenshot
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    shutil.copy(shot, ws.root / "screenshot.png")
    assert 0 < after < before
    assert all(field in hover for field in ("model:", "compression:", "p50_ms:", "accuracy:", "device:"))
    assert set(names) == {"onnx", "Pareto front"}
    assert shot.stat().st_size > 10_000


PAGES = {"papers": "Papers", "tradeoffs": "Trade-offs", "compare": "Compare", "zoo": "Zoo", "knob": "Compression knob",
         "lm": "Language models", "devices": "Devices", "run": "Run", "reports": "Reports"}


def test_every_page_answers_at_its_own_url(dashboard) -> None:
    """Opening the app at a page's URL shows that page, never Streamlit's "Page not found" dialog; the root opens
    the first page (Papers) and its URL."""
    from playwright.sync_api import sync_playwright

    url, _ = dashboard
    seen = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for path, title in [("", "Papers"), *PAGES.items()]:
            page.goto(f"{url}/{path}")
            page.locator("h1", has_text=title).first.wait_for(timeout=30_000)
            page.wait_for_timeout(300)  # the dialog, when there is one, comes with the page's first run
            seen[path] = (page.url.removeprefix(url), page.get_by_text("Page not found").count())
        page.goto(f"{url}/papers")
        page.locator("h2").last.wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        sections = page.locator("h2").all_text_contents()
        browser.close()
    assert seen[""] == ("/papers", 0)
    assert {path: s for path, s in seen.items() if path} == {path: (f"/{path}", 0) for path in PAGES}
    assert {p.title for p in papers()} <= set(sections)  # one section per discovered plug-in
