"""Controller state as JSON: trial records, atomic state files, the append-only event log."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from collections.abc import Mapping
from typing import Any

from proxytask.core import storage
from proxytask.core.errors import CorruptFileError, StorageError

__all__ = [
    "SILENCED_MESSAGE",
    "EventLog",
    "TrialRecord",
    "TrialRecordState",
    "json_value",
    "load_state",
    "save_state",
]

STATE_VERSION = 1

#: How a trial stopped for silence shows in the state JSON (its ``message`` while it ends).
SILENCED_MESSAGE = "stopped: no new report in time"


class TrialRecordState(str, enum.Enum):
    """The life of a trial as a controller records it.

    A ``str`` enum: the JSON holds the plain value (``"running"``), and a member compares
    equal to it, so readers of the state files and of the records agree.
    """

    PLANNED = "planned"  # decided, not launched yet
    RUNNING = "running"  # launched by this controller (or by the one before a crash)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"  # stopped by the controller

    def __str__(self) -> str:
        return self.value

    @property
    def is_terminal(self) -> bool:
        """True for the states a trial never leaves."""
        return self not in (TrialRecordState.PLANNED, TrialRecordState.RUNNING)


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """One trial as a controller plans, launches and judges it. Stored in its state JSON."""

    job: str
    number: int
    trial_dir: str
    nas_params: Mapping[str, Any] | None
    trainer_args: Mapping[str, str]
    target_pct: float = 100.0  # the pct the trial must reach to count as finished
    continuation: Mapping[str, Any] | None = None  # {"job_dir", "trial_ids", "use_checkpoint"}
    copy_metrics_from: str | None = None  # a trial dir whose metrics file seeds this trial
    max_training_time_hrs: float | None = None  # posted as MAX_TRAINING_TIME.json at launch
    stop_requested: bool = False  # the controller told it to stop (its results are complete)
    state: TrialRecordState = TrialRecordState.PLANNED
    cause: str | None = None
    message: str = ""
    # the tracker stopped it for reporting nothing in time: it ends failed with cause no_report
    # (in the JSON: ``message`` is SILENCED_MESSAGE, as before this field existed)
    silenced: bool = False
    restarts: int = 0
    started_at: float | None = None
    ended_at: float | None = None

    @property
    def key(self) -> str:
        """``<job>/<number>``: the trial id executors know it by."""
        return f"{self.job}/{self.number}"

    @property
    def is_terminal(self) -> bool:
        """True once the trial ended for good."""
        return self.state.is_terminal

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (built once per record: records are replaced, never changed, so a
        controller with 1,000 trials serialises only the few that changed in a step; treat
        the returned dict as read-only)."""
        cached: dict[str, Any] | None = self.__dict__.get("_json")
        if cached is None:
            cached = self._to_dict()
            object.__setattr__(self, "_json", cached)
        return cached

    def _to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["state"] = self.state.value
        data["nas_params"] = dict(self.nas_params) if self.nas_params is not None else None
        data["trainer_args"] = dict(self.trainer_args)
        data["continuation"] = dict(self.continuation) if self.continuation else None
        if data.pop("silenced") and not self.message:
            data["message"] = SILENCED_MESSAGE
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialRecord:
        """Parse the JSON form."""
        fields = {f.name for f in dataclasses.fields(cls)} - {"silenced"}
        values = {k: v for k, v in data.items() if k in fields}
        values["state"] = TrialRecordState(values.get("state", TrialRecordState.PLANNED))
        if values.get("message") == SILENCED_MESSAGE:
            values["message"], values["silenced"] = "", True
        return cls(**values)


def json_value(value: Any) -> Any:
    """A typed value as plain JSON: a dataclass as a dict in field order, a tuple or list as a
    list, a mapping as a dict, an enum as its value (the codec behind the ``to_json`` of the
    controllers' frozen results)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: json_value(v) for k, v in value.items()}
    return value


#: Per state file: each trial dict's JSON text, by the dict's id (with the dict, so the id
#: cannot be reused while cached). ``TrialRecord.to_dict`` returns the same dict object for
#: an unchanged record, so a step re-encodes only the records that changed.
_TRIAL_TEXT: dict[str, dict[int, tuple[Mapping[str, Any], str]]] = {}


def _compact(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(", ", ": "))


def state_text(path: str, state: Mapping[str, Any]) -> str:
    """The JSON text of a state file: a line per top-level key, and per entry of a top-level
    mapping or of ``trials`` (a proxy task, a trial), each entry compact on its line; the
    lines of unchanged trials reused from the last write of ``path``.

    Compact entries go through json's C encoder: the indented form of the whole state took
    the pure-Python encoder, a tenth of a replayed workflow's time.
    """
    if not all(isinstance(k, str) for k in state) or any(
        isinstance(v, Mapping) and not all(isinstance(k, str) for k in v) for v in state.values()
    ):
        return json.dumps(state, indent=2, allow_nan=False) + "\n"  # keys json would convert
    old = _TRIAL_TEXT.get(path, {})
    new: dict[int, tuple[Mapping[str, Any], str]] = {}
    parts = []
    for key, value in state.items():
        if key == "trials" and isinstance(value, list):
            lines = []
            for trial in value:
                hit = old.get(id(trial))
                if hit is None or hit[0] is not trial:
                    hit = (trial, _compact(trial))
                new[id(trial)] = hit
                lines.append(hit[1])
            body = "[\n    " + ",\n    ".join(lines) + "\n  ]" if lines else "[]"
        elif isinstance(value, Mapping) and value:
            items = [f"    {json.dumps(k)}: {_compact(v)}" for k, v in value.items()]
            body = "{\n" + ",\n".join(items) + "\n  }"
        else:
            body = _compact(value)
        parts.append(f"  {json.dumps(key)}: {body}")
    if "trials" in state:
        _TRIAL_TEXT[path] = new
    return "{\n" + ",\n".join(parts) + "\n}\n" if parts else "{}\n"


def save_state(path: str, state: Mapping[str, Any]) -> None:
    """Write a state file atomically and durably (fsync'd: the resume point), with its format
    version (:func:`state_text`)."""
    try:
        text = state_text(path, {**state, "version": STATE_VERSION})
    except (TypeError, ValueError) as exc:
        raise StorageError(
            f"state for {path!r} must be JSON-serialisable with finite numbers, got an error: "
            f"{exc}."
        ) from exc
    storage.write_text_atomic(path, text, durable=True)


def load_state(path: str) -> dict[str, Any] | None:
    """Read a state file (None when missing); refuse a newer format version."""
    data = storage.read_json(path)
    if data is None:
        return None
    if not isinstance(data, dict):
        raise CorruptFileError(
            f"state file {path!r} must hold a JSON object, got {type(data).__name__}."
        )
    version = data.get("version", STATE_VERSION)
    if not isinstance(version, int) or version > STATE_VERSION:
        raise StorageError(
            f"state file {path!r} must be format version <= {STATE_VERSION}, got {version!r}. "
            "Use the proxytask version that wrote it."
        )
    return data


class EventLog:
    """An append-only JSON-lines log of what a controller did, for audits and dashboards.

    Local files are appended to; on object stores (which cannot append) the log is kept in
    memory and rewritten whole, atomically, on each event. With no path, nothing is kept (the
    trials of ``proxytask trial`` have no controller to audit).
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._local = path is None or storage.is_local(path)
        self._lines: list[str] | None = None

    def append(self, when: float, kind: str, **fields: Any) -> None:
        """Record one event."""
        if self.path is None:
            return
        line = json.dumps({"time": when, "event": kind, **fields}, sort_keys=True, default=str)
        if self._local:
            local = storage.to_local_path(self.path)
            os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
            with open(local, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
            return
        if self._lines is None:
            self._lines = (storage.read_text(self.path) or "").splitlines()
        self._lines.append(line)
        storage.write_text_atomic(self.path, "\n".join(self._lines) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """Every event so far (unparsable lines, e.g. a torn last line, are skipped)."""
        text = (storage.read_text(self.path) if self.path is not None else None) or ""
        events = []
        for line in text.splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return events
