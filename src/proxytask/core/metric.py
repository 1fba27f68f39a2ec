"""The metric's direction (``--metric-mode``): higher is better (accuracy) or lower (a loss).

The trainer reports one metric through the reference contract's ``accuracy`` keys, whatever
it is. Most statistics do not care about its direction (Kendall tau-b, medians, the spread of
the reference models); the few that do (smoothness, ``--desired-accuracy``, the baseline
comparison, the sign of zero-training scores, plot labels) read it from here.
"""

from __future__ import annotations

import enum

from proxytask.core.errors import UsageError

__all__ = ["METRIC_MODES", "MetricMode", "metric_mode"]


class MetricMode(str, enum.Enum):
    """Which way the trainer's metric is better: ``max`` (accuracy) or ``min`` (loss, error)."""

    MAX = "max"
    MIN = "min"

    def __str__(self) -> str:
        return self.value

    @property
    def sign(self) -> float:
        """+1.0 under ``max``, -1.0 under ``min``: ``sign * value`` is higher-is-better."""
        return 1.0 if self is MetricMode.MAX else -1.0

    def oriented(self, value: float) -> float:
        """``value`` turned higher-is-better (negated under ``min``)."""
        return value if self is MetricMode.MAX else -value

    def reached(self, value: float, target: float) -> bool:
        """True when ``value`` is at least as good as ``target`` (>= under max, <= under min)."""
        return value >= target if self is MetricMode.MAX else value <= target

    def best(self, values: list[float]) -> float:
        """The best of ``values`` (non-empty): the max under ``max``, the min under ``min``."""
        return max(values) if self is MetricMode.MAX else min(values)

    @property
    def noun(self) -> str:
        """The metric's name in terminal summaries: ``accuracy``, or ``metric`` for ``min``."""
        return "accuracy" if self is MetricMode.MAX else "metric"

    @property
    def label(self) -> str:
        """The metric's name on plots and in messages."""
        return "accuracy" if self is MetricMode.MAX else "metric (lower is better)"


#: The values ``--metric-mode`` takes.
METRIC_MODES: tuple[str, ...] = tuple(m.value for m in MetricMode)


def metric_mode(value: MetricMode | str | None) -> MetricMode:
    """``value`` as a :class:`MetricMode` (None means ``max``, the reference tools' direction).

    Example::

        >>> metric_mode("min").reached(0.2, 0.3)
        True
    """
    if value is None:
        return MetricMode.MAX
    if isinstance(value, MetricMode):
        return value
    try:
        return MetricMode(str(value).strip().lower())
    except ValueError:
        raise UsageError(
            f"the metric mode must be one of {', '.join(METRIC_MODES)}, got {value!r}. Use max "
            "for an accuracy, min for a loss or an error rate."
        ) from None
