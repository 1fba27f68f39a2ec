"""What every controller shares: its dir, its executor and clock, the step/run loop."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from typing import Any

from proxytask.controllers.state import EventLog, TrialRecord, load_state, save_state
from proxytask.controllers.tracker import TrialSettings, TrialTracker
from proxytask.core import layout, storage
from proxytask.core.clock import Clock
from proxytask.core.errors import UsageError
from proxytask.executors.base import Executor
from proxytask.report.progress import ProgressDisplay, ProgressRow, ProgressSnapshot

__all__ = [
    "Controller",
    "ControllerContext",
    "fmt_number",
    "new_tracker",
    "progress_rows",
    "saved_tracker",
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


class Controller(abc.ABC):
    """A controller advances by :meth:`step` until :meth:`is_finished`; :meth:`run` loops.

    Each step: poll trials → decide (a pure function of the state) → act → persist if changed
    → heartbeat. Trial ids are deterministic, so a resumed controller never launches a trial
    twice.
    """

    kind: str = ""

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
        """Step until finished, sleeping on the injected clock between steps."""
        idle, seen = 0, -1
        try:
            while True:
                self.step()
                self.ctx.display.update(self.snapshot())
                if self.is_finished():
                    break
                idle = 0 if self.tracker.activity != seen else idle + 1
                seen = self.tracker.activity
                self.ctx.clock.sleep(self.tracker.wait_secs(self.ctx.poll_interval_secs, idle))
        finally:
            self.ctx.display.close()


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
                state=record.state,
                pct=progress.last_pct,
                accuracy=progress.last_accuracy,
                note=note,
                latency=metrics.latency if metrics is not None and metrics.has_latency else None,
            )
        )
    return tuple(rows)


def write_controller_info(controller_dir: str, kind: str, options: Mapping[str, Any]) -> None:
    """Save the options a controller runs with (read back on resume)."""
    storage.write_json_atomic(
        storage.join(controller_dir, layout.CONTROLLER_INFO),
        {"version": 1, "kind": kind, "options": dict(options)},
    )


def read_controller_info(controller_dir: str) -> dict[str, Any] | None:
    """The saved options of a controller dir, or None."""
    data = storage.read_json(storage.join(controller_dir, layout.CONTROLLER_INFO))
    return data if isinstance(data, dict) else None


def new_tracker(ctx: ControllerContext, state_file: str, resume_flag: str) -> TrialTracker:
    """A tracker for a new controller in ``ctx.controller_dir`` (which must not hold one yet)."""
    if storage.exists(storage.join(ctx.controller_dir, state_file)):
        raise UsageError(
            f"controller dir {ctx.controller_dir!r} must be new, got one that already holds "
            f"{state_file}. Resume it with {resume_flag} {ctx.controller_dir}."
        )
    events = EventLog(storage.join(ctx.controller_dir, layout.EVENTS_LOG))
    return TrialTracker(ctx.executor, ctx.clock, ctx.controller_dir, ctx.trial_settings, events)


def saved_tracker(
    ctx: ControllerContext, state_file: str, resume_flag: str, what: str
) -> tuple[dict[str, Any], TrialTracker]:
    """The saved state of a controller dir and a tracker holding its trial records."""
    state = load_state(storage.join(ctx.controller_dir, state_file))
    if state is None:
        raise UsageError(
            f"{resume_flag} must be {what}, got {ctx.controller_dir!r}, which holds no "
            f"{state_file}. Use the dir the first run printed."
        )
    records = [TrialRecord.from_dict(r) for r in state.get("trials", [])]
    events = EventLog(storage.join(ctx.controller_dir, layout.EVENTS_LOG))
    tracker = TrialTracker(
        ctx.executor, ctx.clock, ctx.controller_dir, ctx.trial_settings, events, records
    )
    return state, tracker


def fmt_number(value: float | None) -> str:
    """A number in 4 significant digits for the terminal; ``-`` when missing."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value:.4g}"
