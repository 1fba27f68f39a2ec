"""bench/torn_writes.py: a short race on local disk sees only whole versions."""

from __future__ import annotations

import json
from pathlib import Path

from bench import torn_writes


def test_a_short_local_race_reads_only_whole_versions(tmp_path: Path) -> None:
    assert torn_writes.main(["--where", "local", "--reads", "200", "--out", str(tmp_path)]) == 0
    (run,) = json.loads((tmp_path / "torn_writes.json").read_text())["runs"]
    assert run["reads"] == 400 and run["whole"] == 400
    assert run["torn"] == 0 and run["missing"] == 0 and run["writes"] >= 1
    assert "| local disk | 400 (2) | 400 | 0 | 0 |" in (tmp_path / "torn_writes.md").read_text()
