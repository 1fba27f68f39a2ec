"""Trials a controller owns: plan, launch, watch, judge, and recover them after a crash.

The tracker keeps one :class:`TrialRecord` per trial (the controller stores them in its state
file), launches planned trials on any executor, reads their files through the one
:class:`TrialMonitor`, posts the controller heartbeat, and judges how each trial ended. After a
controller crash, :meth:`TrialTracker.recover` takes every trial the dead controller had
running: an executor whose trials outlive the controller (Ray, see :class:`ReattachingExecutor`)
may keep it running by its resume policy; otherwise a finished one is accepted from its files,
any other is restarted from scratch in a clean trial dir (its partial files are moved to
``<job dir>/.interrupted/``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from proxytask.controllers.state import EventLog, TrialRecord, TrialRecordState
from proxytask.core import layout, storage
from proxytask.core.clock import Clock
from proxytask.core.errors import ProxyTaskError, UsageError
from proxytask.executors.base import FailureCause, Resources, TrialState, TrialStatus
from proxytask.executors.causes import ADVICE
from proxytask.executors.command import Continuation, build_trial_spec
from proxytask.executors.monitor import TrialMonitor, TrialProgress
from proxytask.trainer.contract import (
    read_trial_training_metrics,
    set_stop_training,
    write_controller_heartbeat,
)

if TYPE_CHECKING:  # annotations only
    from proxytask.executors.base import Executor, TrainerSpec, TrialSpec, TrialStatus

__all__ = ["ReattachingExecutor", "TrialSettings", "TrialTracker"]

logger = logging.getLogger(__name__)

#: How far below its target pct a trial may end and still count as having reached it.
PCT_TOLERANCE = 1e-6


@runtime_checkable
class ReattachingExecutor(Protocol):
    """An executor whose trials can outlive the controller (the Ray executor).

    :meth:`TrialTracker.recover` offers it each trial the dead controller had running, before
    anything else happens to that trial.
    """

    def reattach(self, spec: TrialSpec) -> bool:
        """Adopt the trial of ``spec`` if it is still there and the resume policy keeps it.

        True: the executor now knows the trial (as running, or as however it ended
        meanwhile) and the controller goes on watching it. False: nothing of it runs any
        more (a policy that restarts trials stops it first); the controller judges it from
        its files or trains it again.
        """
        ...


@dataclasses.dataclass(frozen=True)
class TrialSettings:
    """How every trial of a controller runs."""

    trainer: TrainerSpec
    resources: Resources = Resources()
    timeout_secs: float | None = None
    report_timeout_secs: float | None = None  # fail a trial with no new report for this long
    heartbeat_threshold_secs: float = 900.0


#: How often one trial is trained again after stopping itself for a stale controller heartbeat.
MAX_HEARTBEAT_RESTARTS = 3
#: Evaluations a trial may report past its target (or after a stop request) before it is
#: stopped through the executor: a trainer that checks its stop files reports at most one.
OVERRUN_EVALUATIONS = 2


def _points(progress: TrialProgress) -> int:
    """How many evaluations a trial has reported."""
    return len(progress.metrics.training_accuracy_over_steps) if progress.metrics else 0


class TrialTracker:
    """Plans, launches and judges a controller's trials (see the module docstring).

    Example::

        tracker = TrialTracker(executor, clock, cdir, settings, events)
        tracker.plan("copies", 1, arch, {"seed": "1"})
        tracker.launch_planned()
        while not tracker.all_terminal():
            tracker.poll()
            clock.sleep(tracker.wait_secs(1.0))

    It is the one trial engine: the controllers own one each, and
    :class:`~proxytask.controllers.trials.TrialBatch` (``proxytask trial``) is a thin use of it
    for trials that come with a ready :class:`TrialSpec` (:meth:`add`).
    """

    def __init__(
        self,
        executor: Executor,
        clock: Clock,
        controller_dir: str,
        settings: TrialSettings,
        events: EventLog,
        records: Iterable[TrialRecord] = (),
    ) -> None:
        self.executor = executor
        self.clock = clock
        self.controller_dir = controller_dir
        self.settings = settings
        self.events = events
        self.monitor = TrialMonitor()
        self.records: dict[str, TrialRecord] = {r.key: r for r in records}
        for record in self.records.values():
            self.monitor.watch(record.key, record.trial_dir)
        self._heartbeat_every = max(1.0, min(60.0, settings.heartbeat_threshold_secs / 4))
        self._last_beat = -float("inf")
        self._last_report: dict[str, float] = {}  # when each running trial last reported
        self._points_at_stop: dict[str, int] = {}  # evaluations reported when asked to stop
        # the tool needs each trial's own latency report (model selection with latencies
        # from the trainer): recovery trains again a finished trial that has none
        self.expects_latency = False
        self._overrun: dict[str, str] = {}  # trials stopped through the executor, and why
        self.activity = 0  # grows with every launch, report and ending: pollers back off on 0
        self.in_place: set[str] = set()  # relaunch these in their dir as it is (see recover)
        self.statuses: dict[str, TrialStatus] = {}  # the executor's latest word on each trial
        self.reports: dict[str, TrialProgress] = {}  # trials whose files changed in the last poll
        self._given: dict[str, TrialSpec] = {}  # trials added with a ready spec (see add)

    # ---- planning and launching ------------------------------------------------------------

    def plan(
        self,
        job: str,
        number: int,
        nas_params: Mapping[str, Any] | None,
        trainer_args: Mapping[str, str],
        *,
        target_pct: float = 100.0,
        continuation: Continuation | None = None,
        copy_metrics_from: str | None = None,
        max_training_time_hrs: float | None = None,
    ) -> TrialRecord:
        """Record a trial to launch (idempotent: an existing record is returned unchanged)."""
        key = f"{job}/{number}"
        if key in self.records:
            return self.records[key]
        record = TrialRecord(
            job=job,
            number=number,
            trial_dir=layout.trial_dir(layout.job_dir(self.controller_dir, job), number),
            nas_params=dict(nas_params) if nas_params is not None else None,
            trainer_args=dict(trainer_args),
            target_pct=float(target_pct),
            continuation=(
                {
                    "job_dir": continuation.job_dir,
                    "trial_ids": list(continuation.trial_ids),
                    "use_checkpoint": continuation.use_checkpoint,
                }
                if continuation
                else None
            ),
            copy_metrics_from=copy_metrics_from,
            max_training_time_hrs=max_training_time_hrs,
        )
        self.records[key] = record
        self.monitor.watch(key, record.trial_dir)
        return record

    def add(self, spec: TrialSpec) -> TrialRecord:
        """Record a trial to launch with exactly ``spec``: one no controller planned.

        ``spec.trial_id`` must read ``<job>/<number>``. The trial runs in ``spec.trial_dir``
        as that dir is (nothing is moved aside); :meth:`launch_planned` launches it.
        """
        job, _, number = spec.trial_id.rpartition("/")
        if not job or not number.isdigit() or f"{job}/{int(number)}" != spec.trial_id:
            raise UsageError(
                f"a trial id must read '<job>/<number>', got {spec.trial_id!r}. Build the spec "
                "with proxytask.executors.command.build_trial_spec."
            )
        record = TrialRecord(
            job=job,
            number=int(number),
            trial_dir=spec.trial_dir,
            nas_params=None,
            trainer_args={},
        )
        self.records[record.key] = record
        self._given[record.key] = spec
        self.in_place.add(record.key)
        self.monitor.watch(record.key, record.trial_dir)
        return record

    def launch_planned(self) -> list[str]:
        """Launch every planned trial (the executor queues those beyond its slots)."""
        launched = []
        for key, record in list(self.records.items()):
            if record.state == TrialRecordState.PLANNED:
                self._launch(record)
                launched.append(key)
        return launched

    def _launch(self, record: TrialRecord) -> None:
        if record.nas_params is None and record.continuation:
            # as under the reference tools, a continuation gets --nas_params_str too: the
            # earlier trial's architecture (trainers check the flag before the retrain flags)
            arch = _continued_architecture(record)
            if arch is not None:
                record = dataclasses.replace(record, nas_params=arch)
                self.records[record.key] = record
        self._clear_trial_dir(record)
        storage.makedirs(record.trial_dir)
        if record.copy_metrics_from:
            # a continuation goes on with the earlier trial's curve and training time
            storage.copy_file(
                layout.trial_file(record.copy_metrics_from, layout.TRIAL_TRAINING_METRICS),
                layout.trial_file(record.trial_dir, layout.TRIAL_TRAINING_METRICS),
            )
        now = self.clock.now()
        write_controller_heartbeat(record.trial_dir, now, self.settings.heartbeat_threshold_secs)
        if 0.0 < record.target_pct < 100.0:  # 0: any progress counts (the controller decides)
            set_stop_training(record.trial_dir, desired_training_pct=record.target_pct)
        if record.max_training_time_hrs is not None:
            set_stop_training(
                record.trial_dir, max_training_time_in_hrs=record.max_training_time_hrs
            )
        self.executor.launch(self._spec(record))
        self.activity += 1
        self.records[record.key] = dataclasses.replace(
            record, state=TrialRecordState.RUNNING, started_at=now, ended_at=None
        )
        self.events.append(now, "trial_launched", trial=record.key, dir=record.trial_dir)

    def _spec(self, record: TrialRecord) -> TrialSpec:
        """The executor's view of a trial: the same for a launch and a reattach."""
        if record.key in self._given:
            return self._given[record.key]
        cont = record.continuation
        return build_trial_spec(
            trainer=self.settings.trainer,
            job_name=record.job,
            job_dir=layout.job_dir(self.controller_dir, record.job),
            trial_number=record.number,
            controller_dir=self.controller_dir,
            nas_params=record.nas_params,
            trainer_args=record.trainer_args,
            continuation=(
                Continuation(cont["job_dir"], tuple(cont["trial_ids"]), cont["use_checkpoint"])
                if cont
                else None
            ),
            resources=self.settings.resources,
            timeout_secs=self.settings.timeout_secs,
        )

    def _clear_trial_dir(self, record: TrialRecord) -> None:
        """Move files a killed earlier attempt left behind out of the trial dir."""
        if record.key in self.in_place:
            self.in_place.discard(record.key)
            return
        if not storage.listdir(record.trial_dir):
            return
        aside = storage.join(
            layout.job_dir(self.controller_dir, record.job),
            ".interrupted",
            f"{record.number}-attempt{record.restarts}-{int(self.clock.now())}",
        )
        storage.move(record.trial_dir, aside)
        logger.info("moved the files of an interrupted attempt to %s", aside)

    # ---- watching ----------------------------------------------------------------------------

    def poll(self) -> list[TrialRecord]:
        """Read statuses and files once, post heartbeats, judge ended trials.

        Returns the records that ended in this poll.
        """
        now = self.clock.now()
        running = [k for k, r in self.records.items() if r.state == TrialRecordState.RUNNING]
        self.reports = {}
        if not running:
            return []
        statuses = self.executor.statuses(running)
        self.statuses.update(statuses)
        self.reports = self.monitor.poll(running)
        for key in self.reports:
            self._last_report[key] = now
            self.activity += 1
        # the controller posted no heartbeat for longer than the trials wait for one (it was
        # frozen, or suspended): trials that stopped themselves meanwhile are not failures
        frozen = self._last_beat > -float("inf") and (
            now - self._last_beat > self.settings.heartbeat_threshold_secs
        )
        if now - self._last_beat >= self._heartbeat_every:
            for key in running:
                write_controller_heartbeat(
                    self.records[key].trial_dir, now, self.settings.heartbeat_threshold_secs
                )
            self._last_beat = now
        ended = []
        for key in running:
            status = self.monitor.explain(statuses[key])  # adds the trainer's recorded cause
            record = self.records[key]
            if not status.state.is_terminal:
                self._stop_if_silent(record, status, now)
                self._stop_if_overrun(record)
                continue
            self.activity += 1
            judged = self._judge(record, status.state, status.cause, status.message, now)
            if (
                frozen
                and judged.cause == FailureCause.INCOMPLETE.value
                and record.restarts < MAX_HEARTBEAT_RESTARTS
            ):
                self._restart(
                    record, now, "stopped itself while the controller's heartbeat was stale"
                )
                continue
            self.records[key] = judged
            ended.append(judged)
            self.events.append(
                now,
                "trial_ended",
                trial=key,
                state=judged.state,
                cause=judged.cause,
                message=judged.message,
                # the executor's own start and end of the process (a launch may queue first)
                ran_from=status.started_at,
                ran_to=status.ended_at,
            )
        return ended

    def _restart(self, record: TrialRecord, now: float, reason: str) -> None:
        """Plan ``record`` again from scratch (the next :meth:`launch_planned` launches it)."""
        self.records[record.key] = dataclasses.replace(
            record, state=TrialRecordState.PLANNED, restarts=record.restarts + 1
        )
        self.monitor.unwatch(record.key)
        self.monitor.watch(record.key, record.trial_dir)
        self._overrun.pop(record.key, None)
        self._points_at_stop.pop(record.key, None)
        logger.warning("training %s again: it %s", record.key, reason)
        self.events.append(
            now, "trial_restarted", trial=record.key, restarts=record.restarts + 1, reason=reason
        )

    def _stop_if_silent(self, record: TrialRecord, status: TrialStatus, now: float) -> None:
        """Stop a trial silent for ``report_timeout_secs``, counted from its last report or,
        before the first, from the executor's real start of it (a queued trial waits)."""
        limit = self.settings.report_timeout_secs
        if limit is None or status.state is TrialState.PENDING:
            return
        since = status.started_at if status.started_at is not None else record.started_at
        last = self._last_report.get(record.key)  # a poll while queued counts from launch
        if last is not None and (since is None or last > since):
            since = last
        if since is None or now - since < limit:
            return
        if not record.silenced:
            logger.warning("stopping %s: no new report within %g s", record.key, limit)
            self.records[record.key] = dataclasses.replace(record, silenced=True, message="")
            self.executor.stop(record.key, grace_secs=5.0)

    def _stop_if_overrun(self, record: TrialRecord) -> None:
        """Stop through the executor a trainer that ignores its stop files: one that reported
        :data:`OVERRUN_EVALUATIONS` evaluations past its target pct, or as many after it was
        asked to stop (a trainer that checks ``get_stop_training`` reports at most one)."""
        key = record.key
        if key in self._overrun:
            return
        progress = self.monitor.progress(key)
        if record.stop_requested:
            asked = self._points_at_stop.get(key)
            over = _points(progress) - asked if asked is not None else 0
            what = "after it was asked to stop"
        else:
            points = progress.metrics.training_accuracy_over_steps if progress.metrics else ()
            finish = record.target_pct if record.target_pct > 0 else 100.0
            over = sum(1 for p in points if p.training_step_pct > finish + PCT_TOLERANCE)
            what = f"past the {record.target_pct:g} % asked"
        if over < OVERRUN_EVALUATIONS:
            return
        self._overrun[key] = f"it reported {over} evaluations {what} (it ignores its stop files)"
        logger.warning("stopping %s through the executor: %s", key, self._overrun[key])
        self.executor.stop(key, grace_secs=5.0)

    def _judge(
        self,
        record: TrialRecord,
        state: TrialState,
        cause: FailureCause | None,
        message: str,
        now: float,
    ) -> TrialRecord:
        progress = self.monitor.progress(record.key)
        metrics = progress.metrics
        reached = metrics.last_pct if metrics else 0.0
        if state is TrialState.STOPPED and record.silenced:
            cause, state = FailureCause.NO_REPORT, TrialState.FAILED
            message = (
                f"no new accuracy report for {self.settings.report_timeout_secs:g} s (last at "
                f"{reached:.1f} %); stopped: {ADVICE[FailureCause.NO_REPORT]}"
            )
        elif record.key in self._overrun and state is not TrialState.SUCCEEDED:
            # stopped through the executor past its target: it reached it, so it counts
            state = TrialState.STOPPED if record.stop_requested else TrialState.SUCCEEDED
            if not record.stop_requested and reached + PCT_TOLERANCE < record.target_pct:
                state = TrialState.FAILED
            cause = None if state is not TrialState.FAILED else FailureCause.INCOMPLETE
            message = f"stopped through the executor: {self._overrun[record.key]}"
        elif record.stop_requested and state in (TrialState.SUCCEEDED, TrialState.STOPPED):
            state, cause = TrialState.STOPPED, None
            message = message if reached else "stopped by the controller before its first report"
        elif state is TrialState.SUCCEEDED and (
            metrics is None or not metrics.training_accuracy_over_steps
        ):
            state, cause = TrialState.FAILED, FailureCause.NO_REPORT
            message = f"exited 0 without reporting any accuracy; {ADVICE[FailureCause.NO_REPORT]}"
        elif state is TrialState.SUCCEEDED and reached + PCT_TOLERANCE < record.target_pct:
            state, cause = TrialState.FAILED, FailureCause.INCOMPLETE
            message = (
                f"exited 0 at {reached:.2f} % of the {record.target_pct:.2f} % asked; "
                f"{ADVICE[FailureCause.INCOMPLETE]}"
            )
        new_state = {
            TrialState.SUCCEEDED: TrialRecordState.SUCCEEDED,
            TrialState.FAILED: TrialRecordState.FAILED,
            TrialState.STOPPED: TrialRecordState.STOPPED,
        }[state]
        return dataclasses.replace(
            record,
            state=new_state,
            cause=cause.value if cause else None,
            message=message,
            silenced=False,
            ended_at=now,
        )

    def stop(self, key: str) -> None:
        """Stop a running trial now (it ends STOPPED on a later poll)."""
        if self.records[key].state == TrialRecordState.RUNNING:
            set_stop_training(self.records[key].trial_dir, desired_training_pct=0.0)
            self.executor.stop(key)

    def request_stop(self, key: str) -> None:
        """Tell a trial to stop at its next cycle boundary (it still reports its latency).

        A trial still waiting for a slot is cancelled instead, and one that has not reported
        an accuracy yet is stopped through the executor: a trainer written for the reference
        tools never got a "stop now" before its first evaluation and may not survive an empty
        training loop. Either way it ends as stopped, not failed, even without a report.
        """
        record = self.records[key]
        if record.is_terminal:
            return
        self.records[key] = dataclasses.replace(record, stop_requested=True)
        set_stop_training(record.trial_dir, desired_training_pct=0.0)
        self._points_at_stop[key] = _points(self.monitor.progress(key))
        if record.state == TrialRecordState.PLANNED:
            self.records[key] = dataclasses.replace(
                self.records[key],
                state=TrialRecordState.STOPPED,
                message="cancelled before it started",
                silenced=False,
            )
            return
        if self.executor.status(key).state is TrialState.PENDING:
            self.executor.stop(key)
            return
        metrics = self.monitor.progress(key).metrics
        if metrics is None or not metrics.training_accuracy_over_steps:
            self.executor.stop(key, grace_secs=5.0)

    def progress(self, key: str) -> TrialProgress:
        """The latest progress read from a trial's files."""
        return self.monitor.progress(key)

    def all_terminal(self, keys: Iterable[str] | None = None) -> bool:
        """True when every (given) trial ended."""
        chosen = self.records.values() if keys is None else (self.records[k] for k in keys)
        return all(r.is_terminal for r in chosen)

    def wait_secs(self, poll_interval_secs: float, idle_polls: int = 1_000) -> float:
        """How long to sleep before the next poll (a replay executor knows exactly).

        Without a known next event, polls start fast after activity and back off to
        ``poll_interval_secs`` over ``idle_polls`` quiet polls.
        """
        upcoming = self.executor.next_event_at()
        if upcoming is None:
            return min(poll_interval_secs, 0.05 * 2.0 ** min(idle_polls, 20))
        return min(max(upcoming - self.clock.now(), 1e-3), self._heartbeat_every)

    # ---- recovery ----------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """After a controller crash: keep reattached trials, accept finished ones, replan the rest.

        A trial the dead controller had running is first offered to the executor when it is a
        :class:`ReattachingExecutor` (Ray: its ``--ray-on-resume`` policy decides); a trial it
        adopts stays running and is watched as before. Otherwise the trial is accepted as
        succeeded when its files show everything it owes: its target pct and, when the trainer
        reports latencies (a succeeded trial of this tracker has one, or the tool expects them:
        :attr:`expects_latency`), its latency; any other
        is planned again from scratch (its partial files are moved aside on launch). Returns
        the keys planned again.
        """
        known = set(self.executor.known_trials())
        replanned = []
        now = self.clock.now()
        for key, record in list(self.records.items()):
            if record.state != TrialRecordState.RUNNING or key in known:
                continue
            if self._reattach(record):
                self._last_report[key] = now  # a fresh report window for the new controller
                self.activity += 1
                self.events.append(now, "trial_reattached", trial=key)
                continue
            self.monitor.poll([key])
            metrics = self.monitor.progress(key).metrics
            finish_pct = record.target_pct if record.target_pct > 0 else 100.0
            finished = metrics is not None and metrics.last_pct + PCT_TOLERANCE >= finish_pct
            if finished and self._owes_latency(key):
                finished = False  # killed while measuring it: train again, not accept without
            if finished:
                self.records[key] = dataclasses.replace(
                    record,
                    state=TrialRecordState.SUCCEEDED,
                    message="finished while the controller was down",
                    silenced=False,
                    ended_at=now,
                )
                self.events.append(now, "trial_recovered", trial=key, state="succeeded")
                continue
            self.records[key] = dataclasses.replace(
                record, state=TrialRecordState.PLANNED, restarts=record.restarts + 1
            )
            self.monitor.unwatch(key)
            self.monitor.watch(key, record.trial_dir)
            replanned.append(key)
            self.events.append(now, "trial_restarted", trial=key, restarts=record.restarts + 1)
        return replanned

    def _owes_latency(self, key: str) -> bool:
        """True when trial ``key`` reported no latency while a succeeded trial of this tracker
        did: the trainer reports one after training, and the controller died before this
        trial's came (a trainer that reports none owes none)."""
        metrics = self.monitor.progress(key).metrics
        if metrics is not None and metrics.has_latency:
            return False
        if self.expects_latency:
            return True
        for other, record in self.records.items():
            if other == key or record.state != TrialRecordState.SUCCEEDED:
                continue
            try:
                done = read_trial_training_metrics(record.trial_dir)
            except ProxyTaskError:
                continue
            if done is not None and done.has_latency:
                return True
        return False

    def _reattach(self, record: TrialRecord) -> bool:
        if not isinstance(self.executor, ReattachingExecutor):
            return False
        return self.executor.reattach(self._spec(record))

    def failure_causes(self, keys: Iterable[str] | None = None) -> dict[str, int]:
        """How many of the (given) trials failed of each cause."""
        chosen = self.records.values() if keys is None else (self.records[k] for k in keys)
        counts: dict[str, int] = {}
        for record in chosen:
            if record.state == TrialRecordState.FAILED:
                cause = record.cause or "crash"
                counts[cause] = counts.get(cause, 0) + 1
        return counts


def _continued_architecture(record: TrialRecord) -> dict[str, Any] | None:
    """The architecture of the trial ``record`` continues (its ``nas_params_str.json``), or
    None when that trial saved none (the trainer then reads the retrain flags alone)."""
    cont = record.continuation or {}
    ids = list(cont.get("trial_ids") or [])
    if not 1 <= record.number <= len(ids):
        return None
    earlier = layout.trial_dir(str(cont["job_dir"]), ids[record.number - 1])
    try:
        data = storage.read_json(layout.trial_file(earlier, layout.NAS_PARAMS))
    except ProxyTaskError:
        return None
    return dict(data) if isinstance(data, dict) else None
