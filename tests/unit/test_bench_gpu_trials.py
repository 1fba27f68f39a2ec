"""bench/gpu_trials.py: it reads `proxytask trial`'s own output right and judges the goals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench import gpu_trials

from proxytask import cli
from tests.unit.test_trials import TABLE


def _trial_output(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    table = tmp_path / "table.json"
    table.write_text(json.dumps(TABLE))
    cli.main(
        [
            "trial",
            "--trainer=replay-trainer",
            "--search-space=tests.fixtures.spaces:tiny",
            "--architecture",
            '{"width": 16}',
            f"--root-output-dir={tmp_path / 'runs'}",
            "--job-name=r",
            "--executor=replay",
            f"--replay-table={table}",
            "--num-trials=2",
            *extra,
        ]
    )
    return capsys.readouterr().out


def test_the_trial_lines_and_progress_lines_of_proxytask_trial_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _trial_output(tmp_path, capsys)
    lines = [m for m in map(gpu_trials.TRIAL_LINE.match, out.splitlines()) if m]
    assert [(m["id"], m["note"], m["final"]) for m in lines] == [
        ("r/1", "succeeded", "0.1600"),
        ("r/2", "succeeded", "0.1600"),
    ]
    done = {m["id"] for m in map(gpu_trials.PROGRESS_DONE.match, out.splitlines()) if m}
    assert done == {"r/1", "r/2"}


def test_a_failed_trials_line_is_read_even_with_semicolons_in_its_message() -> None:
    line = (
        "w/1: failed (crash): exited with code 1: crash; read the trial's stderr.log for the "
        "traceback. Last stderr line: RuntimeError: x; final accuracy -; training 0.0 s; "
        "files in /tmp/w/1"
    )
    match = gpu_trials.TRIAL_LINE.match(line)
    assert match is not None and match["note"].startswith("failed (crash)")
    assert match["final"] == "-"


def _row(mode: str, warm: bool, per_min: float) -> dict[str, object]:
    return {"mode": mode, "warm": warm, "trials_per_min": per_min}


def test_speedups_are_against_plain_1_and_the_goals_are_judged_on_the_best_warm_mode() -> None:
    rows = [_row("plain-1", False, 4.0), _row("warm-4", True, 30.0), _row("warm-16", True, 220.0)]
    goals = gpu_trials.summarise(rows)  # type: ignore[arg-type]
    assert [r["speedup"] for r in rows] == [1.0, 7.5, 55.0]
    assert goals == {
        "best_warm_mode": "warm-16",
        "best_warm_speedup": 55.0,
        "best_warm_trials_per_min": 220.0,
        "speedup_met": True,
        "throughput_met": True,
    }
    assert gpu_trials.summarise([_row("warm-1", True, 3.0)]) is None  # type: ignore[list-item]


def test_without_a_gpu_the_script_says_so_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi on the path
    assert gpu_trials.main(["--out", str(tmp_path / "out")]) == 2
    assert "no GPU found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
