"""The crash windows that random kills miss: a refused resume, a kill between workflow stages."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proxytask import cli
from proxytask.controllers.state import EventLog, TrialRecordState
from proxytask.controllers.tracker import TrialSettings, TrialTracker
from proxytask.controllers.variance import VarianceController
from proxytask.core.clock import SimulatedClock
from proxytask.core.lease import LEASE_FILE, acquire_lease
from proxytask.executors.command import parse_trainer_command
from proxytask.executors.replay import ReplayExecutor, ReplayTable
from proxytask.trainer import contract as pt
from tests.controllers.test_variance import FAKE
from tests.controllers.test_variance import _cli as variance_cli
from tests.controllers.test_workflow import _config as workflow_config
from tests.s3_server import ROOT
from tests.unit.test_trials import TABLE


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root``: its path and a digest of its bytes."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def variance_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    args = ["--trainer-args", "cycles=3", "cycle_secs=0.01", "--num-copies=3"]
    assert cli.main(variance_cli(tmp_path, FAKE, *args, "--max-variance=0.01")) == 0
    capsys.readouterr()
    (cdir,) = (tmp_path / "runs").iterdir()
    return cdir


def test_a_resume_refused_for_the_wrong_kind_of_dir_changes_nothing_in_it(
    variance_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(variance_dir)
    code = cli.main(
        ["select-models", f"--trainer={FAKE}", f"--previous-model-selection-dir={variance_dir}"]
    )
    assert code == 2
    capsys.readouterr()
    assert _snapshot(variance_dir) == before
    info = json.loads((variance_dir / "CONTROLLER_INFO.json").read_text())
    assert info["kind"] == "Variance_Measurement" and info["options"]["max_variance"] == 0.01


def test_a_resume_refused_for_a_corrupt_state_changes_nothing_in_the_dir(
    variance_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = variance_dir / VarianceController.state_file
    state.write_text('{"version": 1, "trials": ')  # torn by hand
    before = _snapshot(variance_dir)
    assert cli.main(["variance", f"--previous-variance-dir={variance_dir}"]) == 2
    assert str(state) in capsys.readouterr().err
    assert _snapshot(variance_dir) == before


def test_a_workflow_killed_before_a_stages_state_exists_resumes_on_the_next_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = workflow_config(tmp_path)
    created = VarianceController.create

    def killed(*args: object, **kwargs: object) -> VarianceController:
        raise KeyboardInterrupt  # the kill: the stage's dir exists, its state does not yet

    monkeypatch.setattr(VarianceController, "create", killed)
    assert cli.main(["run", str(path)]) == 130
    wdir = tmp_path / "runs" / "Workflow_wf"
    saved = wdir / "WORKFLOW_STATE.json"
    state = json.loads(saved.read_text()) if saved.exists() else {"stages": {}}
    assert state["stages"].get("variance", {}).get("dir") is None  # not recorded: not resumable
    monkeypatch.setattr(VarianceController, "create", created)
    assert cli.main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "== search" in out and "recommendation:" in out


def _tracker(tmp_path: Path) -> TrialTracker:
    clock = SimulatedClock(start=1000.0)
    executor = ReplayExecutor(ReplayTable.from_dict(TABLE), clock)
    settings = TrialSettings(trainer=parse_trainer_command("replay-trainer"))
    return TrialTracker(executor, clock, str(tmp_path), settings, EventLog(None))


def _finished_files(trial_dir: str, latency: float | None) -> None:
    for k in range(1, 5):
        pt.update_trial_training_accuracy_metric(
            trial_dir, 0.2 * k, 25 * k - 25, 25 * k - 1, 1.0, 100
        )
    if latency is not None:
        pt.update_trial_training_latency_metric(trial_dir, latency)


@pytest.mark.parametrize(
    ("peer_latency", "expects"), [(True, False), (False, False), (False, True)]
)
def test_a_trial_killed_while_measuring_its_latency_is_trained_again(
    tmp_path: Path, peer_latency: bool, expects: bool
) -> None:
    # the controller died after trial 2 reported 100 % but before its latency; trial 1 (done
    # earlier) shows the trainer reports latencies, or the tool expects them (model selection,
    # where no trial may have finished before the kill), so trial 2 owes one
    tracker = _tracker(tmp_path)
    tracker.expects_latency = expects
    for number in (1, 2):
        tracker.plan("job", number, {"width": 8}, {})
    for key, state in (("job/1", TrialRecordState.SUCCEEDED), ("job/2", TrialRecordState.RUNNING)):
        record = tracker.records[key]
        Path(record.trial_dir).mkdir(parents=True)
        tracker.records[key] = dataclasses.replace(record, state=state, started_at=1000.0)
        tracker.monitor.watch(key, record.trial_dir)
    _finished_files(tracker.records["job/1"].trial_dir, 1.5 if peer_latency else None)
    _finished_files(tracker.records["job/2"].trial_dir, None)
    replanned = tracker.recover()
    if peer_latency or expects:
        assert replanned == ["job/2"]
        assert tracker.records["job/2"].state is TrialRecordState.PLANNED
    else:  # a trainer that reports no latency owes none: accepted from its files
        assert replanned == []
        assert tracker.records["job/2"].state is TrialRecordState.SUCCEEDED


def test_a_second_resume_of_a_running_controller_is_refused_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--trainer-args", "cycles=40", "cycle_secs=0.1", "--num-copies=2"]
    first = subprocess.Popen(
        [sys.executable, "-m", "proxytask.cli", *variance_cli(tmp_path, FAKE, *args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        leases: list[Path] = []
        while not leases and time.monotonic() < deadline:
            leases = list((tmp_path / "runs").glob(f"*/{LEASE_FILE}"))
            time.sleep(0.05)
        assert leases, "the first run never took its lease"
        cdir = leases[0].parent
        code = cli.main(["variance", f"--previous-variance-dir={cdir}"])
        err = capsys.readouterr().err
        assert code == 2
        assert "is in use by another proxytask command" in err and f"pid {first.pid}" in err
        assert err.count("\n") == 1  # one line
    finally:
        _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert not (cdir / LEASE_FILE).exists()  # released at the end


def test_a_second_run_of_a_workflow_in_use_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workflow_config(tmp_path)
    wdir = tmp_path / "runs" / "Workflow_wf"
    wdir.mkdir(parents=True)
    holder = acquire_lease(str(wdir), "proxytask run workflow.yaml")
    try:
        assert cli.main(["run", str(path)]) == 2
        assert "is in use by another proxytask command" in capsys.readouterr().err
        assert sorted(p.name for p in wdir.iterdir()) == [LEASE_FILE]  # nothing else written
    finally:
        holder.release()


def test_trials_that_stopped_for_a_frozen_controllers_heartbeat_are_trained_again(
    tmp_path: Path,
) -> None:
    # the controller posts its heartbeat, then is frozen (no poll) for longer than the
    # trials' threshold: they stop themselves at a fraction of their steps and exit 0
    from proxytask.core.clock import SystemClock
    from proxytask.executors.local import LocalExecutor
    from proxytask.testing.specs import FAKE_TRAINER

    clock = SystemClock()
    executor = LocalExecutor(max_parallel_trials=2, gpus=[], grace_secs=2.0)
    settings = TrialSettings(trainer=FAKE_TRAINER, heartbeat_threshold_secs=2.0)  # beat: 1 s
    tracker = TrialTracker(executor, clock, str(tmp_path), settings, EventLog(None))
    try:
        for number in (1, 2):
            tracker.plan("job", number, {"width": 8}, {"cycles": "50", "cycle_secs": "0.1"})
        tracker.launch_planned()
        tracker.poll()  # the heartbeat is posted
        time.sleep(4.5)  # frozen: the trials see a stale heartbeat after 2 s and stop
        statuses = executor.statuses(["job/1", "job/2"])
        assert all(s.state.is_terminal for s in statuses.values()), statuses
        tracker.poll()
        assert {r.state for r in tracker.records.values()} == {TrialRecordState.PLANNED}
        tracker.launch_planned()
        while not tracker.all_terminal():
            tracker.poll()
            executor.wait(clock, tracker.wait_secs(0.2))
        for record in tracker.records.values():
            assert record.state is TrialRecordState.SUCCEEDED, record.message
            assert record.restarts == 1
    finally:
        executor.close()


@pytest.mark.parametrize("asked", ["target", "stop"])
def test_a_trainer_that_ignores_its_stop_files_is_stopped_through_the_executor(
    tmp_path: Path, asked: str
) -> None:
    from proxytask.core.clock import SystemClock
    from proxytask.executors.local import LocalExecutor
    from proxytask.testing.specs import FAKE_TRAINER

    clock = SystemClock()
    executor = LocalExecutor(max_parallel_trials=1, gpus=[], grace_secs=2.0)
    settings = TrialSettings(trainer=FAKE_TRAINER)
    tracker = TrialTracker(executor, clock, str(tmp_path), settings, EventLog(None))
    args = {"cycles": "100", "cycle_secs": "0.05", "ignore_stop": "True"}
    try:
        # 100 evaluations of 1 % each; asked for 10 % (or to stop after its 5th report)
        tracker.plan("job", 1, {"width": 8}, args, target_pct=10.0 if asked == "target" else 100.0)
        tracker.launch_planned()
        stopped = False
        while not tracker.all_terminal():
            tracker.poll()
            if asked == "stop" and not stopped and tracker.progress("job/1").last_pct >= 5:
                tracker.request_stop("job/1")
                stopped = True
            executor.wait(clock, tracker.wait_secs(0.05, idle_polls=0))
        record = tracker.records["job/1"]
        reached = tracker.progress("job/1").last_pct
        assert reached < 50, reached  # not the 100 % it would have trained
        assert "stopped through the executor" in record.message
        assert "ignores its stop files" in record.message
        if asked == "target":
            assert record.state is TrialRecordState.SUCCEEDED and reached >= 10
        else:
            assert record.state is TrialRecordState.STOPPED
    finally:
        executor.close()


def test_a_damaged_reference_models_file_is_a_usage_error_and_warnings_are_carried(
    tmp_path: Path,
) -> None:
    from proxytask.controllers.search import ReferenceModels
    from proxytask.core.errors import UsageError

    sdir = tmp_path / "sel"
    sdir.mkdir()
    (sdir / "REFERENCE_MODELS.json").write_text(json.dumps({"reference_models": [{"x": 1}]}))
    with pytest.raises(UsageError, match="does not read"):
        ReferenceModels.load(str(sdir))
    models = [
        {"trial_id": str(n), "trial_dir": f"{sdir}/jobs/round4/{n}", "accuracy": 0.5 + n / 10}
        for n in (1, 2)
    ]
    warning = "only 2 of the 6 reference models asked for finished training (failed ...)"
    (sdir / "REFERENCE_MODELS.json").write_text(
        json.dumps({"reference_models": models, "warnings": [warning]})
    )
    assert ReferenceModels.load(str(sdir)).warnings == (warning,)


def test_a_search_on_a_short_reference_set_is_refused_with_the_way_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a selection that ended with 4 of its 6 models (two crashed in the final round): the
    # search cannot rank 4 models and must not label its proxies "Excess trial failures"
    sdir = tmp_path / "sel"
    sdir.mkdir()
    models = [
        {"trial_id": str(n), "trial_dir": f"{sdir}/jobs/round4/{n}", "accuracy": 0.5 + n / 10}
        for n in (1, 2, 3, 4)
    ]
    warning = "only 4 of the 6 reference models asked for finished training (failed ...)."
    (sdir / "REFERENCE_MODELS.json").write_text(
        json.dumps({"reference_models": models, "warnings": [warning]})
    )
    code = cli.main(
        [
            "search",
            f"--trainer={FAKE}",
            f"--root-output-dir={tmp_path / 'runs'}",
            "--job-name=s",
            f"--model-selection-dir={sdir}",
            "--proxy-task-config-generator=tests.fixtures.proxy_generators:good_only",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "at least 5 reference models" in err and "got 4" in err
    assert "only 4 of the 6" in err and "--previous-model-selection-dir" in err
    assert not (tmp_path / "runs").exists()
