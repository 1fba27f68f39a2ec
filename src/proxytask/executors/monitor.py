"""The one read path for trial progress: every executor's trials are read through here.

Executors never read trial files: :meth:`TrialMonitor.explain` adds the failure cause a trainer
recorded (``TRIAL_FAILURE.json``) to the status its executor gives.

It re-reads a trial's files only when their change marker (size and mtime locally, ETag or
mtime on object stores) moved, so polling hundreds of trials costs one ``stat`` each.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from proxytask.core import layout, storage
from proxytask.core.errors import StorageError
from proxytask.executors.base import FailureCause, TrialStatus
from proxytask.executors.causes import reported_cause, with_reported_cause
from proxytask.trainer.contract import TrialTrainingMetrics

__all__ = ["TrialMonitor", "TrialProgress"]

logger = logging.getLogger(__name__)

_UNREADABLE = "unreadable "


@dataclasses.dataclass(frozen=True)
class TrialProgress:
    """What a trial's files say: its metrics and any failure the trainer recorded."""

    trial_id: str
    trial_dir: str
    metrics: TrialTrainingMetrics | None
    reported_failure: Mapping[str, Any] | None = None

    @property
    def last_pct(self) -> float:
        """Progress in percent of the last evaluation (0 when none)."""
        return self.metrics.last_pct if self.metrics else 0.0

    @property
    def last_accuracy(self) -> float | None:
        """The last reported accuracy, if any."""
        if self.metrics is None or not self.metrics.training_accuracy_over_steps:
            return None
        return self.metrics.training_accuracy_over_steps[-1].accuracy


@dataclasses.dataclass
class _Watched:
    trial_dir: str
    baseline_failure_sig: Any  # the failure file when watching began: older ones do not count
    metrics_sig: Any = None
    failure_sig: Any = None
    progress: TrialProgress | None = None
    reported: FailureCause | None = None  # a cause recorded since watching began


class TrialMonitor:
    """Reads trial files incrementally.

    Example::

        monitor = TrialMonitor()
        monitor.watch("job/1", "/runs/x/jobs/job/1")
        changed = monitor.poll()  # {trial_id: TrialProgress} for trials whose files changed
        monitor.progress("job/1").last_pct
    """

    def __init__(self) -> None:
        self._watched: dict[str, _Watched] = {}

    def watch(self, trial_id: str, trial_dir: str) -> None:
        """Start following a trial (idempotent).

        A ``TRIAL_FAILURE.json`` already there is left over from an earlier run: it is shown
        in :attr:`TrialProgress.reported_failure` but :meth:`explain` ignores it until it
        changes.
        """
        if trial_id not in self._watched:
            baseline = storage.file_signature(layout.trial_file(trial_dir, layout.TRIAL_FAILURE))
            self._watched[trial_id] = _Watched(trial_dir, baseline)

    def unwatch(self, trial_id: str) -> None:
        """Stop following a trial."""
        self._watched.pop(trial_id, None)

    def watched(self) -> list[str]:
        """Ids currently followed."""
        return list(self._watched)

    def poll(self, trial_ids: Iterable[str] | None = None) -> dict[str, TrialProgress]:
        """Re-read changed trials; return the progress of those that changed."""
        changed: dict[str, TrialProgress] = {}
        for tid in list(trial_ids) if trial_ids is not None else list(self._watched):
            w = self._watched[tid]
            metrics_path = layout.trial_file(w.trial_dir, layout.TRIAL_TRAINING_METRICS)
            failure_path = layout.trial_file(w.trial_dir, layout.TRIAL_FAILURE)
            msig = storage.file_signature(metrics_path)
            fsig = storage.file_signature(failure_path)
            if w.progress is not None and msig == w.metrics_sig and fsig == w.failure_sig:
                continue
            metrics = w.progress.metrics if w.progress else None
            if msig != w.metrics_sig or w.progress is None:
                metrics = self._read_metrics(metrics_path, metrics)
            failure = w.progress.reported_failure if w.progress else None
            if fsig != w.failure_sig or w.progress is None:
                failure = self._read_failure(failure_path)
                w.reported = None if fsig == w.baseline_failure_sig else _cause(failure)
            w.metrics_sig, w.failure_sig = msig, fsig
            w.progress = TrialProgress(tid, w.trial_dir, metrics, failure)
            changed[tid] = w.progress
        return changed

    def progress(self, trial_id: str) -> TrialProgress:
        """The latest progress of a trial (polling it first if never read)."""
        w = self._watched[trial_id]
        if w.progress is None:
            self.poll([trial_id])
        assert w.progress is not None
        return w.progress

    def explain(self, status: TrialStatus) -> TrialStatus:
        """``status`` with the failure cause its trainer recorded while watched, if any.

        The executor judges a trial from how its process ended; a trainer that recorded why
        it failed (``TRIAL_FAILURE.json``, e.g. ``nan`` or ``oom``) is believed over that
        (see :func:`~proxytask.executors.causes.with_reported_cause`). Unwatched or still
        running trials come back unchanged.
        """
        w = self._watched.get(status.trial_id)
        if w is None or not status.state.is_terminal:
            return status
        self.poll([status.trial_id])
        return with_reported_cause(status, w.reported)

    @staticmethod
    def _read_metrics(
        path: str, previous: TrialTrainingMetrics | None
    ) -> TrialTrainingMetrics | None:
        try:
            data = storage.read_json(path)
        except StorageError as exc:
            logger.warning("keeping the last good metrics: %s", exc)
            return previous
        if data is None:
            return None
        try:
            return TrialTrainingMetrics.from_dict(data, source=path)
        except StorageError as exc:
            logger.warning("keeping the last good metrics: %s", exc)
            return previous

    @staticmethod
    def _read_failure(path: str) -> Mapping[str, Any] | None:
        try:
            data = storage.read_json(path)
        except StorageError:
            return {"cause": "crash", "message": f"{_UNREADABLE}{path}"}
        return data if isinstance(data, dict) else None


def _cause(failure: Mapping[str, Any] | None) -> FailureCause | None:
    if failure is None or failure.get("message", "").startswith(_UNREADABLE):
        return None  # only a record that could be read says why
    return reported_cause(dict(failure))
