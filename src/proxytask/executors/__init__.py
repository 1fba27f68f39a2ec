"""Executors launch and stop trials: local subprocesses, recorded-curve replay (and more).

Import what you need from here::

    from proxytask.executors import LocalExecutor, ReplayExecutor, ReplayTable
"""

from __future__ import annotations

from proxytask.executors.base import (
    Executor,
    FailureCause,
    Resources,
    TrainerSpec,
    TrialSpec,
    TrialState,
    TrialStatus,
)
from proxytask.executors.local import LocalExecutor, assign_gpus, detect_gpus
from proxytask.executors.replay import (
    Curve,
    CurvePoint,
    Fault,
    FaultKind,
    ReplayExecutor,
    ReplayTable,
)

__all__ = [
    "Curve",
    "CurvePoint",
    "Executor",
    "FailureCause",
    "Fault",
    "FaultKind",
    "LocalExecutor",
    "ReplayExecutor",
    "ReplayTable",
    "Resources",
    "TrainerSpec",
    "TrialSpec",
    "TrialState",
    "TrialStatus",
    "assign_gpus",
    "detect_gpus",
]
