"""The executor contract test suite: every Executor implementation must pass it.

Subclass :class:`ExecutorContract` in a test module, name the subclass ``Test...`` and fill
in the hooks; pytest then runs every ``test_*`` method against your executor::

    class TestMyExecutor(ExecutorContract):
        def make_executor(self, max_parallel_trials: int) -> Executor:
            return MyExecutor(max_parallel_trials=max_parallel_trials)

        def make_spec(self, root, trial_id, behaviour, timeout_secs=None) -> TrialSpec:
            ...

        def advance(self, executor, seconds) -> None:
            time.sleep(seconds)          # or clock.sleep(seconds) for a simulated clock

Behaviours a spec must produce: ``ok`` (reports a few cycles, exits 0), ``crash`` (exits
non-zero after a report), ``nan`` (reports NaN through the trainer API), ``hang`` (runs until
stopped, never reports again) and ``slow`` (starts late, then as ``ok``).
"""

from __future__ import annotations

import abc
import pathlib
from collections.abc import Callable
from typing import Any

import pytest

from proxytask.core import layout, storage
from proxytask.core.errors import ExecutorError
from proxytask.executors.base import Executor, FailureCause, TrialSpec, TrialState, TrialStatus
from proxytask.trainer import contract as trainer

__all__ = ["BEHAVIOURS", "ExecutorContract"]

BEHAVIOURS = ("ok", "crash", "nan", "hang", "slow")


class ExecutorContract(abc.ABC):
    """Contract tests for :class:`~proxytask.executors.base.Executor` implementations."""

    #: Executor-time budget for one trial to reach a state (real seconds for real processes).
    wait_timeout_secs: float = 30.0
    #: Executor-time step between polls.
    poll_secs: float = 0.02
    #: Grace passed to ``stop``.
    stop_grace_secs: float = 2.0

    # ---- hooks ------------------------------------------------------------------------------

    @abc.abstractmethod
    def make_executor(self, max_parallel_trials: int) -> Executor:
        """A fresh executor allowing ``max_parallel_trials`` trials at once."""

    @abc.abstractmethod
    def make_spec(
        self,
        root: pathlib.Path,
        trial_id: str,
        behaviour: str,
        timeout_secs: float | None = None,
    ) -> TrialSpec:
        """A spec for ``trial_id`` with its trial dir under ``root``, showing ``behaviour``."""

    @abc.abstractmethod
    def advance(self, executor: Executor, seconds: float) -> None:
        """Let ``seconds`` of the executor's time pass (sleep, or advance a simulated clock)."""

    def assert_nothing_running(self, executor: Executor) -> None:
        """Check no trial process of ``executor`` is alive (override to check real pids)."""
        for status in executor.statuses().values():
            assert status.state.is_terminal, status

    # ---- helpers ----------------------------------------------------------------------------

    def wait_for(
        self,
        executor: Executor,
        predicate: Callable[[], bool],
        what: str,
        timeout_secs: float | None = None,
    ) -> None:
        """Advance the executor's time until ``predicate()`` holds; fail after the timeout."""
        budget = self.wait_timeout_secs if timeout_secs is None else timeout_secs
        waited = 0.0
        while not predicate():
            if waited >= budget:
                pytest.fail(f"timed out after {budget} s waiting for {what}")
            self.advance(executor, self.poll_secs)
            waited += self.poll_secs

    def wait_terminal(self, executor: Executor, trial_id: str) -> TrialStatus:
        """Wait until the trial ended; return its status."""
        self.wait_for(
            executor,
            lambda: executor.status(trial_id).state.is_terminal,
            f"trial {trial_id} to end",
        )
        return executor.status(trial_id)

    def _executor(self, request: pytest.FixtureRequest, max_parallel_trials: int) -> Executor:
        executor = self.make_executor(max_parallel_trials)
        request.addfinalizer(executor.close)
        return executor

    def _launch_one(
        self,
        request: pytest.FixtureRequest,
        root: pathlib.Path,
        behaviour: str,
        *,
        slots: int = 1,
        timeout_secs: float | None = None,
    ) -> tuple[Executor, TrialSpec]:
        """A fresh executor with ``slots`` slots, and trial ``job/1`` launched on it."""
        executor = self._executor(request, slots)
        spec = self.make_spec(root, "job/1", behaviour, timeout_secs=timeout_secs)
        executor.launch(spec)
        return executor, spec

    def _launch_two(
        self, request: pytest.FixtureRequest, root: pathlib.Path, first: str, second: str
    ) -> tuple[Executor, TrialSpec, TrialSpec]:
        """A one-slot executor running ``job/1`` (``first``) with ``job/2`` queued behind it."""
        executor, spec = self._launch_one(request, root, first)
        queued = self.make_spec(root, "job/2", second)
        executor.launch(queued)
        return executor, spec, queued

    def _ended(
        self, request: pytest.FixtureRequest, root: pathlib.Path, behaviour: str, **kwargs: Any
    ) -> tuple[TrialSpec, TrialStatus]:
        """Launch ``job/1`` showing ``behaviour`` and wait until it ended; its final status."""
        executor, spec = self._launch_one(request, root, behaviour, **kwargs)
        return spec, self.wait_terminal(executor, spec.trial_id)

    # ---- the contract -----------------------------------------------------------------------

    def test_ok_trial_succeeds_and_writes_metrics(
        self, tmp_path: pathlib.Path, request: pytest.FixtureRequest
    ) -> None:
        executor, spec = self._launch_one(request, tmp_path, "ok", slots=2)
        first = executor.status(spec.trial_id)
        assert first.state in (TrialState.PENDING, TrialState.RUNNING)
        assert executor.known_trials() == [spec.trial_id]
        status = self.wait_terminal(executor, spec.trial_id)
        assert status.state is TrialState.SUCCEEDED, status
        assert status.exit_code == 0 and status.cause is None
        assert status.started_at is not None and status.ended_at is not None
        assert status.started_at <= status.ended_at
        metrics = trainer.read_trial_training_metrics(spec.trial_dir)
        assert metrics is not None and len(metrics.training_accuracy_over_steps) >= 2
        assert trainer.load_nas_params(spec.trial_dir)

    def test_launching_a_live_id_raises_and_an_ended_one_runs_again(
        self, tmp_path: pathlib.Path, request: pytest.FixtureRequest
    ) -> None:
        executor, spec = self._launch_one(request, tmp_path, "ok", slots=2)
        with pytest.raises(ExecutorError):
            executor.launch(spec)
        assert self.wait_terminal(executor, spec.trial_id).state is TrialState.SUCCEEDED
        executor.launch(spec)  # a retry of an ended trial (the controllers' restarts)
        assert self.wait_terminal(executor, spec.trial_id).state is TrialState.SUCCEEDED

    def test_unknown_ids_raise_key_error(
        self, tmp_path: pathlib.Path, request: pytest.FixtureRequest
    ) -> None:
        executor = self._executor(request, 1)
        with pytest.raises(KeyError):
            executor.status("no/such")
        with pytest.raises(KeyError):
            executor.stop("no/such")

    def test_stopping_a_hanging_trial_ends_it_stopped(
        self, tmp_path: pathlib.Path, request: pytest.FixtureRequest
    ) -> None:
        executor, spec = self._launch_one(request, tmp_path, "hang")
        self.wait_for(
            executor,
            lambda: executor.status(spec.trial_id).state is TrialState.RUNNING,
            "the trial to run",
        )
        self.advance(executor, 0.2)
        assert executor.status(spec.trial_id).state is TrialState.RUNNING
        executor.stop(spec.trial_id, grace_secs=self.stop_grace_secs)
        status = self.wait_terminal(executor, spec.trial_id)
        assert status.state is TrialState.STOPPED, status
        assert status.cause is None

    def test_stopping_an_ended_trial_is_a_no_op(
        self, tmp_path: pathlib.Path, request: pytest.FixtureRequest
    ) -> None:
        executor, spec = self._launch_one(request, tmp_path, "ok")
        before = self.wait_terminal(executor, spec.trial_id)
        executor.stop(spec.trial_id, grace_secs=self.stop_grace_secs)
        assert executor.status(spec.trial_id) == before

    def test_crash_fails_with_cause_crash(
        self, tmp_path: pathlib.Path, request: pytest.FixtureRequest
    ) -> None:
        _, status = self._ended(request, tmp_path, "crash")
        assert (status.state, status.cause) == (TrialState.FAILED, FailureCause.CRASH), status
        assert status.exit_code not in (None, 0)
        assert status.message

    def test_nan_fails_with_cause_nan(
        self, tmp_path: pathlib.Path, request: pytest.FixtureRequest
    ) -> None:
        spec, status = self._ended(request, tmp_path, "nan")
        assert (status.state, status.cause) == (TrialState.FAILED, FailureCause.NAN), status
        failure = storage.read_json(layout.trial_file(spec.trial_dir, layout.TRIAL_FAILURE))
        assert failure is not None and failure["cause"] == "nan"

    def test_slow_trial_succeeds(
        self, tmp_path: pathlib.Path, request: pytest.FixtureRequest
    ) -> None:
        assert self._ended(request, tmp_path, "slow")[1].state is TrialState.SUCCEEDED

    def test_concurrency_limit_queues_extra_trials(
        self, tmp_path: pathlib.Path, request: pytest.FixtureRequest
    ) -> None:
        executor = self._executor(request, 2)
        assert executor.free_slots() == 2
        specs = [self.make_spec(tmp_path, f"job/{i}", "hang") for i in (1, 2, 3)]
        executor.launch(specs[0])
        assert executor.free_slots() == 1
        for spec in specs[1:]:
            executor.launch(spec)
        assert executor.free_slots() == 0
        states = [executor.status(s.trial_id).state for s in specs]
        assert states[2] is TrialState.PENDING, states
        assert sum(1 for s in states if s is TrialState.RUNNING) <= 2
        self.wait_for(
            executor,
            lambda: all(executor.status(s.trial_id).state is TrialState.RUNNING for s in specs[:2]),
            "two trials to run",
        )
        self.advance(executor, 0.2)
        assert executor.status(specs[2].trial_id).state is TrialState.PENDING
        executor.stop(specs[0].trial_id, grace_secs=self.stop_grace_secs)
        self.wait_for(
            executor,
            lambda: executor.status(specs[2].trial_id).state is TrialState.RUNNING,
            "the queued trial to start",
        )
        assert executor.status(specs[0].trial_id).state is TrialState.STOPPED
        assert executor.free_slots() == 0
        running = [executor.status(s.trial_id).state for s in specs]
        assert running.count(TrialState.RUNNING) == 2

    def test_stopping_a_queued_trial_never_starts_it(
        self, tmp_path: pathlib.Path, request: pytest.FixtureRequest
    ) -> None:
        executor, first, second = self._launch_two(request, tmp_path, "hang", "ok")
        assert executor.status(second.trial_id).state is TrialState.PENDING
        executor.stop(second.trial_id)
        status = executor.status(second.trial_id)
        assert status.state is TrialState.STOPPED and status.started_at is None
        assert executor.free_slots() == 0
        executor.stop(first.trial_id, grace_secs=self.stop_grace_secs)
        self.wait_terminal(executor, first.trial_id)
        assert executor.free_slots() == 1
        assert trainer.read_trial_training_metrics(second.trial_dir) is None

    def test_desired_pct_zero_before_the_first_cycle_ends_cleanly(
        self, tmp_path: pathlib.Path, request: pytest.FixtureRequest
    ) -> None:
        executor = self._executor(request, 1)
        spec = self.make_spec(tmp_path, "job/1", "ok")
        trainer.set_stop_training(spec.trial_dir, desired_training_pct=0.0)
        executor.launch(spec)
        status = self.wait_terminal(executor, spec.trial_id)
        assert status.state is TrialState.SUCCEEDED, status
        assert status.exit_code == 0
        metrics = trainer.read_trial_training_metrics(spec.trial_dir)
        assert metrics is None or not metrics.training_accuracy_over_steps

    def test_timeout_fails_with_cause_timeout(
        self, tmp_path: pathlib.Path, request: pytest.FixtureRequest
    ) -> None:
        _, status = self._ended(request, tmp_path, "hang", timeout_secs=0.5)
        assert (status.state, status.cause) == (TrialState.FAILED, FailureCause.TIMEOUT), status

    def test_close_leaves_nothing_running(
        self, tmp_path: pathlib.Path, request: pytest.FixtureRequest
    ) -> None:
        executor, running, queued = self._launch_two(request, tmp_path, "hang", "hang")
        self.wait_for(
            executor,
            lambda: executor.status(running.trial_id).state is TrialState.RUNNING,
            "the trial to run",
        )
        executor.close()
        statuses = executor.statuses()
        assert statuses[running.trial_id].state is TrialState.STOPPED
        assert statuses[queued.trial_id].state is TrialState.STOPPED
        assert executor.free_slots() == 0
        self.assert_nothing_running(executor)
        executor.close()  # idempotent
        with pytest.raises(ExecutorError):
            executor.launch(self.make_spec(tmp_path, "job/3", "ok"))
