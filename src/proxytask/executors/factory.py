"""Build the executor a user named (``--executor``) from resolved options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxytask.core.clock import Clock, SimulatedClock, SystemClock
from proxytask.core.errors import UsageError
from proxytask.executors.base import Executor

__all__ = ["make_executor"]


def make_executor(options: Mapping[str, Any]) -> tuple[Executor, Clock]:
    """Return the executor and the clock the controller must use with it."""
    name = options.get("executor", "local")
    if name == "local":
        from proxytask.executors.local import LocalExecutor

        clock: Clock = SystemClock()
        return LocalExecutor(
            max_parallel_trials=int(options["max_parallel_trials"]), clock=clock
        ), clock
    if name == "replay":
        table_path = options.get("replay_table")
        if not table_path:
            raise UsageError(
                "--replay-table must be given with --executor replay, got nothing. Point it at "
                "a JSON or CSV table of recorded curves."
            )
        from proxytask.executors.replay import ReplayExecutor, ReplayTable

        sim = SimulatedClock()
        table = ReplayTable.load(str(table_path))
        return (
            ReplayExecutor(table, sim, max_parallel_trials=int(options["max_parallel_trials"])),
            sim,
        )
    if name == "ray":
        from proxytask.executors.ray import RayExecutor

        return (
            RayExecutor(
                max_parallel_trials=int(options["max_parallel_trials"]),
                address=str(options.get("ray_address") or "auto"),
                on_resume=str(options.get("ray_on_resume") or "reattach"),
            ),
            SystemClock(),
        )
    raise UsageError(f"--executor must be local, replay or ray, got {name!r}.")
