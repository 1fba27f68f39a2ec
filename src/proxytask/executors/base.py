"""The executor interface: launch, status, stop, free slots, close. Nothing else.

Executors only start and stop trials and say how a trial process ended. They never parse
metrics: :class:`proxytask.executors.monitor.TrialMonitor` reads every trial's files for every
executor.

A trial is described by a :class:`TrialSpec`: the trainer (a command today; a Python function
run in a warm worker later — :class:`TrainerSpec` has room for it), the trial's own arguments,
its environment, and its resources. Controllers build specs with
:func:`proxytask.executors.command.build_trial_spec` and never care which executor runs them.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
from collections.abc import Mapping

__all__ = [
    "Executor",
    "FailureCause",
    "Resources",
    "TrainerSpec",
    "TrialSpec",
    "TrialState",
    "TrialStatus",
]


class TrialState(enum.Enum):
    """Where a trial is in its life."""

    PENDING = "pending"  # accepted, waiting for a slot or still starting
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # exited 0
    FAILED = "failed"  # see FailureCause
    STOPPED = "stopped"  # stopped by the controller through Executor.stop

    @property
    def is_terminal(self) -> bool:
        """True once the trial has ended for good."""
        return self in (TrialState.SUCCEEDED, TrialState.FAILED, TrialState.STOPPED)


class FailureCause(enum.Enum):
    """Why a trial failed; the advice a user gets depends on it."""

    CRASH = "crash"  # non-zero exit, no better explanation
    OOM = "oom"  # out of memory (GPU or host)
    NAN = "nan"  # reported NaN/inf
    KILLED = "killed"  # killed by a signal it did not ask for
    TIMEOUT = "timeout"  # ran past its time limit
    LOST = "lost"  # its worker or node vanished (remote executors)
    NO_REPORT = "no_report"  # ended or stalled without reporting any accuracy
    INCOMPLETE = "incomplete"  # exited 0 before reaching the pct it was asked to reach


@dataclasses.dataclass(frozen=True)
class Resources:
    """What one trial needs. ``gpus`` may be fractional: several small trials share a GPU."""

    gpus: float = 0.0
    cpus: float = 1.0

    def __post_init__(self) -> None:
        if self.gpus < 0 or self.cpus <= 0:
            raise ValueError(f"resources must be gpus >= 0 and cpus > 0, got {self}")


@dataclasses.dataclass(frozen=True)
class TrainerSpec:
    """How to run the trainer.

    ``argv`` is the trainer command as an argument list (no shell). A later warm-worker mode
    adds a ``function`` (``pkg.module:fn`` taking the trial arguments) next to it; executors
    that do not support a kind of trainer say so at launch.
    """

    argv: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.argv:
            raise ValueError("a trainer command must not be empty")


@dataclasses.dataclass(frozen=True)
class TrialSpec:
    """One trial to run: everything an executor needs and nothing it must interpret."""

    trial_id: str  # unique within the executor (controllers use "<job>/<n>")
    trial_dir: str
    trainer: TrainerSpec
    args: tuple[str, ...]  # --job-dir=..., --nas_params_str=..., --k=v ...
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    resources: Resources = Resources()
    timeout_secs: float | None = None

    @property
    def argv(self) -> tuple[str, ...]:
        """The full command line of a command trainer."""
        return (*self.trainer.argv, *self.args)


@dataclasses.dataclass(frozen=True)
class TrialStatus:
    """What an executor knows about a trial: state, and for an ended one how it ended."""

    trial_id: str
    state: TrialState
    exit_code: int | None = None
    cause: FailureCause | None = None
    message: str = ""
    started_at: float | None = None
    ended_at: float | None = None


class Executor(abc.ABC):
    """Launches and stops trials. Every implementation passes ``proxytask.testing.contract``.

    Contract:

    - ``launch`` returns at once; the trial is PENDING or RUNNING afterwards. Launching an id
      twice raises ``ExecutorError``. Launching with no free slot is allowed: the trial waits
      (PENDING) until one frees.
    - ``status`` never blocks on the trial; unknown ids raise ``KeyError``.
    - ``stop`` ends a trial: polite signal, ``grace_secs``, then forced. A stopped trial ends
      as STOPPED (or SUCCEEDED/FAILED if it ended on its own first). Stopping an ended trial
      is a no-op.
    - ``free_slots`` is how many more trials would start at once now.
    - ``close`` stops every trial still running and releases resources; idempotent. After it,
      no trial process of this executor is alive.
    """

    @abc.abstractmethod
    def launch(self, spec: TrialSpec) -> None:
        """Start (or queue) a trial."""

    @abc.abstractmethod
    def status(self, trial_id: str) -> TrialStatus:
        """The trial's current status."""

    @abc.abstractmethod
    def stop(self, trial_id: str, grace_secs: float = 10.0) -> None:
        """Ask the trial to end, then force it after ``grace_secs``."""

    @abc.abstractmethod
    def free_slots(self) -> int:
        """How many more trials could start right now."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop everything and release resources."""

    def statuses(self, trial_ids: list[str] | None = None) -> Mapping[str, TrialStatus]:
        """Statuses of several trials (all known ones by default)."""
        ids = self.known_trials() if trial_ids is None else trial_ids
        return {tid: self.status(tid) for tid in ids}

    def next_event_at(self) -> float | None:
        """When this executor will next change a trial by itself, if it knows (replay does).

        Controllers on a simulated clock sleep until then instead of polling. None: unknown.
        """
        return None

    @abc.abstractmethod
    def known_trials(self) -> list[str]:
        """Ids of every trial launched through this executor, in launch order."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
