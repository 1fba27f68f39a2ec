"""Time as a dependency: the system clock, and a simulated one for replay and tests."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "SimulatedClock", "SystemClock"]


class Clock(Protocol):
    """What controllers and executors need of time."""

    def now(self) -> float:
        """Seconds since the epoch (or since the simulation began)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a simulated clock just advances)."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        """``time.time()``."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """``time.sleep`` for positive durations."""
        if seconds > 0:
            time.sleep(seconds)


class SimulatedClock:
    """A clock that only moves when told to: ``sleep`` advances it instantly.

    Example::

        clock = SimulatedClock(start=1_700_000_000.0)
        clock.sleep(30)  # returns at once
        assert clock.now() == 1_700_000_030.0
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        """The simulated time."""
        return self._now

    def sleep(self, seconds: float) -> None:
        """Advance the simulated time by ``seconds`` (negative values are ignored)."""
        if seconds > 0:
            self._now += float(seconds)

    def advance_to(self, when: float) -> None:
        """Move the clock forward to ``when`` (never backwards)."""
        self._now = max(self._now, float(when))
