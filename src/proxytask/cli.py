"""The ``proxytask`` command line: parse, resolve config files, forward to library functions.

Exit codes: 0 the command reached its answer, 1 the run failed, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from proxytask import __version__
from proxytask.core import layout, storage
from proxytask.core.errors import ProxyTaskError, UsageError

if TYPE_CHECKING:
    from proxytask.controllers.base import ControllerContext
from proxytask.core.options import (
    TRIAL_OPTIONS,
    Option,
    add_options,
    boolean,
    correlation_or_auto,
    float_or_none,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    resolve_options,
    string_list,
    text,
)

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

TRIAL_COMMAND_OPTIONS: tuple[Option, ...] = (
    *TRIAL_OPTIONS,
    Option(
        "architecture",
        text,
        None,
        "the architecture to train: JSON, a .json file, or PKG.MOD:FN returning a dict "
        "(default: sample from --search-space)",
        "ARCH",
    ),
    Option("num-trials", positive_int, 1, "how many trials (architectures) to run", "N"),
)


#: ``--live``: every controller command has it.
LIVE_OPTION = Option(
    "live",
    boolean,
    None,
    "force the live display on or off (default: on a terminal)",
    "true|false",
)

VARIANCE_OPTIONS: tuple[Option, ...] = (
    *TRIAL_OPTIONS,
    Option("num-copies", positive_int, 5, "copies of the workable model to train", "N"),
    Option(
        "previous-variance-dir",
        text,
        None,
        "resume the measurement in this controller dir (after a crash or a stop)",
        "DIR",
    ),
    Option(
        "max-variance",
        non_negative_float,
        0.4,
        "the coefficient of variation above which variance is not good",
        "CV",
    ),
    Option(
        "max-smoothness",
        non_negative_float,
        10.0,
        "the smoothness value above which curves are not smooth enough",
        "S",
    ),
    Option(
        "copy-seed-flag",
        text,
        None,
        "a trainer flag set to 1..N in the N copies (e.g. seed); default: identical copies, "
        "as the reference tools",
        "FLAG",
    ),
    Option(
        "workable-pct",
        positive_float,
        1.0,
        "train each candidate to this pct to see that it works",
        "PCT",
    ),
    LIVE_OPTION,
)

SELECTION_OPTIONS: tuple[Option, ...] = (
    *TRIAL_OPTIONS,
    Option("start-num-models", positive_int, 30, "random models to start from", "N"),
    Option("final-num-models", positive_int, 10, "reference models to train fully", "N"),
    Option("num-models-to-remove-per-iter", positive_int, 5, "models removed per round", "N"),
    Option(
        "num-holdout-models",
        non_negative_int,
        0,
        "extra models trained fully and held out: the search never chooses by them, and "
        "reports the winning proxy's Kendall tau-b on them",
        "K",
    ),
    Option(
        "accuracy-metric-id",
        text,
        "",
        "read the reference models' accuracy from this named final metric "
        "(default: the accuracy at 100 %)",
        "ID",
    ),
    Option(
        "latency-metric-id",
        text,
        "",
        "read latency from this named final metric (default: the reported latency)",
        "ID",
    ),
    Option(
        "latency-source",
        text,
        "trainer",
        "where latency comes from: the trainer's report, a latency worker, or none "
        "(accuracy alone)",
        choices=("trainer", "worker", "none"),
    ),
    Option(
        "latency-timeout-secs",
        positive_float,
        3600.0,
        "with --latency-source worker: how long to wait for a round's latencies",
        "SECS",
    ),
    Option(
        "baseline-architecture",
        text,
        None,
        "the baseline model (JSON, a .json file or PKG.MOD:FN) to train fully beside the "
        "candidates, for comparison",
        "ARCH",
    ),
    Option(
        "previous-model-selection-dir",
        text,
        None,
        "resume the model selection in this controller dir (after a crash or a failed round)",
        "DIR",
    ),
    LIVE_OPTION,
)

SEARCH_OPTIONS: tuple[Option, ...] = (
    *(
        dataclasses.replace(o, required=False, help=o.help + " (not needed by search)")
        if o.name == "search-space"
        else o
        for o in TRIAL_OPTIONS
    ),
    Option(
        "model-selection-dir",
        text,
        None,
        "a finished model selection: its reference models judge the proxies",
        "DIR",
        required=True,
    ),
    Option(
        "proxy-task-config-generator",
        text,
        None,
        "PKG.MOD:FN(baseline_args) -> [ProxyTaskConfig]",
        "PKG.MOD:FN",
        required=True,
        hint="Example: examples.digits.proxies:generate.",
    ),
    Option(
        "desired-accuracy-correlation",
        float_or_none,
        0.65,
        "stop a proxy once Kendall tau-b reaches this ('none' to stop on accuracy)",
        "TAU",
    ),
    Option(
        "desired-accuracy",
        float_or_none,
        None,
        "stop a proxy once its median accuracy reaches this",
        "A",
    ),
    Option(
        "training-time-hrs-limit",
        positive_float,
        None,
        "stop a proxy whose median training time reaches this (hours)",
        "H",
    ),
    Option(
        "desired-latency-correlation",
        correlation_or_auto,
        "auto",
        "fail a proxy whose latency correlation is below this (auto: 0.65 when the reference "
        "models have latencies; none: never)",
        "TAU",
    ),
    Option(
        "early-stop-proxy-task-if-not-best",
        boolean,
        True,
        "stop a proxy as soon as it takes longer than the best one so far",
        "true|false",
    ),
    Option(
        "stopping-rule",
        text,
        "confident",
        "point: stop a proxy at the first step whose Kendall tau-b reaches the threshold (the "
        "reference tools' rule); confident: only when the true tau clears it with --confidence "
        "at --persistence consecutive steps, and abandon a proxy that cannot reach it",
        choices=("point", "confident"),
    ),
    Option(
        "confidence",
        positive_float,
        0.85,
        "with --stopping-rule confident: how sure the true tau must be above the threshold "
        "(and the level of the reported intervals)",
        "P",
        hint="Use a value in [0.5, 1), e.g. 0.9.",
    ),
    Option(
        "persistence",
        positive_int,
        2,
        "with --stopping-rule confident: consecutive evaluations that must agree",
        "K",
    ),
    Option(
        "max-parallel-proxy-tasks",
        positive_int,
        1,
        "proxy-task configs evaluated at once (1 matches the reference's cost accounting)",
        "N",
    ),
    Option(
        "previous-proxy-task-search-dir",
        text,
        None,
        "resume the search in this controller dir (after a crash, or with more configs or "
        "new thresholds)",
        "DIR",
    ),
    LIVE_OPTION,
)

# `proxytask run` only: the `final-checks:` section of a workflow file.
MODEL_SCALE_ARGS = ("width_multiplier", "depth_multiplier", "image_size")
FINAL_CHECKS_OPTIONS: tuple[Option, ...] = (
    *(
        dataclasses.replace(o, required=False) if o.name == "search-space" else o
        for o in TRIAL_OPTIONS
    ),
    Option(
        "latency-constraint",
        positive_float,
        None,
        "the latency target of the full model (the trainer's latency unit): the final checks "
        "say the stricter target to use under a model-scaling proxy task",
        "T",
    ),
    Option(
        "measure-scaled-baseline",
        boolean,
        True,
        "train the baseline architecture once under a model-scaling proxy task to measure its "
        "latency (false: estimate it from the reference models)",
        "true|false",
    ),
    Option(
        "model-scale-args",
        string_list,
        list(MODEL_SCALE_ARGS),
        "trainer flags that scale the model: a proxy task setting one of them is model-scaling",
        "FLAG",
        many=True,
    ),
    LIVE_OPTION,
)

# Options that may change when a controller is resumed; the others stay as first given.
RESUMABLE_OVERRIDES = frozenset(
    {
        "proxy_task_config_generator",
        "desired_accuracy_correlation",
        "desired_accuracy",
        "training_time_hrs_limit",
        "desired_latency_correlation",
        "early_stop_proxy_task_if_not_best",
        "max_parallel_proxy_tasks",
        "stopping_rule",
        "confidence",
        "persistence",
        "executor",
        "replay_table",
        "ray_address",
        "ray_on_resume",
        "max_parallel_trials",
        "trial_timeout_secs",
        "report_timeout_secs",
        "heartbeat_threshold_secs",
        "live",
    }
)


class _Parser(argparse.ArgumentParser):
    """argparse with one clear line and exit code 2 on bad usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}. See '{self.prog} --help'.\n")


def _tool_parser(
    sub: Any, name: str, *, help: str, description: str, options: Sequence[Option]
) -> argparse.ArgumentParser:
    """A subcommand taking ``--config FILE`` and ``options``."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help, description=description)
    parser.add_argument("--config", metavar="FILE", help="YAML file with any of these options")
    add_options(parser, options)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The full parser of every command."""
    parser = _Parser(
        prog="proxytask",
        description="Design proxy tasks for neural architecture search, and prove they can "
        "be trusted.",
    )
    parser.add_argument("--version", action="version", version=f"proxytask {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    _tool_parser(
        sub,
        "trial",
        help="run trials of a trainer through an executor (checks a trainer integration)",
        description="Run one or more trials of your trainer through an executor, exactly as "
        "the tools will, and show their progress and files.",
        options=TRIAL_COMMAND_OPTIONS,
    )

    _tool_parser(
        sub,
        "variance",
        help="measure how repeatable and smooth training is (variance measurement)",
        description="Find a model that trains without failing, train copies of it, and report "
        "the variance of their final accuracy and the smoothness of their curves, with advice.",
        options=VARIANCE_OPTIONS,
    )

    _tool_parser(
        sub,
        "select-models",
        help="choose reference models spread over accuracy and latency, and train them fully",
        description="Start from random models, train them in rounds continued from "
        "checkpoints, prune the crowded ones each round, and train the survivors fully: the "
        "reference models that proxy tasks are judged by.",
        options=SELECTION_OPTIONS,
    )

    from proxytask.controllers.latency import add_latency_worker_arguments

    worker = sub.add_parser(
        "latency-worker",
        help="measure the latency of trained models for a controller (any machine)",
        description="Watch a controller dir, claim trials whose latency is requested, run the "
        "latency command on each and write the result back.",
    )
    add_latency_worker_arguments(worker)

    _tool_parser(
        sub,
        "search",
        help="find the cheapest proxy task that ranks the reference models like full training",
        description="Train the reference models under each proxy-task config, track the Kendall "
        "rank correlation with full training as training goes, stop each config as soon as it "
        "qualifies or cannot win, and recommend the cheapest one with its step budget.",
        options=SEARCH_OPTIONS,
    )

    run = sub.add_parser(
        "run",
        help="the whole workflow: variance, model selection, proxy search, final checks",
        description="Run variance measurement, model selection, proxy-task search and the final "
        "checks from one config file, in one dir; running it again skips finished stages and "
        "resumes the one in flight.",
    )
    run.add_argument("config", metavar="CONFIG", help="the workflow file (YAML)")
    run.add_argument(
        "--force",
        action="store_true",
        help="go on when a stage's answer says the next one is pointless",
    )
    run.add_argument(
        "--live",
        default=None,
        choices=("true", "false"),
        help="force the live display on or off (default: on a terminal)",
    )

    status = sub.add_parser(
        "status",
        help="what a controller, job or trial dir holds and where it stands",
        description="Show what a controller dir (or a job or trial dir) holds.",
    )
    status.add_argument("dir", metavar="DIR")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def _resolve_architecture(value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    from proxytask.core.space import SearchSpace
    from proxytask.trainer.contract import load_nas_params

    if ":" in value and not value.lstrip().startswith("{") and not value.endswith(".json"):
        from proxytask.core.imports import import_callable

        fn = import_callable(value, "--architecture")
        return SearchSpace(lambda _rng: fn(), value).sample(0)
    return load_nas_params(value)


def _print_progress(progress: Any) -> None:
    acc = progress.last_accuracy
    if acc is not None:  # nothing to show before the first evaluation
        line = f"  {progress.trial_id:<14} {progress.last_pct:6.1f}%  accuracy {acc:.4f}"
        print(line, flush=True)


def cmd_trial(values: dict[str, Any]) -> int:
    """``proxytask trial``: run trials and report where their files are."""
    from proxytask.controllers.trials import TrialBatch
    from proxytask.core.space import load_search_space
    from proxytask.executors.base import TrialState
    from proxytask.executors.command import build_trial_spec

    arch = _resolve_architecture(values["architecture"])
    space = load_search_space(values["search_space"])
    count = values["num_trials"]
    archs = [arch] * count if arch is not None else space.sample_many(values["seed"], count)
    ctx = _context(values, layout.KIND_TRIALS, None)
    job_name = values["job_name"]
    jdir = layout.job_dir(ctx.controller_dir, job_name)
    print(f"controller dir: {ctx.controller_dir}", flush=True)
    settings = ctx.trial_settings
    batch = TrialBatch(
        ctx.executor, ctx.clock, heartbeat_threshold_secs=settings.heartbeat_threshold_secs
    )
    try:
        for number, trial_arch in enumerate(archs, start=1):
            batch.add(
                build_trial_spec(
                    trainer=settings.trainer,
                    job_name=job_name,
                    job_dir=jdir,
                    trial_number=number,
                    controller_dir=ctx.controller_dir,
                    nas_params=trial_arch,
                    trainer_args=ctx.baseline_args,
                    resources=settings.resources,
                    timeout_secs=settings.timeout_secs,
                )
            )
        outcomes = batch.run(on_progress=_print_progress)
    finally:
        ctx.executor.close()
    failed = 0
    for outcome in outcomes:
        metrics = outcome.metrics
        final = (
            metrics.training_accuracy_over_steps[-1].accuracy
            if metrics and metrics.training_accuracy_over_steps
            else None
        )
        secs = metrics.training_time.total_training_time_in_secs if metrics else 0.0
        note = outcome.state.value
        if outcome.state is TrialState.FAILED:
            failed += 1
            note = (
                f"failed ({outcome.cause.value if outcome.cause else 'unknown'}): {outcome.message}"
            )
        print(
            f"{outcome.trial_id}: {note}; final accuracy "
            f"{'-' if final is None else f'{final:.4f}'}; training {secs:.1f} s; "
            f"files in {outcome.trial_dir}"
        )
    return EXIT_FAILED if failed else EXIT_OK


def _resolve_with_previous(
    args: argparse.Namespace, options: tuple[Option, ...], previous_dest: str
) -> tuple[dict[str, Any], str | None]:
    """Resolve options; on a resume, start from the options the first run saved."""
    from proxytask.controllers.base import read_controller_info

    previous = getattr(args, previous_dest, None)
    if previous is None and args.config:
        from proxytask.core.options import load_config_file

        previous = load_config_file(args.config).get(previous_dest)
    if previous is None:
        return resolve_options(args, options, args.config), None
    if not storage.exists(previous):
        raise UsageError(
            f"--{previous_dest.replace('_', '-')} must be an existing controller dir, got "
            f"{previous!r}. Use the dir the first run printed."
        )
    info = read_controller_info(previous)
    if info is None:
        raise UsageError(
            f"--{previous_dest.replace('_', '-')} must be a proxytask controller dir, got "
            f"{previous!r}, which holds no {layout.CONTROLLER_INFO}."
        )
    saved = dict(info.get("options", {}))
    given = {dest for dest in vars(args) if getattr(args, dest) is not None}
    base = {k: v for k, v in saved.items() if k not in given or k in RESUMABLE_OVERRIDES}
    values = _keep_first_values(
        resolve_options(args, options, args.config, base=base), saved, {previous_dest}
    )
    values[previous_dest] = previous
    return values, previous


def _keep_first_values(
    values: dict[str, Any], saved: dict[str, Any], exempt: set[str]
) -> dict[str, Any]:
    """On a resume, what defines the run stays as first given (a note says so)."""
    for dest, value in saved.items():
        changed = dest in values and values[dest] != value
        if changed and dest not in RESUMABLE_OVERRIDES and dest not in exempt:
            print(
                f"proxytask: note: keeping {dest.replace('_', '-')}={value!r} of the run "
                f"being resumed (given {values[dest]!r})",
                file=sys.stderr,
            )
            values[dest] = value
    return values


def _context(values: dict[str, Any], kind: str, previous: str | None) -> ControllerContext:
    """Build the executor, clock and controller dir of a controller command."""
    from proxytask.controllers.base import ControllerContext, write_controller_info
    from proxytask.controllers.tracker import TrialSettings
    from proxytask.executors.base import Resources
    from proxytask.executors.command import parse_trainer_args, parse_trainer_command
    from proxytask.executors.factory import executor_class
    from proxytask.report.progress import ProgressDisplay

    trainer = parse_trainer_command(values["trainer"])
    executor_class(values["executor"]).check_trainer(trainer)
    baseline_args = parse_trainer_args(values["trainer_args"])
    job_name = layout.check_job_name(values["job_name"])
    executor, clock = executor_class(values["executor"]).from_options(values)
    if previous is None:
        cdir = layout.controller_dir(values["root_output_dir"], kind, job_name, clock.now())
    else:
        cdir = previous
    try:  # e.g. a path the nodes of a remote executor cannot see
        executor.check_output_dir(cdir)
    except UsageError:
        executor.close()
        raise
    storage.makedirs(cdir)
    write_controller_info(cdir, kind, values)
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
    )


def _drive(ctx: ControllerContext, start: Any, *args: Any) -> Any:
    """Create or resume a controller, run it to its answer, close the executor, print it."""
    print(f"controller dir: {ctx.controller_dir}", flush=True)
    try:
        ctl = start(ctx, *args)
        ctl.run()
    finally:
        ctx.executor.close()
    for line in ctl.summary():
        print(line)
    return ctl


def _variance_inputs(values: dict[str, Any]) -> tuple[Any, Any]:
    from proxytask.controllers.variance import VarianceSettings
    from proxytask.core.space import load_search_space

    space = load_search_space(values["search_space"])
    space.sample(values["seed"], 0)  # a broken space fails here, before any dir is made
    settings = VarianceSettings(
        num_copies=values["num_copies"],
        min_finished_copies=min(3, values["num_copies"]),
        workable_pct=values["workable_pct"],
        max_variance=values["max_variance"],
        max_smoothness=values["max_smoothness"],
        seed=values["seed"],
        copy_seed_flag=values["copy_seed_flag"],
    )
    return space, settings


def _selection_inputs(values: dict[str, Any]) -> tuple[Any, Any]:
    from proxytask.controllers.selection import SelectionSettings
    from proxytask.core.space import load_search_space

    space = load_search_space(values["search_space"])
    space.sample(values["seed"], 0)
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
        baseline_architecture=_resolve_architecture(values["baseline_architecture"]),
    )
    return space, settings


def _search_inputs(values: dict[str, Any], references: Any = None) -> tuple[Any, Any]:
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
    settings = SearchSettings(
        desired_accuracy_correlation=values["desired_accuracy_correlation"],
        desired_accuracy=values["desired_accuracy"],
        training_time_hrs_limit=values["training_time_hrs_limit"],
        desired_latency_correlation=latency_corr,
        early_stop_proxy_task_if_not_best=values["early_stop_proxy_task_if_not_best"],
        max_parallel_proxy_tasks=values["max_parallel_proxy_tasks"],
        stopping_rule=values["stopping_rule"],
        confidence=values["confidence"],
        persistence=values["persistence"],
    )
    return configs, settings


def _run_variance(values: dict[str, Any], previous: str | None, ctx: Any = None) -> Any:
    from proxytask.controllers.variance import VarianceController

    space, settings = _variance_inputs(values)
    ctx = ctx or _context(values, layout.KIND_VARIANCE, previous)
    start = VarianceController.create if previous is None else VarianceController.resume
    return _drive(ctx, start, space, settings)


def _run_selection(values: dict[str, Any], previous: str | None, ctx: Any = None) -> Any:
    from proxytask.controllers.selection import ModelSelectionController

    space, settings = _selection_inputs(values)
    ctx = ctx or _context(values, layout.KIND_MODEL_SELECTION, previous)
    start = ModelSelectionController.create if previous is None else ModelSelectionController.resume
    return _drive(ctx, start, space, settings)


def _run_search(values: dict[str, Any], previous: str | None, ctx: Any = None) -> Any:
    from proxytask.controllers.search import ReferenceModels, SearchController

    references = ReferenceModels.load(values["model_selection_dir"])
    configs, settings = _search_inputs(values, references)
    ctx = ctx or _context(values, layout.KIND_SEARCH, previous)
    start = SearchController.create if previous is None else SearchController.resume
    return _drive(ctx, start, references, configs, settings)


def cmd_variance(args: argparse.Namespace) -> int:
    """``proxytask variance``: the variance measurement."""
    values, previous = _resolve_with_previous(args, VARIANCE_OPTIONS, "previous_variance_dir")
    ctl = _run_variance(values, previous)
    if ctl.phase == "failed":
        return EXIT_FAILED
    cdir = ctl.ctx.controller_dir
    print(f"results: {storage.join(cdir, 'variance_and_smoothness.json')}")
    print(f"plot:    {storage.join(cdir, 'variance_curves.png')}")
    return EXIT_OK


def cmd_select_models(args: argparse.Namespace) -> int:
    """``proxytask select-models``: model selection."""
    values, previous = _resolve_with_previous(
        args, SELECTION_OPTIONS, "previous_model_selection_dir"
    )
    ctl = _run_selection(values, previous)
    if ctl.phase == "failed":
        return EXIT_FAILED
    print(f"reference models: {storage.join(ctl.ctx.controller_dir, 'REFERENCE_MODELS.json')}")
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    """``proxytask search``: the proxy-task search."""
    values, previous = _resolve_with_previous(
        args, SEARCH_OPTIONS, "previous_proxy_task_search_dir"
    )
    ctl = _run_search(values, previous)
    print(f"state: {storage.join(ctl.ctx.controller_dir, 'SEARCH_CONTROLLER_STATE.json')}")
    return EXIT_OK


def _scaling_args(search_ctl: Any, f_values: dict[str, Any]) -> list[str]:
    """The model-scaling trainer flags the recommended proxy task sets ([] for none)."""
    best = search_ctl.best_proxy_task_name
    if not best or best not in search_ctl.configs:
        return []
    return sorted(set(f_values["model_scale_args"]) & set(search_ctl.configs[best].trainer_args))


def _scaled_baseline_settings(
    search_ctl: Any, f_values: dict[str, Any], m_values: dict[str, Any]
) -> tuple[Any, str | None]:
    """What to measure under the proxy task, or None and why the measurement is skipped."""
    from proxytask.controllers.final_checks import ScaledBaselineSettings
    from proxytask.controllers.search import _args

    if not _scaling_args(search_ctl, f_values):
        return None, None  # the proxy does not scale the model: nothing to measure
    if m_values["latency_source"] == "none":
        return None, "model selection measured no latency (latency-source: none)"
    if not f_values["measure_scaled_baseline"]:
        return None, "final-checks.measure-scaled-baseline is false"
    arch = _resolve_architecture(m_values["baseline_architecture"])
    if arch is None:
        return None, (
            "no model-selection.baseline-architecture was given, so the baseline could not be "
            "measured"
        )
    best = search_ctl.best_proxy_task_name
    settings = ScaledBaselineSettings(
        proxy_task_name=best,
        baseline_architecture=arch,
        proxy_trainer_args=_args(search_ctl.configs[best]),
        latency_source=m_values["latency_source"],
        latency_metric_id=m_values["latency_metric_id"] or None,
        latency_timeout_secs=m_values["latency_timeout_secs"],
    )
    return settings, None


def _run_scaled_baseline(settings: Any, previous: str | None, ctx: Any) -> Any:
    from proxytask.controllers.final_checks import ScaledBaselineController

    start = ScaledBaselineController.create if previous is None else ScaledBaselineController.resume
    return _drive(ctx, start, settings)


def _latency_check(
    search_ctl: Any,
    f_values: dict[str, Any],
    scaled: dict[str, Any] | None,
    skipped: str | None,
    full_baseline_latency: float | None,
) -> dict[str, Any] | None:
    """The latency part of the final checks for a model-scaling proxy task (None otherwise)."""
    import statistics

    from proxytask.controllers.final_checks import stricter_constraint

    scaled_by = _scaling_args(search_ctl, f_values)
    if not scaled_by:
        return None
    target = f_values["latency_constraint"]
    best = search_ctl.best_proxy_task_name
    out: dict[str, Any] = {"scaled_by": scaled_by, "latency_constraint": target}
    measured = scaled.get("latency") if scaled else None
    if measured is not None and full_baseline_latency:
        numbers = stricter_constraint(target, full_baseline_latency, measured)
        ratio = numbers["ratio_scaled_to_full"]
        out.update(
            method="measured",
            baseline_latency_full=full_baseline_latency,
            baseline_latency_scaled=measured,
            scaled_baseline_trial_dir=scaled["trial_dir"] if scaled else None,
            latency_ratio_scaled_to_full=ratio,
            proxy_latency_constraint=numbers["proxy_latency_constraint"],
        )
        what = f"the baseline measures {measured:.4g} under {best} and {full_baseline_latency:.4g}"
        what += " fully trained"
    else:
        problem = skipped or (scaled or {}).get("error")
        if measured is not None and not full_baseline_latency:
            problem = "model selection's baseline has no latency to compare with"
        ratios = [
            p / f
            for p, f in zip(
                search_ctl.latencies(best), search_ctl.references.latencies, strict=False
            )
            if p is not None and f is not None and f > 0
        ]
        if not ratios:
            out.update(method="unavailable", problem=problem, proxy_latency_constraint=None)
            out["advice"] = (
                f"the proxy scales the model ({', '.join(scaled_by)}) but no latency could be "
                f"compared ({problem or 'no latencies reported'}): measure the scaled baseline "
                "yourself and tighten the latency target by the same ratio"
            )
            return out
        ratio = statistics.median(ratios)
        out.update(
            method="estimated_from_reference_models",
            problem=problem,
            latency_ratio_scaled_to_full=ratio,
            proxy_latency_constraint=None if target is None else target * ratio,
        )
        what = (
            f"its models measure {ratio:.3g}× the full models' latency (median over the "
            f"reference models; estimated because {problem or 'the baseline was not measured'})"
        )
    if target is None:
        advice = f"a latency target T for the full model becomes {ratio:.3g}·T in the search"
    else:
        advice = (
            f"use the latency constraint {out['proxy_latency_constraint']:.4g} in the search "
            f"instead of {target:.4g}"
        )
    out["advice"] = f"the proxy scales the model ({', '.join(scaled_by)}): {what}, so {advice}"
    return out


def _judge_variance(result: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The variance verdict under the current thresholds, printed (a finished measurement is
    judged again when the workflow file's thresholds changed, without training again)."""
    from proxytask.controllers.base import fmt_number
    from proxytask.controllers.variance import judge

    if not result:
        return result
    max_var, max_smooth = values["max_variance"], values["max_smoothness"]
    var, smooth = result.get("variance_value"), result.get("smoothness_value")
    variance_good, smoothness_good = judge(var, smooth, max_var, max_smooth)
    judged = {
        **result,
        "variance_good": variance_good,
        "smoothness_good": smoothness_good,
        "thresholds": {"max_variance": max_var, "max_smoothness": max_smooth},
    }
    for what, value, limit, good in (
        ("variance", var, max_var, judged["variance_good"]),
        ("smoothness", smooth, max_smooth, judged["smoothness_good"]),
    ):
        verdict = "good" if good else "NOT GOOD"
        print(f"  {what} {fmt_number(value)} (threshold {limit:g}): {verdict}")
    return judged


def _final_checks(
    wdir: str,
    state: dict[str, Any],
    search_ctl: Any,
    f_values: dict[str, Any],
    scaled: dict[str, Any] | None = None,
    skipped: str | None = None,
    variance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The final checks of the workflow (rewards, failures, latency) and the recommendation."""
    from proxytask.controllers import workflow as wf
    from proxytask.trainer.contract import check_reward_range

    stages = state["stages"]
    rec = search_ctl.recommendation()
    failures = {
        "variance": wf.failure_rate(stages["variance"]["dir"], "measurement_state.json")
        if stages.get("variance", {}).get("dir")
        else None,
        "model_selection": wf.failure_rate(
            stages["model_selection"]["dir"], "MODEL_SELECTION_STATE.json"
        ),
        "search": wf.failure_rate(stages["search"]["dir"], "SEARCH_CONTROLLER_STATE.json"),
    }
    if stages.get("final_checks", {}).get("dir"):
        from proxytask.controllers.final_checks import FINAL_CHECKS_STATE

        failures["final_checks"] = wf.failure_rate(
            stages["final_checks"]["dir"], FINAL_CHECKS_STATE
        )
    reward = None
    latency_constraint = None
    best = rec.get("best_proxy_task_name")
    if best:
        step = rec["final_training_step"]
        scores = [a for a in search_ctl.accuracies_at_step(best, step) if a is not None]
        check = check_reward_range(scores)
        reward = {
            "minimum": check.minimum,
            "maximum": check.maximum,
            "ok": check.ok,
            "scale_factor": check.scale_factor,
            "message": check.message,
        }
        references = storage.read_json(
            storage.join(stages["model_selection"]["dir"], "REFERENCE_MODELS.json")
        )
        baseline = (references or {}).get("baseline") or {}
        latency_constraint = _latency_check(
            search_ctl, f_values, scaled, skipped, baseline.get("latency")
        )
    return {
        "version": 1,
        "recommendation": rec,
        "variance": None
        if variance is None
        else {
            k: variance.get(k)
            for k in (
                "variance_value",
                "variance_good",
                "smoothness_value",
                "smoothness_good",
                "std",
                "std_confidence_interval",
            )
        },
        "failure_rates": failures,
        "reward_range": reward,
        "latency_constraint": latency_constraint,
        "stage_dirs": {k: v.get("dir") for k, v in stages.items()},
    }


def cmd_run(path: str, force: bool, live: bool | None) -> int:
    """``proxytask run CONFIG``: the whole workflow, resumable, in one dir."""
    from proxytask.controllers import workflow as wf
    from proxytask.executors.command import parse_trainer_command
    from proxytask.executors.factory import executor_class

    stage_options = {
        "variance": VARIANCE_OPTIONS,
        "model_selection": SELECTION_OPTIONS,
        "search": SEARCH_OPTIONS,
        "final_checks": FINAL_CHECKS_OPTIONS,
    }
    cfg = wf.load_workflow_config(path, TRIAL_OPTIONS, stage_options)
    wdir = wf.workflow_dir(cfg)
    common = {"root_output_dir": wdir, "job_name": cfg.shared["job_name"], "live": live}
    v_values = wf.stage_values(cfg, "variance", VARIANCE_OPTIONS, **common)
    m_values = wf.stage_values(cfg, "model_selection", SELECTION_OPTIONS, **common)
    s_values = wf.stage_values(cfg, "search", SEARCH_OPTIONS, model_selection_dir=wdir, **common)
    f_values = wf.stage_values(cfg, "final_checks", FINAL_CHECKS_OPTIONS, **common)
    # every stage's input is checked before anything is written
    trainer = parse_trainer_command(v_values["trainer"])
    executor_class(v_values["executor"]).check_trainer(trainer)
    _variance_inputs(v_values)
    _selection_inputs(m_values)
    _search_inputs(s_values)

    storage.makedirs(wdir)
    state = wf.load_workflow_state(wdir)
    stages = state.setdefault("stages", {})
    print(f"workflow dir: {wdir}", flush=True)

    def run_stage(name: str, kind: str, values: dict[str, Any], runner: Any) -> Any:
        entry = stages.setdefault(name, {})
        if entry.get("status") == "done":
            print(f"== {name.replace('_', ' ')}: finished earlier, skipped ({entry['dir']})")
            return None
        previous = entry.get("dir")
        if previous:  # resuming the stage in flight: its defining options stay as first given
            from proxytask.controllers.base import read_controller_info

            saved = dict((read_controller_info(previous) or {}).get("options", {}))
            values = _keep_first_values(dict(values), saved, {"live"})
        ctx = _context(values, kind, previous)
        entry.update(dir=ctx.controller_dir, status="running")
        wf.save_workflow_state(wdir, state)
        print(f"== {name.replace('_', ' ')}" + (" (resumed)" if previous else ""), flush=True)
        ctl = runner(values, previous, ctx)
        entry["status"] = "failed" if getattr(ctl, "phase", "done") == "failed" else "done"
        wf.save_workflow_state(wdir, state)
        return ctl

    # 1. variance
    run_stage("variance", layout.KIND_VARIANCE, v_values, _run_variance)
    vdir = stages["variance"]["dir"]
    if stages["variance"]["status"] == "failed" and not force:
        print(
            "stopped: the variance measurement found no model that trains; model selection "
            "would fail the same way. Fix the trainer (see the causes above), then run again; "
            "--force goes on anyway."
        )
        return EXIT_FAILED
    result = _judge_variance(
        storage.read_json(storage.join(vdir, "variance_and_smoothness.json")) or {}, v_values
    )
    if result and not (result.get("variance_good") and result.get("smoothness_good")):
        if not force:
            print(
                "stopped: training is not repeatable or smooth enough for a proxy to rank "
                f"models (the verdict above; the advice in {vdir}). Apply the advice and run "
                "again under a new job-name (this finished measurement stays as it is); or change "
                "variance.max-variance / max-smoothness in the file to judge these curves again; "
                "or run again with --force to go on with them."
            )
            return EXIT_OK
        print("going on despite the variance verdict (--force)")
    # 2. model selection
    run_stage("model_selection", layout.KIND_MODEL_SELECTION, m_values, _run_selection)
    if stages["model_selection"]["status"] == "failed":
        print(
            "stopped: model selection gave no reference models, and a proxy search needs them. "
            "Fix the cause above and run again: the failed round is retried."
        )
        return EXIT_FAILED
    # 3. proxy-task search
    s_values["model_selection_dir"] = stages["model_selection"]["dir"]
    search_ctl = run_stage("search", layout.KIND_SEARCH, s_values, _run_search)
    if search_ctl is None:  # finished earlier: reopened, for configs or thresholds added since
        from proxytask.controllers.search import ReferenceModels, SearchController

        print("  (reopened: configs added to the generator train, new thresholds re-score)")
        references = ReferenceModels.load(s_values["model_selection_dir"])
        configs, settings = _search_inputs(s_values, references)
        ctx = _context(s_values, layout.KIND_SEARCH, stages["search"]["dir"])
        try:
            search_ctl = SearchController.resume(ctx, references, configs, settings)
            search_ctl.run()
        finally:
            ctx.executor.close()
        for line in search_ctl.summary():
            print(line)
    # 4. final checks: the baseline under a model-scaling proxy, then the checks
    scaled, skipped = None, None
    settings, skipped = _scaled_baseline_settings(search_ctl, f_values, m_values)
    if settings is not None:
        entry = stages.get("final_checks", {})
        if entry.get("proxy_task_name") != settings.proxy_task_name:
            stages["final_checks"] = {"proxy_task_name": settings.proxy_task_name}
        ctl = run_stage(
            "final_checks",
            layout.KIND_FINAL_CHECKS,
            f_values,
            lambda _values, previous, ctx: _run_scaled_baseline(settings, previous, ctx),
        )
        if ctl is None:
            from proxytask.controllers.final_checks import FINAL_CHECKS_STATE

            saved = storage.read_json(
                storage.join(stages["final_checks"]["dir"], FINAL_CHECKS_STATE)
            )
            scaled = (saved or {}).get("result")
        else:
            scaled = ctl.result
    final = _final_checks(wdir, state, search_ctl, f_values, scaled, skipped, result or None)
    storage.write_json_atomic(storage.join(wdir, wf.RECOMMENDATION), final)
    print("== final checks")
    for name, rate in final["failure_rates"].items():
        if rate:
            print(f"  {name}: {rate['failed']} of {rate['trials']} trials failed {rate['causes']}")
    if final["reward_range"]:
        print(f"  rewards: {final['reward_range']['message']}")
    if final["latency_constraint"]:
        print(f"  latency: {final['latency_constraint']['advice']}")
    verdict = (final["recommendation"].get("zero_training_comparison") or {}).get("message")
    if verdict:
        print(f"  zero-training baselines: {verdict}")
    holdout = final["recommendation"].get("holdout")
    if holdout and holdout.get("tau") is not None:
        print(
            f"  held-out check: Kendall tau-b {holdout['tau']:.3f} on {holdout['n']} models the "
            "search never chose by"
        )
    print("report (each stage's plots and state files):")
    for stage, entry in stages.items():
        print(f"  {stage.replace('_', ' ')}: {entry['dir']} ({_count_plots(entry['dir'])} plots)")
    print(f"recommendation: {storage.join(wdir, wf.RECOMMENDATION)}")
    return EXIT_OK


def _count_plots(controller_dir: str) -> int:
    """The PNG figures in a controller dir and its job dirs (model selection plots per round)."""
    dirs = [controller_dir] + [
        layout.job_dir(controller_dir, job)
        for job in storage.listdir(storage.join(controller_dir, layout.JOBS_DIR))
    ]
    return sum(1 for d in dirs for name in storage.listdir(d) if name.endswith(".png"))


def cmd_status(path: str, as_json: bool) -> int:
    """``proxytask status DIR``."""
    import dataclasses

    from proxytask.report.status import inspect_dir, render_status

    status = inspect_dir(path)
    if as_json:
        print(json.dumps(dataclasses.asdict(status), indent=2))
    else:
        print(render_status(status))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``proxytask`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "status":
            return cmd_status(args.dir, args.json)
        if args.command == "run":
            live = None if args.live is None else args.live == "true"
            return cmd_run(args.config, args.force, live)
        if args.command == "search":
            return cmd_search(args)
        if args.command == "select-models":
            return cmd_select_models(args)
        if args.command == "latency-worker":
            from proxytask.controllers.latency import LATENCY_WORKER_OPTIONS, run_latency_worker

            return run_latency_worker(resolve_options(args, LATENCY_WORKER_OPTIONS, args.config))
        if args.command == "variance":
            return cmd_variance(args)
        if args.command == "trial":
            return cmd_trial(resolve_options(args, TRIAL_COMMAND_OPTIONS, args.config))
        raise AssertionError(f"unhandled command {args.command}")
    except UsageError as exc:
        print(f"proxytask: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ProxyTaskError as exc:
        print(f"proxytask: failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("proxytask: interrupted; every trial was stopped.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
