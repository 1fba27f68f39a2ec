"""From a command's resolved options to a controller's context: executor, clock, dir."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proxytask.core import layout, storage
from proxytask.core.errors import UsageError

if TYPE_CHECKING:
    from proxytask.controllers.base import ControllerContext

__all__ = ["build_context"]

# How often a controller polls its trials at most: real processes are cheap to poll, the
# replay executor's simulated clock jumps straight to its next event anyway.
_POLL_INTERVAL_SECS = {"local": 1.0, "ray": 1.0, "replay": 30.0}


def build_context(values: dict[str, Any], kind: str, previous: str | None) -> ControllerContext:
    """Build the executor, clock and controller dir of a controller command."""
    from proxytask.controllers.base import ControllerContext, write_controller_info
    from proxytask.controllers.tracker import TrialSettings
    from proxytask.executors.base import Resources
    from proxytask.executors.command import (
        check_local_command,
        parse_trainer_args,
        parse_trainer_command,
    )
    from proxytask.executors.factory import make_executor
    from proxytask.report.progress import ProgressDisplay

    trainer = parse_trainer_command(values["trainer"])
    if values["executor"] == "local":
        check_local_command(trainer.argv[0])
    baseline_args = parse_trainer_args(values["trainer_args"])
    job_name = layout.check_job_name(values["job_name"])
    executor, clock = make_executor(values)
    if previous is None:
        cdir = layout.controller_dir(values["root_output_dir"], kind, job_name, clock.now())
    else:
        cdir = previous
    check_output_dir = getattr(executor, "check_output_dir", None)
    if check_output_dir is not None:  # a remote executor: refuse a path its nodes cannot see
        try:
            check_output_dir(cdir)
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
        poll_interval_secs=_POLL_INTERVAL_SECS.get(values["executor"], 1.0),
    )
