"""The executor registry: every name ``--executor`` takes, and the class it builds.

Adding an executor is one line here (its name and where its class lives); the command line
takes its choices from :data:`EXECUTORS` and asks the class everything else
(:meth:`~proxytask.executors.base.Executor.from_options`, ``poll_interval_secs``,
``check_trainer``, ``check_output_dir``). Classes are imported on first use, so naming the
Ray executor here costs nothing to those who never pick it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from proxytask.core.clock import Clock
from proxytask.core.errors import UsageError
from proxytask.executors.base import Executor

__all__ = ["EXECUTORS", "EXECUTOR_NAMES", "executor_class", "make_executor"]

#: ``--executor`` name -> ``module:Class`` of the executor (the first is the default).
EXECUTORS: Mapping[str, str] = {
    "local": "proxytask.executors.local:LocalExecutor",
    "replay": "proxytask.executors.replay:ReplayExecutor",
    "ray": "proxytask.executors.ray:RayExecutor",
}
#: The choices of ``--executor``, in registry order.
EXECUTOR_NAMES: tuple[str, ...] = tuple(EXECUTORS)


def executor_class(name: str) -> type[Executor]:
    """The executor class registered as ``name``; UsageError for an unknown name."""
    if name not in EXECUTORS:
        *rest, last = EXECUTOR_NAMES
        names = f"{', '.join(rest)} or {last}" if rest else last
        raise UsageError(f"--executor must be {names}, got {name!r}.")
    module, _, attr = EXECUTORS[name].partition(":")
    found = getattr(importlib.import_module(module), attr)
    assert isinstance(found, type) and issubclass(found, Executor), found
    return found


def make_executor(options: Mapping[str, Any]) -> tuple[Executor, Clock]:
    """Return the executor ``options["executor"]`` names and the clock the controller must use."""
    return executor_class(str(options.get("executor", "local"))).from_options(options)
