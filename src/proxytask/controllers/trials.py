"""Run a set of ready trial specs on any executor and collect how each ended (``proxytask trial``).

A thin use of the one trial engine, :class:`~proxytask.controllers.tracker.TrialTracker`: it
launches, posts heartbeats, watches and paces the polls; a batch only adds the trials as
specs, reports progress and hands back how each trial ended as the tools judge it (a trial
that exits 0 short of its steps is incomplete, one silent past the report timeout failed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from proxytask.controllers.state import EventLog, TrialRecordState
from proxytask.controllers.tracker import TrialSettings, TrialTracker
from proxytask.core.clock import Clock
from proxytask.executors.base import Executor, FailureCause, TrialSpec, TrialState
from proxytask.executors.monitor import TrialProgress
from proxytask.trainer.contract import TrialTrainingMetrics

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

    Trial ids must read ``<job>/<number>`` (as :func:`~proxytask.executors.command.
    build_trial_spec` makes them). No event log is kept. ``report_timeout_secs`` fails a
    trial silent that long (from its start or its last report), as the tools do.

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
        report_timeout_secs: float | None = None,
    ) -> None:
        self.executor = executor
        self.report_timeout_secs = report_timeout_secs
        self.clock = clock
        self.heartbeat_threshold_secs = heartbeat_threshold_secs
        self.poll_interval_secs = poll_interval_secs
        self._tracker: TrialTracker | None = None  # made by the first add: it needs a trainer

    def _engine(self, spec: TrialSpec) -> TrialTracker:
        if self._tracker is None:
            settings = TrialSettings(
                trainer=spec.trainer,
                resources=spec.resources,
                timeout_secs=spec.timeout_secs,
                heartbeat_threshold_secs=self.heartbeat_threshold_secs,
                report_timeout_secs=self.report_timeout_secs,
            )
            # "" for the controller dir: every trial comes with its own dir
            self._tracker = TrialTracker(self.executor, self.clock, "", settings, EventLog(None))
        return self._tracker

    def add(self, spec: TrialSpec) -> None:
        """Create the trial dir, post a heartbeat into it, and launch the trial."""
        tracker = self._engine(spec)
        tracker.add(spec)
        tracker.launch_planned()

    def step(self) -> dict[str, TrialProgress]:
        """Poll statuses and files once, and post heartbeats when due. Returns changed trials."""
        if self._tracker is None:
            return {}
        self._tracker.poll()
        return self._tracker.reports

    def is_finished(self) -> bool:
        """True once every trial has ended."""
        return self._tracker is None or self._tracker.all_terminal()

    def run(self, on_progress: Callable[[TrialProgress], None] | None = None) -> list[TrialOutcome]:
        """Step until every trial ended, waiting in between: polls start fast after any
        change and back off to ``poll_interval_secs``; a trial's exit ends the wait at once
        where the executor can see it (local)."""
        idle, seen = 0, -1
        while True:
            for progress in self.step().values():
                if on_progress is not None:
                    on_progress(progress)
            if self.is_finished():
                break
            tracker = self._tracker
            assert tracker is not None
            idle = 0 if tracker.activity != seen else idle + 1
            seen = tracker.activity
            self.executor.wait(self.clock, tracker.wait_secs(self.poll_interval_secs, idle))
        if self._tracker is not None:  # the last reports written before exit
            self._tracker.monitor.poll(list(self._tracker.records))
        return self.outcomes()

    def outcomes(self) -> list[TrialOutcome]:
        """How each trial ended so far, as the tools judge it, in launch order."""
        tracker = self._tracker
        if tracker is None:
            return []
        result = []
        for key, record in tracker.records.items():
            status = tracker.monitor.explain(tracker.statuses.get(key) or self.executor.status(key))
            state, cause, message = status.state, status.cause, status.message
            judged = _JUDGED.get(record.state)
            recorded = FailureCause(record.cause) if record.cause else None
            if judged is not None and (judged, recorded) != (state, cause):
                # the engine judged it as the tools will (e.g. exit 0 short of its steps,
                # silent past the report timeout, stopped for ignoring its stop files)
                state, cause, message = judged, recorded, record.message or message
            result.append(
                TrialOutcome(
                    trial_id=key,
                    trial_dir=record.trial_dir,
                    state=state,
                    cause=cause,
                    exit_code=status.exit_code,
                    message=message,
                    metrics=tracker.progress(key).metrics,
                )
            )
        return result


_JUDGED = {
    TrialRecordState.SUCCEEDED: TrialState.SUCCEEDED,
    TrialRecordState.FAILED: TrialState.FAILED,
    TrialRecordState.STOPPED: TrialState.STOPPED,
}
