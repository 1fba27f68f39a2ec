"""Executors launch and stop trials: local subprocesses, Ray actors, recorded-curve replay.

Import what you need from here (each name loads its module on first use)::

    from proxytask.executors import LocalExecutor, ReplayExecutor, ReplayTable

Where each name lives: :mod:`~proxytask.executors.base` (the interface, the bookkeeping
skeleton and the trial values), :mod:`~proxytask.executors.local`,
:mod:`~proxytask.executors.replay`; :mod:`~proxytask.executors.factory` maps ``--executor``
names to classes.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "base": "BookkeepingExecutor Executor FailureCause Resources TrainerSpec TrialEntry "
    "TrialSpec TrialState TrialStatus",
    "local": "LocalExecutor assign_gpus detect_gpus",
    "replay": "Curve CurvePoint Fault FaultKind ReplayExecutor ReplayTable",
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names.split()}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
