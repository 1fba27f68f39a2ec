"""The executor skeleton's seams: the registry, what the CLI asks a class, causes from files."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from proxytask.core import layout
from proxytask.core.errors import UsageError
from proxytask.executors.base import Executor, FailureCause, TrainerSpec, TrialState, TrialStatus
from proxytask.executors.causes import failure_message, with_reported_cause
from proxytask.executors.factory import EXECUTOR_NAMES, executor_class
from proxytask.executors.local import LocalExecutor
from proxytask.executors.monitor import TrialMonitor
from proxytask.executors.replay import ReplayExecutor
from proxytask.trainer import contract as trainer


def test_the_registry_names_every_executor_and_refuses_others() -> None:
    assert EXECUTOR_NAMES[:3] == ("local", "replay", "ray")  # local first: the default
    for name in EXECUTOR_NAMES:
        assert issubclass(executor_class(name), Executor)
    assert executor_class("local") is LocalExecutor
    assert executor_class("replay") is ReplayExecutor
    assert _executor_choices() == EXECUTOR_NAMES
    with pytest.raises(UsageError, match=r"--executor must be local, replay.* or \w+, got .k8s."):
        executor_class("k8s")


def _executor_choices() -> tuple[str, ...] | None:
    from proxytask.controllers.command_options import TRIAL_OPTIONS

    return next(o.choices for o in TRIAL_OPTIONS if o.name == "executor")


def test_the_cli_asks_the_class_instead_of_testing_names() -> None:
    assert LocalExecutor.poll_interval_secs == 1.0
    assert ReplayExecutor.poll_interval_secs == 30.0
    with pytest.raises(UsageError, match="--trainer must start with a program"):
        LocalExecutor.check_trainer(TrainerSpec(("no-such-trainer-command-xyz",)))
    ReplayExecutor.check_trainer(TrainerSpec(("no-such-trainer-command-xyz",)))  # no program
    with pytest.raises(UsageError, match="--replay-table must be given"):
        ReplayExecutor.from_options({"max_parallel_trials": 1})


def _failed(code: int, cause: FailureCause, tail: str = "") -> TrialStatus:
    return TrialStatus("j/1", TrialState.FAILED, code, cause, failure_message(code, cause, tail))


def test_a_recorded_cause_wins_over_the_exit_code_and_keeps_the_last_stderr_line() -> None:
    crashed = _failed(1, FailureCause.CRASH, "Traceback\nRuntimeError: boom")
    assert with_reported_cause(crashed, FailureCause.OOM) == _failed(
        1, FailureCause.OOM, "Traceback\nRuntimeError: boom"
    )
    ok = TrialStatus("j/1", TrialState.SUCCEEDED, 0, None, "exited with code 0")
    assert with_reported_cause(ok, FailureCause.NAN) == _failed(0, FailureCause.NAN)
    assert with_reported_cause(ok, None) is ok


@pytest.mark.parametrize(
    "status",
    [
        TrialStatus("j/1", TrialState.STOPPED, -15, None, "stopped by the controller"),
        _failed(-15, FailureCause.TIMEOUT),
        TrialStatus("j/1", TrialState.FAILED, None, FailureCause.LOST, "lost"),
        TrialStatus("j/1", TrialState.RUNNING),
    ],
)
def test_stops_timeouts_and_lost_trials_keep_the_executors_verdict(status: TrialStatus) -> None:
    assert with_reported_cause(status, FailureCause.NAN) is status


def test_the_monitor_adds_only_a_cause_recorded_since_it_began_watching(
    tmp_path: pathlib.Path,
) -> None:
    stale, fresh = str(tmp_path / "stale"), str(tmp_path / "fresh")
    trainer.record_trial_failure(stale, "nan", "from an earlier attempt")
    monitor = TrialMonitor()
    monitor.watch("j/1", stale)
    monitor.watch("j/2", fresh)
    trainer.record_trial_failure(fresh, "oom", "CUDA out of memory")
    ok = TrialStatus("j/1", TrialState.SUCCEEDED, 0, None, "exited with code 0")
    assert monitor.explain(ok) is ok  # the stale record does not count
    crashed = dataclasses.replace(_failed(1, FailureCause.CRASH), trial_id="j/2")
    explained = monitor.explain(crashed)
    assert (explained.state, explained.cause) == (TrialState.FAILED, FailureCause.OOM)
    assert monitor.explain(TrialStatus("x/9", TrialState.FAILED, 1)).trial_id == "x/9"
    assert (tmp_path / "fresh" / layout.TRIAL_FAILURE).exists()
