"""Architecture checks and model scaling shared by the example search spaces and models."""

from __future__ import annotations

import math
from typing import Any

from proxytask import UsageError

__all__ = ["int_in", "scale_depth"]


def int_in(name: str, value: Any, lo: int, hi: int) -> int:
    """``value`` when it is an integer in [lo, hi] (not a bool); else UsageError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise UsageError(f"`{name}` must be an integer in [{lo}, {hi}], got {value!r}.")
    return value


def scale_depth(repeats: int, multiplier: float) -> int:
    """Block repeats after ``multiplier``: rounded half up, at least 1."""
    if multiplier <= 0:
        raise ValueError(f"depth_multiplier must be > 0, got {multiplier!r}")
    return max(1, math.floor(repeats * multiplier + 0.5))
