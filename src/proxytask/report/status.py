"""What a controller, job or trial dir holds and where it stands (``proxytask status``)."""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from proxytask.core import layout, storage
from proxytask.core.errors import StorageError, UsageError
from proxytask.trainer.contract import TrialTrainingMetrics, read_trial_training_metrics

__all__ = ["DirStatus", "JobSummary", "TrialSummary", "inspect_dir", "render_status"]

T = TypeVar("T")


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


def _typed(read: Callable[[str], T | None], controller_dir: str) -> T | None:
    """What ``read`` makes of a dir's file; None when it is missing or unreadable (status
    shows what the other files say)."""
    try:
        return read(controller_dir)
    except (StorageError, KeyError, TypeError, ValueError):
        return None


def _state(parse: Callable[[Mapping[str, Any]], T], kind: str) -> Callable[[str], T | None]:
    """A reader of the state file of ``kind`` (named by layout) through ``parse``."""

    def read(controller_dir: str) -> T | None:
        from proxytask.controllers.state import load_state

        path = layout.ControllerPaths(controller_dir).state_file(kind)
        data = load_state(path) if path else None
        return None if data is None else parse(data)

    return read


def _variance_notes(cdir: str) -> list[str]:
    from proxytask.controllers.variance import VarianceState, read_variance_result

    state = _typed(_state(VarianceState.from_json, layout.KIND_VARIANCE), cdir)
    result = _typed(read_variance_result, cdir)
    notes = [f"phase: {state.phase if state else '?'}"]
    if state and state.error:
        notes.append(f"error: {state.error}")
    if result:
        notes.append(f"variance {result.variance_value} ({result.variance_info})")
        notes.append(f"smoothness {result.smoothness_value} ({result.smoothness_info})")
    return notes


def _selection_notes(cdir: str) -> list[str]:
    from proxytask.controllers.selection import SelectionState, read_model_selection_result

    state = _typed(_state(SelectionState.from_json, layout.KIND_MODEL_SELECTION), cdir)
    result = _typed(read_model_selection_result, cdir)
    its = state.iterations if state else ()
    notes = [f"phase: {state.phase if state else '?'}, round {len(its)}"]
    if its:
        notes.append(
            f"current round: {its[-1].num_trials} models to "
            f"{its[-1].desired_training_step_pct:.2f} %"
        )
    if state and state.error:
        notes.append(f"error: {state.error}")
    if result:
        cost = result.cost
        notes.append(
            f"{len(result.reference_models)} reference models; cost "
            f"{cost.training_hours:.4f} training hours "
            f"({cost.multiple_of_full_training or 0:.2f} × full training)"
        )
    return notes


def _search_notes(cdir: str) -> list[str]:
    from proxytask.controllers.search_state import SearchState

    state = _typed(SearchState.load, cdir)
    if state is None:
        return []
    notes = []
    for name, entry in state.proxy_tasks.items():
        stats = entry.stats
        steps = stats.final_training_steps
        notes.append(
            f"{name}: {stats.stopping_state.value or 'running'}"
            + (f" at step {steps}" if steps is not None else "")
        )
    if state.best_proxy_task_name:
        notes.append(f"best proxy task so far: {state.best_proxy_task_name}")
    for name, check in state.holdout.items():
        notes.append(
            f"held-out check of {name}: Kendall tau-b {check.summary.tau} on "
            f"{check.summary.n} held-out models"
        )
    baselines = {k: v.tau for k, v in state.zero_training_baselines.items() if v.tau is not None}
    if baselines:
        top = max(baselines, key=lambda k: baselines[k])
        notes.append(
            f"best zero-training score: {top} (Kendall tau-b {baselines[top]:.3f}, no training)"
        )
    return notes


def _final_checks_notes(cdir: str) -> list[str]:
    from proxytask.controllers.final_checks import read_scaled_baseline_state

    state = _typed(read_scaled_baseline_state, cdir)
    if state is None:
        return ["phase: ?: the baseline under ?"]
    notes = [f"phase: {state.phase}: the baseline under {state.proxy_task_name}"]
    if state.result:
        notes.append(f"scaled baseline latency: {state.result.latency}")
        if state.result.error:
            notes.append(f"problem: {state.result.error}")
    return notes


def _workflow_notes(wdir: str) -> list[str]:
    from proxytask.controllers.final_checks import read_final_checks
    from proxytask.controllers.workflow import WorkflowState, load_workflow_state

    state = _typed(load_workflow_state, wdir) or WorkflowState()
    notes = []
    for stage, entry in state.stages.items():
        written = entry.dir is not None or entry.status is not None  # else no "dir" key: ""
        status = None if entry.status is None else entry.status.value
        notes.append(f"{stage.replace('_', ' ')}: {status}  {entry.dir if written else ''}")
    checks = _typed(read_final_checks, wdir)
    rec = checks.recommendation if checks else None
    if rec and rec.found:
        notes.append(
            f"recommended proxy task: {rec.best_proxy_task_name} {rec.trainer_args}, "
            f"{rec.training_steps} steps"
        )
    elif not state.stages:
        notes.append("no stage started yet")
    return notes


# What each kind's state and answer files (named by layout.KIND_FILES) say, in lines.
_NOTES: dict[str, Callable[[str], list[str]]] = {
    layout.KIND_VARIANCE: _variance_notes,
    layout.KIND_MODEL_SELECTION: _selection_notes,
    layout.KIND_SEARCH: _search_notes,
    layout.KIND_FINAL_CHECKS: _final_checks_notes,
    layout.KIND_WORKFLOW: _workflow_notes,
}


def _controller_notes(path: str, kind: str) -> tuple[str, ...]:
    """One or two lines on where a tool stands, from the typed state and answer it wrote,
    and who runs it now (its lease)."""
    from proxytask.core.lease import lease_note

    notes = _NOTES.get(kind)
    held = lease_note(path)
    return (*(() if notes is None else notes(path)), *(() if held is None else (held,)))


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
