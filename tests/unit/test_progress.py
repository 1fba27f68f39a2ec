"""The live progress display: in place on a terminal, quiet elsewhere."""

from __future__ import annotations

import io

from proxytask.report.progress import (
    ProgressDisplay,
    ProgressRow,
    ProgressSnapshot,
    format_duration,
)


def _snapshot() -> ProgressSnapshot:
    rows = (
        ProgressRow("copies/1", "succeeded", 100.0, 0.97),
        ProgressRow("copies/2", "running", 40.0, 0.91),
        ProgressRow("copies/3", "failed", 20.0, None, "nan"),
    )
    return ProgressSnapshot("variance measurement — copies", rows, 125.0, 90.0)


def test_render_lists_running_trials_first() -> None:
    lines = _snapshot().render()
    assert lines[0] == "variance measurement — copies  elapsed 2m05s  ETA 1m30s"
    assert lines[1].startswith("  copies/2") and "[####......]  40.0%  acc 0.9100" in lines[1]
    assert lines[3].endswith("acc -  nan")


def test_terminal_redraws_in_place() -> None:
    out = io.StringIO()
    display = ProgressDisplay(out, live=True)
    display.update(_snapshot())
    display.update(_snapshot())
    display.message("done")
    text = out.getvalue()
    assert text.count("\x1b[4F\x1b[J") == 2  # erased before the redraw and before the message
    assert text.endswith("done\n")


def test_not_a_terminal_is_quiet_but_messages_print() -> None:
    out = io.StringIO()
    display = ProgressDisplay(out)
    display.update(_snapshot())
    display.message("phase 2")
    assert out.getvalue() == "phase 2\n"


def test_format_duration() -> None:
    assert [format_duration(s) for s in (None, 5, 65, 3725)] == ["-", "5s", "1m05s", "1h02m"]
