"""The replay executor: recorded learning curves played into trial dirs on a (simulated) clock.

A replayed trial behaves like a real trainer process, through the real trainer API: it saves
its architecture, calls ``get_stop_training(..., now=<event time>)`` before every cycle (so
``DESIRED_TRAINING_PCT.json``, ``MAX_TRAINING_TIME.json`` and the controller heartbeat act as
on a real trainer), reports each recorded point with ``update_trial_training_accuracy_metric``
after the cycle's recorded seconds of simulated time, reports the latency when it ends, and
writes ``stdout.log``/``stderr.log``. The monitor, statistics and reports therefore run
unchanged on replayed trials; benchmarks can compare stopping policies on real curves.

Time: nothing happens between calls. Every public method first plays, in one deterministic
order (event time, then scheduling order), every event due at or before ``clock.now()``.
Events a call schedules at the current time play on the next call, so ``launch`` always
leaves a trial PENDING or RUNNING. ``next_event_at()`` tells a driver how far to advance.

Replay table format (JSON; ``ReplayTable.load`` also reads CSV)::

    {"format": "proxytask-replay-table", "version": 1,
     "curves": [
       {"curve_id": "arch7-data50",
        "match": {"nas_params": {"width": 32, "depth": 2},     # optional: keys must equal
                  "trainer_args": {"train_data_pct": 50}},      # optional: flags must equal
        "total_steps": 1000,
        "latency": 4.2,                                         # optional (null: none)
        "final_metrics": {"zero_cost.synflow": 31.5},           # optional
        "start_delay_secs": 0.0,                                # optional
        "points": [[99, 0.41, 12.5], [199, 0.55, 12.1]]}],
     "metadata": {"sources": ["..."]}}                          # optional, kept as is

Points may also be objects ``{"step", "accuracy", "cycle_secs"}``. ``step`` is the 0-based
last step of a cycle; ``cycle_secs`` its training-only seconds (simulated time per cycle).
``final_metrics`` are saved into a fresh trial's ``FINAL_METRICS.json`` when it starts, as a
trainer saves its zero-cost scores (``zero_cost.<name>`` keys) on the freshly initialised model.
``metadata`` (e.g. where the curves come from and their licences) is carried, never read.

CSV: one row per point, columns ``curve_id, step, accuracy, cycle_secs, total_steps`` and
optionally ``latency``, ``start_delay_secs``, ``nas_params`` (a JSON object), ``nas.<key>``
(a JSON value, or text), ``arg.<flag>`` (text) and ``final.<metric>`` (a number); per-curve
columns repeat on every row.

Lookup: a curve matches a trial when each ``match.nas_params`` key equals the trial's
architecture value and each ``match.trainer_args`` flag equals the trial's ``--flag=value``
(compared as rendered flags, or as numbers). The most specific matching curves win; several
equally specific ones (e.g. five recorded copies of one architecture) are dealt out by the
trial number (``CLOUD_ML_TRIAL_ID``: trial k gets the k-th, cyclically), else in launch
order. No match raises UsageError naming the architecture.
:meth:`ReplayTable.from_trial_dirs` builds a table from finished real trial dirs.

Continuations (``--retrain_search_job_dir``/``--retrain_search_job_trials``): the
architecture comes from the earlier trial's ``nas_params_str.json``; with
``--retrain_use_search_job_checkpoint=True`` the trial resumes the earlier trial's curve after
its last step (read from the earlier trial's ``checkpoint/replay_state.json``, else from the
metrics the controller copied).

Faults (by trial-id glob in ``faults=``, or a ``--replay_fault=SPEC[,SPEC]`` trainer flag),
``SPEC`` being ``crash@PCT``, ``nan@PCT``, ``oom@PCT``, ``hang@PCT`` or ``slow_start+SECS``:
the fault fires in the first cycle ending at or above PCT (default 0) instead of reporting
it. crash and oom exit 1 (causes CRASH, OOM from stderr), nan reports NaN through the API
(``TRIAL_FAILURE.json``, cause NAN, exit 1), hang never reports again and ignores stop files
until stopped or timed out; slow_start delays the first cycle. Stopped and timed-out trials
end with exit code -15 (SIGTERM), as local trials do.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import fnmatch
import heapq
import io
import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from proxytask.core import layout, storage
from proxytask.core.clock import Clock, PacedClock, SimulatedClock
from proxytask.core.errors import NonFiniteMetricError, StorageError, UsageError
from proxytask.executors.base import (
    BookkeepingExecutor,
    Executor,
    FailureCause,
    TrialEntry,
    TrialSpec,
    TrialState,
)
from proxytask.executors.causes import classify_exit, describe_exit, failure_message
from proxytask.executors.command import render_flag
from proxytask.trainer import contract as pt

__all__ = [
    "FAULT_ARG",
    "REPLAY_STATE",
    "Curve",
    "CurvePoint",
    "Fault",
    "FaultKind",
    "ReplayExecutor",
    "ReplayTable",
]

logger = logging.getLogger(__name__)

#: The trainer flag that injects faults into one trial: ``--replay_fault=crash@50``.
FAULT_ARG = "replay_fault"
#: The replayed trainer's "checkpoint", inside the trial's checkpoint dir.
REPLAY_STATE = layout.REPLAY_STATE
_TABLE_FORMAT = "proxytask-replay-table"
_SIGTERM_EXIT = -15
_STOPPED_MESSAGE = f"stopped by the controller ({describe_exit(_SIGTERM_EXIT)})"


# --------------------------------------------------------------------------------------------
# Curves and tables
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CurvePoint:
    """One recorded evaluation: the cycle's 0-based end step, accuracy, training seconds."""

    step: int
    accuracy: float
    cycle_secs: float


@dataclasses.dataclass(frozen=True, eq=False)
class Curve:
    """A recorded learning curve and the trials it stands for.

    ``nas_params`` / ``trainer_args``: what a trial must have to match (None / empty: any).
    ``final_metrics``: saved into a fresh trial's FINAL_METRICS.json when it starts.
    """

    curve_id: str
    total_steps: int
    points: tuple[CurvePoint, ...]
    nas_params: Mapping[str, Any] | None = None
    trainer_args: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    latency: float | None = None
    start_delay_secs: float = 0.0
    final_metrics: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"replay curve {self.curve_id!r}"
        if not isinstance(self.curve_id, str) or not self.curve_id:
            raise UsageError(f"replay curve ids must be non-empty strings, got {self.curve_id!r}.")
        if (
            isinstance(self.total_steps, bool)
            or not isinstance(self.total_steps, int)
            or (self.total_steps < 1)
        ):
            raise UsageError(
                f"{where}: total_steps must be an integer >= 1, got {self.total_steps!r}."
            )
        if not self.points:
            raise UsageError(f"{where}: points must hold at least one point, got none.")
        previous = -1
        for p in self.points:
            if not previous < p.step < self.total_steps:
                raise UsageError(
                    f"{where}: point steps must increase and stay below total_steps "
                    f"({self.total_steps}), got {p.step} after {previous}. Steps are the 0-based "
                    "last step of each cycle."
                )
            if not math.isfinite(p.accuracy):
                raise UsageError(
                    f"{where}: accuracies must be finite, got {p.accuracy!r} at step {p.step}. "
                    "Inject NaN with a fault (nan@PCT) instead."
                )
            if not (math.isfinite(p.cycle_secs) and p.cycle_secs >= 0):
                raise UsageError(
                    f"{where}: cycle_secs must be finite and >= 0, got "
                    f"{p.cycle_secs!r} at step {p.step}."
                )
            previous = p.step
        if self.latency is not None and not (math.isfinite(self.latency) and self.latency >= 0):
            raise UsageError(
                f"{where}: latency must be a finite number >= 0 or null, got {self.latency!r}."
            )
        if not (math.isfinite(self.start_delay_secs) and self.start_delay_secs >= 0):
            raise UsageError(
                f"{where}: start_delay_secs must be >= 0, got {self.start_delay_secs!r}."
            )
        object.__setattr__(
            self, "nas_params", None if self.nas_params is None else dict(self.nas_params)
        )
        for name, value in self.final_metrics.items():
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not isinstance(name, str) or not name or not (number and math.isfinite(value)):
                raise UsageError(
                    f"{where}: final_metrics must map non-empty names to finite numbers, got "
                    f"{name!r}: {value!r}."
                )
        object.__setattr__(self, "trainer_args", dict(self.trainer_args))
        object.__setattr__(self, "final_metrics", dict(self.final_metrics))

    @property
    def specificity(self) -> int:
        """How many keys a trial must match."""
        return len(self.nas_params or {}) + len(self.trainer_args)

    def matches(self, nas_params: Mapping[str, Any], trainer_args: Mapping[str, str]) -> bool:
        """True when this curve stands for a trial with this architecture and these flags."""
        for key, value in (self.nas_params or {}).items():
            if key not in nas_params or nas_params[key] != value:
                return False
        flags = {_flag_key(k): v for k, v in trainer_args.items()}
        for key, expected in self.trainer_args.items():
            actual = flags.get(_flag_key(key))
            if actual is None or not _flag_equal(expected, actual):
                return False
        return True

    def next_point(self, after_step: int) -> CurvePoint | None:
        """The first point whose step is above ``after_step``."""
        return next((p for p in self.points if p.step > after_step), None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the table format."""
        match: dict[str, Any] = {}
        if self.nas_params is not None:
            match["nas_params"] = dict(self.nas_params)
        if self.trainer_args:
            match["trainer_args"] = dict(self.trainer_args)
        out: dict[str, Any] = {
            "curve_id": self.curve_id,
            "match": match,
            "total_steps": self.total_steps,
            "latency": self.latency,
            "start_delay_secs": self.start_delay_secs,
        }
        if self.final_metrics:
            out["final_metrics"] = dict(self.final_metrics)
        out["points"] = [[p.step, p.accuracy, p.cycle_secs] for p in self.points]
        return out


def _flag_key(key: str) -> str:
    return key.lstrip("-").replace("-", "_")


def _flag_equal(expected: Any, actual: str) -> bool:
    if render_flag(expected) == actual:
        return True
    if isinstance(expected, bool):
        return actual.strip().lower() == str(expected).lower()
    try:
        return float(render_flag(expected)) == float(actual)
    except ValueError:
        return False


def _number(value: Any, what: str, source: str) -> float:
    if isinstance(value, bool):
        raise UsageError(f"{source}: {what} must be a number, got {value!r}.")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{source}: {what} must be a number, got {value!r}.") from None


def _integer(value: Any, what: str, source: str) -> int:
    number = _number(value, what, source)
    if not number.is_integer():
        raise UsageError(f"{source}: {what} must be a whole number, got {value!r}.")
    return int(number)


def _curve_from_dict(data: Any, source: str) -> Curve:
    if not isinstance(data, Mapping):
        raise UsageError(f"{source}: each curve must be a JSON object, got {data!r:.80}.")
    curve_id = data.get("curve_id")
    where = f"{source}: curve {curve_id!r}"
    if not isinstance(curve_id, str) or not curve_id:
        raise UsageError(
            f"{source}: each curve must have a non-empty string curve_id, got {curve_id!r}."
        )
    match = data.get("match") or {}
    if not isinstance(match, Mapping):
        raise UsageError(f"{where}: match must be an object, got {match!r:.80}.")
    nas = match.get("nas_params")
    if nas is not None and not isinstance(nas, Mapping):
        raise UsageError(f"{where}: match.nas_params must be an object, got {nas!r:.80}.")
    args = match.get("trainer_args") or {}
    if not isinstance(args, Mapping):
        raise UsageError(f"{where}: match.trainer_args must be an object, got {args!r:.80}.")
    raw_points = data.get("points")
    if not isinstance(raw_points, list):
        raise UsageError(
            f"{where}: points must be a list of [step, accuracy, cycle_secs], got "
            f"{raw_points!r:.80}."
        )
    points = []
    for raw in raw_points:
        if isinstance(raw, Mapping):
            triple = (raw.get("step"), raw.get("accuracy"), raw.get("cycle_secs"))
        elif isinstance(raw, (list, tuple)) and len(raw) == 3:
            triple = (raw[0], raw[1], raw[2])
        else:
            raise UsageError(
                f"{where}: each point must be [step, accuracy, cycle_secs], got {raw!r:.80}."
            )
        points.append(
            CurvePoint(
                step=_integer(triple[0], "step", where),
                accuracy=_number(triple[1], "accuracy", where),
                cycle_secs=_number(triple[2], "cycle_secs", where),
            )
        )
    latency = data.get("latency")
    finals = data.get("final_metrics") or {}
    if not isinstance(finals, Mapping):
        raise UsageError(f"{where}: final_metrics must be an object, got {finals!r:.80}.")
    return Curve(
        curve_id=curve_id,
        total_steps=_integer(data.get("total_steps"), "total_steps", where),
        points=tuple(points),
        nas_params=None if nas is None else dict(nas),
        trainer_args=dict(args),
        latency=None if latency is None else _number(latency, "latency", where),
        start_delay_secs=_number(data.get("start_delay_secs", 0.0), "start_delay_secs", where),
        final_metrics={
            str(k): _number(v, f"final_metrics[{k!r}]", where) for k, v in finals.items()
        },
    )


def _cell_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class ReplayTable:
    """A set of recorded curves, looked up by architecture and trainer flags.

    Example::

        table = ReplayTable.load("curves.json")       # or .csv
        table = ReplayTable.from_trial_dirs(["runs/x/jobs/j/1", "runs/x/jobs/j/2"])
        executor = ReplayExecutor(table, SimulatedClock())
    """

    def __init__(self, curves: Sequence[Curve], metadata: Mapping[str, Any] | None = None) -> None:
        self._curves = tuple(curves)
        #: Free-form JSON carried with the table (sources, licences); the executor never reads it.
        self.metadata: dict[str, Any] = dict(metadata or {})
        ids = [c.curve_id for c in self._curves]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise UsageError(
                f"replay curve ids must be unique, got {', '.join(dupes)} more than "
                "once. Rename them."
            )
        self._by_id = {c.curve_id: c for c in self._curves}

    def __len__(self) -> int:
        return len(self._curves)

    def __iter__(self) -> Iterator[Curve]:
        return iter(self._curves)

    def get(self, curve_id: str) -> Curve | None:
        """The curve with this id, or None."""
        return self._by_id.get(curve_id)

    def candidates(
        self, nas_params: Mapping[str, Any], trainer_args: Mapping[str, str]
    ) -> list[Curve]:
        """The most specific curves matching a trial, in table order ([] when none)."""
        matching = [c for c in self._curves if c.matches(nas_params, trainer_args)]
        if not matching:
            return []
        best = max(c.specificity for c in matching)
        return [c for c in matching if c.specificity == best]

    # ---- codecs ------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any, source: str = "replay table") -> ReplayTable:
        """Parse the JSON form (see the module docstring)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("curves"), list):
            raise UsageError(
                f"{source} must be a JSON object with a 'curves' list, got {data!r:.80}. See "
                "proxytask.executors.replay for the format."
            )
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise UsageError(f"{source}: metadata must be a JSON object, got {metadata!r:.80}.")
        return cls([_curve_from_dict(c, source) for c in data["curves"]], metadata)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see the module docstring)."""
        out: dict[str, Any] = {
            "format": _TABLE_FORMAT,
            "version": 1,
            "curves": [c.to_dict() for c in self._curves],
        }
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out

    @classmethod
    def from_csv(cls, text: str, source: str = "replay table") -> ReplayTable:
        """Parse the CSV form: one row per point (see the module docstring)."""
        reader = csv.DictReader(io.StringIO(text))
        required = {"curve_id", "step", "accuracy", "cycle_secs", "total_steps"}
        missing = required - set(reader.fieldnames or ())
        if missing:
            raise UsageError(
                f"{source} must have the columns {', '.join(sorted(required))}, got "
                f"{reader.fieldnames!r} (missing {', '.join(sorted(missing))})."
            )
        curves: dict[str, dict[str, Any]] = {}
        for row in reader:
            cid = (row.get("curve_id") or "").strip()
            where = f"{source} line {reader.line_num}"
            curve = curves.setdefault(
                cid, {"curve_id": cid, "points": [], "match": {}, "total_steps": None}
            )
            curve["points"].append(
                [row["step"].strip(), row["accuracy"].strip(), row["cycle_secs"].strip()]
            )
            for column, raw in row.items():
                cell = (raw or "").strip() if isinstance(raw, str) else ""
                if not cell or column is None:
                    continue
                if column in ("total_steps", "latency", "start_delay_secs"):
                    value: Any = _number(cell, column, where)
                    if curve.get(column) not in (None, value):
                        raise UsageError(
                            f"{where}: {column} must be the same on every row of "
                            f"curve {cid!r}, got {cell} and {curve[column]}."
                        )
                    curve[column] = value
                elif column == "nas_params":
                    parsed = _cell_value(cell)
                    if not isinstance(parsed, dict):
                        raise UsageError(
                            f"{where}: nas_params must be a JSON object, got {cell!r:.80}."
                        )
                    curve["match"].setdefault("nas_params", {}).update(parsed)
                elif column.startswith("nas."):
                    curve["match"].setdefault("nas_params", {})[column[4:]] = _cell_value(cell)
                elif column.startswith("arg."):
                    curve["match"].setdefault("trainer_args", {})[column[4:]] = cell
                elif column.startswith("final."):
                    curve.setdefault("final_metrics", {})[column[6:]] = cell
        built = []
        for curve in curves.values():
            curve["points"] = sorted(curve["points"], key=lambda p: _number(p[0], "step", source))
            built.append(_curve_from_dict(curve, source))
        return cls(built)

    @classmethod
    def load(cls, path: str) -> ReplayTable:
        """Read a table from a ``.json`` or ``.csv`` file (local path or fsspec URL)."""
        try:
            text = storage.read_text(path)
        except StorageError as exc:  # not UTF-8, a folder: the user's file
            raise UsageError(f"replay table: {exc}") from None
        if text is None:
            raise UsageError(f"replay table {path!r} must exist, got nothing there.")
        if path.lower().endswith(".csv"):
            return cls.from_csv(text, source=path)
        try:
            return cls.from_dict(json.loads(text), source=path)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"replay table {path!r} must be valid JSON (or a .csv file), got an error: {exc}."
            ) from exc

    def save(self, path: str) -> None:
        """Write the table as JSON, atomically."""
        storage.write_json_atomic(path, self.to_dict())

    @classmethod
    def from_trial_dirs(
        cls,
        trial_dirs: Sequence[str],
        trainer_args: Mapping[str, Any] | None = None,
    ) -> ReplayTable:
        """Build a table from finished trial dirs (their metrics and ``nas_params_str.json``).

        Each dir gives one curve (id: the dir) matching its exact architecture, plus
        ``trainer_args`` when given (e.g. the proxy-task config the trials ran under).
        Per-cycle seconds are rebuilt by sharing the recorded training time in proportion to
        each cycle's steps; the step budget from the points' pct.
        """
        curves = []
        for tdir in trial_dirs:
            metrics = pt.read_trial_training_metrics(tdir)
            if metrics is None or not metrics.training_accuracy_over_steps:
                raise UsageError(
                    f"trial dir {tdir!r} must hold a TRIAL_TRAINING_METRICS.json with at least "
                    "one point to be replayed, got none. Pick finished trials."
                )
            nas_params = pt.load_nas_params(tdir)
            recorded = metrics.training_accuracy_over_steps
            last = recorded[-1]
            total = round(100.0 * (last.training_step + 1) / last.training_step_pct)
            steps_covered = recorded[-1].training_step + 1
            secs = metrics.training_time.total_training_time_in_secs
            points, previous = [], -1
            for p in recorded:
                share = (p.training_step - previous) / steps_covered
                points.append(CurvePoint(p.training_step, p.accuracy, secs * share))
                previous = p.training_step
            curves.append(
                Curve(
                    curve_id=tdir,
                    total_steps=max(total, last.training_step + 1),
                    points=tuple(points),
                    nas_params=nas_params,
                    trainer_args=dict(trainer_args or {}),
                    latency=metrics.latency if metrics.has_latency else None,
                )
            )
        return cls(curves)


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


class FaultKind(enum.Enum):
    """What goes wrong in a replayed trial."""

    CRASH = "crash"
    NAN = "nan"
    OOM = "oom"
    HANG = "hang"
    SLOW_START = "slow_start"

    @property
    def after_eval(self) -> bool:
        """True when the fault shows at the cycle's evaluation (nan), not during training."""
        return self is FaultKind.NAN


@dataclasses.dataclass(frozen=True)
class Fault:
    """A fault injected into replayed trials.

    ``at_pct``: the fault fires in the first cycle ending at or above it (crash, nan, oom,
    hang). ``delay_secs``: extra simulated seconds before the first cycle (slow_start).

    Example::

        ReplayExecutor(table, clock, faults={"select/3": Fault.parse("crash@40")})
    """

    kind: FaultKind
    at_pct: float = 0.0
    delay_secs: float = 0.0

    @classmethod
    def parse(cls, text: str) -> tuple[Fault, ...]:
        """Parse ``crash@50``, ``nan@20``, ``oom``, ``hang@30``, ``slow_start+120`` (comma
        separated for several)."""
        faults = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            name, _, rest = part.partition("@") if "@" in part else part.partition("+")
            try:
                kind = FaultKind(name.strip().lower())
                value = float(rest) if rest.strip() else 0.0
            except ValueError:
                kinds = ", ".join(k.value for k in FaultKind)
                raise UsageError(
                    f"replay faults must look like KIND@PCT or slow_start+SECS with KIND one of "
                    f"{kinds}, got {part!r}. Example: crash@50."
                ) from None
            if kind is FaultKind.SLOW_START:
                faults.append(cls(kind, delay_secs=value))
            else:
                faults.append(cls(kind, at_pct=value))
        return tuple(faults)


# --------------------------------------------------------------------------------------------
# The executor
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(kw_only=True)
class _ReplayTrial(TrialEntry):
    curve: Curve
    nas_params: dict[str, Any]
    start_step: int
    faults: tuple[Fault, ...]
    step: int = -1
    generation: int = 0  # bumped when the trial ends: its pending events go stale
    hanging: bool = False
    stdout: list[str] = dataclasses.field(default_factory=list)
    stderr: list[str] = dataclasses.field(default_factory=list)


class ReplayExecutor(BookkeepingExecutor[_ReplayTrial]):
    """Plays recorded curves into trial dirs as if real trainers ran, on ``clock``.

    Use a :class:`~proxytask.core.clock.SimulatedClock` to run a whole search in seconds (a system
    clock replays in real time). Trial dirs may be any storage URL. ``max_parallel_trials``
    bounds concurrency exactly like the local executor; ``start_delay_secs`` is the simulated
    start-up cost of every trial; ``eval_secs`` the simulated evaluation time after each
    cycle (not counted as training time). See the module docstring for the table and faults.

    Example::

        clock = SimulatedClock()
        executor = ReplayExecutor(ReplayTable.load("curves.json"), clock, max_parallel_trials=4)
        executor.launch(spec)
        while not executor.status(spec.trial_id).state.is_terminal:
            clock.advance_to(executor.next_event_at() or clock.now() + 60)
    """

    poll_interval_secs = 30.0  # the simulated clock jumps to the next event anyway

    def __init__(
        self,
        table: ReplayTable,
        clock: Clock,
        max_parallel_trials: int = 4,
        faults: Mapping[str, Fault | Sequence[Fault]] | None = None,
        *,
        start_delay_secs: float = 0.0,
        eval_secs: float = 0.0,
    ) -> None:
        super().__init__(max_parallel_trials, clock)
        if not (start_delay_secs >= 0 and eval_secs >= 0):
            raise UsageError(
                f"start_delay_secs and eval_secs must be >= 0, got "
                f"{start_delay_secs!r} and {eval_secs!r}."
            )
        self._table = table
        self._faults: dict[str, tuple[Fault, ...]] = {
            pattern: (value,) if isinstance(value, Fault) else tuple(value)
            for pattern, value in (faults or {}).items()
        }
        self._start_delay = float(start_delay_secs)
        self._eval_secs = float(eval_secs)
        self._events: list[tuple[float, int, str, int, str, CurvePoint | None]] = []
        self._event_seq = 0
        self._deal: dict[tuple[str, ...], int] = {}

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> tuple[Executor, Clock]:
        """``--executor replay``: the curves of ``--replay-table`` on a simulated clock."""
        table_path = options.get("replay_table")
        if not table_path:
            raise UsageError(
                "--replay-table must be given with --executor replay, got nothing. Point it at "
                "a JSON or CSV table of recorded curves."
            )
        speed = options.get("replay_speed")
        clock = SimulatedClock() if speed is None else PacedClock(float(speed))
        table = ReplayTable.load(str(table_path))
        return cls(table, clock, max_parallel_trials=int(options["max_parallel_trials"])), clock

    def next_event_at(self) -> float | None:
        """When the next scheduled event plays (None when nothing is scheduled).

        Hanging trials schedule nothing (only their timeout, if any).
        """
        self._drop_stale_events()
        return self._events[0][0] if self._events else None

    # ---- the hooks ---------------------------------------------------------------------------

    def _admit(self, spec: TrialSpec) -> _ReplayTrial:
        """Find the trial's curve (UsageError when the table has none) and its faults."""
        args = _parse_args(spec.args)
        nas_params, curve, start_step = self._resolve(spec, args)
        faults = tuple(
            f
            for pattern, fs in self._faults.items()
            if fnmatch.fnmatchcase(spec.trial_id, pattern)
            for f in fs
        )
        if FAULT_ARG in args:
            faults += Fault.parse(args[FAULT_ARG])
        return _ReplayTrial(
            spec=spec,
            curve=curve,
            nas_params=nas_params,
            start_step=start_step,
            step=start_step,
            faults=faults,
        )

    def _start(self, entry: _ReplayTrial, at: float) -> bool:
        self._mark_running(entry, at, f"replaying curve {entry.curve.curve_id!r}")
        delay = (
            self._start_delay
            + entry.curve.start_delay_secs
            + sum(f.delay_secs for f in entry.faults if f.kind is FaultKind.SLOW_START)
        )
        if entry.spec.timeout_secs is not None:
            self._push(at + entry.spec.timeout_secs, entry, "timeout")
        self._push(at + delay, entry, "start")
        return True

    def _signal_stop(self, entry: _ReplayTrial, grace_secs: float) -> None:
        """End the trial now as STOPPED (exit -15), as a trainer dies on SIGTERM."""
        self._end(entry, TrialState.STOPPED, _SIGTERM_EXIT, None, _STOPPED_MESSAGE)

    def _poll(self) -> None:
        """Play every event due by ``clock.now()``, in (time, scheduling) order."""
        now = self._clock.now()
        while True:
            self._drop_stale_events()
            if not self._events or self._events[0][0] > now:
                return
            when, _, tid, _, action, point = heapq.heappop(self._events)
            entry = self._trials[tid]
            self._play(entry, when, action, point)
            if entry.state.is_terminal:
                self._fill_slots(when)

    def _release(self, entry: _ReplayTrial) -> None:
        """Invalidate the trial's events; a started one leaves its logs and replay state."""
        entry.generation += 1
        if entry.started_at is None:
            return
        tdir = entry.spec.trial_dir
        storage.write_json_atomic(
            _replay_state_path(tdir),
            {"curve_id": entry.curve.curve_id, "step": entry.step},
        )
        storage.write_text_atomic(
            layout.trial_file(tdir, layout.STDOUT_LOG), "".join(f"{ln}\n" for ln in entry.stdout)
        )
        storage.write_text_atomic(
            layout.trial_file(tdir, layout.STDERR_LOG), "".join(f"{ln}\n" for ln in entry.stderr)
        )

    def _shutdown(self) -> None:
        """Stop every trial still running; nothing plays afterwards."""
        for entry in self._trials.values():
            if not entry.state.is_terminal:
                self._end(entry, TrialState.STOPPED, _SIGTERM_EXIT, None, _STOPPED_MESSAGE)
        self._events.clear()

    # ---- resolving a trial ---------------------------------------------------------------------

    def _resolve(
        self, spec: TrialSpec, args: Mapping[str, str]
    ) -> tuple[dict[str, Any], Curve, int]:
        earlier_dir = _earlier_trial_dir(spec, args)
        nas_params: dict[str, Any] | None = None
        if earlier_dir is not None:
            try:
                nas_params = pt.load_nas_params(earlier_dir)
            except UsageError:
                nas_params = None
        if nas_params is None:
            raw = args.get("nas_params_str")
            if raw is None:
                raise UsageError(
                    f"trial {spec.trial_id!r} must get --nas_params_str or continue an earlier "
                    f"trial that saved nas_params_str.json, got neither (args {spec.args!r:.200})."
                )
            nas_params = pt.load_nas_params(raw)
        use_checkpoint = earlier_dir is not None and pt.str_2_bool(
            args.get("retrain_use_search_job_checkpoint", "False")
        )
        curve: Curve | None = None
        start_step = -1
        if use_checkpoint:
            assert earlier_dir is not None
            state = _read_replay_state(earlier_dir)
            if state is not None:
                curve = self._table.get(str(state.get("curve_id")))
                start_step = int(state.get("step", -1))
            else:
                copied = pt.read_trial_training_metrics(spec.trial_dir) or (
                    pt.read_trial_training_metrics(earlier_dir)
                )
                if copied is not None and copied.training_accuracy_over_steps:
                    start_step = copied.training_accuracy_over_steps[-1].training_step
        if curve is None:
            curve = self._pick_curve(spec, nas_params, args)
        return nas_params, curve, start_step

    def _pick_curve(
        self, spec: TrialSpec, nas_params: Mapping[str, Any], args: Mapping[str, str]
    ) -> Curve:
        found = self._table.candidates(nas_params, args)
        if not found:
            shown = {k: v for k, v in args.items() if k not in ("job_dir", "nas_params_str")}
            raise UsageError(
                f"the replay table must hold a curve for architecture "
                f"{json.dumps(nas_params, sort_keys=True)} with trainer args {shown}, got none "
                f"among its {len(self._table)} curves (trial {spec.trial_id!r}). Add a curve "
                "whose match fits, or record one with ReplayTable.from_trial_dirs."
            )
        # Equally specific curves (recorded copies) are dealt by the trial's number, so a
        # resumed controller's relaunched trial replays the same curve; specs without a
        # number are dealt in launch order.
        number = spec.env.get(layout.ENV_TRIAL_ID, "")
        if number.isdigit():
            return found[(int(number) - 1) % len(found)]
        key = tuple(c.curve_id for c in found)
        index = self._deal.get(key, 0)
        self._deal[key] = index + 1
        return found[index % len(found)]

    # ---- simulation ----------------------------------------------------------------------------

    def _push(
        self, when: float, trial: _ReplayTrial, action: str, point: CurvePoint | None = None
    ) -> None:
        self._event_seq += 1
        heapq.heappush(
            self._events,
            (when, self._event_seq, trial.spec.trial_id, trial.generation, action, point),
        )

    def _drop_stale_events(self) -> None:
        while self._events:
            _, _, tid, generation, _, _ = self._events[0]
            trial = self._trials[tid]
            if generation == trial.generation and not trial.state.is_terminal:
                return
            heapq.heappop(self._events)

    def _play(
        self, trial: _ReplayTrial, when: float, action: str, point: CurvePoint | None
    ) -> None:
        if action == "timeout":
            message = failure_message(_SIGTERM_EXIT, FailureCause.TIMEOUT)
            self._end(
                trial, TrialState.FAILED, _SIGTERM_EXIT, FailureCause.TIMEOUT, message, at=when
            )
        elif action == "start":
            self._begin(trial, when)
        elif action == "report":
            assert point is not None
            self._report(trial, when, point)
        else:
            assert point is not None
            self._fail(trial, when, FaultKind(action), point)

    def _begin(self, trial: _ReplayTrial, when: float) -> None:
        pt.save_nas_params(trial.spec.trial_dir, trial.nas_params)
        trial.step = trial.start_step
        if trial.start_step < 0 and trial.curve.final_metrics:
            # a fresh trainer saves its zero-cost scores on the model as initialised
            pt.save_final_metrics(trial.spec.trial_dir, trial.curve.final_metrics)
        if trial.start_step >= 0:
            trial.stdout.append(
                f"replay: resuming curve {trial.curve.curve_id} after step {trial.start_step}"
            )
        self._check(trial, when)

    def _check(self, trial: _ReplayTrial, when: float) -> None:
        """The trainer's loop head: stop checks, then schedule the next cycle's outcome."""
        curve = trial.curve
        point = curve.next_point(trial.step)
        if point is None:
            self._succeed(trial, when)
            return
        if pt.get_stop_training(trial.spec.trial_dir, trial.step, curve.total_steps, now=when):
            trial.stdout.append(f"replay: told to stop after step {trial.step}")
            self._succeed(trial, when)
            return
        pct = pt.compute_training_step_pct(point.step, curve.total_steps)
        fault = next(
            (f for f in trial.faults if f.kind is not FaultKind.SLOW_START and pct >= f.at_pct),
            None,
        )
        if fault is None:
            self._push(when + point.cycle_secs + self._eval_secs, trial, "report", point)
        elif fault.kind is FaultKind.HANG:
            trial.hanging = True
            trial.message = f"replaying curve {curve.curve_id!r}: hanging after step {trial.step}"
        else:
            after = point.cycle_secs + (self._eval_secs if fault.kind.after_eval else 0.0)
            self._push(when + after, trial, fault.kind.value, point)

    def _report(self, trial: _ReplayTrial, when: float, point: CurvePoint) -> None:
        total = trial.curve.total_steps
        pt.update_trial_training_accuracy_metric(
            trial.spec.trial_dir,
            point.accuracy,
            trial.step + 1,
            point.step,
            point.cycle_secs,
            total,
        )
        trial.step = point.step
        trial.stdout.append(f"replay: step {point.step} of {total} accuracy {point.accuracy!r}")
        self._check(trial, when)

    def _fail(self, trial: _ReplayTrial, when: float, kind: FaultKind, point: CurvePoint) -> None:
        tdir = trial.spec.trial_dir
        if kind is FaultKind.NAN:
            try:
                pt.update_trial_training_accuracy_metric(
                    tdir,
                    float("nan"),
                    trial.step + 1,
                    point.step,
                    point.cycle_secs,
                    trial.curve.total_steps,
                )
            except NonFiniteMetricError as exc:
                trial.stderr.append(f"proxytask.core.errors.NonFiniteMetricError: {exc}")
            # the API stamps wall time; stamp simulated time so replays stay identical
            path = layout.trial_file(tdir, layout.TRIAL_FAILURE)
            record = storage.read_json(path)
            if isinstance(record, dict):
                storage.write_json_atomic(path, {**record, "timestamp": when})
        elif kind is FaultKind.OOM:
            trial.stderr.append(
                f"torch.OutOfMemoryError: CUDA out of memory (replay fault at step {point.step})"
            )
        else:
            trial.stderr.append(f"RuntimeError: replay: injected crash at step {point.step}")
        tail = "\n".join(trial.stderr)
        cause = classify_exit(1, tail) or FailureCause.CRASH
        self._end(trial, TrialState.FAILED, 1, cause, failure_message(1, cause, tail), at=when)

    def _succeed(self, trial: _ReplayTrial, when: float) -> None:
        if trial.curve.latency is not None:
            pt.update_trial_training_latency_metric(trial.spec.trial_dir, trial.curve.latency)
        self._end(trial, TrialState.SUCCEEDED, 0, None, "exited with code 0", at=when)


def _parse_args(args: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for arg in args:
        if not arg.startswith("--"):
            continue
        key, sep, value = arg[2:].partition("=")
        out[_flag_key(key)] = value if sep else "True"
    return out


def _earlier_trial_dir(spec: TrialSpec, args: Mapping[str, str]) -> str | None:
    job_dir = args.get("retrain_search_job_dir")
    ids = args.get("retrain_search_job_trials")
    if not job_dir or not ids:
        return None
    mapping = pt.get_map_finetune_trial_id_to_search_trial_id(ids)
    own = spec.env.get(layout.ENV_TRIAL_ID) or spec.trial_id.rsplit("/", 1)[-1]
    if own not in mapping:
        if len(mapping) != 1:
            raise UsageError(
                f"{layout.ENV_TRIAL_ID} of trial {spec.trial_id!r} must be between 1 and "
                f"{len(mapping)} for --retrain_search_job_trials={ids!r}, got {own!r}."
            )
        own = "1"
    return layout.trial_dir(job_dir, mapping[own])


def _replay_state_path(trial_dir: str) -> str:
    return layout.trial_file(layout.trial_file(trial_dir, layout.CHECKPOINT_DIR), REPLAY_STATE)


def _read_replay_state(trial_dir: str) -> dict[str, Any] | None:
    try:
        data = storage.read_json(_replay_state_path(trial_dir))
    except StorageError:
        return None
    return data if isinstance(data, dict) and "step" in data else None
