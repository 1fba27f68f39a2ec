"""The crash windows that random kills miss: a refused resume, a kill between workflow stages."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from proxytask import cli
from proxytask.controllers.state import EventLog, TrialRecordState
from proxytask.controllers.tracker import TrialSettings, TrialTracker
from proxytask.controllers.variance import VarianceController
from proxytask.core.clock import SimulatedClock
from proxytask.executors.command import parse_trainer_command
from proxytask.executors.replay import ReplayExecutor, ReplayTable
from proxytask.trainer import contract as pt
from tests.controllers.test_variance import FAKE
from tests.controllers.test_variance import _cli as variance_cli
from tests.controllers.test_workflow import _config as workflow_config
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


@pytest.mark.parametrize("peer_latency", [True, False])
def test_a_trial_killed_while_measuring_its_latency_is_trained_again(
    tmp_path: Path, peer_latency: bool
) -> None:
    # the controller died after trial 2 reported 100 % but before its latency; trial 1 (done
    # earlier) shows the trainer reports latencies, so trial 2 owes one and is not accepted
    tracker = _tracker(tmp_path)
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
    if peer_latency:
        assert replanned == ["job/2"]
        assert tracker.records["job/2"].state is TrialRecordState.PLANNED
    else:  # a trainer that reports no latency owes none: accepted from its files
        assert replanned == []
        assert tracker.records["job/2"].state is TrialRecordState.SUCCEEDED
