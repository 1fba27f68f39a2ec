"""The ``proxytask`` command line: parse, resolve config files, forward to library functions.

Exit codes: 0 the command reached its answer, 1 the run failed, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from proxytask import __version__, layout, storage
from proxytask.errors import ProxyTaskError, UsageError
from proxytask.options import (
    TRIAL_OPTIONS,
    Option,
    add_options,
    positive_int,
    resolve_options,
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


class _Parser(argparse.ArgumentParser):
    """argparse with one clear line and exit code 2 on bad usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}. See '{self.prog} --help'.\n")


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

    trial = sub.add_parser(
        "trial",
        help="run trials of a trainer through an executor (checks a trainer integration)",
        description="Run one or more trials of your trainer through an executor, exactly as "
        "the tools will, and show their progress and files.",
    )
    trial.add_argument("--config", metavar="FILE", help="YAML file with any of these options")
    add_options(trial, TRIAL_COMMAND_OPTIONS)

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
    from proxytask.space import SearchSpace
    from proxytask.trainer import load_nas_params

    if ":" in value and not value.lstrip().startswith("{") and not value.endswith(".json"):
        from proxytask.imports import import_callable

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
    from proxytask.executors.base import Resources, TrialState
    from proxytask.executors.command import (
        build_trial_spec,
        check_local_command,
        parse_trainer_args,
        parse_trainer_command,
    )
    from proxytask.executors.factory import make_executor
    from proxytask.space import load_search_space
    from proxytask.trials import TrialBatch

    trainer = parse_trainer_command(values["trainer"])
    if values["executor"] == "local":
        check_local_command(trainer.argv[0])
    trainer_args = parse_trainer_args(values["trainer_args"])
    job_name = layout.check_job_name(values["job_name"])
    arch = _resolve_architecture(values["architecture"])
    space = load_search_space(values["search_space"])
    count = values["num_trials"]
    archs = [arch] * count if arch is not None else space.sample_many(values["seed"], count)
    executor, clock = make_executor(values)
    cdir = layout.controller_dir(
        values["root_output_dir"], layout.KIND_TRIALS, job_name, clock.now()
    )
    jdir = layout.job_dir(cdir, job_name)
    storage.makedirs(jdir)
    storage.write_json_atomic(
        storage.join(cdir, layout.CONTROLLER_INFO),
        {"version": 1, "kind": layout.KIND_TRIALS, "options": values},
    )
    print(f"controller dir: {cdir}", flush=True)
    batch = TrialBatch(executor, clock, heartbeat_threshold_secs=values["heartbeat_threshold_secs"])
    try:
        for number, trial_arch in enumerate(archs, start=1):
            batch.add(
                build_trial_spec(
                    trainer=trainer,
                    job_name=job_name,
                    job_dir=jdir,
                    trial_number=number,
                    controller_dir=cdir,
                    nas_params=trial_arch,
                    trainer_args=trainer_args,
                    resources=Resources(gpus=values["gpus_per_trial"]),
                    timeout_secs=values["trial_timeout_secs"],
                )
            )
        outcomes = batch.run(on_progress=_print_progress)
    finally:
        executor.close()
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


def cmd_status(path: str, as_json: bool) -> int:
    """``proxytask status DIR``."""
    import dataclasses

    from proxytask.status import inspect_dir, render_status

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
