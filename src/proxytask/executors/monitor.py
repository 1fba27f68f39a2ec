"""The one read path for trial progress: every executor's trials are read through here.

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
from proxytask.trainer.contract import TrialTrainingMetrics

__all__ = ["TrialMonitor", "TrialProgress"]

logger = logging.getLogger(__name__)


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
    metrics_sig: Any = None
    failure_sig: Any = None
    progress: TrialProgress | None = None


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
        """Start following a trial (idempotent)."""
        if trial_id not in self._watched:
            self._watched[trial_id] = _Watched(trial_dir)

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
            return {"cause": "crash", "message": f"unreadable {path}"}
        return data if isinstance(data, dict) else None
