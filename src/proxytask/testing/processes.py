"""Looking at processes by pid on Linux (``/proc``), for tests that check nothing leaked."""

from __future__ import annotations

__all__ = ["pid_alive", "process_state"]


def process_state(pid: int) -> tuple[str, str] | None:
    """``(state letter, start time in clock ticks)`` of ``pid``, or None if there is none."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], fields[19]


def pid_alive(pid: int, start_time: str | None = None) -> bool:
    """True while ``pid`` runs. A zombie counts as dead; with ``start_time`` (from
    :func:`process_state`) a reused pid counts as dead too."""
    state = process_state(pid)
    if state is None or state[0] in ("Z", "X"):
        return False
    return start_time is None or state[1] == start_time
