"""``proxytask report`` and ``proxytask dashboard`` without a browser: the page, the HTML file,
the read-only server and its refusals (the browser tests are in tests/browser/)."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proxytask import cli
from proxytask.core import layout
from proxytask.core.clock import PacedClock
from proxytask.core.errors import UsageError
from proxytask.report.dashboard import DashboardServer, safe_relative_path, write_report
from proxytask.report.page import build_page
from tests.report_runs import finished_workflow


def _embedded_page(html_text: str) -> dict[str, Any]:
    match = re.search(
        r'<script type="application/json" id="proxytask-config">(.*?)</script>', html_text, re.S
    )
    assert match, "the page JSON must be embedded"
    config = json.loads(match.group(1).replace("<\\/", "</"))
    assert config["live"] is False
    page: dict[str, Any] = config["page"]
    return page


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_workflow(tmp_path_factory.mktemp("report"))


def test_run_writes_a_self_contained_report_of_the_finished_workflow(workflow: Path) -> None:
    report = workflow / "REPORT.html"
    assert report.is_file()  # `proxytask run` wrote it at the end
    text = report.read_text()
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?(https?:)?//""", text)
    assert "Plotly" in text and len(text) > 1_000_000  # plotly.js is inside
    page = _embedded_page(text)
    assert page["status"]["state"] == "finished"
    assert page["answer"]["found"] is True
    assert page["answer"]["headline"].startswith("Use proxy task good for ")
    facts = dict(page["answer"]["facts"])
    assert re.match(
        r"Kendall tau-b [-\d.]+ \[[-\d.]+, [-\d.]+\] \(85 % interval\)",
        facts["rank correlation with full training at that step"],
    )
    ids = [s["id"] for s in page["sections"]]
    assert ids == ["variance", "model_selection", "search", "trials"]
    figures = {f["id"] for s in page["sections"] for f in s["figures"]}
    assert {"variance-curves", "selection-plane", "search-tau", "search-accuracy"} <= figures
    tau = next(f for s in page["sections"] for f in s["figures"] if f["id"] == "search-tau")
    assert any("interval" in str(t.get("hovertemplate", "")) for t in tau["data"])
    assert tau["layout"]["shapes"][0]["y0"] == 0.65  # the threshold line
    trials = page["sections"][-1]["tables"][0]
    assert trials["columns"][:3] == ["stage", "trial", "state"]
    assert len(trials["rows"]) >= 3 + 8 + 6  # variance, selection, search trials
    assert {row[2] for row in trials["rows"]} <= {"succeeded", "stopped", "failed"}


def test_a_report_of_one_controller_dir_and_to_another_file(workflow: Path, tmp_path: Path) -> None:
    state = json.loads((workflow / "WORKFLOW_STATE.json").read_text())
    search_dir = workflow / Path(state["stages"]["search"]["dir"]).name
    target = tmp_path / "out" / "search.html"
    assert cli.main(["report", str(search_dir), "-o", str(target)]) == 0
    page = _embedded_page(target.read_text())
    assert page["kind"] == layout.KIND_SEARCH
    assert [s["id"] for s in page["sections"]] == ["search", "trials"]
    assert page["answer"]["headline"].startswith("Use proxy task good")


def test_a_failed_or_unfinished_run_says_where_it_stopped(workflow: Path, tmp_path: Path) -> None:
    wdir = tmp_path / workflow.name  # a copy: the page finds its stage dirs inside it
    shutil.copytree(workflow, wdir)
    state = json.loads((wdir / "WORKFLOW_STATE.json").read_text())
    vdir = wdir / Path(state["stages"]["variance"]["dir"]).name
    measurement = json.loads((vdir / "measurement_state.json").read_text())
    measurement.update(phase="failed", error="no workable model: 3 of 3 candidates crashed")
    (vdir / "measurement_state.json").write_text(json.dumps(measurement))
    page = build_page(str(wdir), time.time())
    assert page["status"]["state"] == "failed"
    assert any(
        "no workable model: 3 of 3 candidates crashed" in line for line in page["status"]["lines"]
    )
    (wdir / "RECOMMENDATION.json").unlink()
    measurement.update(phase="copies", error=None)
    (vdir / "measurement_state.json").write_text(json.dumps(measurement))
    page = build_page(str(wdir), time.time())
    assert page["status"]["state"] == "running"
    # while the workflow goes, its search's best proxy so far, said to be provisional
    assert page["answer"]["headline"].startswith("So far: Use proxy task good")
    assert "still going" in page["answer"]["notes"][0]
    search_dir = wdir / Path(state["stages"]["search"]["dir"]).name
    (search_dir / "PROXY_TASK_RECOMMENDATION.json").unlink()
    assert build_page(str(wdir), time.time())["answer"] is None


@pytest.mark.parametrize("bad", ["missing", "plain", "trial"])
def test_bad_dirs_are_one_line_exit_2(
    workflow: Path, tmp_path: Path, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plain").mkdir()
    path = {
        "missing": str(tmp_path / "missing"),
        "plain": str(tmp_path / "plain"),
        "trial": str(next(workflow.glob("Model_Selection_*/jobs/round1/1"))),
    }[bad]
    for command in (["report", path], ["dashboard", path, "--port", "0"]):
        assert cli.main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith("proxytask: error: DIR must be") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("WORKFLOW_STATE.json", "WORKFLOW_STATE.json"),
        ("a/b/stdout.log", "a/b/stdout.log"),
        ("a%2Fb.json", "a/b.json"),
        ("../etc/passwd", None),
        ("a/../../etc/passwd", None),
        ("%2e%2e/%2e%2e/etc/passwd", None),
        ("..%2f..%2fetc%2fpasswd", None),
        ("/etc/passwd", None),
        ("%2Fetc%2Fpasswd", None),
        ("a/./b", None),
        ("x%00.json", None),
        ("s3://bucket/key", None),
        ("C:/x", None),
        ("", None),
    ],
)
def test_safe_relative_path(raw: str, expected: str | None) -> None:
    assert safe_relative_path(raw) == expected


@pytest.fixture
def dashboard(workflow: Path) -> Iterator[DashboardServer]:
    server = DashboardServer(str(workflow), port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _raw_get(server: DashboardServer, path: str, method: str = "GET") -> tuple[int, bytes]:
    """A request sent as written (a browser would resolve ``..`` before sending)."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()
    }


def test_the_dashboard_serves_the_page_and_files_and_refuses_the_rest(
    dashboard: DashboardServer, workflow: Path
) -> None:
    before = _snapshot(workflow)
    assert dashboard.url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(dashboard.url, timeout=10) as response:
        index = response.read().decode()
    assert '"live": true' in index and 'src="static/plotly.min.js"' in index
    with urllib.request.urlopen(dashboard.url + "api/page", timeout=10) as response:
        page = json.loads(response.read())
    assert page["answer"]["headline"].startswith("Use proxy task good")
    status, body = _raw_get(dashboard, "/static/plotly.min.js")
    assert status == 200 and b"plotly" in body[:2000].lower()
    status, body = _raw_get(dashboard, "/files/WORKFLOW_STATE.json")
    assert status == 200 and json.loads(body)["stages"]
    for path in (
        "/files/../../etc/passwd",
        "/files/%2e%2e/%2e%2e/etc/passwd",
        "/files/..%2f..%2fetc%2fpasswd",
        "/files//etc/passwd",
        "/files/%2Fetc%2Fpasswd",
    ):
        assert _raw_get(dashboard, path)[0] == 403, path
    assert _raw_get(dashboard, "/files/no-such-file.json")[0] == 404
    assert _raw_get(dashboard, "/elsewhere")[0] == 404
    for method in ("POST", "PUT", "DELETE"):
        assert _raw_get(dashboard, "/api/page", method)[0] == 405
    assert _snapshot(workflow) == before  # read-only: nothing written, nothing touched


def test_the_page_is_rebuilt_at_most_once_per_interval(workflow: Path) -> None:
    now = [1000.0]
    server = DashboardServer(str(workflow), port=0, min_rebuild_secs=1.0, clock=lambda: now[0])
    try:
        first = server.page()
        assert server.page() is first  # many browsers polling: one reader of the run
        now[0] += 1.5
        assert server.page() is not first
    finally:
        server.server_close()


def test_a_busy_port_is_one_line(workflow: Path) -> None:
    server = DashboardServer(str(workflow), port=0)
    try:
        with pytest.raises(UsageError, match="--port must be free"):
            DashboardServer(str(workflow), port=server.server_address[1])
    finally:
        server.server_close()


def test_another_host_is_served_only_when_asked_with_a_warning(
    workflow: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def stop_at_once(self: DashboardServer, poll_interval: float = 0.5) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(DashboardServer, "serve_forever", stop_at_once)
    assert cli.main(["dashboard", str(workflow), "--port", "0"]) == 0
    captured = capsys.readouterr()
    assert "http://127.0.0.1:" in captured.out and "warning" not in captured.err
    assert cli.main(["dashboard", str(workflow), "--port", "0", "--host", "0.0.0.0"]) == 0
    assert "warning: the dashboard listens on 0.0.0.0" in capsys.readouterr().err


def test_write_report_on_memory_fs(workflow: Path) -> None:
    target = f"memory://report-{os.getpid()}/REPORT.html"
    assert write_report(str(workflow), target) == target
    from proxytask.core import storage

    text = storage.read_text(target)
    assert text is not None and _embedded_page(text)["status"]["state"] == "finished"


def test_the_paced_clock_lets_real_time_pass() -> None:
    clock = PacedClock(speed=100.0)
    started, simulated = time.monotonic(), clock.now()
    clock.sleep(20)
    clock.advance_to(clock.now() + 10)
    assert clock.now() == simulated + 30
    assert 0.25 <= time.monotonic() - started < 3
    with pytest.raises(ValueError, match="speed must be"):
        PacedClock(speed=0)


def test_the_answer_labels_every_number_of_its_evidence() -> None:
    from proxytask.report.page import _answer

    rec = {
        "found": True, "best_proxy_task_name": "width0.5", "training_steps": 400,
        "trainer_args": {"width_multiplier": "0.5"}, "speedup_vs_full_training": 2.912,
        "accuracy_correlation_at_stop": 0.884, "stopping_rule": "confident",
        "accuracy_correlation_interval_at_stop": {"ci_low": 0.78, "ci_high": 0.94,
                                                  "confidence": 0.85},
        "holdout": {"tau": 0.714, "n": 8, "ci_low": 0.397, "ci_high": 0.879, "confidence": 0.85},
        "winner_stability": {"draws": 200, "observed_winner_frequency": 0.29,
                             "frequencies": {"width0.5": 0.29, "len20": 0.21}},
        "zero_training_comparison": {"message": "the trained proxy ranks better"},
        "others": {"data50": "Met desired correlation"},
    }  # fmt: skip
    answer = _answer(rec)
    assert answer is not None
    facts = dict(answer["facts"])
    assert facts["cost per trial"] == "2.912× cheaper than full training"
    assert facts["rank correlation with full training at that step"] == (
        "Kendall tau-b 0.88 [0.78, 0.94] (85 % interval)"
    )
    assert facts["held-out check (8 models the search never chose by)"] == (
        "Kendall tau-b 0.71 [0.40, 0.88] (85 % interval)"
    )
    stability = facts["winner stability (the search replayed on resampled reference models)"]
    assert stability == "wins 29 % of 200 resamples (width0.5 29 %, len20 21 %)"
    assert facts["against zero-training scores"] == "the trained proxy ranks better"
    assert facts["data50 (not chosen)"] == "Met desired correlation"


def test_a_report_of_plain_trials_reads_them_from_their_files(tmp_path: Path) -> None:
    import sys

    code = cli.main(
        [
            "trial", f"--trainer={sys.executable} -m proxytask.testing.fake_trainer",
            "--search-space=tests.fixtures.spaces:tiny", f"--root-output-dir={tmp_path / 'runs'}",
            "--job-name=t", "--num-trials=2", "--trainer-args", "cycles=2", "cycle_secs=0.01",
        ]
    )  # fmt: skip
    assert code == 0
    (cdir,) = (tmp_path / "runs").glob("Trials_t_*")
    page = build_page(str(cdir), time.time())
    assert page["kind"] == layout.KIND_TRIALS and page["status"]["state"] == "finished"
    rows = page["sections"][-1]["tables"][0]["rows"]
    assert [(r[1], r[2]) for r in rows] == [("t/1", "succeeded"), ("t/2", "succeeded")]
