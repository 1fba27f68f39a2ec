"""The trial monitor, `proxytask status`, and the layout's names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxytask import cli
from proxytask.core import layout
from proxytask.core.errors import UsageError
from proxytask.executors.monitor import TrialMonitor
from proxytask.trainer import contract as trainer


def test_monitor_reads_only_changes(tmp_path: Path) -> None:
    d1, d2 = str(tmp_path / "1"), str(tmp_path / "2")
    mon = TrialMonitor()
    mon.watch("j/1", d1)
    mon.watch("j/2", d2)
    first = mon.poll()
    assert set(first) == {"j/1", "j/2"} and first["j/1"].metrics is None
    assert mon.poll() == {}
    trainer.update_trial_training_accuracy_metric(d1, 0.4, 0, 4, 0.1, 10)
    changed = mon.poll()
    assert set(changed) == {"j/1"}
    assert changed["j/1"].last_pct == 50.0 and changed["j/1"].last_accuracy == 0.4
    assert mon.poll() == {}
    with pytest.raises(trainer.NonFiniteMetricError):
        trainer.update_trial_training_accuracy_metric(d2, float("nan"), 0, 4, 0.1, 10)
    changed = mon.poll()
    assert changed["j/2"].reported_failure is not None
    assert changed["j/2"].reported_failure["cause"] == "nan"


def test_monitor_keeps_last_good_metrics_on_a_corrupt_file(tmp_path: Path) -> None:
    d = str(tmp_path / "1")
    mon = TrialMonitor()
    mon.watch("t", d)
    trainer.update_trial_training_accuracy_metric(d, 0.4, 0, 4, 0.1, 10)
    mon.poll()
    (tmp_path / "1" / layout.TRIAL_TRAINING_METRICS).write_text("{broken")
    mon.poll()
    assert mon.progress("t").last_accuracy == 0.4


def test_layout_names() -> None:
    assert layout.controller_dir("/r", layout.KIND_SEARCH, "x", 0.0) == (
        "/r/Search_controller_x_19700101_000000"
    )
    assert layout.trial_dir(layout.job_dir("/c", "j"), 3) == "/c/jobs/j/3"
    with pytest.raises(UsageError):
        layout.check_job_name("../etc")


def test_controller_paths_and_what_each_kind_writes() -> None:
    paths = layout.ControllerPaths("/c")
    assert paths.job("j").trial(3) == layout.trial_dir(layout.job_dir("/c", "j"), 3)
    assert paths.jobs == "/c/jobs"
    assert paths.state_file(layout.KIND_SEARCH) == "/c/SEARCH_CONTROLLER_STATE.json"
    assert paths.result_file(layout.KIND_VARIANCE) == "/c/variance_and_smoothness.json"
    assert paths.state_file(layout.KIND_TRIALS) is None
    assert paths.result_file(layout.KIND_FINAL_CHECKS) is None
    # every controller kind (and the workflow) says what it writes
    assert set(layout.KIND_FILES) == {*layout.CONTROLLER_KINDS, layout.KIND_WORKFLOW}
    assert layout.workflow_dir("/r", "wf") == "/r/Workflow_wf"
    with pytest.raises(UsageError):
        layout.workflow_dir("/r", "a b")


def test_the_old_module_names_are_layout_names() -> None:
    from proxytask.controllers import final_checks, search, selection, variance, workflow

    assert variance.RESULT_FILE == layout.VARIANCE_RESULT
    assert selection.REFERENCE_MODELS == layout.REFERENCE_MODELS
    assert search.SEARCH_STATE == layout.SEARCH_STATE
    assert final_checks.FINAL_CHECKS_STATE == layout.FINAL_CHECKS_STATE
    assert workflow.WORKFLOW_STATE == layout.WORKFLOW_STATE
    assert selection.LATENCY_SOURCES is final_checks.LATENCY_SOURCES


def _controller_dir(tmp_path: Path) -> Path:
    cdir = tmp_path / "Model_Selection_demo_20260101_000000"
    for i, (acc, lat) in enumerate([(0.9, 2.0), (0.8, 1.0)], start=1):
        tdir = str(cdir / "jobs" / "round1" / str(i))
        trainer.save_nas_params(tdir, {"w": i})
        trainer.update_trial_training_accuracy_metric(tdir, acc, 0, 9, 36.0, 10)
        trainer.update_trial_training_latency_metric(tdir, lat)
    bad = str(cdir / "jobs" / "round1" / "3")
    trainer.save_nas_params(bad, {"w": 3})
    with pytest.raises(trainer.NonFiniteMetricError):
        trainer.update_trial_training_accuracy_metric(bad, float("inf"), 0, 0, 1.0, 10)
    return cdir


def test_status_of_a_controller_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cdir = _controller_dir(tmp_path)
    assert cli.main(["status", str(cdir)]) == 0
    out = capsys.readouterr().out
    assert "(Model_Selection)" in out
    assert "job round1: 3 trials, 2 complete, 1 failed" in out
    assert "round1/1" in out and "0.9000" in out and "nan:" in out
    assert cli.main(["status", "--json", str(cdir / "jobs" / "round1" / "2")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "trial" and data["jobs"][0]["trials"][0]["accuracy"] == 0.8
    assert cli.main(["status", str(cdir / "jobs" / "round1")]) == 0
    assert "(job)" in capsys.readouterr().out
