"""From a command's resolved options to a running controller.

:func:`build_context` makes the executor, clock and controller dir; ``*_inputs`` check a
command's inputs and build its settings (before anything is written); ``run_*`` create or
resume a controller, run it to its answer and print its summary. The CLI commands and the
workflow both go through here.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from proxytask.core import layout, storage
from proxytask.core.errors import StorageError, UsageError
from proxytask.core.metric import metric_mode

if TYPE_CHECKING:
    from proxytask.controllers.base import ControllerContext
    from proxytask.controllers.final_checks import (
        ScaledBaselineController,
        ScaledBaselineSettings,
    )
    from proxytask.controllers.search import ReferenceModels, SearchController, SearchSettings
    from proxytask.controllers.selection import ModelSelectionController, SelectionSettings
    from proxytask.controllers.variance import VarianceController, VarianceSettings
    from proxytask.core.lease import Lease
    from proxytask.core.proxies import ProxyTaskConfig
    from proxytask.core.space import SearchSpace

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_context",
    "check_same_metric_mode",
    "drive",
    "failed",
    "resolve_architecture",
    "run_scaled_baseline",
    "run_search",
    "run_selection",
    "run_variance",
    "search_inputs",
    "selection_inputs",
    "variance_inputs",
]

#: The exit codes of every command: the answer reached, the run failed, bad usage or input.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_context(values: dict[str, Any], kind: str, previous: str | None) -> ControllerContext:
    """Build the executor, clock and controller dir of a controller command."""
    from proxytask.controllers.base import ControllerContext
    from proxytask.controllers.tracker import TrialSettings
    from proxytask.executors.base import Resources
    from proxytask.executors.command import parse_trainer_args, parse_trainer_command
    from proxytask.executors.factory import executor_class
    from proxytask.report.progress import ProgressDisplay

    trainer = parse_trainer_command(values["trainer"], values.get("trainer_entry"))
    executor_class(values["executor"]).check_trainer(trainer)
    baseline_args = parse_trainer_args(values["trainer_args"])
    job_name = layout.check_job_name(values["job_name"])
    executor, clock = executor_class(values["executor"]).from_options(values)
    if previous is None:
        cdir = layout.controller_dir(values["root_output_dir"], kind, job_name, clock.now())
    else:
        cdir = previous
    try:  # e.g. a path the nodes of a remote executor cannot see, GPUs this machine lacks
        executor.check_output_dir(cdir)
        executor.check_resources(Resources(gpus=values["gpus_per_trial"]))
    except UsageError:
        executor.close()
        raise
    made_root = previous is None and not storage.exists(values["root_output_dir"])
    try:
        if previous is None:
            cdir = _claim_new_dir(cdir)
        else:
            storage.makedirs(cdir)
    except OSError as exc:
        executor.close()
        raise UsageError(
            f"--root-output-dir must be a folder proxytask can create and write in, got "
            f"{values['root_output_dir']!r}: {exc.strerror or exc} ({exc.filename or cdir}). "
            "Pick another folder."
        ) from None
    settings = TrialSettings(
        trainer=trainer,
        resources=Resources(gpus=values["gpus_per_trial"]),
        timeout_secs=values["trial_timeout_secs"],
        report_timeout_secs=values["report_timeout_secs"],
        heartbeat_threshold_secs=values["heartbeat_threshold_secs"],
    )
    return ControllerContext(
        controller_dir=cdir,
        executor=executor,
        clock=clock,
        trial_settings=settings,
        baseline_args=baseline_args,
        options=values,
        display=ProgressDisplay(live=values.get("live")),
        poll_interval_secs=executor.poll_interval_secs,
        kind=kind,
        made_root=made_root,
    )


def _claim_new_dir(cdir: str) -> str:
    """Create the new controller dir ``cdir``, or ``cdir_2``, ``cdir_3``… when a run started
    in the same second (or a replay on the same simulated clock) took that name first.
    Exclusive on local disk (``mkdir``); on object stores a dir exists once a file is in it,
    so the first free name is taken (the dir's lease then keeps two writers apart)."""
    for n in range(1, 1000):
        candidate = cdir if n == 1 else f"{cdir}_{n}"
        if storage.is_local(candidate):
            path = storage.to_local_path(candidate)
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            try:
                os.mkdir(path)
            except FileExistsError:
                continue
            return candidate
        if not storage.exists(candidate):
            storage.makedirs(candidate)
            return candidate
    raise UsageError(f"controller dir {cdir!r} and 998 numbered ones exist: pick another job name.")


def resolve_architecture(value: str | None) -> dict[str, Any] | None:
    """``--architecture``/``--baseline-architecture``: JSON, a .json file, or PKG.MOD:FN."""
    if value is None:
        return None
    from proxytask.core.space import SearchSpace
    from proxytask.trainer.contract import load_nas_params

    if ":" in value and not value.lstrip().startswith("{") and not value.endswith(".json"):
        from proxytask.core.imports import import_callable

        fn = import_callable(value, "--architecture")
        return SearchSpace(lambda _rng: fn(), value).sample(0)
    return load_nas_params(value)


def _checked_space(values: Mapping[str, Any]) -> SearchSpace:
    from proxytask.core.space import load_search_space

    space = load_search_space(values["search_space"])
    space.sample(values["seed"], 0)  # a broken space fails here, before any dir is made
    return space


def variance_inputs(values: Mapping[str, Any]) -> tuple[SearchSpace, VarianceSettings]:
    """The search space and settings of a variance measurement, checked."""
    from proxytask.controllers.variance import VarianceSettings

    space = _checked_space(values)
    settings = VarianceSettings(
        num_copies=values["num_copies"],
        min_finished_copies=min(3, values["num_copies"]),
        workable_pct=values["workable_pct"],
        max_variance=values["max_variance"],
        max_smoothness=values["max_smoothness"],
        seed=values["seed"],
        copy_seed_flag=values["copy_seed_flag"],
        metric_mode=metric_mode(values.get("metric_mode")),
        architecture=resolve_architecture(values.get("architecture")),
    )
    return space, settings


def selection_inputs(values: Mapping[str, Any]) -> tuple[SearchSpace, SelectionSettings]:
    """The search space and settings of a model selection, checked."""
    from proxytask.controllers.selection import SelectionSettings

    space = _checked_space(values)
    settings = SelectionSettings(
        start_num_models=values["start_num_models"],
        final_num_models=values["final_num_models"],
        num_models_to_remove_per_iter=values["num_models_to_remove_per_iter"],
        num_holdout_models=values["num_holdout_models"],
        seed=values["seed"],
        latency_source=values["latency_source"],
        latency_timeout_secs=values["latency_timeout_secs"],
        accuracy_metric_id=values["accuracy_metric_id"],
        latency_metric_id=values["latency_metric_id"],
        baseline_architecture=resolve_architecture(values["baseline_architecture"]),
        metric_mode=metric_mode(values.get("metric_mode")),
        seed_noise_std=values.get("seed_noise_std"),
    )
    return space, settings


def search_inputs(
    values: Mapping[str, Any], references: ReferenceModels | None = None
) -> tuple[list[ProxyTaskConfig], SearchSettings]:
    """The proxy-task configs and settings of a search, checked.

    ``desired-latency-correlation: auto`` becomes 0.65 when ``references`` have latencies.
    """
    from proxytask.controllers.search import SearchSettings
    from proxytask.core.proxies import load_proxy_task_configs
    from proxytask.executors.command import parse_trainer_args

    baseline = parse_trainer_args(values["trainer_args"])
    configs = load_proxy_task_configs(values["proxy_task_config_generator"], baseline)
    latency_corr = values["desired_latency_correlation"]
    if latency_corr == "auto":
        has_latency = references is not None and any(
            lat is not None for lat in references.latencies
        )
        latency_corr = 0.65 if has_latency else None
    from proxytask.core.options import pct_or_auto, positive_int_or_auto

    _check_desired_accuracy(values, references)

    settings = SearchSettings(
        desired_accuracy_correlation=values["desired_accuracy_correlation"],
        desired_accuracy=values["desired_accuracy"],
        training_time_hrs_limit=values["training_time_hrs_limit"],
        desired_latency_correlation=latency_corr,
        early_stop_proxy_task_if_not_best=values["early_stop_proxy_task_if_not_best"],
        max_parallel_proxy_tasks=positive_int_or_auto(values.get("max_parallel_proxy_tasks")),
        stage_pct=pct_or_auto(values.get("stage_pct")),
        stopping_rule=values["stopping_rule"],
        confidence=values["confidence"],
        persistence=values["persistence"],
        metric_mode=metric_mode(values.get("metric_mode")).value,
    )
    return list(configs), settings


def _check_desired_accuracy(values: Mapping[str, Any], references: ReferenceModels | None) -> None:
    """``--desired-accuracy`` must be reachable: not better than every reference model's
    full-training score (a proxy trains less, so it scores no better)."""
    desired = values.get("desired_accuracy")
    if desired is None or references is None:
        return
    mode = metric_mode(values.get("metric_mode"))
    scores = [a for a in references.accuracies if a is not None]
    if not scores:
        return
    best = mode.best(scores)
    if mode.reached(best, desired):
        return
    raise UsageError(
        f"--desired-accuracy must be reachable, got {desired:g}, better than every reference "
        f"model's full-training {mode.noun} (the best: {best:.4g}); no proxy task could meet "
        f"it. Give a value within the reference models' range, or leave it out."
    )


def check_same_metric_mode(values: Mapping[str, Any]) -> None:
    """Raise UsageError when the model selection ran with another ``--metric-mode``.

    Its reference scores are the metric it saw: a search judging them the other way round
    would negate the zero-training scores and the desired accuracy against them.
    """
    from proxytask.core.options import saved_options

    saved = saved_options(values["model_selection_dir"]) or {}
    first = metric_mode(saved.get("metric_mode"))
    given = metric_mode(values.get("metric_mode"))
    if first is not given:
        raise UsageError(
            f"--metric-mode must match the model selection's, got {given} for a selection run "
            f"with {first} ({values['model_selection_dir']}). Pass --metric-mode {first}."
        )


def drive(
    ctx: ControllerContext,
    start: Callable[..., Any],
    *args: Any,
    announce: bool = True,
    on_started: Callable[[], None] | None = None,
    fresh: bool = False,
) -> Any:
    """Create or resume a controller, run it to its answer, close the executor, print it.

    ``announce``: print the controller dir first. Only once ``start`` has created or resumed
    the controller (its state is saved, or was read back and checked) are the options written
    to ``CONTROLLER_INFO.json`` and ``on_started`` called: a refused resume leaves the dir as
    it was, and a dir is recorded elsewhere (the workflow's state) only once it can be resumed.
    ``fresh``: the dir is new; when bad input stops the controller before any trial started
    (a replay table without the architecture's curve, say), the dir is removed again.
    """
    from proxytask.controllers.base import write_controller_info

    if announce:
        print(f"controller dir: {ctx.controller_dir}", flush=True)
    try:
        lease = take_lease(ctx.controller_dir)
    except (OSError, StorageError) as exc:  # the run's first write
        ctx.executor.close()
        if fresh:
            raise first_write_failed(ctx, exc) from None
        raise
    except BaseException:
        ctx.executor.close()
        raise
    ctx = dataclasses.replace(ctx, lease=lease)
    ctl = None
    try:
        ctl = start(ctx, *args)
        write_controller_info(ctx.controller_dir, ctx.kind, ctx.options)
        if on_started is not None:
            on_started()
        ctl.run()
    except UsageError:
        if fresh and not _any_trial_started(ctl):
            ctx.executor.close()
            lease.release()
            discard_new_dir(ctx)  # bad input: leave nothing behind
        raise
    except OSError as exc:
        if fresh and ctl is None:  # its state was never saved: there is nothing to resume
            ctx.executor.close()
            lease.release()
            raise first_write_failed(ctx, exc) from None
        raise
    finally:
        try:
            ctx.executor.close()  # every trial stopped before the dir is free for another
        finally:
            lease.release()
    for line in ctl.summary():
        print(line)
    return ctl


def discard_new_dir(ctx: ControllerContext) -> None:
    """Remove a controller dir this command created, and its root when it made that too and
    nothing else is in it."""
    storage.remove_tree(ctx.controller_dir)
    root = ctx.options.get("root_output_dir")
    if ctx.made_root and root and not storage.listdir(str(root)):
        storage.remove_tree(str(root))


def first_write_failed(ctx: ControllerContext, exc: OSError | StorageError) -> UsageError:
    """Remove the new dir a fresh run could not write its first files in (a full disk, a
    read-only or vanished folder, a missing bucket) and say so: nothing started, so nothing
    is to resume."""
    try:
        discard_new_dir(ctx)
    except (OSError, StorageError):
        pass  # the storage refuses even that: the message names the dir
    root = str(ctx.options.get("root_output_dir"))
    return first_write_error("--root-output-dir", root, exc, "pick another folder")


def first_write_error(subject: str, got: str, exc: OSError | StorageError, fix: str) -> UsageError:
    """The one line for a fresh run whose first write failed: ``subject`` (the option or
    dir at fault) must be writable, ``got`` its value, ``fix`` the way out of a bad folder."""
    if isinstance(exc, StorageError):  # its message says what to fix (create the bucket…)
        return UsageError(
            f"{subject} must be a place proxytask can write in, got {got!r}: {exc} Nothing "
            "started; run it again once that is fixed."
        )
    where = f" ({exc.filename})" if exc.filename else ""
    return UsageError(
        f"{subject} must be a folder proxytask can write in, got {got!r}: "
        f"{exc.strerror or exc}{where} while writing the run's first files. Nothing started "
        f"and the new dir was removed: free some space there or {fix}, then run it again."
    )


def _any_trial_started(ctl: Any) -> bool:
    """True when a controller (None: not created) launched a trial that started running."""
    tracker = getattr(ctl, "tracker", None)
    if tracker is None:
        return False
    return any(record.started_at is not None for record in tracker.records.values())


def take_lease(directory: str) -> Lease:
    """The lease of ``directory`` for this command (refused with the holder named, a stale
    one taken over with a note on stderr); see :mod:`proxytask.core.lease`."""
    from proxytask.core.lease import acquire_lease

    command = " ".join(["proxytask", *sys.argv[1:]])
    command = command if len(command) <= 300 else command[:299] + "…"
    lease = acquire_lease(directory, command)
    if lease.took_over:
        print(
            f"note: took over {directory} from a run that is gone ({lease.took_over})",
            file=sys.stderr,
        )
    return lease


def _start(
    cls: Any,
    values: dict[str, Any],
    previous: str | None,
    ctx: ControllerContext | None,
    *args: Any,
    on_started: Callable[[], None] | None = None,
) -> Any:
    """Run a controller of class ``cls`` in a new dir, or resume the one in ``previous``."""
    ctx = ctx or build_context(values, cls.kind, previous)
    start = cls.create if previous is None else cls.resume
    return drive(ctx, start, *args, on_started=on_started, fresh=previous is None)


def run_variance(
    values: dict[str, Any],
    previous: str | None,
    ctx: ControllerContext | None = None,
    on_started: Callable[[], None] | None = None,
) -> VarianceController:
    """Run (or resume) a variance measurement to its answer."""
    from proxytask.controllers.variance import VarianceController

    space, settings = variance_inputs(values)
    ctl: VarianceController = _start(
        VarianceController, values, previous, ctx, space, settings, on_started=on_started
    )
    return ctl


def run_selection(
    values: dict[str, Any],
    previous: str | None,
    ctx: ControllerContext | None = None,
    on_started: Callable[[], None] | None = None,
) -> ModelSelectionController:
    """Run (or resume) a model selection to its answer."""
    from proxytask.controllers.selection import ModelSelectionController

    space, settings = selection_inputs(values)
    ctl: ModelSelectionController = _start(
        ModelSelectionController, values, previous, ctx, space, settings, on_started=on_started
    )
    return ctl


def run_search(
    values: dict[str, Any],
    previous: str | None,
    ctx: ControllerContext | None = None,
    on_started: Callable[[], None] | None = None,
) -> SearchController:
    """Run (or resume) a proxy-task search to its answer."""
    from proxytask.controllers.search import ReferenceModels, SearchController
    from proxytask.stats.search import MIN_PAIRS

    references = ReferenceModels.load(values["model_selection_dir"])
    if len(references.trial_ids) < MIN_PAIRS:
        shortfall = next((w for w in references.warnings if w.startswith("only ")), "")
        raise UsageError(
            f"--model-selection-dir must hold at least {MIN_PAIRS} reference models for a "
            f"rank correlation, got {len(references.trial_ids)} in "
            f"{values['model_selection_dir']!r}"
            + (
                f" ({shortfall.rstrip('.')}). Resume the model selection with "
                "--previous-model-selection-dir to train the ones that failed again, or run "
                "one with a larger --final-num-models."
                if shortfall
                else f". Run a model selection with --final-num-models {MIN_PAIRS} or more."
            )
        )
    for warning in references.warnings:
        if warning.startswith("only ") and "reference models asked for" in warning:
            print(f"note: the model selection says: {warning}", file=sys.stderr)
    check_same_metric_mode(values)
    configs, settings = search_inputs(values, references)
    ctl: SearchController = _start(
        SearchController,
        values,
        previous,
        ctx,
        references,
        configs,
        settings,
        on_started=on_started,
    )
    return ctl


def run_scaled_baseline(
    settings: ScaledBaselineSettings,
    previous: str | None,
    ctx: ControllerContext,
    on_started: Callable[[], None] | None = None,
) -> ScaledBaselineController:
    """Run (or resume) the measurement of the baseline under a model-scaling proxy task."""
    from proxytask.controllers.final_checks import ScaledBaselineController

    ctl: ScaledBaselineController = _start(
        ScaledBaselineController, {}, previous, ctx, settings, on_started=on_started
    )
    return ctl


def failed(ctl: Any) -> bool:
    """True when a finished controller's phase is ``failed`` (a string or an Enum)."""
    phase = getattr(ctl, "phase", None)
    return getattr(phase, "value", phase) == "failed"
