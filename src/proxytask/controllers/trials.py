"""Run a set of trials on any executor: launch, heartbeat, watch, collect how each ended.

This is the shared engine under every controller: it advances by :meth:`TrialBatch.step`
(poll → heartbeat) and never sleeps itself; :meth:`TrialBatch.run` is the loop, sleeping on
the injected clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from proxytask.core import storage
from proxytask.core.clock import Clock
from proxytask.executors.base import Executor, FailureCause, TrialSpec, TrialState, TrialStatus
from proxytask.executors.monitor import TrialMonitor, TrialProgress
from proxytask.trainer.contract import TrialTrainingMetrics, write_controller_heartbeat

__all__ = ["TrialBatch", "TrialOutcome"]


@dataclasses.dataclass(frozen=True)
class TrialOutcome:
    """How one trial ended, with what its files say."""

    trial_id: str
    trial_dir: str
    state: TrialState
    cause: FailureCause | None
    exit_code: int | None
    message: str
    metrics: TrialTrainingMetrics | None


class TrialBatch:
    """Trials launched together and followed until all have ended.

    Example::

        batch = TrialBatch(executor, clock)
        for spec in specs:
            batch.add(spec)
        outcomes = batch.run(on_progress=print)
    """

    def __init__(
        self,
        executor: Executor,
        clock: Clock,
        *,
        heartbeat_threshold_secs: float = 900.0,
        poll_interval_secs: float = 0.5,
        monitor: TrialMonitor | None = None,
    ) -> None:
        self.executor = executor
        self.clock = clock
        self.monitor = monitor or TrialMonitor()
        self.heartbeat_threshold_secs = heartbeat_threshold_secs
        self.poll_interval_secs = poll_interval_secs
        self._heartbeat_every = max(1.0, min(60.0, heartbeat_threshold_secs / 4))
        self._specs: dict[str, TrialSpec] = {}
        self._statuses: dict[str, TrialStatus] = {}
        self._last_beat = -float("inf")

    def add(self, spec: TrialSpec) -> None:
        """Create the trial dir, post a heartbeat into it, and launch the trial."""
        storage.makedirs(spec.trial_dir)
        write_controller_heartbeat(spec.trial_dir, self.clock.now(), self.heartbeat_threshold_secs)
        self._specs[spec.trial_id] = spec
        self.monitor.watch(spec.trial_id, spec.trial_dir)
        self.executor.launch(spec)

    def step(self) -> dict[str, TrialProgress]:
        """Poll statuses and files once, and post heartbeats when due. Returns changed trials."""
        now = self.clock.now()
        live = [tid for tid in self._specs if not self._is_done(tid)]
        self._statuses.update(self.executor.statuses(live))  # one poll for all
        if now - self._last_beat >= self._heartbeat_every:
            for tid in live:
                if not self._statuses[tid].state.is_terminal:
                    write_controller_heartbeat(
                        self._specs[tid].trial_dir, now, self.heartbeat_threshold_secs
                    )
            self._last_beat = now
        return self.monitor.poll(live)

    def _is_done(self, trial_id: str) -> bool:
        status = self._statuses.get(trial_id)
        return status is not None and status.state.is_terminal

    def is_finished(self) -> bool:
        """True once every trial has ended."""
        return all(self._is_done(tid) for tid in self._specs)

    def run(self, on_progress: Callable[[TrialProgress], None] | None = None) -> list[TrialOutcome]:
        """Step until every trial ended, sleeping on the clock in between."""
        while True:
            for progress in self.step().values():
                if on_progress is not None:
                    on_progress(progress)
            if self.is_finished():
                break
            self.clock.sleep(self._wait_secs())
        self.monitor.poll(list(self._specs))  # the last reports written before exit
        return self.outcomes()

    def _wait_secs(self) -> float:
        # A replay executor knows its next event: jump there, but never past a heartbeat.
        upcoming = self.executor.next_event_at()
        if upcoming is None:
            return self.poll_interval_secs
        return min(max(upcoming - self.clock.now(), 1e-3), self._heartbeat_every)

    def outcomes(self) -> list[TrialOutcome]:
        """How each trial ended so far, in launch order."""
        result = []
        for tid, spec in self._specs.items():
            status = self.monitor.explain(self._statuses.get(tid) or self.executor.status(tid))
            result.append(
                TrialOutcome(
                    trial_id=tid,
                    trial_dir=spec.trial_dir,
                    state=status.state,
                    cause=status.cause,
                    exit_code=status.exit_code,
                    message=status.message,
                    metrics=self.monitor.progress(tid).metrics,
                )
            )
        return result
