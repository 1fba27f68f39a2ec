"""Time as a dependency: the system clock, and a simulated one for replay and tests."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "PacedClock", "SimulatedClock", "SystemClock"]


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


class PacedClock(SimulatedClock):
    """A simulated clock that also lets real time pass: ``speed`` simulated seconds per real
    second, so a replayed run can be watched (``proxytask run --replay-speed 60`` with
    ``proxytask dashboard``). Each wait is at most ``max_wait_secs`` of real time.

    Example::

        clock = PacedClock(speed=100.0)
        clock.sleep(30)  # returns after 0.3 s; clock.now() moved by 30
    """

    def __init__(
        self, speed: float, start: float = 1_700_000_000.0, max_wait_secs: float = 5.0
    ) -> None:
        if not (speed > 0 and speed != float("inf")):
            raise ValueError(f"speed must be a finite number > 0, got {speed!r}")
        super().__init__(start)
        self.speed = float(speed)
        self.max_wait_secs = float(max_wait_secs)

    def _wait(self, simulated: float) -> None:
        if simulated > 0:
            time.sleep(min(simulated / self.speed, self.max_wait_secs))

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds / speed`` of real time, then advance the simulated time."""
        self._wait(seconds)
        super().sleep(seconds)

    def advance_to(self, when: float) -> None:
        """Wait for the simulated gap to pass at ``speed``, then move the clock to ``when``."""
        self._wait(float(when) - self.now())
        super().advance_to(when)
