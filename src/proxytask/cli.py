"""The ``proxytask`` command line: a table of commands that parse and forward.

Each command resolves its options (``proxytask.core.options``: the tables, config files,
resume merging) and forwards to a library function (``proxytask.controllers.context`` runs
the controllers, ``proxytask.controllers.workflow`` the whole workflow), then prints where the
answer is. Exit codes: 0 the command reached its answer, 1 the run failed, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import posixpath
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from proxytask import __version__
from proxytask.controllers import context
from proxytask.controllers.command_options import (
    FINAL_CHECKS_OPTIONS,
    LATENCY_WORKER_OPTIONS,
    SEARCH_OPTIONS,
    SELECTION_OPTIONS,
    TRIAL_COMMAND_OPTIONS,
    VARIANCE_OPTIONS,
)
from proxytask.controllers.context import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from proxytask.core import layout
from proxytask.core.errors import ProxyTaskError, StorageError, UsageError
from proxytask.core.metric import metric_mode
from proxytask.core.options import Option, add_options, resolve_options, resolve_with_previous

if TYPE_CHECKING:
    from proxytask.controllers.trials import TrialOutcome

__all__ = [
    "COMMANDS",
    "FINAL_CHECKS_OPTIONS",
    "SEARCH_OPTIONS",
    "SELECTION_OPTIONS",
    "TRIAL_COMMAND_OPTIONS",
    "VARIANCE_OPTIONS",
    "Command",
    "build_parser",
    "main",
    "run_command",
]


class _Parser(argparse.ArgumentParser):
    """argparse with one clear line and exit code 2 on bad usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}. See '{self.prog} --help'.\n")


# ---- the commands ----------------------------------------------------------------------------


def _print_progress(progress: Any, noun: str = "accuracy") -> None:
    acc = progress.last_accuracy
    if acc is not None:  # nothing to show before the first evaluation
        line = f"  {progress.trial_id:<14} {progress.last_pct:6.1f}%  {noun} {acc:.4f}"
        print(line, flush=True)


def _run_trials(values: dict[str, Any]) -> list[TrialOutcome]:
    """Run ``--num-trials`` trials of the trainer through the executor; their outcomes."""
    from proxytask.controllers.base import write_controller_info
    from proxytask.controllers.context import (
        build_context,
        discard_new_dir,
        first_write_failed,
        resolve_architecture,
    )
    from proxytask.controllers.trials import TrialBatch
    from proxytask.core.space import load_search_space
    from proxytask.executors.command import build_trial_spec

    arch = resolve_architecture(values["architecture"])
    space = load_search_space(values["search_space"])
    count = values["num_trials"]
    archs = [arch] * count if arch is not None else space.sample_many(values["seed"], count)
    ctx = build_context(values, layout.KIND_TRIALS, None)
    try:
        write_controller_info(ctx.controller_dir, ctx.kind, ctx.options)
    except (OSError, StorageError) as exc:  # the run's first write
        ctx.executor.close()
        raise first_write_failed(ctx, exc) from None
    job_name = values["job_name"]
    jdir = layout.job_dir(ctx.controller_dir, job_name)
    print(f"controller dir: {ctx.controller_dir}", flush=True)
    settings = ctx.trial_settings
    batch = TrialBatch(
        ctx.executor,
        ctx.clock,
        heartbeat_threshold_secs=settings.heartbeat_threshold_secs,
        report_timeout_secs=settings.report_timeout_secs,
    )
    added = 0
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
            added += 1
        noun = metric_mode(values.get("metric_mode")).noun
        return batch.run(on_progress=functools.partial(_print_progress, noun=noun))
    except UsageError:
        if added == 0:  # the first trial was refused (bad input): leave nothing behind
            ctx.executor.close()
            discard_new_dir(ctx)
        raise
    finally:
        ctx.executor.close()


def cmd_trial(args: argparse.Namespace) -> int:
    """``proxytask trial``: run trials and report where their files are."""
    from proxytask.executors.base import TrialState

    failed = 0
    values = resolve_options(args, TRIAL_COMMAND_OPTIONS, args.config)
    noun = metric_mode(values.get("metric_mode")).noun
    for outcome in _run_trials(values):
        metrics = outcome.metrics
        points = metrics.training_accuracy_over_steps if metrics else ()
        final = points[-1].accuracy if points else None
        secs = metrics.training_time.total_training_time_in_secs if metrics else 0.0
        note = outcome.state.value
        if outcome.state is TrialState.FAILED:
            failed += 1
            cause = outcome.cause.value if outcome.cause else "unknown"
            note = f"failed ({cause}): {outcome.message}"
        print(
            f"{outcome.trial_id}: {note}; final {noun} "
            f"{'-' if final is None else f'{final:.4f}'}; training {secs:.1f} s; "
            f"files in {outcome.trial_dir}"
        )
    return EXIT_FAILED if failed else EXIT_OK


def _controller_command(
    options: Sequence[Option],
    previous_dest: str,
    runner: Callable[[dict[str, Any], str | None], Any],
    answer: Callable[[layout.ControllerPaths], list[str]],
    may_fail: bool,
    args: argparse.Namespace,
) -> int:
    """Resolve (resuming ``previous_dest`` if given), run the controller, say where its
    answer is; exit 1 when it failed (``may_fail``)."""
    resolved = resolve_with_previous(args, options, previous_dest)
    for note in resolved.notes:
        print(note, file=sys.stderr)
    ctl = runner(resolved.values, resolved.previous)
    if may_fail and context.failed(ctl):
        return EXIT_FAILED
    for line in answer(layout.ControllerPaths(ctl.ctx.controller_dir)):
        print(line)
    return EXIT_OK


def _controller(
    options: Sequence[Option],
    previous_dest: str,
    runner: Callable[[dict[str, Any], str | None], Any],
    answer: Callable[[layout.ControllerPaths], list[str]],
    may_fail: bool = True,
) -> Callable[[argparse.Namespace], int]:
    """A controller command: ``_controller_command`` with its table entry filled in."""
    return functools.partial(_controller_command, options, previous_dest, runner, answer, may_fail)


def _answer(*lines: tuple[str, str]) -> Callable[[layout.ControllerPaths], list[str]]:
    """The lines saying where a controller's answer is: (label, file name) pairs."""
    return lambda paths: [f"{label}{paths.file(name)}" for label, name in lines]


def cmd_latency_worker(args: argparse.Namespace) -> int:
    """``proxytask latency-worker``: measure requested latencies for a controller dir."""
    from proxytask.controllers.latency import run_latency_worker

    return run_latency_worker(resolve_options(args, LATENCY_WORKER_OPTIONS, args.config))


def cmd_run(args: argparse.Namespace) -> int:
    """``proxytask run CONFIG``: the whole workflow, resumable, in one dir."""
    from proxytask.controllers.context import first_write_error, take_lease
    from proxytask.controllers.workflow import (
        WorkflowController,
        load_workflow_state,
        resolve_workflow,
    )
    from proxytask.core import storage

    live = None if args.live is None else args.live == "true"
    wdir, values = resolve_workflow(args.config, live)
    fresh = not storage.exists(wdir)
    parent = posixpath.dirname(wdir.rstrip("/"))
    made_parent = bool(parent) and not storage.exists(parent)
    try:
        storage.makedirs(wdir)
    except OSError as exc:
        raise UsageError(
            f"the workflow dir must be a folder proxytask can create, got {wdir!r}: "
            f"{exc.strerror or exc}. Check root-output-dir in {args.config}."
        ) from None

    def discard() -> bool:
        """Remove a new workflow dir no stage can resume from (bad input, a full disk)."""
        if not fresh or any(e.dir for e in load_workflow_state(wdir).stages.values()):
            return False
        storage.remove_tree(wdir)
        if made_parent and not storage.listdir(parent):
            storage.remove_tree(parent)
        return True

    def unwritable(exc: OSError | StorageError) -> UsageError:
        fix = f"change root-output-dir in {args.config}"
        return first_write_error("the workflow dir", wdir, exc, fix)

    try:
        lease = take_lease(wdir)  # one `proxytask run` per workflow dir
    except (OSError, StorageError) as exc:  # the run's first write
        if discard():
            raise unwritable(exc) from None
        raise
    try:
        code = WorkflowController(wdir, values, force=args.force).run()
        _write_run_report(wdir)
    except UsageError:
        lease.release()
        discard()  # bad input before any stage could resume: leave nothing
        raise
    except OSError as exc:
        lease.release()
        if discard():
            raise unwritable(exc) from None
        raise
    finally:
        lease.release()
    return code


def _write_run_report(wdir: str) -> None:
    """``REPORT.html`` in the workflow dir, also for a failed run; a report that cannot be
    written costs a warning, never the run's exit code."""
    from proxytask.report.dashboard import write_report

    try:
        print(f"report: {write_report(wdir)}  (open it in a browser; works offline)")
    except (ProxyTaskError, OSError) as exc:
        print(f"warning: no REPORT.html: {exc}", file=sys.stderr)


def cmd_status(args: argparse.Namespace) -> int:
    """``proxytask status DIR``."""
    from proxytask.report.status import inspect_dir, render_status

    status = inspect_dir(args.dir)
    if args.json:
        print(json.dumps(dataclasses.asdict(status), indent=2))
    else:
        print(render_status(status))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """``proxytask report DIR [-o FILE]``."""
    from proxytask.core.options import storage_path
    from proxytask.report.dashboard import write_report

    target = write_report(storage_path(args.dir), args.output)
    print(f"report: {target}")
    return EXIT_OK


def cmd_dashboard(args: argparse.Namespace) -> int:
    """``proxytask dashboard DIR [--port P] [--host H]``."""
    from proxytask.core.options import storage_path
    from proxytask.report.dashboard import serve_dashboard

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0..65535, got {args.port}. 0 picks a free port.")
    return serve_dashboard(storage_path(args.dir), args.host, args.port)


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="a workflow dir or one controller dir")
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default=None,
        help="where to write the HTML file (default: DIR/REPORT.html)",
    )


def _dashboard_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="a workflow dir or one controller dir")
    parser.add_argument(
        "--port", type=int, default=8765, help="the port to listen on (default: 8765; 0: any)"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default: 127.0.0.1; another one shows the run to the "
        "network, with a warning)",
    )


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="the workflow file (YAML)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="go on when a stage's answer says the next one is pointless",
    )
    parser.add_argument(
        "--live",
        default=None,
        choices=("true", "false"),
        help="force the live display on or off (default: on a terminal)",
    )


def _status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


# ---- the table -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Command:
    """One ``proxytask`` subcommand: its help, its arguments and the function it forwards to.

    ``options``: the command takes ``--config FILE`` and these; ``arguments`` adds its own
    arguments instead.
    """

    name: str
    help: str
    description: str
    run: Callable[[argparse.Namespace], int]
    options: tuple[Option, ...] = ()
    arguments: Callable[[argparse.ArgumentParser], None] | None = None


COMMANDS: tuple[Command, ...] = (
    Command(
        "trial",
        "run trials of a trainer through an executor (checks a trainer integration)",
        "Run one or more trials of your trainer through an executor, exactly as the tools "
        "will, and show their progress and files.",
        cmd_trial,
        TRIAL_COMMAND_OPTIONS,
    ),
    Command(
        "variance",
        "measure how repeatable and smooth training is (variance measurement)",
        "Find a model that trains without failing, train copies of it, and report the "
        "variance of their final accuracy and the smoothness of their curves, with advice.",
        _controller(
            VARIANCE_OPTIONS,
            "previous_variance_dir",
            context.run_variance,
            _answer(("results: ", layout.VARIANCE_RESULT), ("plot:    ", layout.VARIANCE_PLOT)),
        ),
        VARIANCE_OPTIONS,
    ),
    Command(
        "select-models",
        "choose reference models spread over accuracy and latency, and train them fully",
        "Start from random models, train them in rounds continued from checkpoints, prune the "
        "crowded ones each round, and train the survivors fully: the reference models that "
        "proxy tasks are judged by.",
        _controller(
            SELECTION_OPTIONS,
            "previous_model_selection_dir",
            context.run_selection,
            _answer(("reference models: ", layout.REFERENCE_MODELS)),
        ),
        SELECTION_OPTIONS,
    ),
    Command(
        "latency-worker",
        "measure the latency of trained models for a controller (any machine)",
        "Watch a controller dir, claim trials whose latency is requested, run the latency "
        "command on each and write the result back.",
        cmd_latency_worker,
        LATENCY_WORKER_OPTIONS,
    ),
    Command(
        "search",
        "find the cheapest proxy task that ranks the reference models like full training",
        "Train the reference models under each proxy-task config, track the Kendall rank "
        "correlation with full training as training goes, stop each config as soon as it "
        "qualifies or cannot win, and recommend the cheapest one with its step budget.",
        _controller(
            SEARCH_OPTIONS,
            "previous_proxy_task_search_dir",
            context.run_search,
            _answer(("state: ", layout.SEARCH_STATE)),
            may_fail=False,  # a search always ends with an answer, even "no proxy qualifies"
        ),
        SEARCH_OPTIONS,
    ),
    Command(
        "run",
        "the whole workflow: variance, model selection, proxy search, final checks",
        "Run variance measurement, model selection, proxy-task search and the final checks "
        "from one config file, in one dir; running it again skips finished stages and resumes "
        "the one in flight.",
        cmd_run,
        arguments=_run_arguments,
    ),
    Command(
        "report",
        "one self-contained HTML report of a run (opens offline)",
        "Write one HTML file (charts, tables, the answer and its evidence; no network needed to "
        "open it) for a workflow dir or one controller dir, local or on an fsspec URL.",
        cmd_report,
        arguments=_report_arguments,
    ),
    Command(
        "dashboard",
        "a live page of a run on 127.0.0.1 (read-only)",
        "Serve a live page of a workflow or controller dir that updates as the run goes: the "
        "report's views plus a live trial table. Read-only; binds 127.0.0.1 by default.",
        cmd_dashboard,
        arguments=_dashboard_arguments,
    ),
    Command(
        "status",
        "what a controller, job or trial dir holds and where it stands",
        "Show what a controller dir (or a job or trial dir) holds.",
        cmd_status,
        arguments=_status_arguments,
    ),
)


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
    for command in COMMANDS:
        cmd = sub.add_parser(command.name, help=command.help, description=command.description)
        if command.arguments is not None:
            command.arguments(cmd)
        else:
            cmd.add_argument("--config", metavar="FILE", help="YAML file with any of these options")
            add_options(cmd, command.options)
    return parser


def run_command(
    argv: Sequence[str] | None, interrupted: str = "interrupted; every trial was stopped."
) -> int:
    """Parse ``argv``, run the command, and turn its errors into one line and an exit code.

    ``interrupted``: what Ctrl-C prints after ``proxytask:`` (exit code 130).
    """
    parser = build_parser()
    args = parser.parse_args(argv)  # bad usage: one line and SystemExit(2) (see _Parser)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    command = next(c for c in COMMANDS if c.name == args.command)
    try:
        return command.run(args)
    except UsageError as exc:
        print(f"proxytask: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ProxyTaskError as exc:
        print(f"proxytask: failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"proxytask: {interrupted}", file=sys.stderr)
        return 130
    except OSError as exc:  # the disk or the network under a started run: one line, no trace
        print(f"proxytask: failed: {os_error_line(exc)}", file=sys.stderr)
        return EXIT_FAILED


def os_error_line(exc: OSError) -> str:
    """An operating-system error as one line saying what failed, where and what to do."""
    import errno

    where = f" ({exc.filename})" if exc.filename else ""
    advice = {
        errno.ENOSPC: "Free some space on that disk (or point --root-output-dir elsewhere) "
        "and resume the run with its --previous-...-dir flag or `proxytask run` again.",
        errno.EDQUOT: "Free some of your quota and resume the run.",
        errno.EROFS: "That file system is read-only: point --root-output-dir elsewhere.",
        errno.EACCES: "Check the permissions of that path.",
    }.get(exc.errno or 0, "Check that path and resume the run.")
    return f"{exc.strerror or exc}{where}. {advice}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``proxytask`` console script; returns the exit code."""
    return run_command(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
