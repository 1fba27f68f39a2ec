"""What a controller, job or trial dir holds and where it stands (``proxytask status``)."""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Callable
from typing import Any

from proxytask.core import layout, storage
from proxytask.core.errors import StorageError, UsageError
from proxytask.trainer.contract import TrialTrainingMetrics, read_trial_training_metrics

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
    """The status of a dir: ``kind`` is a controller kind, ``workflow``, ``job`` or ``trial``."""

    path: str
    kind: str
    jobs: tuple[JobSummary, ...]
    notes: tuple[str, ...] = ()  # where the tool stands, read from its state file


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


def _read(path: str) -> dict[str, Any]:
    try:
        data = storage.read_json(path)
    except StorageError:
        return {}
    return data if isinstance(data, dict) else {}


def _variance_notes(state: dict[str, Any], result: dict[str, Any]) -> list[str]:
    notes = [f"phase: {state.get('phase', '?')}"]
    if state.get("error"):
        notes.append(f"error: {state['error']}")
    if result:
        notes.append(f"variance {result.get('variance_value')} ({result.get('variance_info')})")
        notes.append(
            f"smoothness {result.get('smoothness_value')} ({result.get('smoothness_info')})"
        )
    return notes


def _selection_notes(state: dict[str, Any], result: dict[str, Any]) -> list[str]:
    its = state.get("iterations", [])
    notes = [f"phase: {state.get('phase', '?')}, round {len(its)}"]
    if its:
        notes.append(
            f"current round: {its[-1]['num_trials']} models to "
            f"{its[-1]['desired_training_step_pct']:.2f} %"
        )
    if state.get("error"):
        notes.append(f"error: {state['error']}")
    if result:
        cost = result.get("cost", {})
        notes.append(
            f"{result.get('num_reference_models')} reference models; cost "
            f"{cost.get('training_hours', 0):.4f} training hours "
            f"({cost.get('multiple_of_full_training') or 0:.2f} × full training)"
        )
    return notes


def _search_notes(state: dict[str, Any], _result: dict[str, Any]) -> list[str]:
    notes = []
    for name, entry in state.get("proxy_tasks_map", {}).items():
        stats = entry.get("proxy_task_stats", {})
        notes.append(
            f"{name}: {stats.get('stopping_state') or 'running'}"
            + (
                f" at step {stats['final_training_steps']}"
                if stats.get("final_training_steps") is not None
                else ""
            )
        )
    if state.get("best_proxy_task_name"):
        notes.append(f"best proxy task so far: {state['best_proxy_task_name']}")
    for name, check in (state.get("holdout") or {}).items():
        notes.append(
            f"held-out check of {name}: Kendall tau-b {check.get('tau')} on "
            f"{check.get('n')} held-out models"
        )
    baselines = {
        k: v["tau"]
        for k, v in (state.get("zero_training_baselines") or {}).items()
        if isinstance(v, dict) and v.get("tau") is not None
    }
    if baselines:
        top = max(baselines, key=lambda k: baselines[k])
        notes.append(
            f"best zero-training score: {top} (Kendall tau-b {baselines[top]:.3f}, no training)"
        )
    return notes


def _final_checks_notes(state: dict[str, Any], _result: dict[str, Any]) -> list[str]:
    notes = [
        f"phase: {state.get('phase', '?')}: the baseline under {state.get('proxy_task_name', '?')}"
    ]
    result = state.get("result") or {}
    if result:
        notes.append(f"scaled baseline latency: {result.get('latency')}")
        if result.get("error"):
            notes.append(f"problem: {result['error']}")
    return notes


def _workflow_notes(state: dict[str, Any], result: dict[str, Any]) -> list[str]:
    notes = [
        f"{stage.replace('_', ' ')}: {entry.get('status')}  {entry.get('dir', '')}"
        for stage, entry in state.get("stages", {}).items()
    ]
    rec = result.get("recommendation", {})
    if rec.get("best_proxy_task_name"):
        notes.append(
            f"recommended proxy task: {rec['best_proxy_task_name']} {rec.get('trainer_args')}, "
            f"{rec.get('training_steps')} steps"
        )
    elif not state.get("stages"):
        notes.append("no stage started yet")
    return notes


# What each kind's state and answer files (named by layout.KIND_FILES) say, in lines.
_NOTES: dict[str, Callable[[dict[str, Any], dict[str, Any]], list[str]]] = {
    layout.KIND_VARIANCE: _variance_notes,
    layout.KIND_MODEL_SELECTION: _selection_notes,
    layout.KIND_SEARCH: _search_notes,
    layout.KIND_FINAL_CHECKS: _final_checks_notes,
    layout.KIND_WORKFLOW: _workflow_notes,
}


def _controller_notes(path: str, kind: str) -> tuple[str, ...]:
    """One or two lines on where a tool stands, from the files layout says it writes."""
    notes = _NOTES.get(kind)
    if notes is None:
        return ()
    paths = layout.ControllerPaths(path)
    state_file, result_file = paths.state_file(kind), paths.result_file(kind)
    state = _read(state_file) if state_file else {}
    result = _read(result_file) if result_file else {}
    return tuple(notes(state, result))


def inspect_dir(path: str) -> DirStatus:
    """Read a workflow, controller, job or trial dir; raise UsageError for anything else."""
    if not storage.exists(path):
        raise UsageError(f"DIR must exist, got {path!r}. Use the path a controller printed.")
    base = posixpath.basename(path.rstrip("/"))
    if storage.exists(storage.join(path, layout.WORKFLOW_STATE)):
        return DirStatus(path, "workflow", (), _controller_notes(path, layout.KIND_WORKFLOW))
    jobs_root = storage.join(path, layout.JOBS_DIR)
    if storage.exists(jobs_root):
        kind = next((k for k in layout.CONTROLLER_KINDS if base.startswith(k + "_")), "controller")
        jobs = tuple(
            _summarise_job(name, layout.job_dir(path, name)) for name in storage.listdir(jobs_root)
        )
        return DirStatus(path, kind, jobs, _controller_notes(path, kind))
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
    lines.extend(f"  {note}" for note in status.notes)
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
    if not status.jobs and status.kind != "workflow":
        lines.append("no jobs yet")
    return "\n".join(lines)
