"""bench/chaos.py's checks can fail: its summary and its bad-input judge, on made-up rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import chaos

from tests.chaos import test_bad_input as corpus
from tests.unit.test_trials import TABLE


def _row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"kills": [1.0, 2.0], "orphans": [], "retrained": [], "answer": {"a": 1}}
    row.update(changes)
    return chaos._checked(row, {"a": 1})


def _results(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"kills": {"run": {"rounds": list(rows)}}}


def test_the_summary_holds_only_when_every_check_held() -> None:
    assert chaos.summarise(_results(_row(), _row()))["ok"]
    for bad in (
        _row(answer={"a": 2}),
        _row(retrained=["x:1 trained to the end twice"]),
        _row(orphans=[[123]]),
        _row(error="Traceback ..."),
    ):
        summary = chaos.summarise(_results(_row(), bad))
        assert not summary["ok"], bad
        assert summary["random_kills"] == 4
    missed = {"windows": {"latency": _row(window_hit=False)}}
    assert not chaos.summarise(missed)["ok"]
    faults = {"faults": {"crash": {"ok": True}, "nan": {"ok": False}}}
    assert chaos.summarise(faults)["faults_classified"] == 1
    assert not chaos.summarise(faults)["ok"]


def test_the_bad_input_judge_counts_an_accepted_command_and_a_write(tmp_path: Path) -> None:
    results = chaos.bad_input_tally()
    chaos._one_bad_input(
        "help is no refusal", lambda t: ["status", "--help"], tmp_path, results, corpus
    )
    assert results["cases"] == 1 and results["refused"] == 0
    assert results["accepted"] == 1 and results["not_one_line"] == 1
    table = tmp_path / "table.json"
    table.write_text(json.dumps(TABLE))
    chaos._one_bad_input(
        "a good replay trial is no refusal",
        lambda t: [
            "trial",
            "--trainer=replay",
            "--executor=replay",
            f"--replay-table={table}",
            f"--root-output-dir={t / 'runs'}",
            "--search-space=tests.fixtures.spaces:tiny",
            "--architecture",
            '{"width": 8}',
            "--job-name=r",
        ],
        tmp_path,
        results,
        corpus,
    )
    assert results["cases"] == 2 and results["refused"] == 0
    assert results["accepted"] == 2 and results["writes"] == 1
