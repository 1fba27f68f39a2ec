"""TrialBatch: launch, heartbeat, watch and collect outcomes, on replay and local executors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from proxytask import cli
from proxytask.controllers.trials import TrialBatch
from proxytask.core import layout, storage
from proxytask.core.clock import SimulatedClock, SystemClock
from proxytask.executors.base import FailureCause, TrialState
from proxytask.executors.command import build_trial_spec, parse_trainer_command
from proxytask.executors.local import LocalExecutor
from proxytask.executors.replay import Fault, ReplayExecutor, ReplayTable
from proxytask.testing.specs import fake_trainer_spec

TABLE = {
    "format": "proxytask-replay-table",
    "version": 1,
    "curves": [
        {
            "curve_id": f"w{w}",
            "match": {"nas_params": {"width": w}},
            "total_steps": 100,
            "latency": w / 10,
            "points": [[24, w / 200, 60.0], [49, w / 150, 60.0], [99, w / 100, 120.0]],
        }
        for w in (8, 16, 32)
    ],
}


def _specs(root: Path, widths: list[int]) -> list:
    trainer = parse_trainer_command("replay-trainer")
    return [
        build_trial_spec(
            trainer=trainer,
            job_name="job",
            job_dir=str(root / "jobs" / "job"),
            trial_number=i,
            controller_dir=str(root),
            nas_params={"width": w},
        )
        for i, w in enumerate(widths, start=1)
    ]


def test_batch_on_replay_jumps_between_events(tmp_path: Path) -> None:
    clock = SimulatedClock(start=1000.0)
    executor = ReplayExecutor(
        ReplayTable.from_dict(TABLE),
        clock,
        max_parallel_trials=2,
        faults={"job/3": Fault.parse("crash@50")},
    )
    batch = TrialBatch(executor, clock, heartbeat_threshold_secs=900.0)
    for spec in _specs(tmp_path, [8, 16, 32]):
        batch.add(spec)
    seen: list[tuple[str, float]] = []
    outcomes = batch.run(on_progress=lambda p: seen.append((p.trial_id, p.last_pct)))
    states = {o.trial_id: (o.state, o.cause) for o in outcomes}
    assert states["job/1"] == (TrialState.SUCCEEDED, None)
    assert states["job/2"] == (TrialState.SUCCEEDED, None)
    assert states["job/3"] == (TrialState.FAILED, FailureCause.CRASH)
    first = outcomes[0].metrics
    assert first is not None and first.last_pct == 100.0 and first.latency == 0.8
    assert ("job/1", 25.0) in seen and ("job/1", 100.0) in seen
    # two slots: the third trial starts after the first two end (240 s), then crashes at 50 %
    assert 1000.0 + 240.0 + 120.0 <= clock.now() < 1000.0 + 240.0 + 120.0 + 60.0
    beat = storage.read_json(str(tmp_path / "jobs" / "job" / "1" / layout.CONTROLLER_ALIVE))
    assert beat["threshold_secs"] == 900.0


def test_batch_on_local_with_the_fake_trainer(tmp_path: Path) -> None:
    clock = SystemClock()
    with LocalExecutor(max_parallel_trials=2, clock=clock) as executor:
        batch = TrialBatch(executor, clock, poll_interval_secs=0.05)
        batch.add(fake_trainer_spec(tmp_path, "t/1", "ok"))
        batch.add(fake_trainer_spec(tmp_path, "t/2", "nan"))
        outcomes = {o.trial_id: o for o in batch.run()}
    assert outcomes["t/1"].state is TrialState.SUCCEEDED
    assert outcomes["t/1"].metrics is not None and outcomes["t/1"].metrics.last_pct == 100.0
    assert outcomes["t/2"].state is TrialState.FAILED
    assert outcomes["t/2"].cause is FailureCause.NAN
    assert "lower the learning rate" in outcomes["t/2"].message


def test_cli_trial_on_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "table.json"
    table.write_text(json.dumps(TABLE))
    code = cli.main(
        [
            "trial",
            "--trainer=replay-trainer",
            "--search-space=tests.fixtures.spaces:tiny",
            "--architecture",
            '{"width": 16}',
            f"--root-output-dir={tmp_path / 'runs'}",
            "--job-name=r",
            "--executor=replay",
            f"--replay-table={table}",
            "--num-trials=2",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "controller dir:" in out and "r/2: succeeded; final accuracy 0.1600" in out
    (cdir,) = (tmp_path / "runs").iterdir()
    assert cdir.name.startswith("Trials_r_")
    assert cli.main(["status", str(cdir)]) == 0
    assert "job r: 2 trials, 2 complete, 0 failed" in capsys.readouterr().out


def _fake_trial(tmp_path: Path, job: str, behaviour: str, *extra: str) -> list[str]:
    """``proxytask trial`` of the fake trainer with one ``behaviour``, two short cycles."""
    return [
        "trial",
        f"--trainer={sys.executable} -m proxytask.testing.fake_trainer",
        "--search-space=tests.fixtures.spaces:tiny",
        f"--root-output-dir={tmp_path / 'runs'}",
        f"--job-name={job}",
        *extra,
        "--trainer-args",
        f"behaviour={behaviour}",
        "cycles=2",
        "cycle_secs=0.01",
    ]


def test_cli_trial_local_failure_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(_fake_trial(tmp_path, "l", "crash"))
    out = capsys.readouterr().out
    assert code == 1
    assert ("l/1: failed (crash)" in out and "stderr.log" in out) or "read the trial" in out


@pytest.mark.parametrize(
    ("behaviour", "extra", "expected"),
    [
        ("oom", (), "failed (oom)"),
        ("nan", (), "failed (nan)"),
        ("selfkill", (), "failed (killed)"),
        ("torn", (), "failed (killed)"),  # died halfway through writing its metrics file
        ("silent", (), "failed (incomplete): exited 0 at 50.00 % of the 100.00 % asked"),
        ("hang", ("--report-timeout-secs=2",), "failed (no_report): no new accuracy report"),
        ("hang", ("--trial-timeout-secs=2",), "failed (timeout)"),
    ],
)
def test_cli_trial_names_each_injected_fault_as_the_tools_judge_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    behaviour: str,
    extra: tuple[str, ...],
    expected: str,
) -> None:
    code = cli.main(_fake_trial(tmp_path, "f", behaviour, *extra))
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"f/1: {expected}" in out, out


def test_a_silent_trial_is_stopped_and_judged_no_report(tmp_path: Path) -> None:
    from proxytask.controllers.state import (
        SILENCED_MESSAGE,
        EventLog,
        TrialRecord,
        TrialRecordState,
    )
    from proxytask.controllers.tracker import TrialSettings, TrialTracker

    clock = SimulatedClock(start=1000.0)
    executor = ReplayExecutor(
        ReplayTable.from_dict(TABLE), clock, faults={"job/1": Fault.parse("hang@30")}
    )
    settings = TrialSettings(
        trainer=parse_trainer_command("replay-trainer"), report_timeout_secs=300
    )
    tracker = TrialTracker(
        executor, clock, str(tmp_path), settings, EventLog(str(tmp_path / "events.jsonl"))
    )
    tracker.plan("job", 1, {"width": 8}, {})
    tracker.launch_planned()
    saw_silenced = False
    while not tracker.all_terminal():
        tracker.poll()
        record = tracker.records["job/1"]
        if record.silenced and record.state is TrialRecordState.RUNNING:
            saw_silenced = True
            # the JSON keeps the message marker the format always had
            assert record.to_dict()["message"] == SILENCED_MESSAGE
            assert "silenced" not in record.to_dict()
            assert TrialRecord.from_dict(record.to_dict()) == record
        clock.sleep(tracker.wait_secs(5.0))
    record = tracker.records["job/1"]
    assert saw_silenced
    assert record.state is TrialRecordState.FAILED and record.cause == "no_report"
    assert record.message.startswith("no new accuracy report for 300 s") and not record.silenced
    assert TrialRecord.from_dict(record.to_dict()) == record


def test_the_report_timeout_counts_from_a_queued_trials_real_start(tmp_path: Path) -> None:
    from proxytask.controllers.state import EventLog, TrialRecordState
    from proxytask.controllers.tracker import TrialSettings, TrialTracker

    # one slot, three trials of 240 s each (reports 60 s, 60 s and 120 s apart): the third
    # starts 480 s after its launch, well past the 150 s limit it must not be held to
    clock = SimulatedClock(start=1000.0)
    executor = ReplayExecutor(ReplayTable.from_dict(TABLE), clock, max_parallel_trials=1)
    settings = TrialSettings(
        trainer=parse_trainer_command("replay-trainer"), report_timeout_secs=150
    )
    tracker = TrialTracker(
        executor, clock, str(tmp_path), settings, EventLog(str(tmp_path / "events.jsonl"))
    )
    for number in (1, 2, 3):
        tracker.plan("job", number, {"width": 8}, {})
    tracker.launch_planned()
    while not tracker.all_terminal():
        tracker.poll()
        clock.sleep(tracker.wait_secs(5.0))
    states = {key: record.state for key, record in tracker.records.items()}
    assert states == {f"job/{n}": TrialRecordState.SUCCEEDED for n in (1, 2, 3)}, [
        r.message for r in tracker.records.values()
    ]
    assert clock.now() >= 1000.0 + 3 * 240


def test_record_states_read_and_write_plain_strings() -> None:
    from proxytask.controllers.state import TrialRecord, TrialRecordState

    record = TrialRecord.from_dict(
        {
            "job": "j",
            "number": 2,
            "trial_dir": "/d",
            "nas_params": None,
            "trainer_args": {},
            "state": "stopped",
        }
    )
    assert record.state is TrialRecordState.STOPPED and record.is_terminal
    assert record.state == "stopped" and f"{record.state}" == "stopped"
    assert json.dumps(record.to_dict()["state"]) == '"stopped"'
    assert not TrialRecordState.RUNNING.is_terminal and TrialRecordState.FAILED.is_terminal


_EMPTY_LOOP_TRAINER = """
import sys, time
sys.path.insert(0, {src!r})
from proxytask.vertex import proxy_task_utils
job_dir = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--job-dir=")][0]
time.sleep(20)  # a long start-up: building the model, loading data
accuracies = []
step = -1
while not proxy_task_utils.get_stop_training(job_dir, step, 100):
    step += 10
    accuracies.append(0.5)
    proxy_task_utils.update_trial_training_accuracy_metric(job_dir, 0.5, step - 9, step, 1.0, 100)
print(max(accuracies))  # a tf_vision-style loop: an empty one crashes here
"""


def test_a_stop_before_the_first_report_goes_through_the_executor(tmp_path: Path) -> None:
    """A trainer written for the reference never saw "stop now" before its first evaluation;
    told so during its start-up, it is stopped by the executor, and ends as stopped."""
    import sys as _sys
    import time as _time

    from proxytask.controllers.state import EventLog, TrialRecordState
    from proxytask.controllers.tracker import TrialSettings, TrialTracker
    from proxytask.core.clock import SystemClock
    from proxytask.executors.local import LocalExecutor

    src = str(Path(__file__).resolve().parents[2] / "src")
    script = tmp_path / "trainer.py"
    script.write_text(_EMPTY_LOOP_TRAINER.format(src=src))
    clock = SystemClock()
    settings = TrialSettings(trainer=parse_trainer_command(f"{_sys.executable} {script}"))
    with LocalExecutor(max_parallel_trials=1, clock=clock) as executor:
        tracker = TrialTracker(
            executor, clock, str(tmp_path / "c"), settings, EventLog(str(tmp_path / "e.jsonl"))
        )
        tracker.plan("job", 1, {"width": 8}, {}, target_pct=0.0)
        tracker.launch_planned()
        _time.sleep(1.0)
        tracker.poll()
        tracker.request_stop("job/1")
        start = _time.monotonic()
        while not tracker.all_terminal() and _time.monotonic() - start < 15:
            tracker.poll()
            _time.sleep(0.2)
    record = tracker.records["job/1"]
    assert record.state is TrialRecordState.STOPPED, record
    assert record.message == "stopped by the controller before its first report"
    assert _time.monotonic() - start < 15  # not the trainer's 20-s start-up
