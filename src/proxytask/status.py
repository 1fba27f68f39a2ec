"""What a controller, job or trial dir holds and where it stands (``proxytask status``)."""

from __future__ import annotations

import dataclasses
import posixpath
from typing import Any

from proxytask import layout, storage
from proxytask.errors import StorageError, UsageError
from proxytask.trainer import TrialTrainingMetrics, read_trial_training_metrics

__all__ = ["DirStatus", "JobSummary", "TrialSummary", "inspect_dir", "render_status"]


@dataclasses.dataclass(frozen=True)
class TrialSummary:
    """One trial as its files tell it."""

    trial_id: str
    trial_dir: str
    pct: float
    accuracy: float | None
    latency: float | None
    training_hours: float
    failure: str | None
    architecture: dict[str, Any] | None


@dataclasses.dataclass(frozen=True)
class JobSummary:
    """The trials of one job."""

    name: str
    job_dir: str
    trials: tuple[TrialSummary, ...]


@dataclasses.dataclass(frozen=True)
class DirStatus:
    """The status of a dir: ``kind`` is a controller kind, ``job`` or ``trial``."""

    path: str
    kind: str
    jobs: tuple[JobSummary, ...]


def _summarise_trial(trial_id: str, tdir: str) -> TrialSummary:
    try:
        metrics: TrialTrainingMetrics | None = read_trial_training_metrics(tdir)
    except StorageError as exc:
        return TrialSummary(
            trial_id, tdir, 0.0, None, None, 0.0, f"unreadable metrics: {exc}", None
        )
    failure_data = storage.read_json(layout.trial_file(tdir, layout.TRIAL_FAILURE))
    failure = None
    if isinstance(failure_data, dict):
        failure = f"{failure_data.get('cause', 'crash')}: {failure_data.get('message', '')}"
    try:
        arch = storage.read_json(layout.trial_file(tdir, layout.NAS_PARAMS))
    except StorageError:
        arch = None
    points = metrics.training_accuracy_over_steps if metrics else ()
    return TrialSummary(
        trial_id=trial_id,
        trial_dir=tdir,
        pct=metrics.last_pct if metrics else 0.0,
        accuracy=points[-1].accuracy if points else None,
        latency=metrics.latency if metrics and metrics.has_latency else None,
        training_hours=(metrics.training_time.total_training_time_in_secs / 3600.0)
        if metrics
        else 0.0,
        failure=failure,
        architecture=arch if isinstance(arch, dict) else None,
    )


def _is_trial_dir(path: str) -> bool:
    return any(
        storage.exists(layout.trial_file(path, name))
        for name in (layout.TRIAL_TRAINING_METRICS, layout.NAS_PARAMS, layout.CONTROLLER_ALIVE)
    )


def _summarise_job(name: str, jdir: str) -> JobSummary:
    ids = sorted((n for n in storage.listdir(jdir) if n.isdigit()), key=int)
    trials = tuple(
        _summarise_trial(f"{name}/{i}", layout.trial_dir(jdir, i))
        for i in ids
        if _is_trial_dir(layout.trial_dir(jdir, i))
    )
    return JobSummary(name, jdir, trials)


def inspect_dir(path: str) -> DirStatus:
    """Read a controller dir, a job dir or a trial dir; raise UsageError for anything else."""
    if not storage.exists(path):
        raise UsageError(f"DIR must exist, got {path!r}. Use the path a controller printed.")
    base = posixpath.basename(path.rstrip("/"))
    jobs_root = storage.join(path, layout.JOBS_DIR)
    if storage.exists(jobs_root):
        kind = next((k for k in layout.CONTROLLER_KINDS if base.startswith(k + "_")), "controller")
        jobs = tuple(
            _summarise_job(name, layout.job_dir(path, name)) for name in storage.listdir(jobs_root)
        )
        return DirStatus(path, kind, jobs)
    if _is_trial_dir(path):
        return DirStatus(path, "trial", (JobSummary("", path, (_summarise_trial(base, path),)),))
    job = _summarise_job(base, path)
    if job.trials:
        return DirStatus(path, "job", (job,))
    raise UsageError(
        f"DIR must be a proxytask controller dir, job dir or trial dir, got {path!r}, which "
        f"holds no '{layout.JOBS_DIR}' folder and no trial files. Use the path a controller "
        "printed at start."
    )


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render_status(status: DirStatus) -> str:
    """A plain-text table of the status, one line per trial."""
    lines = [f"{status.path}  ({status.kind})"]
    for job in status.jobs:
        done = sum(1 for t in job.trials if t.pct >= 100.0)
        failed = sum(1 for t in job.trials if t.failure)
        if job.name:
            lines.append(
                f"job {job.name}: {len(job.trials)} trials, {done} complete, {failed} failed"
            )
        lines.append(f"  {'trial':<16}{'pct':>8}{'accuracy':>10}{'latency':>10}{'hours':>9}  note")
        for t in job.trials:
            lines.append(
                f"  {t.trial_id:<16}{t.pct:>7.1f}%{_fmt(t.accuracy, '.4f'):>10}"
                f"{_fmt(t.latency, '.3f'):>10}{t.training_hours:>9.4f}  {t.failure or ''}".rstrip()
            )
    if not status.jobs:
        lines.append("no jobs yet")
    return "\n".join(lines)
