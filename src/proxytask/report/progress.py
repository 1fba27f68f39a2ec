"""Live progress on the terminal: which trials run, their pct and accuracy, elapsed and ETA.

On a terminal the block of lines is redrawn in place; when output is not a terminal (a log
file, CI) the display stays quiet and only messages (phase changes, results) are printed.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import TextIO

__all__ = ["ProgressDisplay", "ProgressRow", "ProgressSnapshot", "format_duration"]


def format_duration(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``42s``; ``-`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "-"
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


@dataclasses.dataclass(frozen=True)
class ProgressRow:
    """One trial on the display."""

    key: str
    state: str
    pct: float
    accuracy: float | None
    note: str = ""
    latency: float | None = None


@dataclasses.dataclass(frozen=True)
class ProgressSnapshot:
    """What the display shows at one moment."""

    title: str
    rows: tuple[ProgressRow, ...]
    elapsed_secs: float
    eta_secs: float | None = None

    def render(self, max_rows: int = 20) -> list[str]:
        """The lines of the block."""
        head = f"{self.title}  elapsed {format_duration(self.elapsed_secs)}"
        if self.eta_secs is not None:
            head += f"  ETA {format_duration(self.eta_secs)}"
        lines = [head]
        rows = [r for r in self.rows if r.state == "running"] + [
            r for r in self.rows if r.state != "running"
        ]
        for row in rows[:max_rows]:
            acc = "-" if row.accuracy is None else f"{row.accuracy:.4f}"
            bar = "#" * int(row.pct / 10) + "." * (10 - int(row.pct / 10))
            line = f"  {row.key:<18} {row.state:<10} [{bar}] {row.pct:5.1f}%  acc {acc}"
            if row.latency is not None:
                line += f"  lat {row.latency:.4g}"
            lines.append(f"{line}  {row.note}".rstrip())
        if len(rows) > max_rows:
            lines.append(f"  ... and {len(rows) - max_rows} more")
        return lines


class ProgressDisplay:
    """Draws snapshots in place on a terminal; quiet otherwise (messages always print).

    Example::

        display = ProgressDisplay()
        display.update(snapshot)
        display.message("phase 2: training 5 copies")
        display.close()
    """

    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty()) if live is None else live
        self._drawn = 0

    def update(self, snapshot: ProgressSnapshot) -> None:
        """Redraw the block (terminal only)."""
        if not self.live:
            return
        self._erase()
        lines = snapshot.render()
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
        self._drawn = len(lines)

    def message(self, text: str) -> None:
        """Print a line above the live block (always, terminal or not)."""
        self._erase()
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Leave the last block on screen and stop redrawing it."""
        self._drawn = 0

    def _erase(self) -> None:
        if self.live and self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0
