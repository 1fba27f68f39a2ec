"""Plain, tested data objects that figures are drawn from (no plotting here)."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from proxytask.core.errors import UsageError
from proxytask.stats import variance as stats
from proxytask.stats.search import StepStats
from proxytask.stats.selection import SelectionResult, TrialScore

if TYPE_CHECKING:
    from proxytask.stats.stability import StabilityResult

__all__ = [
    "TRAINED_PROXY",
    "ZERO_TRAINING",
    "CorrelationScatterFigure",
    "CurvePanel",
    "CurveSeries",
    "ProxyBar",
    "ProxyComparisonFigure",
    "SearchCurvesFigure",
    "SelectionFigure",
    "StabilityBar",
    "StabilityFigure",
    "TauComparisonFigure",
    "TauRow",
    "VarianceFigure",
    "correlation_scatter_figure",
    "proxy_comparison_figure",
    "readable_time_unit",
    "search_curves_figure",
    "selection_figure",
    "stability_figure",
    "tau_comparison_figure",
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
    values (None when not computable). ``metric_label`` names the metric on the y axes.
    """

    title: str
    subtitle: str
    series: tuple[CurveSeries, ...]
    spread: stats.SpreadResult
    time_unit: str
    time_factor: float
    cv: float | None = None
    smoothness: float | None = None
    metric_label: str = "accuracy"


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
    metric_label: str = "accuracy",
) -> VarianceFigure:
    """Build the variance-measurement figure: the copies' curves, their spread and verdict.

    The spread band comes from :func:`proxytask.stats.variance.curve_spread` over the series (SPEC
    interpolation, no extrapolation). ``cv`` and ``smoothness`` may be the stats results
    (richer subtitle: std, its confidence interval, n) or plain numbers; with a threshold the
    subtitle also says good or bad. ``metric_label`` names the metric on the y axes (see
    :attr:`proxytask.core.metric.MetricMode.label`).

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
        metric_label=metric_label,
    )


# ---- Model selection: one round's kept and removed trials ----


def _plain_number(value: float, digits: int = 2) -> str:
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclasses.dataclass(frozen=True)
class SelectionFigure:
    """Everything one model-selection round's scatter plot shows, already computed.

    ``kept`` and ``removed`` are ``(trial id, accuracy, latency)`` points in raw units (the
    rule's normalised values are in the :class:`~proxytask.stats.selection.SelectionResult`);
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
    metric_label: str = "accuracy",
) -> SelectionFigure:
    """Build one round's scatter plot data from its scores and the rule's decision.

    ``round_index`` is shown as is ("Round 2: ..."), so pass the 1-based round number;
    ``pct`` is the cumulative training pct the round trained to. Every kept or removed id in
    ``result`` must have a score with an accuracy. A missing latency is drawn at 0; when no
    point has a latency, ``has_latency`` is False. ``metric_label`` names the x axis.

    Example::

        >>> from proxytask.stats.selection import TrialScore, select_survivors
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
        x_label=metric_label,
        y_label=f"latency ({latency_unit})" if latency_unit else "latency",
        invalid=result.invalid,
    )


# ---- Proxy-task search: curves over steps and time, scatters, proxy comparison ----


def _optional_number(name: str, value: Any) -> float | None:
    """A finite float, or None for a missing/invalid value (None, NaN, ±inf)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise UsageError(f"{name} must be a number or None, got {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{name} must be a number or None, got {value!r} ({exc}).") from exc
    return number if math.isfinite(number) else None


def _optional_numbers(name: str, values: Any, length: int) -> tuple[float | None, ...]:
    if values is None:
        return (None,) * length
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise UsageError(f"{name} must be a list of numbers or None, got {values!r}.")
    if len(values) != length:
        raise UsageError(
            f"{name} must have one value per training step ({length}), got {len(values)}."
        )
    return tuple(_optional_number(f"{name}[{i}]", v) for i, v in enumerate(values))


def _interpolate(points: Sequence[tuple[float, float]], x: float | None) -> float | None:
    """Linear interpolation of ``y`` at ``x`` over ``points`` sorted by x; None outside."""
    if x is None or not points:
        return None
    ordered = sorted(points)
    if x < ordered[0][0] or x > ordered[-1][0]:
        return None
    for (x0, y0), (x1, y1) in itertools.pairwise(ordered):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return ordered[0][1]  # a single point equal to x


@dataclasses.dataclass(frozen=True)
class CurvePanel:
    """One panel of a curves figure, in display units (time already in the figure's unit).

    ``points`` are the valid ``(x, y)`` pairs; ``band`` optional ``(x, low, high)``
    triples; ``threshold`` a dashed horizontal line (None: none drawn); ``stop_x`` a dotted
    vertical line with a marker at ``(stop_x, stop_y)`` (``stop_y`` None: line only);
    ``y_limits`` fixed y-axis limits or None; ``empty_text`` shown when there are no points.
    """

    title: str
    x_label: str
    y_label: str
    points: tuple[tuple[float, float], ...]
    band: tuple[tuple[float, float, float], ...] = ()
    threshold: float | None = None
    threshold_label: str = ""
    stop_x: float | None = None
    stop_y: float | None = None
    y_limits: tuple[float, float] | None = None
    empty_text: str = "no valid values"


@dataclasses.dataclass(frozen=True)
class SearchCurvesFigure:
    """Everything one proxy task's search figure shows, already computed.

    ``panels`` are, in order: correlation vs training steps, correlation vs training time,
    median accuracy vs training steps, median accuracy vs training time (a 2×2 grid). Time
    panels are drawn in ``time_unit`` (hours multiplied by ``time_factor``). The raw inputs
    that decide the markings are kept as given (hours, steps).
    """

    title: str
    subtitle: str
    proxy_name: str
    stopping_state: str
    panels: tuple[CurvePanel, CurvePanel, CurvePanel, CurvePanel]
    time_unit: str
    time_factor: float
    desired_correlation: float | None = None
    desired_accuracy: float | None = None
    stop_step: int | None = None
    stop_time_hrs: float | None = None


def format_hours(hours: float) -> str:
    """A duration in the unit :func:`readable_time_unit` picks: ``format_hours(0.25)`` is
    ``'15 minutes'``."""
    unit, factor = readable_time_unit(hours)
    return f"{_plain_number(hours * factor)} {unit}"


@dataclasses.dataclass(frozen=True)
class _CurveInput:
    """A search figure's per-step values, one entry per step (None: invalid there)."""

    steps: tuple[float | None, ...]
    correlations: tuple[float | None, ...]
    accuracies: tuple[float | None, ...]
    hours: tuple[float | None, ...]
    ci_low: tuple[float | None, ...]
    ci_high: tuple[float | None, ...]
    confidence: float | None

    @classmethod
    def of(cls, stats: StepStats) -> _CurveInput:
        """The values of a proxy task's step statistics."""
        n = len(stats)
        return cls(
            steps=_optional_numbers("training_steps", stats.training_steps, n),
            correlations=_optional_numbers("correlations", stats.accuracy_correlation_over_step, n),
            accuracies=_optional_numbers("accuracies", stats.median_accuracy_over_step, n),
            hours=_optional_numbers("hours", stats.median_training_time_hrs_over_step, n),
            ci_low=_optional_numbers("ci_low", stats.accuracy_correlation_ci_low, n),
            ci_high=_optional_numbers("ci_high", stats.accuracy_correlation_ci_high, n),
            confidence=_optional_number("confidence", stats.confidence),
        )

    @classmethod
    def parse(cls, stats: Mapping[str, Any]) -> _CurveInput:
        """The values of a ``proxy_task_stats`` mapping, checked one by one (lists may be
        missing: invalid everywhere)."""
        if not isinstance(stats, Mapping):
            raise UsageError(f"stats must be a mapping (proxy_task_stats), got {stats!r}.")
        if "training_steps" not in stats:
            raise UsageError("stats must have 'training_steps' (a list of step counts).")
        raw_steps = stats["training_steps"]
        if isinstance(raw_steps, (str, bytes)) or not isinstance(raw_steps, Sequence):
            raise UsageError(f"training_steps must be a list of step counts, got {raw_steps!r}.")
        n = len(raw_steps)

        def values(key: str) -> tuple[float | None, ...]:
            return _optional_numbers(key, stats.get(key), n)

        return cls(
            steps=tuple(
                _optional_number(f"training_steps[{i}]", v) for i, v in enumerate(raw_steps)
            ),
            correlations=values("accuracy_correlation_over_step"),
            accuracies=values("median_accuracy_over_step"),
            hours=values("median_training_time_hrs_over_step"),
            ci_low=values("accuracy_correlation_ci_low"),
            ci_high=values("accuracy_correlation_ci_high"),
            confidence=_optional_number("confidence", stats.get("confidence")),
        )

    def pairs(
        self, xs: Sequence[float | None], ys: Sequence[float | None], scale: float = 1.0
    ) -> tuple[tuple[float, float], ...]:
        """The valid ``(x * scale, y)`` points."""
        return tuple(
            (x * scale, y) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None
        )

    def band(
        self, xs: Sequence[float | None], scale: float = 1.0
    ) -> tuple[tuple[float, float, float], ...]:
        """The valid ``(x * scale, low, high)`` interval points of the correlation."""
        return tuple(
            (x * scale, lo, hi)
            for x, lo, hi in zip(xs, self.ci_low, self.ci_high, strict=True)
            if x is not None and lo is not None and hi is not None
        )


@dataclasses.dataclass(frozen=True)
class _Marks:
    """What a search figure marks: thresholds, the stop and the time unit."""

    desired_correlation: float | None
    desired_accuracy: float | None
    stop_step: float | None
    stop_hours: float | None
    time_unit: str
    time_factor: float
    metric_label: str = "accuracy"


def _curve_panel(
    title: str,
    x_label: str,
    y_label: str,
    points: tuple[tuple[float, float], ...],
    band: tuple[tuple[float, float, float], ...],
    threshold: tuple[float | None, str],
    stop_x: float | None,
    y_limits: tuple[float, float] | None,
    empty_text: str,
) -> CurvePanel:
    value, what = threshold
    return CurvePanel(
        title,
        x_label,
        y_label,
        points,
        band,
        value,
        "" if value is None else f"{what} {value:g}",
        stop_x,
        _interpolate(points, stop_x),
        y_limits,
        empty_text,
    )


def _search_panels(
    curves: _CurveInput, marks: _Marks
) -> tuple[CurvePanel, CurvePanel, CurvePanel, CurvePanel]:
    """Correlation and median accuracy, each over steps and over time."""
    factor = marks.time_factor
    stop_t = None if marks.stop_hours is None else marks.stop_hours * factor
    time_label = f"training time ({marks.time_unit})"
    tau_label = "Kendall tau-b (proxy vs full)"
    corr = (marks.desired_correlation, "desired correlation")
    acc = (marks.desired_accuracy, "desired accuracy")
    steps, hours = curves.steps, curves.hours
    median = f"median {marks.metric_label}"
    return (
        _curve_panel(
            "Accuracy correlation vs training steps",
            "training steps",
            tau_label,
            curves.pairs(steps, curves.correlations),
            curves.band(steps),
            corr,
            marks.stop_step,
            (-1.0, 1.0),
            "no valid correlation yet",
        ),
        _curve_panel(
            "Accuracy correlation vs training time",
            time_label,
            tau_label,
            curves.pairs(hours, curves.correlations, factor),
            curves.band(hours, factor),
            corr,
            stop_t,
            (-1.0, 1.0),
            "no valid correlation with a training time yet",
        ),
        _curve_panel(
            f"M{median[1:]} vs training steps",
            "training steps",
            median,
            curves.pairs(steps, curves.accuracies),
            (),
            acc,
            marks.stop_step,
            None,
            "no valid accuracy yet",
        ),
        _curve_panel(
            f"M{median[1:]} vs training time",
            time_label,
            median,
            curves.pairs(hours, curves.accuracies, factor),
            (),
            acc,
            stop_t,
            None,
            "no valid accuracy with a training time yet",
        ),
    )


def _search_subtitle(curves: _CurveInput, marks: _Marks) -> str:
    details = []
    where = []
    if marks.stop_step is not None:
        where.append(f"step {_plain_number(marks.stop_step)}")
    if marks.stop_hours is not None:
        where.append(format_hours(marks.stop_hours))
    details.append("stopped at " + ", ".join(where) if where else "not stopped")
    if marks.desired_correlation is not None:
        details.append(f"desired correlation {marks.desired_correlation:g}")
    if marks.desired_accuracy is not None:
        details.append(f"desired accuracy {marks.desired_accuracy:g}")
    valid = sum(1 for v in curves.correlations if v is not None)
    details.append(f"{valid}/{len(curves.steps)} steps with a valid correlation")
    if curves.confidence is not None and curves.band(curves.steps):
        details.append(
            f"band: {curves.confidence * 100:g} % interval of tau, adjusted for repeated looks"
        )
    return " · ".join(details)


def search_curves_figure(
    proxy_name: str,
    stats: StepStats | Mapping[str, Any],
    *,
    desired_correlation: float | None,
    desired_accuracy: float | None,
    stop_step: int | None,
    stop_time_hrs: float | None,
    stopping_state: str,
    metric_label: str = "accuracy",
) -> SearchCurvesFigure:
    """Build a proxy task's search figure from its step statistics.

    ``stats`` is a :class:`~proxytask.stats.search.StepStats` or its ``proxy_task_stats``
    mapping: ``training_steps`` and the per-step lists ``accuracy_correlation_over_step``,
    ``median_accuracy_over_step`` and ``median_training_time_hrs_over_step`` (one value per
    step; None, NaN or a missing list means invalid there, and such points are dropped).
    Optional ``accuracy_correlation_ci_low`` / ``accuracy_correlation_ci_high`` lists give a
    band around the correlation. The stopping point is marked where the curve passes
    ``stop_step`` / ``stop_time_hrs`` (interpolated between valid points). ``metric_label``
    names the metric of the median panels.

    Example::

        >>> fig = search_curves_figure(
        ...     "data_50", {"training_steps": [100, 200, 300],
        ...                 "accuracy_correlation_over_step": [None, 0.5, 0.8],
        ...                 "median_accuracy_over_step": [0.3, 0.5, 0.7],
        ...                 "median_training_time_hrs_over_step": [0.1, 0.2, None]},
        ...     desired_correlation=0.65, desired_accuracy=None, stop_step=250,
        ...     stop_time_hrs=0.25, stopping_state="Met desired correlation")
        >>> corr_step, corr_time, acc_step, acc_time = fig.panels
        >>> corr_step.points, corr_step.stop_y
        (((200.0, 0.5), (300.0, 0.8)), 0.65)
        >>> corr_time.points, fig.time_unit
        (((12.0, 0.5),), 'minutes')
        >>> fig.title
        'Proxy task data_50: Met desired correlation'
    """
    curves = _CurveInput.of(stats) if isinstance(stats, StepStats) else _CurveInput.parse(stats)
    s_hrs = _optional_number("stop_time_hrs", stop_time_hrs)
    known_hours = [h for h in curves.hours if h is not None] + (
        [s_hrs] if s_hrs is not None else []
    )
    unit, factor = readable_time_unit(max(known_hours) if known_hours else 0.0)
    marks = _Marks(
        desired_correlation=_optional_number("desired_correlation", desired_correlation),
        desired_accuracy=_optional_number("desired_accuracy", desired_accuracy),
        stop_step=_optional_number("stop_step", stop_step),
        stop_hours=s_hrs,
        time_unit=unit,
        time_factor=factor,
        metric_label=metric_label,
    )
    state = str(stopping_state).strip()
    return SearchCurvesFigure(
        title=f"Proxy task {proxy_name}: {state or 'running'}",
        subtitle=_search_subtitle(curves, marks),
        proxy_name=str(proxy_name),
        stopping_state=state,
        panels=_search_panels(curves, marks),
        time_unit=unit,
        time_factor=factor,
        desired_correlation=marks.desired_correlation,
        desired_accuracy=marks.desired_accuracy,
        stop_step=None if stop_step is None else int(stop_step),
        stop_time_hrs=s_hrs,
    )


@dataclasses.dataclass(frozen=True)
class CorrelationScatterFigure:
    """A proxy-vs-full (or latency) scatter: labelled ``(label, x, y)`` points and Kendall tau.

    ``points`` hold the pairs where both values are numbers; ``dropped`` the labels of the
    others. ``subtitle`` is the statistic line ("Kendall tau-b = 0.73 (p = 0.01, n = 10)").
    """

    title: str
    subtitle: str
    points: tuple[tuple[str, float, float], ...]
    x_label: str
    y_label: str
    tau: float | None = None
    p_value: float | None = None
    dropped: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        """The number of valid pairs."""
        return len(self.points)


def _p_text(p_value: float) -> str:
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.2g}"


def correlation_scatter_figure(
    title: str,
    full: Sequence[float | None],
    proxy: Sequence[float | None],
    labels: Sequence[str],
    tau: float | None,
    p_value: float | None,
    x_label: str,
    y_label: str,
    interval: tuple[float, float, float] | None = None,
    interval_note: str = "",
) -> CorrelationScatterFigure:
    """Build a correlation scatter: ``full`` on x, ``proxy`` on y, one point per label.

    ``interval`` is ``(low, high, confidence)`` of tau, shown after it when given, followed by
    ``interval_note`` (e.g. how it was adjusted).

    Pairs where either value is None (or NaN) are dropped (their labels are kept in
    ``dropped``). ``tau`` / ``p_value`` are the caller's Kendall tau-b and its p-value (None:
    not computable).

    Example::

        >>> fig = correlation_scatter_figure("Proxy vs full at step 300", [0.9, 0.8, None],
        ...                                  [0.7, 0.6, 0.5], ["a", "b", "c"], 1.0, 0.05,
        ...                                  "full accuracy", "proxy accuracy")
        >>> fig.points, fig.dropped
        ((('a', 0.9, 0.7), ('b', 0.8, 0.6)), ('c',))
        >>> fig.subtitle
        'Kendall tau-b = 1.00 (p = 0.05, n = 2) · 1 without a value: c'
    """
    if not len(full) == len(proxy) == len(labels):
        raise UsageError(
            f"full, proxy and labels must have the same length, got {len(full)}, "
            f"{len(proxy)} and {len(labels)}."
        )
    points: list[tuple[str, float, float]] = []
    dropped: list[str] = []
    for i, (label, x, y) in enumerate(zip(labels, full, proxy, strict=True)):
        fx = _optional_number(f"full[{i}]", x)
        fy = _optional_number(f"proxy[{i}]", y)
        if fx is None or fy is None:
            dropped.append(str(label))
        else:
            points.append((str(label), fx, fy))
    t = _optional_number("tau", tau)
    p = _optional_number("p_value", p_value)
    n = len(points)
    if t is None:
        subtitle = f"Kendall tau-b not computable (n = {n})"
    elif p is None:
        subtitle = f"Kendall tau-b = {t:.2f} (n = {n})"
    else:
        subtitle = f"Kendall tau-b = {t:.2f} ({_p_text(p)}, n = {n})"
    if t is not None and interval is not None:
        low, high, level = interval
        note = f" {interval_note}" if interval_note else ""
        subtitle += f" · {level * 100:g} % interval{note} [{low:.2f}, {high:.2f}]"
    if dropped:
        subtitle += f" · {len(dropped)} without a value: {', '.join(dropped)}"
    return CorrelationScatterFigure(
        title=str(title),
        subtitle=subtitle,
        points=tuple(points),
        x_label=str(x_label),
        y_label=str(y_label),
        tau=t,
        p_value=p,
        dropped=tuple(dropped),
    )


@dataclasses.dataclass(frozen=True)
class ProxyBar:
    """One proxy task's bar: its final training time (display unit; None: no time) and state."""

    name: str
    value: float | None
    hours: float | None
    state: str
    is_best: bool


@dataclasses.dataclass(frozen=True)
class ProxyComparisonFigure:
    """All proxy tasks' final training times as bars (in ``time_unit``), the best marked."""

    title: str
    subtitle: str
    bars: tuple[ProxyBar, ...]
    time_unit: str
    time_factor: float

    @property
    def best(self) -> str | None:
        """The best proxy task's name, or None."""
        return next((b.name for b in self.bars if b.is_best), None)


def proxy_comparison_figure(
    rows: Sequence[tuple[str, float | None, str, bool]],
) -> ProxyComparisonFigure:
    """Build the proxy-task comparison from ``(name, final hours, stopping state, is_best)``.

    A None (or NaN) time is kept as a bar without a value, so the renderer draws it empty
    with its state.

    Example::

        >>> fig = proxy_comparison_figure([("a", 0.5, "Met desired correlation", True),
        ...                                ("b", None, "Exceeded training time limit", False)])
        >>> fig.time_unit, [b.value for b in fig.bars], fig.best
        ('minutes', [30.0, None], 'a')
    """
    parsed: list[tuple[str, float | None, str, bool]] = []
    for i, row in enumerate(rows):
        try:
            name, hours, state, is_best = row
        except (TypeError, ValueError) as exc:
            raise UsageError(
                f"rows[{i}] must be (name, final hours, stopping state, is_best), got {row!r}."
            ) from exc
        parsed.append(
            (str(name), _optional_number(f"rows[{i}] hours", hours), str(state), bool(is_best))
        )
    known = [h for _, h, _, _ in parsed if h is not None]
    unit, factor = readable_time_unit(max(known) if known else 0.0)
    bars = tuple(
        ProxyBar(name, None if h is None else h * factor, h, state, best)
        for name, h, state, best in parsed
    )
    best = [b.name for b in bars if b.is_best]
    subtitle = f"best: {', '.join(best)}" if best else "no successful proxy task"
    return ProxyComparisonFigure(
        title="Proxy tasks: final training time",
        subtitle=f"{subtitle} · {len(known)}/{len(bars)} with a final training time",
        bars=bars,
        time_unit=unit,
        time_factor=factor,
    )


# ---- Winner stability under resampling; trained proxies beside zero-training scores ----


@dataclasses.dataclass(frozen=True)
class StabilityBar:
    """One bar of the stability figure: a proxy config (or no winner) and its share of draws.

    ``frequency`` is the fraction of draws won (0 to 1), ``wins`` the number of draws.
    """

    name: str
    frequency: float
    wins: int
    is_observed_winner: bool
    is_no_winner: bool


@dataclasses.dataclass(frozen=True)
class StabilityFigure:
    """Everything the winner-stability bar chart shows, already computed.

    ``bars`` are the proxy configs in the order of the result, then the draws without a
    winner; the observed winner is marked. ``subtitle`` says how many draws and what they
    mean.
    """

    title: str
    subtitle: str
    bars: tuple[StabilityBar, ...]
    draws: int
    observed_winner: str | None
    x_label: str = "share of resamples won (%)"


def _percent(fraction: float) -> str:
    return f"{_plain_number(100.0 * fraction, 1)} %"


def stability_figure(result: StabilityResult) -> StabilityFigure:
    """Build the winner-stability figure from :func:`proxytask.stats.stability.winner_frequencies`.

    One bar per proxy config (its share of the resamples won) and one for the draws in which
    no config met its goal; the observed winner (on the models as drawn) is marked.

    Example::

        >>> from proxytask.stats.stability import StabilityResult
        >>> fig = stability_figure(StabilityResult(200, 0, 10, "point",
        ...     {"data_25": 0.8, "data_50": 0.15, "none": 0.05}, "data_25", 0.8))
        >>> [(b.name, b.wins, b.is_observed_winner) for b in fig.bars]
        [('data_25', 160, True), ('data_50', 30, False), ('none', 10, False)]
        >>> fig.subtitle.split(" · ")[1]
        'observed winner data_25 wins 80 % of them'
    """
    from proxytask.stats.stability import NO_WINNER

    frequencies = getattr(result, "frequencies", None)
    if not isinstance(frequencies, Mapping):
        raise UsageError(
            f"result must be a StabilityResult (from stats.stability.winner_frequencies), "
            f"got {result!r}."
        )
    draws = int(result.draws)
    observed = result.observed_winner
    if observed is not None and observed not in frequencies:
        raise UsageError(
            f"the observed winner {observed!r} is not among the result's proxy configs "
            f"({', '.join(frequencies)}). Pass the result winner_frequencies returned."
        )
    bars = []
    for name, value in frequencies.items():
        fraction = _optional_number(f"frequencies[{name!r}]", value)
        if fraction is None or not 0.0 <= fraction <= 1.0:
            raise UsageError(f"frequencies[{name!r}] must be a fraction in [0, 1], got {value!r}.")
        bars.append(
            StabilityBar(
                name=str(name),
                frequency=fraction,
                wins=round(fraction * draws),
                is_observed_winner=observed is not None and name == observed,
                is_no_winner=name == NO_WINNER,
            )
        )
    if observed is None:
        verdict = (
            f"no proxy task met its goal on the models as drawn; "
            f"{_percent(result.observed_winner_frequency)} of resamples have no winner either"
        )
    else:
        verdict = (
            f"observed winner {observed} wins {_percent(result.observed_winner_frequency)} of them"
        )
    details = [
        f"{draws} paired resamples (with replacement) of the {result.n_models} reference "
        f"models, {result.rule} stopping rule, seed {result.seed}, no extra training",
        verdict,
        "a share near 100 % means the choice does not hinge on which models were drawn",
    ]
    tied = int(getattr(result, "tied_draws", 0))
    if tied:
        details.append(f"{tied} draws had equal final times, given to the first name")
    return StabilityFigure(
        title="Proxy-task stability: who wins when the reference models are resampled",
        subtitle=" · ".join(details),
        bars=tuple(bars),
        draws=draws,
        observed_winner=observed,
    )


#: The two kinds of rows of :func:`tau_comparison_figure`.
TRAINED_PROXY = "trained proxy"
ZERO_TRAINING = "zero-training"
_TAU_KINDS = (TRAINED_PROXY, ZERO_TRAINING)


@dataclasses.dataclass(frozen=True)
class TauRow:
    """One row of the tau comparison: a score's Kendall tau-b and its interval (None: n/a).

    ``label`` is the value as shown ("0.73 [0.45, 0.88]", or "n/a" without a tau).
    """

    name: str
    kind: str
    tau: float | None
    ci_low: float | None
    ci_high: float | None
    is_best_of_kind: bool
    label: str


@dataclasses.dataclass(frozen=True)
class TauComparisonFigure:
    """Trained proxies and zero-training scores side by side by their Kendall tau-b.

    ``rows`` are the trained proxies first, then the zero-training scores, each group by
    descending tau (rows without a tau last, kept in the order given). ``desired_correlation``
    is drawn as a vertical line (None: none).
    """

    title: str
    subtitle: str
    rows: tuple[TauRow, ...]
    desired_correlation: float | None = None
    x_label: str = "Kendall tau-b vs full training"

    def best(self, kind: str) -> str | None:
        """The name of the best row of ``kind`` (:data:`TRAINED_PROXY` or :data:`ZERO_TRAINING`)."""
        return next((r.name for r in self.rows if r.kind == kind and r.is_best_of_kind), None)


def _tau_value(name: str, value: Any) -> float | None:
    number = _optional_number(name, value)
    if number is not None and not -1.0 <= number <= 1.0:
        raise UsageError(f"{name} must lie in [-1, 1] (a Kendall tau-b), got {value!r}.")
    return number


def _tau_row(index: int, row: Any) -> tuple[str, str, float | None, float | None, float | None]:
    try:
        name, kind, tau, low, high = row
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"rows[{index}] must be (name, kind, tau, ci_low, ci_high), got {row!r}."
        ) from exc
    if kind not in _TAU_KINDS:
        raise UsageError(
            f"rows[{index}] kind must be {TRAINED_PROXY!r} or {ZERO_TRAINING!r}, got {kind!r}."
        )
    t = _tau_value(f"rows[{index}] tau", tau)
    lo = _tau_value(f"rows[{index}] ci_low", low)
    hi = _tau_value(f"rows[{index}] ci_high", high)
    if (lo is None) != (hi is None):
        raise UsageError(
            f"rows[{index}] must give both ends of the interval or neither, got ci_low "
            f"{low!r} and ci_high {high!r}."
        )
    if lo is not None and hi is not None and lo > hi:
        raise UsageError(f"rows[{index}] ci_low {low!r} must not exceed ci_high {high!r}.")
    if t is None:
        lo = hi = None  # an interval without a tau is not drawn
    return str(name), str(kind), t, lo, hi


def _tau_label(tau: float | None, low: float | None, high: float | None) -> str:
    if tau is None:
        return "n/a"
    if low is None or high is None:
        return f"{tau:.2f}"
    return f"{tau:.2f} [{low:.2f}, {high:.2f}]"


def tau_comparison_figure(
    rows: Sequence[tuple[str, str, float | None, float | None, float | None]],
    *,
    desired_correlation: float | None = None,
    confidence: float | None = None,
) -> TauComparisonFigure:
    """Build the zero-training-vs-trained comparison from ``(name, kind, tau, ci_low, ci_high)``.

    ``kind`` is :data:`TRAINED_PROXY` or :data:`ZERO_TRAINING`; ``tau`` a Kendall tau-b
    against full training (None or NaN: not computable, kept as an "n/a" row) and
    ``ci_low`` / ``ci_high`` its interval (both or neither). The best row of each kind (the
    highest tau; ties: the first given) is marked. ``confidence`` only labels the whiskers.

    Example::

        >>> fig = tau_comparison_figure([("synflow", "zero-training", 0.4, 0.1, 0.6),
        ...                              ("data_25", "trained proxy", 0.7, 0.5, 0.85),
        ...                              ("naswot", "zero-training", None, None, None)],
        ...                             desired_correlation=0.65)
        >>> [(r.name, r.label) for r in fig.rows]
        [('data_25', '0.70 [0.50, 0.85]'), ('synflow', '0.40 [0.10, 0.60]'), ('naswot', 'n/a')]
        >>> fig.best("trained proxy"), fig.best("zero-training")
        ('data_25', 'synflow')
    """
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        raise UsageError(
            f"rows must be a list of (name, kind, tau, ci_low, ci_high), got {rows!r}."
        )
    parsed = [_tau_row(i, row) for i, row in enumerate(rows)]
    desired = _tau_value("desired_correlation", desired_correlation)
    level = _optional_number("confidence", confidence)
    ordered: list[TauRow] = []
    best_text = []
    for kind in _TAU_KINDS:
        group = [r for r in parsed if r[1] == kind]
        # Descending tau; rows without one last; ties keep the order given (stable sort).
        group.sort(key=lambda r: (r[2] is None, -(r[2] or 0.0)))
        best = group[0] if group and group[0][2] is not None else None
        for row in group:
            name, _, tau, low, high = row
            label = _tau_label(tau, low, high)
            ordered.append(TauRow(name, kind, tau, low, high, row is best, label))
        if best is not None:
            best_text.append(f"best {kind}: {best[0]} ({best[2]:.2f})")
        elif group:
            best_text.append(f"no {kind} with a tau")
    details = best_text or ["no rows"]
    if level is not None and any(r.ci_low is not None for r in ordered):
        details.append(f"whiskers: {level * 100:g} % interval")
    if desired is not None:
        details.append(f"desired correlation {desired:g}")
    subtitle = " · ".join(details)
    return TauComparisonFigure(
        title="Trained proxy tasks vs zero-training scores: rank correlation with full training",
        subtitle=subtitle,
        rows=tuple(ordered),
        desired_correlation=desired,
    )
