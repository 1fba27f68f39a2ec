"""Plain, tested data objects that figures are drawn from (no plotting here)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from proxytask import stats
from proxytask.errors import UsageError
from proxytask.selection import SelectionResult, TrialScore

__all__ = [
    "CurveSeries",
    "SelectionFigure",
    "VarianceFigure",
    "readable_time_unit",
    "selection_figure",
    "variance_figure",
]

_SECS_PER_HOUR = 3600.0
_MINS_PER_HOUR = 60.0


def _floats(name: str, values: Sequence[float]) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{name} must be a sequence of numbers, got {values!r} ({exc}).") from exc


@dataclasses.dataclass(frozen=True, init=False)
class CurveSeries:
    """One learning curve to draw: a label and, per evaluation, pct, accuracy and hours.

    ``training_hours[i]`` is the cumulative training time (hours) at evaluation ``i``; pass
    nothing (``()``) when it was not recorded and the time panel says so. Any sequences are
    accepted and stored as tuples of floats; their lengths must match.

    Example::

        >>> CurveSeries("copy 1", [50, 100], [0.6, 0.8], [0.1, 0.2]).pcts
        (50.0, 100.0)
    """

    label: str
    pcts: tuple[float, ...]
    accuracies: tuple[float, ...]
    training_hours: tuple[float, ...]

    def __init__(
        self,
        label: str,
        pcts: Sequence[float],
        accuracies: Sequence[float],
        training_hours: Sequence[float] = (),
    ) -> None:
        # A hand-written __init__ so callers may pass lists or arrays while the stored
        # value stays an immutable, hashable tuple; frozen, hence object.__setattr__.
        object.__setattr__(self, "label", str(label))
        object.__setattr__(self, "pcts", _floats("pcts", pcts))
        object.__setattr__(self, "accuracies", _floats("accuracies", accuracies))
        object.__setattr__(self, "training_hours", _floats("training_hours", training_hours))
        if len(self.accuracies) != len(self.pcts):
            raise UsageError(
                f"series {self.label!r} must have one accuracy per pct, got {len(self.pcts)} "
                f"pcts and {len(self.accuracies)} accuracies."
            )
        if self.training_hours and len(self.training_hours) != len(self.pcts):
            raise UsageError(
                f"series {self.label!r} must have one training time per pct (or none), got "
                f"{len(self.pcts)} pcts and {len(self.training_hours)} training times."
            )

    @property
    def has_time(self) -> bool:
        """True when training times were recorded for this series."""
        return bool(self.training_hours)


@dataclasses.dataclass(frozen=True)
class VarianceFigure:
    """Everything the variance-measurement figure shows, already computed.

    Two panels: accuracy vs training pct (each copy, the mean and the ``spread`` bands) and
    accuracy vs training time, drawn in ``time_unit`` (hours multiplied by ``time_factor``).
    ``subtitle`` carries the verdict numbers; ``cv`` and ``smoothness`` are the headline
    values (None when not computable).
    """

    title: str
    subtitle: str
    series: tuple[CurveSeries, ...]
    spread: stats.SpreadResult
    time_unit: str
    time_factor: float
    cv: float | None = None
    smoothness: float | None = None


def readable_time_unit(max_hours: float) -> tuple[str, float]:
    """Pick the time unit that keeps axis numbers readable: ``(unit, factor per hour)``.

    Hours from 1 h up, minutes from 1 min up, seconds below.

    Example::

        >>> readable_time_unit(2.5), readable_time_unit(0.25), readable_time_unit(0.001)
        (('hours', 1.0), ('minutes', 60.0), ('seconds', 3600.0))
    """
    if not math.isfinite(max_hours) or max_hours >= 1.0:
        return "hours", 1.0
    if max_hours >= 1.0 / _MINS_PER_HOUR:
        return "minutes", _MINS_PER_HOUR
    return "seconds", _SECS_PER_HOUR


def _verdict(value: float, threshold: float | None) -> str:
    if threshold is None:
        return ""
    return f"good: ≤ {threshold:g}" if value <= threshold else f"bad: > {threshold:g}"


def _with_details(head: str, details: Sequence[str]) -> str:
    shown = [d for d in details if d]
    return f"{head} ({', '.join(shown)})" if shown else head


def _cv_text(
    cv: stats.VariationResult | float | None, threshold: float | None
) -> tuple[str, float | None]:
    if cv is None:
        return "CV n/a", None
    if not isinstance(cv, stats.VariationResult):
        value = float(cv)
        return _with_details(f"CV {value:.4f}", [_verdict(value, threshold)]), value
    if cv.cv is None:
        return f"CV n/a ({cv.reason})", None
    details = [_verdict(cv.cv, threshold)]
    if cv.std is not None:
        details.append(f"std {cv.std:.4f}")
    if cv.std_ci_low is not None and cv.std_ci_high is not None:
        details.append(
            f"{cv.confidence * 100:g} % CI of std {cv.std_ci_low:.4f}–{cv.std_ci_high:.4f}"
        )
    details.append(f"n={cv.n}")
    return _with_details(f"CV {cv.cv:.4f}", details), cv.cv


def _smoothness_text(
    smoothness: stats.MeanSmoothnessResult | stats.SmoothnessResult | float | None,
    threshold: float | None,
) -> tuple[str, float | None]:
    if smoothness is None:
        return "smoothness n/a", None
    if not isinstance(smoothness, (stats.MeanSmoothnessResult, stats.SmoothnessResult)):
        value = float(smoothness)
        return _with_details(f"smoothness {value:.3g}", [_verdict(value, threshold)]), value
    if smoothness.value is None:
        return f"smoothness n/a ({smoothness.reason})", None
    value = smoothness.value
    details = [_verdict(value, threshold)]
    if isinstance(smoothness, stats.MeanSmoothnessResult):
        details.append(f"mean of {smoothness.n_used}/{smoothness.n} curves")
    return _with_details(f"smoothness {value:.3g}", details), value


def variance_figure(
    series: Sequence[CurveSeries],
    title: str,
    cv: stats.VariationResult | float | None,
    smoothness: stats.MeanSmoothnessResult | stats.SmoothnessResult | float | None,
    *,
    cv_threshold: float | None = None,
    smoothness_threshold: float | None = None,
) -> VarianceFigure:
    """Build the variance-measurement figure: the copies' curves, their spread and verdict.

    The spread band comes from :func:`proxytask.stats.curve_spread` over the series (SPEC
    interpolation, no extrapolation). ``cv`` and ``smoothness`` may be the stats results
    (richer subtitle: std, its confidence interval, n) or plain numbers; with a threshold the
    subtitle also says good or bad.

    Example::

        >>> s = [CurveSeries("copy 1", [50, 100], [0.6, 0.9], [0.25, 0.5]),
        ...      CurveSeries("copy 2", [50, 100], [0.5, 0.8], [0.25, 0.5])]
        >>> fig = variance_figure(s, "Variance", 0.0588, 0.0, cv_threshold=0.4)
        >>> fig.spread.pcts, fig.spread.n, fig.time_unit
        ((50.0, 100.0), (2, 2), 'minutes')
        >>> fig.subtitle
        'CV 0.0588 (good: ≤ 0.4) · smoothness 0'
    """
    items = tuple(series)
    spread = stats.curve_spread([(s.pcts, s.accuracies) for s in items])
    hours = [h for s in items for h in s.training_hours]
    unit, factor = readable_time_unit(max(hours) if hours else 0.0)
    cv_text, cv_value = _cv_text(cv, cv_threshold)
    sm_text, sm_value = _smoothness_text(smoothness, smoothness_threshold)
    return VarianceFigure(
        title=title,
        subtitle=f"{cv_text} · {sm_text}",
        series=items,
        spread=spread,
        time_unit=unit,
        time_factor=factor,
        cv=cv_value,
        smoothness=sm_value,
    )


# --------------------------------------------------------------------------------------------
# Model selection: one round's kept and removed trials
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SelectionFigure:
    """Everything one model-selection round's scatter plot shows, already computed.

    ``kept`` and ``removed`` are ``(trial id, accuracy, latency)`` points in raw units (the
    rule's normalised values are in the :class:`~proxytask.selection.SelectionResult`);
    ``removed`` holds the trials the spread rule removed, in removal order. Without
    ``has_latency`` every latency is 0 and the renderer says accuracy alone decided.
    ``invalid`` lists the ``(id, reason)`` pairs dropped before the rule (not drawn).
    """

    title: str
    subtitle: str
    kept: tuple[tuple[str, float, float], ...]
    removed: tuple[tuple[str, float, float], ...]
    has_latency: bool
    x_label: str = "accuracy"
    y_label: str = "latency"
    invalid: tuple[tuple[str, str], ...] = ()


def _plain_number(value: float, digits: int = 2) -> str:
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _usable_latency(value: float | None) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def selection_figure(
    scores: Sequence[TrialScore],
    result: SelectionResult,
    round_index: int,
    pct: float,
    latency_unit: str = "",
) -> SelectionFigure:
    """Build one round's scatter plot data from its scores and the rule's decision.

    ``round_index`` is shown as is ("Round 2: ..."), so pass the 1-based round number;
    ``pct`` is the cumulative training pct the round trained to. Every kept or removed id in
    ``result`` must have a score with an accuracy. A missing latency is drawn at 0; when no
    point has a latency, ``has_latency`` is False.

    Example::

        >>> from proxytask.selection import TrialScore, select_survivors
        >>> scores = [TrialScore("1", 0.5, 3.0), TrialScore("2", 0.52, 3.1),
        ...           TrialScore("3", 0.9, 4.0), TrialScore("4", None, None, "failed")]
        >>> fig = selection_figure(scores, select_survivors(scores, 2, requires_latency=True),
        ...                        1, 10 / 3, latency_unit="ms")
        >>> fig.title, fig.y_label
        ('Round 1: 4 models at 3.33 % → kept 2', 'latency (ms)')
        >>> fig.kept, fig.removed
        ((('1', 0.5, 3.0), ('3', 0.9, 4.0)), (('2', 0.52, 3.1),))
    """
    by_id = {str(s.trial_id): s for s in scores}

    def point(trial_id: str) -> tuple[str, float, float]:
        score = by_id.get(trial_id)
        if score is None or score.accuracy is None:
            raise UsageError(
                f"every kept or removed trial must have a score with an accuracy, got "
                f"{trial_id!r} without one. Pass the same scores select_survivors saw."
            )
        latency = _usable_latency(score.latency)
        return trial_id, float(score.accuracy), 0.0 if latency is None else latency

    kept = tuple(point(i) for i in result.kept)
    removed = tuple(point(i) for i in result.removed)
    has_latency = any(
        _usable_latency(by_id[trial_id].latency) is not None for trial_id, _, _ in kept + removed
    )
    details = [
        f"removed {len(removed)} by spread"
        + (f" ({', '.join(i for i, _, _ in removed)})" if removed else ""),
    ]
    if result.invalid:
        details.append(
            f"{len(result.invalid)} invalid: "
            + ", ".join(f"{i} ({reason})" for i, reason in result.invalid)
        )
    details.append(f"removals requested: {result.num_to_remove_requested}")
    return SelectionFigure(
        title=(
            f"Round {round_index}: {len(by_id)} models at {_plain_number(pct)} % → kept {len(kept)}"
        ),
        subtitle=" · ".join(details),
        kept=kept,
        removed=removed,
        has_latency=has_latency,
        y_label=f"latency ({latency_unit})" if latency_unit else "latency",
        invalid=result.invalid,
    )
