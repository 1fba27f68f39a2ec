"""State files: the same JSON whatever was cached, only changed trials encoded again."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from proxytask.controllers import state as state_module
from proxytask.controllers.state import TrialRecord, TrialRecordState, load_state, save_state
from proxytask.core.errors import StorageError


def _records(n: int) -> list[TrialRecord]:
    return [
        TrialRecord(job="j", number=i, trial_dir=f"/x/{i}", nas_params={"a": i}, trainer_args={})
        for i in range(1, n + 1)
    ]


def test_a_state_file_round_trips_and_reencodes_only_changed_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "STATE.json")
    records = _records(3)
    save_state(path, {"phase": "a", "trials": [r.to_dict() for r in records]})
    encoded: list[object] = []
    real_dumps = json.dumps

    def counting(value: object, *args: object, **kwargs: object) -> str:
        encoded.append(value)
        return real_dumps(value, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(state_module.json, "dumps", counting)
    records[1] = dataclasses.replace(records[1], state=TrialRecordState.RUNNING, started_at=5.0)
    save_state(path, {"phase": "b", "trials": [r.to_dict() for r in records]})
    trial_dicts = [v for v in encoded if isinstance(v, dict) and "job" in v]
    assert trial_dicts == [records[1].to_dict()]  # the other two reused their text
    loaded = load_state(path)
    assert loaded is not None
    assert loaded["phase"] == "b" and loaded["trials"] == [r.to_dict() for r in records]
    assert json.loads((tmp_path / "STATE.json").read_text()) == loaded


def test_states_without_trials_and_with_none_round_trip(tmp_path: Path) -> None:
    for name, value in (("a", {"phase": "x"}), ("b", {"trials": [], "n": 1})):
        path = str(tmp_path / f"{name}.json")
        save_state(path, value)
        loaded = load_state(path)
        assert loaded is not None and {k: loaded[k] for k in value} == value


def test_a_non_finite_value_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "STATE.json"
    record = dataclasses.replace(_records(1)[0], max_training_time_hrs=math.nan)
    with pytest.raises(StorageError, match="finite numbers"):
        save_state(str(path), {"trials": [record.to_dict()]})
    assert not path.exists()


def test_the_layout_is_a_line_per_entry_and_any_state_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "STATE.json"
    state = {
        "proxy_tasks_map": {
            "a": {"proxy_task_stats": {"steps": [9, 19], "tau": [0.5, None]}},
            "b": {"proxy_task_stats": {"steps": [], "note": 'ünïcode "quoted"\n'}},
        },
        "empty": {},
        "order": ["a", "b"],
        "best": "",
        "n": 3,
        "trials": [r.to_dict() for r in _records(2)],
    }
    save_state(str(path), state)
    text = path.read_text()
    assert json.loads(text) == {**state, "version": state_module.STATE_VERSION}
    lines = text.splitlines()
    # one line per proxy task and per trial: a diff of two states shows what changed
    assert sum(1 for line in lines if line.startswith('    "a": {')) == 1
    assert sum(1 for line in lines if line.lstrip().startswith('{"job": "j"')) == 2
    # keys json would turn into strings take the plain indented form, still valid JSON
    odd = {"map": {1: "x", None: "y"}, "trials": []}
    save_state(str(path), odd)
    assert json.loads(path.read_text())["map"] == {"1": "x", "null": "y"}
