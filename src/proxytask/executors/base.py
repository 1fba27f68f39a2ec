"""The executor interface: launch, status, stop, free slots, close. Nothing else.

Executors only start and stop trials and say how a trial process ended. They never parse
metrics: :class:`proxytask.executors.monitor.TrialMonitor` reads every trial's files for every
executor.

:class:`BookkeepingExecutor` is the skeleton every executor here builds on: it keeps the books
(queue, slot limit, trial table, statuses) and asks its subclass only to start, stop and poll
trials. Adding an executor: one module with such a subclass, one line in
:data:`proxytask.executors.factory.EXECUTORS`, one contract-test subclass.

A trial is described by a :class:`TrialSpec`: the trainer (a command today; a Python function
run in a warm worker later — :class:`TrainerSpec` has room for it), the trial's own arguments,
its environment, and its resources. Controllers build specs with
:func:`proxytask.executors.command.build_trial_spec` and never care which executor runs them.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from proxytask.core.errors import ExecutorError, UsageError

if TYPE_CHECKING:
    from proxytask.core.clock import Clock

__all__ = [
    "BookkeepingExecutor",
    "Executor",
    "FailureCause",
    "Resources",
    "TrainerSpec",
    "TrialEntry",
    "TrialSpec",
    "TrialState",
    "TrialStatus",
]

logger = logging.getLogger(__name__)


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
        return self in _TERMINAL


_TERMINAL = frozenset({TrialState.SUCCEEDED, TrialState.FAILED, TrialState.STOPPED})


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

    ``argv`` is the trainer command as an argument list (no shell). ``entry`` (``pkg.mod:fn``
    or ``path/to/trainer.py:fn``, a function taking the trial's arguments and returning the
    exit code) lets the local executor run trials in warm workers
    (:mod:`proxytask.executors.warm`): ``argv[0]`` imports the entry once, each trial is a
    forked child. Executors without warm workers run ``argv`` as usual.
    """

    argv: tuple[str, ...]
    entry: str | None = None

    def __post_init__(self) -> None:
        if not self.argv:
            raise ValueError("a trainer command must not be empty")


@dataclasses.dataclass(frozen=True)
class TrialSpec:
    """One trial to run: everything an executor needs and nothing it must interpret."""

    trial_id: str  # unique among live trials (controllers use "<job>/<n>")
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

    What the command line asks of an executor class, so that it never tests executor names:
    :meth:`from_options` builds one, :attr:`poll_interval_secs` paces its controllers,
    :meth:`check_trainer` refuses a trainer it could never run before anything is written,
    and :meth:`check_output_dir` a controller dir its trials could not reach.
    """

    #: How often a controller polls this executor's trials at most, in seconds of its clock.
    poll_interval_secs: ClassVar[float] = 1.0

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> tuple[Executor, Clock]:
        """Build the executor named by ``--executor`` from resolved options, with its clock.

        The controller must use that clock (a replay executor brings a simulated one).
        """
        raise NotImplementedError(f"{cls.__name__} cannot be built from command-line options")

    @classmethod
    def check_trainer(cls, trainer: TrainerSpec) -> None:
        """Raise UsageError when this executor could never run ``trainer`` (default: fine)."""
        return None

    def check_output_dir(self, url: str) -> None:
        """Raise UsageError when trials could not write under ``url`` (default: fine)."""
        return None

    def check_resources(self, resources: Resources) -> None:
        """Raise UsageError when no trial could ever get ``resources`` here (default: fine);
        called before a controller writes anything."""
        return None

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

    def wait(self, clock: Clock, seconds: float) -> None:
        """Let ``seconds`` pass on ``clock`` between two polls (default: ``clock.sleep``).

        An executor that can see a trial end returns as soon as one does, so that a controller
        reacts to exits without waiting out its poll (the local executor, on the real clock).
        """
        clock.sleep(seconds)

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


# --------------------------------------------------------------------------------------------
# The skeleton: the books every executor keeps, and the few hooks it fills in
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class TrialEntry:
    """One line of an executor's books; an executor subclasses it to hold its handle."""

    spec: TrialSpec
    state: TrialState = TrialState.PENDING
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    cause: FailureCause | None = None
    message: str = ""
    stop_requested: bool = False

    def status(self) -> TrialStatus:
        """The public view of this line."""
        return TrialStatus(
            trial_id=self.spec.trial_id,
            state=self.state,
            exit_code=self.exit_code,
            cause=self.cause,
            message=self.message,
            started_at=self.started_at,
            ended_at=self.ended_at,
        )


EntryT = TypeVar("EntryT", bound=TrialEntry)

_NOT_STARTED = "stopped before it started"


def _check_max_parallel(value: object) -> int:
    """``max_parallel_trials`` as an int >= 1, or UsageError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(
            f"max_parallel_trials must be an integer >= 1, got {value!r}. "
            "Pass e.g. --max-parallel-trials 2."
        )
    return value


class BookkeepingExecutor(Executor, Generic[EntryT]):
    """An executor that keeps its books here and runs trials through a few hooks.

    The books: the trial table (launch order), the queue of launched trials waiting for a
    slot (strict launch order), the slot limit ``max_parallel_trials``, ``closed``. Every
    public method first syncs (:meth:`_poll`, then fills free slots from the queue), so
    statuses never block and a freed slot is taken on the next call.

    A subclass fills in:

    - :meth:`_admit` — check a spec and make its :class:`TrialEntry` (raise to refuse it);
    - :meth:`_start` — start a dequeued trial (False: not now, it stays at the queue's head);
    - :meth:`_signal_stop` — stop a started trial (polite signal, grace, then forced);
    - :meth:`_poll` — learn what happened since, ending trials through :meth:`_end`;
    - :meth:`_release` — give back what an ended trial held (default: nothing);
    - :meth:`_shutdown` — on ``close``: stop started trials and release the executor.

    Times come from the injected ``clock``. A trial counts against the limit from its start
    until it ends; queued trials count in :meth:`free_slots` too.
    """

    def __init__(self, max_parallel_trials: int, clock: Clock) -> None:
        self._max_parallel = _check_max_parallel(max_parallel_trials)
        self._clock = clock
        self._trials: dict[str, EntryT] = {}
        self._queue: list[str] = []
        self._closed = False
        self._shut = False

    # ---- the hooks ---------------------------------------------------------------------------

    @abc.abstractmethod
    def _admit(self, spec: TrialSpec) -> EntryT:
        """Check ``spec`` and return its entry; raise ExecutorError/UsageError to refuse it."""

    @abc.abstractmethod
    def _start(self, entry: EntryT, at: float) -> bool:
        """Start a trial leaving the queue at time ``at``; False when it cannot start yet.

        On success call :meth:`_mark_running` (or leave it PENDING until the trial shows up);
        when starting fails for good, :meth:`_end` it and return True.
        """

    @abc.abstractmethod
    def _signal_stop(self, entry: EntryT, grace_secs: float) -> None:
        """Stop a started trial: polite signal now, forced after ``grace_secs``."""

    @abc.abstractmethod
    def _poll(self) -> None:
        """Learn what happened to started trials since the last call; never block."""

    def _release(self, entry: EntryT) -> None:
        """Give back what an ended trial held (called by :meth:`_end`; idempotent)."""

    @abc.abstractmethod
    def _shutdown(self) -> None:
        """Stop every started trial and release the executor (``close``, queue emptied)."""

    def _can_close(self) -> bool:
        """False when ``close`` must leave the trials alone (e.g. in a forked child)."""
        return True

    # ---- the books ---------------------------------------------------------------------------

    def launch(self, spec: TrialSpec) -> None:
        """Start the trial now, or queue it (PENDING) until a slot frees.

        Raises ExecutorError for a closed executor or the id of a live trial (an ended one
        may be launched again: a retry), and whatever the executor's checks of the spec raise.
        """
        self._sync()
        if self._closed:
            raise ExecutorError(
                f"executor must be open to launch trials, got a closed one for "
                f"{spec.trial_id!r}. Create a new {type(self).__name__}."
            )
        earlier = self._trials.get(spec.trial_id)
        if earlier is not None and not earlier.state.is_terminal:
            raise ExecutorError(
                f"trial ids must be unique among live trials, got {spec.trial_id!r} while it "
                f"is still {earlier.state.value}. Wait for it to end, or use a new trial id."
            )
        self._trials[spec.trial_id] = self._admit(spec)
        self._queue.append(spec.trial_id)
        self._fill_slots(self._clock.now())

    def status(self, trial_id: str) -> TrialStatus:
        """The trial's status after one sync."""
        entry = self._get(trial_id)
        self._sync()
        return entry.status()

    def statuses(self, trial_ids: list[str] | None = None) -> Mapping[str, TrialStatus]:
        """Statuses of several trials (all by default), from one sync."""
        ids = self.known_trials() if trial_ids is None else trial_ids
        entries = [self._get(tid) for tid in ids]
        self._sync()
        return {e.spec.trial_id: e.status() for e in entries}

    def stop(self, trial_id: str, grace_secs: float = 10.0) -> None:
        """Stop the trial: a queued one ends STOPPED at once, a started one is signalled.

        Returns at once; an ended trial is left as it is.
        """
        entry = self._get(trial_id)
        self._sync()
        if entry.state.is_terminal:
            return
        if trial_id in self._queue:
            self._queue.remove(trial_id)
            self._end(entry, TrialState.STOPPED, None, None, _NOT_STARTED)
        elif not entry.stop_requested:
            entry.stop_requested = True
            self._signal_stop(entry, max(0.0, float(grace_secs)))
        self._fill_slots(self._clock.now())

    def free_slots(self) -> int:
        """Trials that would start at once now: the limit minus started and queued trials.

        Capacity the executor finds only at start (GPUs, cluster room) is not counted: such
        a trial waits PENDING.
        """
        self._sync()
        if self._closed:
            return 0
        busy = sum(1 for e in self._trials.values() if not e.state.is_terminal)
        return max(0, self._max_parallel - busy)

    def known_trials(self) -> list[str]:
        """Ids of every trial launched here, in launch order."""
        return list(self._trials)

    @property
    def max_parallel_trials(self) -> int:
        """How many trials may run at once."""
        return self._max_parallel

    @property
    def clock(self) -> Clock:
        """The clock this executor dates statuses and decides deadlines with."""
        return self._clock

    def close(self) -> None:
        """Stop every trial (queued ones never start) and release the executor; idempotent.

        Afterwards ``status`` still answers.
        """
        if self._shut or not self._can_close():
            return
        self._closed = True
        self._sync()
        for tid in self._queue:
            self._end(self._trials[tid], TrialState.STOPPED, None, None, _NOT_STARTED)
        self._queue.clear()
        self._shutdown()
        self._shut = True

    # ---- for the subclasses ------------------------------------------------------------------

    def _get(self, trial_id: str) -> EntryT:
        try:
            return self._trials[trial_id]
        except KeyError:
            raise KeyError(
                f"trial id must be one launched by this executor, got {trial_id!r}"
            ) from None

    def _sync(self) -> None:
        self._poll()
        self._fill_slots(self._clock.now())

    def _fill_slots(self, at: float) -> None:
        """Start queued trials, in launch order, while slots are free (at time ``at``)."""
        if self._closed:
            return
        # trials not ended, the queued ones included (counted once: a start keeps the count
        # unless the trial ends as it starts, a launch failure)
        busy = sum(1 for e in self._trials.values() if not e.state.is_terminal)
        while self._queue:
            if busy - len(self._queue) >= self._max_parallel:
                return
            entry = self._trials[self._queue[0]]
            if not self._start(entry, at):
                return  # strict launch order: the head waits
            self._queue.pop(0)
            if entry.state.is_terminal:
                busy -= 1

    def _mark_running(self, entry: EntryT, at: float, message: str) -> None:
        entry.state = TrialState.RUNNING
        entry.started_at = at
        entry.message = message

    def _end(
        self,
        entry: EntryT,
        state: TrialState,
        code: int | None,
        cause: FailureCause | None,
        message: str,
        *,
        at: float | None = None,
    ) -> None:
        """Record how a trial ended (at ``at``, default now) and release what it held."""
        entry.state = state
        entry.exit_code = code
        entry.cause = cause
        entry.message = message
        entry.ended_at = self._clock.now() if at is None else at
        logger.info("trial %s ended %s: %s", entry.spec.trial_id, state.value, message)
        self._release(entry)
