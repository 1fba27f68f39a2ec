"""What every controller shares: its dir, its executor and clock, the step/run loop."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

from proxytask.controllers.state import (
    EventLog,
    TrialRecord,
    TrialRecordState,
    load_state,
    save_state,
)
from proxytask.controllers.tracker import TrialSettings, TrialTracker
from proxytask.core import layout, storage
from proxytask.core.clock import Clock
from proxytask.core.errors import CorruptFileError, UsageError
from proxytask.core.lease import Lease
from proxytask.core.space import SearchSpace
from proxytask.executors.base import Executor, FailureCause
from proxytask.executors.causes import ADVICE
from proxytask.report import background
from proxytask.report.progress import ProgressDisplay, ProgressRow, ProgressSnapshot

__all__ = [
    "Controller",
    "ControllerContext",
    "SpaceController",
    "describe_causes",
    "fmt_number",
    "progress_rows",
]


@dataclasses.dataclass(frozen=True)
class ControllerContext:
    """Everything a controller runs with, apart from its own settings."""

    controller_dir: str
    executor: Executor
    clock: Clock
    trial_settings: TrialSettings
    baseline_args: Mapping[str, str]
    options: Mapping[str, Any]  # the resolved command options, saved for resume and reports
    display: ProgressDisplay = dataclasses.field(
        default_factory=lambda: ProgressDisplay(live=False)
    )
    poll_interval_secs: float = 1.0
    kind: str = ""  # layout.KIND_*: written to CONTROLLER_INFO.json once the controller started
    lease: Lease | None = None  # the dir's lease while a command holds it (checked every step)
    made_root: bool = False  # this command created --root-output-dir (removed with bad input)


C = TypeVar("C", bound="Controller")


class Controller(abc.ABC):
    """A controller advances by :meth:`step` until :meth:`is_finished`; :meth:`run` loops.

    Each step: poll trials → decide (a pure function of the state) → act → persist if changed
    → heartbeat. Trial ids are deterministic, so a resumed controller never launches a trial
    twice.

    The base owns the create/resume boilerplate. A subclass names its state file and resume
    flag, builds its JSON state in :meth:`state_json`, and writes its constructors so::

        state_file = "MY_STATE.json"
        resume_flag = "--previous-my-dir"     # named in the errors below
        resume_what = "a my-controller dir"

        @classmethod
        def create(cls, ctx, settings):
            return cls(ctx, cls.new_tracker(ctx), settings, {}).started()

        @classmethod
        def resume(cls, ctx, settings):
            state, tracker = cls.saved_tracker(ctx)
            ctl = cls(ctx, tracker, settings, state)
            return ctl.resumed(ctl.recover())  # fix up state between the two if needed

    :meth:`started` and :meth:`resumed` log ``controller_started`` / ``controller_resumed``
    and write the first state file (:meth:`persist`). Controllers built on a search space
    and settings get both constructors from :class:`SpaceController`.
    """

    kind: str = ""
    #: True for a controller that draws plots (its run starts the plot workers first).
    draws_plots: ClassVar[bool] = False
    #: The state file the controller writes in its dir after every change.
    state_file: ClassVar[str] = ""
    #: The flag (or command) that resumes a controller dir, named in the errors of
    #: :meth:`new_tracker` and :meth:`saved_tracker`.
    resume_flag: ClassVar[str] = ""
    #: What the resume flag must name, e.g. "a variance measurement dir".
    resume_what: ClassVar[str] = ""

    def __init__(self, ctx: ControllerContext, tracker: TrialTracker) -> None:
        self.ctx = ctx
        self.tracker = tracker
        self.started_at = ctx.clock.now()
        self._last_saved_state: dict[str, Any] | None = None

    @property
    def events(self) -> EventLog:
        """The controller's event log."""
        return self.tracker.events

    def save_if_changed(self, state_file: str, state: dict[str, Any]) -> None:
        """Write the controller's state file atomically when it differs from the last write."""
        if state != self._last_saved_state:
            save_state(storage.join(self.ctx.controller_dir, state_file), state)
            self._last_saved_state = state

    # ---- create / resume ----------------------------------------------------------------------

    @classmethod
    def new_tracker(cls, ctx: ControllerContext) -> TrialTracker:
        """A tracker for a new controller; refuses a dir that already holds :attr:`state_file`."""
        if storage.exists(storage.join(ctx.controller_dir, cls.state_file)):
            raise UsageError(
                f"controller dir {ctx.controller_dir!r} must be new, got one that already holds "
                f"{cls.state_file}. Resume it with {cls.resume_flag} {ctx.controller_dir}."
            )
        return cls._tracker(ctx, [])

    @classmethod
    def saved_tracker(cls, ctx: ControllerContext) -> tuple[dict[str, Any], TrialTracker]:
        """The saved state of ``ctx.controller_dir`` and a tracker holding its trial records."""
        path = storage.join(ctx.controller_dir, cls.state_file)
        try:
            state = load_state(path)
        except CorruptFileError as exc:
            raise damaged_state(cls.resume_flag, path, str(exc)) from None
        if state is None:
            raise UsageError(
                f"{cls.resume_flag} must be {cls.resume_what}, got {ctx.controller_dir!r}, which "
                f"holds no {cls.state_file}. Use the dir the first run printed."
            )
        trials = state.get("trials", [])
        try:
            if not isinstance(trials, list):
                raise TypeError(f"'trials' must be a list, got {type(trials).__name__}")
            records = [TrialRecord.from_dict(r) for r in trials]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"a trial record does not read: {exc!r}"
            raise damaged_state(cls.resume_flag, path, detail) from None
        return state, cls._tracker(ctx, records)

    @staticmethod
    def _tracker(ctx: ControllerContext, records: list[TrialRecord]) -> TrialTracker:
        events = EventLog(storage.join(ctx.controller_dir, layout.EVENTS_LOG))
        return TrialTracker(
            ctx.executor, ctx.clock, ctx.controller_dir, ctx.trial_settings, events, records
        )

    def recover(self) -> list[str]:
        """On resume: take over the trials the dead controller left (see
        :meth:`TrialTracker.recover`); returns the keys planned again. Override to fix up the
        controller's own state too."""
        return self.tracker.recover()

    def started(self: C) -> C:
        """End a ``create``: log ``controller_started``, write the state file; returns self."""
        self.events.append(self.ctx.clock.now(), "controller_started", controller=self.kind)
        self.persist()
        return self

    def resumed(self: C, replanned: list[str]) -> C:
        """End a ``resume``: log ``controller_resumed`` with the trials ``recover()`` planned
        again, write the state file; returns self."""
        self.events.append(
            self.ctx.clock.now(), "controller_resumed", controller=self.kind, restarted=replanned
        )
        self.persist()
        return self

    def state_json(self) -> dict[str, Any]:
        """The content of :attr:`state_file` (JSON values only). Override to use persist()."""
        raise NotImplementedError(f"{type(self).__name__} must define state_json()")

    def persist(self) -> None:
        """Write :attr:`state_file` when :meth:`state_json` changed since the last write."""
        self.save_if_changed(self.state_file, self.state_json())

    # ---- the step ------------------------------------------------------------------------------

    def advance(self) -> None:
        """The usual step: poll → announce ended trials → :meth:`decide` → persist → launch
        what was planned → persist. Controllers whose step is just that call it from step()."""
        for record in self.tracker.poll():
            self.announce(record)
        self.decide()
        self.persist()
        self.tracker.launch_planned()
        self.persist()

    def decide(self) -> None:
        """Plan trials and move phases from the state (used by :meth:`advance`)."""
        raise NotImplementedError(f"{type(self).__name__} must define decide() to use advance()")

    def announce(self, record: TrialRecord) -> None:
        """Show an ended trial on the display: failures with their cause and message."""
        if record.state == TrialRecordState.FAILED:
            self.ctx.display.message(f"  {record.key} failed ({record.cause}): {record.message}")

    @abc.abstractmethod
    def step(self) -> None:
        """Advance by one poll/decide/act/persist round."""

    @abc.abstractmethod
    def is_finished(self) -> bool:
        """True once the controller reached its answer (good or bad)."""

    @abc.abstractmethod
    def snapshot(self) -> ProgressSnapshot:
        """What the live display shows now."""

    def run(self) -> None:
        """Step until finished, sleeping on the injected clock between steps; then wait for
        the plots handed to the plot worker (:mod:`proxytask.report.background`), so the
        answer's files all exist when it returns. A failing run drops the plots not drawn."""
        idle, seen = 0, -1
        if self.draws_plots:
            background.prepare(self.ctx.controller_dir)
        try:
            while True:
                if self.ctx.lease is not None:
                    self.ctx.lease.check()  # another command took the dir over: stop here
                self.step()
                self.ctx.display.update(self.snapshot())
                if self.is_finished():
                    break
                idle = 0 if self.tracker.activity != seen else idle + 1
                seen = self.tracker.activity
                self.ctx.executor.wait(
                    self.ctx.clock, self.tracker.wait_secs(self.ctx.poll_interval_secs, idle)
                )
            background.drain()
        except BaseException:
            background.abandon()
            raise
        finally:
            self.ctx.display.close()


S = TypeVar("S")
SC = TypeVar("SC", bound="SpaceController[Any]")


class SpaceController(Controller, Generic[S]):
    """A controller that samples architectures from a search space under its settings ``S``.

    It brings the two constructors; a subclass's ``__init__`` takes
    ``(ctx, tracker, space, settings, state)`` and reads its own fields from ``state`` (the
    saved state file, ``{}`` for a new controller), including its :attr:`phase`.
    """

    #: Where the controller stands: a ``str`` Enum of each controller, whose ``"done"`` and
    #: ``"failed"`` members end it (the ``phase`` of its state file).
    phase: str

    def __init__(
        self,
        ctx: ControllerContext,
        tracker: TrialTracker,
        space: SearchSpace,
        settings: S,
        state: Mapping[str, Any],
    ) -> None:
        super().__init__(ctx, tracker)
        self.space = space
        self.settings = settings
        self.error: str | None = state.get("error")

    @classmethod
    def create(cls: type[SC], ctx: ControllerContext, space: SearchSpace, settings: S) -> SC:
        """A new controller in ``ctx.controller_dir`` (which must not hold one yet)."""
        return cls(ctx, cls.new_tracker(ctx), space, settings, {}).started()

    @classmethod
    def resume(cls: type[SC], ctx: ControllerContext, space: SearchSpace, settings: S) -> SC:
        """Continue the controller saved in ``ctx.controller_dir`` after a crash or a stop."""
        state, tracker = cls.saved_tracker(ctx)
        ctl = cls(ctx, tracker, space, settings, state)
        return ctl.resumed(ctl.recover())

    def is_finished(self) -> bool:
        """True once the controller reached its answer (``done``) or ``failed``."""
        return self.phase in ("done", "failed")

    def step(self) -> None:
        """Poll → decide → act → persist (:meth:`advance`), until finished."""
        if not self.is_finished():
            self.advance()


def progress_rows(tracker: TrialTracker, keys: list[str]) -> tuple[ProgressRow, ...]:
    """Display rows for the given trials."""
    rows = []
    for key in keys:
        record = tracker.records[key]
        progress = tracker.progress(key)
        note = record.cause or ""
        metrics = progress.metrics
        rows.append(
            ProgressRow(
                key=key,
                state=record.state.value,
                pct=progress.last_pct,
                accuracy=progress.last_accuracy,
                note=note,
                latency=metrics.latency if metrics is not None and metrics.has_latency else None,
            )
        )
    return tuple(rows)


def damaged_state(flag: str, path: str, detail: str) -> UsageError:
    """The error for a resume whose state file is not what proxytask wrote."""
    return UsageError(
        f"{flag}: the state file {path!r} is damaged ({detail}), so the run cannot resume "
        "from it. Restore the file from a copy, or start a new run without "
        f"{flag}; nothing in the dir was changed. Deleting the file does not help: a dir "
        "without its state file cannot be resumed."
    )


def write_controller_info(controller_dir: str, kind: str, options: Mapping[str, Any]) -> None:
    """Save the options a controller runs with (read back on resume)."""
    storage.write_json_atomic(
        storage.join(controller_dir, layout.CONTROLLER_INFO),
        {"version": 1, "kind": kind, "options": dict(options)},
        durable=True,
    )


def read_controller_info(controller_dir: str) -> dict[str, Any] | None:
    """The saved options of a controller dir, or None."""
    data = storage.read_json(storage.join(controller_dir, layout.CONTROLLER_INFO))
    return data if isinstance(data, dict) else None


def describe_causes(causes: Mapping[str, int]) -> str:
    """Failure counts by cause, most first, each with its advice: ``2× oom (<advice>); ...``."""
    if not causes:
        return "no failures recorded"
    parts = []
    for cause, count in sorted(causes.items(), key=lambda kv: -kv[1]):
        try:
            advice = ADVICE[FailureCause(cause)]
        except ValueError:
            advice = "see the trial logs"
        parts.append(f"{count}× {cause} ({advice})")
    return "; ".join(parts)


def fmt_number(value: float | None) -> str:
    """A number in 4 significant digits for the terminal; ``-`` when missing."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value:.4g}"
