"""The short form of bench/chaos.py: one workflow killed twice at random moments.

The other parts of the chaos suite run here as tests of their own: the targeted windows and
the second writers in ``test_crash_windows.py`` (and ``tests/unit/test_lease.py`` on S3), the
bad-input corpus in ``test_bad_input.py``, each injected trial fault in
``tests/unit/test_trials.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import chaos


def test_a_workflow_killed_at_random_moments_ends_with_the_same_answer(tmp_path: Path) -> None:
    code = chaos.main(
        ["--tools", "run", "--parts", "kills", "--rounds", "1", "--kills-per-run", "2",
         "--seed", "3", "--out", str(tmp_path)]
    )  # fmt: skip
    results = json.loads((tmp_path / "chaos.json").read_text())
    assert code == 0, results["kills"]
    summary = results["summary"]
    assert summary["random_kills"] >= 1
    assert summary == {
        **summary,
        "runs": 1,
        "same_answer": 1,
        "retrained": 0,
        "orphans": 0,
        "errors": 0,
        "ok": True,
    }
    assert (tmp_path / "chaos.md").read_text().startswith("Machine: ")
