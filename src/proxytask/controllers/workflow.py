"""The whole workflow in one command: variance → model selection → proxy search → final checks.

``proxytask run CONFIG.yaml`` keeps everything in ``<root-output-dir>/Workflow_<job-name>/``:
each tool's controller dir, ``WORKFLOW_STATE.json`` (which stage is where) and, at the end,
``RECOMMENDATION.json``. Running the same config again skips finished stages and resumes the
stage in flight. A stage whose answer makes the next one pointless stops the run with the
reason; ``--force`` goes on anyway.

The config file holds the shared trial options at the top level (``trainer``,
``search-space``, ``trainer-args``, ``executor``, ...) and one section per tool
(``variance:``, ``model-selection:``, ``search:``, ``final-checks:``) with that tool's options.

:class:`WorkflowController` runs it: each :meth:`~WorkflowController.step` runs one stage's
controller to its answer (the stage controllers step themselves) and records it in
``WORKFLOW_STATE.json`` (:class:`WorkflowState`, typed; :func:`load_workflow_state` and
:func:`save_workflow_state` are its codec).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import enum
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from proxytask.controllers.command_options import (
    FINAL_CHECKS_OPTIONS,
    SEARCH_OPTIONS,
    SELECTION_OPTIONS,
    TRIAL_OPTIONS,
    VARIANCE_OPTIONS,
)
from proxytask.controllers.context import EXIT_FAILED, EXIT_OK
from proxytask.controllers.final_checks import (
    STAGE_KINDS,
    ScaledBaselinePlan,
    ScaledBaselineResult,
    count_plots,
    final_checks,
    judge_variance,
    read_scaled_baseline_state,
    scaled_baseline_plan,
)
from proxytask.core import layout, storage
from proxytask.core.errors import ConfigError, UsageError
from proxytask.core.options import (
    Option,
    keep_first_values,
    normalise_keys,
    read_yaml,
    resolve_options,
    saved_options,
)
from proxytask.stats.search import MIN_PAIRS

if TYPE_CHECKING:
    from proxytask.controllers.search import SearchController

__all__ = [
    "RECOMMENDATION",
    "WORKFLOW_STATE",
    "StageEntry",
    "StageStatus",
    "WorkflowConfig",
    "WorkflowController",
    "WorkflowState",
    "WorkflowValues",
    "load_workflow_config",
    "load_workflow_state",
    "resolve_workflow",
    "save_workflow_state",
    "stage_values",
    "workflow_dir",
]

WORKFLOW_STATE = layout.WORKFLOW_STATE
RECOMMENDATION = layout.WORKFLOW_RECOMMENDATION
SECTIONS = ("variance", "model_selection", "search", "final_checks")
# options the workflow sets itself, never the user
_MANAGED = frozenset(
    {
        "previous_variance_dir",
        "previous_model_selection_dir",
        "previous_proxy_task_search_dir",
        "model_selection_dir",
        "root_output_dir",
        "job_name",
        "live",
    }
)


@dataclasses.dataclass(frozen=True)
class WorkflowConfig:
    """A parsed workflow file: shared options and one mapping per tool."""

    path: str
    shared: Mapping[str, Any]
    sections: Mapping[str, Mapping[str, Any]]


def _suggest(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" Did you mean '{close[0].replace('_', '-')}'?" if close else ""


def _section(path: str, key: str, value: Any, options: Sequence[Option]) -> dict[str, Any]:
    """One tool's section of the workflow file, checked against that tool's options."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(
            f"config key '{key.replace('_', '-')}' in {path!r} must be a mapping of that "
            f"tool's options, got {type(value).__name__}."
        )
    section = normalise_keys(value)
    known = {o.dest for o in options} - _MANAGED
    for sub in section:
        if sub not in known:
            raise ConfigError(
                f"config key '{key.replace('_', '-')}.{sub.replace('_', '-')}' in {path!r} "
                f"must be an option of that tool, got an unknown key."
                + _suggest(sub, sorted(known))
            )
    return section


def _check_required(path: str, shared: Mapping[str, Any], sections: Mapping[str, Any]) -> None:
    for required in ("trainer", "search_space", "root_output_dir", "job_name"):
        if shared.get(required) in (None, ""):
            raise ConfigError(
                f"config key '{required.replace('_', '-')}' in {path!r} must be given, got "
                "nothing. See examples/digits/workflow.yaml."
            )
    if not sections.get("search", {}).get("proxy_task_config_generator"):
        raise ConfigError(
            f"config key 'search.proxy-task-config-generator' in {path!r} must be given, got "
            "nothing. Example: examples.digits.proxies:demo."
        )


def load_workflow_config(
    path: str, shared_options: Sequence[Option], stage_options: Mapping[str, Sequence[Option]]
) -> WorkflowConfig:
    """Read and check a workflow file: unknown keys, wrong section types, missing trainer."""
    data = read_yaml(
        path,
        f"CONFIG must be an existing workflow file, got {path!r}. Check the path.",
        lambda line: f"workflow file {path!r} must be valid YAML, got an error{line}.",
    )
    if not isinstance(data, dict):
        raise ConfigError(
            f"workflow file {path!r} must hold a mapping of option: value, got "
            f"{type(data).__name__}. See examples/digits/workflow.yaml."
        )
    shared_known = {o.dest for o in shared_options}
    sections: dict[str, dict[str, Any]] = {}
    shared: dict[str, Any] = {}
    for key, value in normalise_keys(data).items():
        if key in SECTIONS:
            sections[key] = _section(path, key, value, stage_options[key])
        elif key in shared_known and key not in _MANAGED - {"root_output_dir", "job_name"}:
            shared[key] = value
        else:
            raise ConfigError(
                f"config key '{key.replace('_', '-')}' in {path!r} must be a shared trial option "
                f"or a section ({', '.join(s.replace('_', '-') for s in SECTIONS)}), got an "
                "unknown key." + _suggest(key, sorted(shared_known | set(SECTIONS)))
            )
    _check_required(path, shared, sections)
    return WorkflowConfig(path, shared, sections)


def stage_values(
    config: WorkflowConfig, stage: str, options: Sequence[Option], **managed: Any
) -> dict[str, Any]:
    """The resolved options of one stage: shared options < the stage's section < managed."""
    empty = argparse.Namespace(**{o.dest: None for o in options})
    base = {**config.shared, **config.sections.get(stage, {}), **managed}
    return resolve_options(empty, options, None, base=base)


def workflow_dir(config: WorkflowConfig) -> str:
    """``<root-output-dir>/Workflow_<job-name>``: the same file always means the same run."""
    return layout.workflow_dir(
        str(config.shared["root_output_dir"]), str(config.shared["job_name"])
    )


# ---- WORKFLOW_STATE.json ---------------------------------------------------------------------


class StageStatus(enum.Enum):
    """Where one stage of the workflow stands."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class StageEntry:
    """One stage in ``WORKFLOW_STATE.json``: its controller dir and status.

    ``proxy_task_name``: the final checks' proxy task (a new recommendation starts them anew).
    """

    dir: str | None = None
    status: StageStatus | None = None
    proxy_task_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON entry (keys as the file has always had them)."""
        out: dict[str, Any] = {}
        if self.proxy_task_name is not None:
            out["proxy_task_name"] = self.proxy_task_name
        if self.dir is not None or self.status is not None:
            out.update(dir=self.dir, status=None if self.status is None else self.status.value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageEntry:
        """Read a JSON entry."""
        status = data.get("status")
        return cls(
            dir=data.get("dir"),
            status=None if status is None else StageStatus(status),
            proxy_task_name=data.get("proxy_task_name"),
        )


@dataclasses.dataclass(frozen=True)
class WorkflowState:
    """``WORKFLOW_STATE.json``: the stages started so far, in order."""

    stages: Mapping[str, StageEntry] = dataclasses.field(default_factory=dict)
    version: int = 1

    def stage(self, name: str) -> StageEntry:
        """The stage's entry (an empty one before it started)."""
        return self.stages.get(name, StageEntry())

    def with_stage(self, name: str, entry: StageEntry) -> WorkflowState:
        """This state with one stage's entry replaced (or added at the end)."""
        return dataclasses.replace(self, stages={**self.stages, name: entry})


def load_workflow_state(wdir: str) -> WorkflowState:
    """The workflow's state (no stages for a new one)."""
    data = storage.read_json(storage.join(wdir, WORKFLOW_STATE))
    if not isinstance(data, dict):
        return WorkflowState()
    stages = {name: StageEntry.from_dict(e) for name, e in data.get("stages", {}).items()}
    return WorkflowState(stages, data.get("version", 1))


def save_workflow_state(wdir: str, state: WorkflowState) -> None:
    """Write the workflow's state atomically."""
    data = {
        "version": state.version,
        "stages": {name: e.to_dict() for name, e in state.stages.items()},
    }
    storage.write_json_atomic(storage.join(wdir, WORKFLOW_STATE), data, durable=True)


# ---- the controller --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WorkflowValues:
    """The resolved options of each stage (``search``'s model selection dir is set later)."""

    variance: dict[str, Any]
    model_selection: dict[str, Any]
    search: dict[str, Any]
    final_checks: dict[str, Any]


def resolve_workflow(path: str, live: bool | None) -> tuple[str, WorkflowValues]:
    """Read the workflow file and check every stage's input before anything is written.

    Returns the workflow dir and each stage's options. Raises UsageError/ConfigError.
    """
    from proxytask.controllers.context import search_inputs, selection_inputs, variance_inputs
    from proxytask.executors.command import parse_trainer_command
    from proxytask.executors.factory import executor_class

    stage_options = {
        "variance": VARIANCE_OPTIONS,
        "model_selection": SELECTION_OPTIONS,
        "search": SEARCH_OPTIONS,
        "final_checks": FINAL_CHECKS_OPTIONS,
    }
    cfg = load_workflow_config(path, TRIAL_OPTIONS, stage_options)
    wdir = workflow_dir(cfg)
    common = {"root_output_dir": wdir, "job_name": cfg.shared["job_name"], "live": live}
    values = WorkflowValues(
        **{
            stage: stage_values(
                cfg,
                stage,
                options,
                **common,
                **({"model_selection_dir": wdir} if stage == "search" else {}),
            )
            for stage, options in stage_options.items()
        }
    )
    # every stage's input is checked before anything is written
    _check_one_metric_mode(values)
    trainer = parse_trainer_command(
        values.variance["trainer"], values.variance.get("trainer_entry")
    )
    executor_class(values.variance["executor"]).check_trainer(trainer)
    variance_inputs(values.variance)
    _, selection = selection_inputs(values.model_selection)
    if selection.final_num_models < MIN_PAIRS:
        raise UsageError(
            f"model-selection: final-num-models must be at least {MIN_PAIRS} in a workflow, "
            f"got {selection.final_num_models} in {path}: the search ranks the reference "
            f"models, and a rank correlation needs {MIN_PAIRS} or more. Set final-num-models: "
            f"{MIN_PAIRS} or more (the model selection's summary says how many its proxies need)."
        )
    search_inputs(values.search)
    return wdir, values


def _check_one_metric_mode(values: WorkflowValues) -> None:
    """Every stage judges the same metric: a section may not turn its direction round."""
    modes = {
        stage: getattr(values, stage)["metric_mode"]
        for stage in ("variance", "model_selection", "search", "final_checks")
    }
    if len(set(modes.values())) > 1:
        given = ", ".join(f"{stage.replace('_', '-')}: {mode}" for stage, mode in modes.items())
        raise ConfigError(
            f"metric-mode must be the same in every section, got {given}. Set it once, at the "
            "top level of the workflow file."
        )


def _label(stage: str) -> str:
    return stage.replace("_", " ")


class WorkflowController:
    """``proxytask run``: variance → model selection → search → final checks, resumable.

    Each :meth:`step` runs the next stage's controller to its answer (a finished stage is
    skipped) and saves ``WORKFLOW_STATE.json``; a stage whose answer makes the next one
    pointless finishes the workflow early with the reason. :meth:`run` steps until
    :meth:`is_finished` and returns the exit code. Prints its progress on stdout.

    Example::

        wdir, values = resolve_workflow("workflow.yaml", live=None)
        exit_code = WorkflowController(wdir, values, force=False).run()
    """

    def __init__(self, wdir: str, values: WorkflowValues, force: bool = False) -> None:
        storage.makedirs(wdir)
        self.wdir = wdir
        self.values = values
        self.force = force
        self.state = load_workflow_state(wdir)
        self.exit_code: int | None = None
        self.variance: dict[str, Any] = {}
        self.search: SearchController | None = None
        self.plan: ScaledBaselinePlan | None = None
        self.scaled: ScaledBaselineResult | None = None
        self._stages: list[Callable[[], int | None]] = [
            self._variance,
            self._model_selection,
            self._search,
            self._scaled_baseline,
            self._final_checks,
        ]
        print(f"workflow dir: {wdir}", flush=True)

    def is_finished(self) -> bool:
        """True once the workflow has its exit code."""
        return self.exit_code is not None

    def step(self) -> None:
        """Run the next stage; finish with its exit code when it stops the workflow."""
        if self.is_finished():
            return
        code = self._stages.pop(0)()
        if code is not None or not self._stages:
            self.exit_code = EXIT_OK if code is None else code

    def run(self) -> int:
        """Step until finished; return the exit code (0 an answer, 1 a failed stage)."""
        while not self.is_finished():
            self.step()
        assert self.exit_code is not None
        return self.exit_code

    def _save(self, stage: str, entry: StageEntry) -> None:
        self.state = self.state.with_stage(stage, entry)
        save_workflow_state(self.wdir, self.state)

    def _run_stage(
        self, stage: str, values: dict[str, Any], runner: Callable[..., Any]
    ) -> Any | None:
        """Run (or resume) one stage's controller; None when it finished earlier."""
        from proxytask.controllers.context import build_context, failed

        entry = self.state.stage(stage)
        if entry.status is StageStatus.DONE:
            print(f"== {_label(stage)}: finished earlier, skipped ({entry.dir})")
            return None
        previous = entry.dir
        if previous:  # resuming the stage in flight: its defining options stay as first given
            values, notes = keep_first_values(values, saved_options(previous) or {}, {"live"})
            for note in notes:
                print(note, file=sys.stderr)
        ctx = build_context(values, STAGE_KINDS[stage], previous)
        running = dataclasses.replace(entry, dir=ctx.controller_dir, status=StageStatus.RUNNING)
        print(f"== {_label(stage)}" + (" (resumed)" if previous else ""), flush=True)
        # the stage's dir is recorded only once its controller's state exists: a run killed
        # before that starts the stage afresh instead of failing to resume an empty dir
        try:
            ctl = runner(values, previous, ctx, lambda: self._save(stage, running))
        except UsageError:
            if self.state.stage(stage).dir and not storage.exists(str(running.dir)):
                self._save(stage, entry)  # bad input removed the new stage dir: forget it
            raise
        status = StageStatus.FAILED if failed(ctl) else StageStatus.DONE
        self._save(stage, dataclasses.replace(self.state.stage(stage), status=status))
        return ctl

    def _variance(self) -> int | None:
        from proxytask.controllers.context import run_variance

        values = self.values.variance
        self._run_stage("variance", values, run_variance)
        vdir = str(self.state.stage("variance").dir)
        if self.state.stage("variance").status is StageStatus.FAILED and not self.force:
            print(
                "stopped: the variance measurement found no model that trains; model selection "
                "would fail the same way. Fix the trainer (see the causes above), then run "
                "again; --force goes on anyway."
            )
            return EXIT_FAILED
        saved = storage.read_json(storage.join(vdir, layout.VARIANCE_RESULT)) or {}
        judged = judge_variance(saved, values["max_variance"], values["max_smoothness"])
        for line in judged.lines:
            print(line)
        self.variance = dict(judged.result)
        if judged.good:
            return None
        if not self.force:
            print(
                "stopped: training is not repeatable or smooth enough for a proxy to rank "
                f"models (the verdict above; the advice in {vdir}). Apply the advice and run "
                "again under a new job-name (this finished measurement stays as it is); or "
                "change variance.max-variance / max-smoothness in the file to judge these "
                "curves again; or run again with --force to go on with them."
            )
            return EXIT_OK
        print("going on despite the variance verdict (--force)")
        return None

    def _model_selection(self) -> int | None:
        from proxytask.controllers.context import run_selection

        values = {**self.values.model_selection, "seed_noise_std": self._seed_noise_std()}
        ctl = self._run_stage("model_selection", values, run_selection)
        result = ctl.result() if ctl is not None else None
        if result is not None and len(result.reference_models) < MIN_PAIRS:
            # too few for any rank correlation: the stage counts as failed, so that the next
            # run resumes it, and the resumed selection trains the failed models again
            entry = self.state.stage("model_selection")
            self._save("model_selection", dataclasses.replace(entry, status=StageStatus.FAILED))
            print(
                f"stopped: model selection finished {len(result.reference_models)} reference "
                f"models, and a proxy search needs at least {MIN_PAIRS}. Fix the cause above and "
                "run again: the failed models are trained again."
            )
            return EXIT_FAILED
        if self.state.stage("model_selection").status is StageStatus.FAILED:
            print(
                "stopped: model selection gave no reference models, and a proxy search needs "
                "them. Fix the cause above and run again: the failed round is retried."
            )
            return EXIT_FAILED
        return None

    def _seed_noise_std(self) -> float | None:
        """The seed noise for the reference-set size: the file's, else the variance stage's."""
        from proxytask.stats.reference_size import seed_noise_of_variance_result

        given = self.values.model_selection.get("seed_noise_std")
        return given if given is not None else seed_noise_of_variance_result(self.variance)

    def _search(self) -> int | None:
        from proxytask.controllers.context import run_search

        values = {
            **self.values.search,
            "model_selection_dir": self.state.stage("model_selection").dir,
        }
        self.search = self._run_stage("search", values, run_search)
        if self.search is None:  # finished earlier: reopened, for configs or thresholds added
            self.search = self._reopen_search(values)
        return None

    def _reopen_search(self, values: dict[str, Any]) -> SearchController:
        from proxytask.controllers.context import build_context, drive, search_inputs
        from proxytask.controllers.search import ReferenceModels, SearchController

        print("  (reopened: configs added to the generator train, new thresholds re-score)")
        references = ReferenceModels.load(values["model_selection_dir"])
        configs, settings = search_inputs(values, references)
        ctx = build_context(values, layout.KIND_SEARCH, self.state.stage("search").dir)
        search: SearchController = drive(
            ctx, SearchController.resume, references, configs, settings, announce=False
        )
        return search

    def _scaled_baseline(self) -> int | None:
        """The baseline under a model-scaling proxy task, when the final checks need it."""
        from proxytask.controllers.context import resolve_architecture, run_scaled_baseline

        assert self.search is not None
        m_values = self.values.model_selection
        arch = resolve_architecture(m_values["baseline_architecture"])
        self.plan = scaled_baseline_plan(self.search, self.values.final_checks, m_values, arch)
        settings = self.plan.settings
        if settings is None:
            return None
        if self.state.stage("final_checks").proxy_task_name != settings.proxy_task_name:
            new = StageEntry(proxy_task_name=settings.proxy_task_name)  # saved once it starts
            self.state = self.state.with_stage("final_checks", new)
        ctl = self._run_stage(
            "final_checks",
            self.values.final_checks,
            lambda _values, previous, ctx, started: run_scaled_baseline(
                settings, previous, ctx, started
            ),
        )
        if ctl is None:
            saved = read_scaled_baseline_state(str(self.state.stage("final_checks").dir))
            self.scaled = saved.result if saved else None
        else:
            self.scaled = ctl.result
        return None

    def _final_checks(self) -> int | None:
        assert self.search is not None and self.plan is not None
        checks = final_checks(
            {name: entry.dir for name, entry in self.state.stages.items()},
            self.search,
            self.values.final_checks,
            self.plan,
            self.scaled,
            self.variance or None,
            self._seed_noise_std(),
        )
        path = storage.join(self.wdir, RECOMMENDATION)
        storage.write_json_atomic(path, checks.to_dict(), durable=True)
        print("== final checks")
        for line in checks.lines():
            print(line)
        print("report (each stage's plots and state files):")
        for stage, entry in self.state.stages.items():
            print(f"  {_label(stage)}: {entry.dir} ({count_plots(str(entry.dir))} plots)")
        print(f"recommendation: {path}")
        return None
