"""The short form of bench/chaos.py: one workflow killed twice at random moments."""

from __future__ import annotations

import json
from pathlib import Path

from bench import chaos


def test_a_workflow_killed_at_random_moments_ends_with_the_same_answer(tmp_path: Path) -> None:
    code = chaos.main(
        ["--rounds", "1", "--kills-per-run", "2", "--seed", "3", "--out", str(tmp_path)]
    )
    results = json.loads((tmp_path / "chaos.json").read_text())
    assert code == 0, results["rounds"]
    summary = results["summary"]
    assert summary["kills"] >= 1
    assert summary == {**summary, "same_answer": 1, "retrained": 0, "orphans": 0, "errors": 0}
