"""What a user sees in a real browser: the report offline, and the dashboard while a run goes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proxytask.report.dashboard import DashboardServer
from tests.report_runs import finished_workflow, workflow_config

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]


def _errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


def test_the_report_opens_offline_with_its_answer_figures_and_tables(
    browser: Any, tmp_path: Path, screenshot_dir: Path
) -> None:
    report = finished_workflow(tmp_path) / "REPORT.html"
    context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
    requested: list[str] = []

    def only_the_file(route: Any) -> None:
        requested.append(route.request.url)
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_the_file)
    page = context.new_page()
    errors = _errors(page)
    page.goto(report.resolve().as_uri())
    page.wait_for_selector("#fig-search-tau .main-svg")
    assert "Use proxy task good for" in page.locator("#answer h2").inner_text()
    assert "Kendall tau-b" in page.locator("#answer").inner_text()
    assert "(85 % interval)" in page.locator("#answer").inner_text()
    for figure in ("variance-curves", "selection-plane", "search-tau", "search-accuracy"):
        drawn = page.locator(f"#fig-{figure} .scatterlayer .trace").count()
        assert drawn > 0, figure  # the figure rendered its traces as SVG
    hover = page.evaluate("document.getElementById('fig-selection-plane').data[0].text[0]")
    assert hover.startswith("round1/")  # hovering a point names the model
    # a sortable table: clicking "trial" twice reverses the order
    header = page.locator("#table-trials th", has_text="trial").first
    header.click()
    first = page.locator("#table-trials tbody tr").first.inner_text()
    page.locator("#table-trials th", has_text="trial").first.click()
    assert page.locator("#table-trials tbody tr").first.inner_text() != first
    page.screenshot(path=str(screenshot_dir / "report.png"), full_page=False)
    assert errors == []
    assert all(url.startswith("file:") for url in requested), requested
    context.close()


@pytest.fixture
def paced_run(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """``proxytask run`` of a replayed workflow at 20 recorded seconds per real second."""
    config = workflow_config(tmp_path, **{"replay-speed": 20})
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxytask.cli", "run", str(config)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    wdir = tmp_path / "runs" / "Workflow_wf"
    try:
        deadline = time.monotonic() + 60
        while not (wdir / "WORKFLOW_STATE.json").exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the workflow dir never appeared"
            time.sleep(0.1)
        yield wdir, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.communicate()


def _steps(page: Any) -> int:
    """The sum of the trial table's step column: it grows with every new evaluation."""
    cells = page.evaluate(
        """() => {const t=document.getElementById('table-trials'); if(!t) return [];
        const heads=[...t.querySelectorAll('th')].map(h=>h.textContent.replace(/ [▲▼]$/,''));
        const i=heads.indexOf('step');
        return [...t.querySelectorAll('tbody tr')].map(r=>r.children[i].textContent);}"""
    )
    return sum(int(c) for c in cells if c.strip().isdigit())


def test_the_dashboard_shows_new_evaluations_while_the_run_goes(
    browser: Any, paced_run: tuple[Path, subprocess.Popen[str]], screenshot_dir: Path
) -> None:
    wdir, proc = paced_run
    server = DashboardServer(str(wdir), port=0, poll_ms=500, min_rebuild_secs=0.2)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = _errors(page)
        page.goto(server.url)
        page.wait_for_selector("#table-trials")
        assert page.locator("#live").inner_text() == "live"
        first = _steps(page)
        deadline = time.monotonic() + 30
        while _steps(page) <= first:  # no reload: the page polls and re-renders itself
            assert time.monotonic() < deadline, "no new evaluation appeared within 30 s"
            assert proc.poll() is None or _steps(page) > first
            time.sleep(0.2)
        assert page.locator("#status").inner_text() in ("running", "finished")
        refused = page.request.get(server.url + "files/..%2f..%2f..%2fetc%2fpasswd")
        assert refused.status == 403
        state = page.request.get(server.url + "files/WORKFLOW_STATE.json")
        assert state.status == 200 and "stages" in json.loads(state.text())
        page.wait_for_selector("#fig-variance-curves .main-svg")
        page.screenshot(path=str(screenshot_dir / "dashboard.png"), full_page=False)
        assert errors == []
        page.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
