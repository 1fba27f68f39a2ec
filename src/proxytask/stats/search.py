"""Proxy-task search statistics: correlation over the step grid, and the best proxy task.

The stopping rules live in :mod:`proxytask.stats.stopping` (re-exported here).

Pure functions (SPEC §4): trials' learning curves and the reference models' full-training
accuracies in, frozen results out. A value that cannot be computed is None with a reason, never
a sentinel. State strings are those of the reference (Vertex AI NAS) tools.

Fixes over the reference:

- trials that evaluate at different steps are aligned on the union of their steps by linear
  interpolation (never extrapolated), instead of requiring identical steps;
- the training time at 0-based step ``s`` counts ``s + 1`` steps, not ``s``;
- the stopping-point interpolation never uses an invalid neighbouring step as a value: it
  interpolates from the nearest earlier *valid* step.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from proxytask.core.errors import StorageError, UsageError
from proxytask.core.metric import MetricMode
from proxytask.core.metric import metric_mode as to_metric_mode
from proxytask.stats.stopping import STOPPING_RULES, StopDecision, StoppingState, scan_stopping
from proxytask.trainer.contract import TrialTrainingMetrics, get_accuracy_at_pct

__all__ = [
    "MIN_PAIRS",
    "MIN_VALID_RATIO",
    "STOPPING_RULES",
    "Correlation",
    "CurveTable",
    "StepStats",
    "StopDecision",
    "StoppingState",
    "accuracy_at_step",
    "best_proxy_task",
    "check_pair_rules",
    "curve_table",
    "hours_per_step",
    "median_at_step",
    "rank_correlation",
    "scan_stopping",
    "step_budget",
    "step_stats",
    "trial_total_steps",
    "with_uncertainty",
]

#: A step's correlation counts only with at least this many valid (proxy, full) pairs …
MIN_PAIRS = 5
#: … and with at least this fraction of the reference models valid.
MIN_VALID_RATIO = 0.7

_SECS_PER_HOUR = 3600.0
_UNCERTAINTY_FIELDS = (
    "accuracy_correlation_ci_low",
    "accuracy_correlation_ci_high",
    "accuracy_correlation_prob_above",
)
_SCALAR_FIELDS = frozenset({"confidence", "desired_accuracy_correlation", "statistic"})

# --------------------------------------------------------------------------------------------
# Rank correlation
# --------------------------------------------------------------------------------------------


def _scipy_stats() -> Any:
    """``scipy.stats``, imported at first use: a process that only reads or plots results
    (the plot workers) never pays its import (a second on a small machine)."""
    from scipy import stats

    return stats


@dataclasses.dataclass(frozen=True)
class Correlation:
    """A Kendall tau-b over the valid pairs.

    ``tau`` and ``p_value`` are None when they cannot be computed, and ``reason`` says why.
    ``n`` is the number of valid pairs, ``n_total`` the number of reference models.
    """

    tau: float | None
    p_value: float | None
    n: int
    n_total: int
    reason: str | None
    method: str = "kendall_tau_b"

    @property
    def valid(self) -> bool:
        """True when ``tau`` was computed."""
        return self.tau is not None


def _finite(value: object) -> float | None:
    if type(value) is float:  # the common case, first: a search calls this millions of times
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def check_pair_rules(min_pairs: int, min_valid_ratio: float) -> None:
    if isinstance(min_pairs, bool) or not isinstance(min_pairs, int) or min_pairs < 2:
        raise UsageError(f"min_pairs must be an integer >= 2, got {min_pairs!r}.")
    if not 0.0 <= float(min_valid_ratio) <= 1.0:
        raise UsageError(f"min_valid_ratio must lie in [0, 1], got {min_valid_ratio!r}.")


def _pair_rule_reason(n: int, n_total: int, min_pairs: int, min_valid_ratio: float) -> str | None:
    """Why ``n`` valid pairs out of ``n_total`` models are too few (None when enough)."""
    if n < min_pairs:
        return f"only {n} valid pairs of {n_total}; at least {min_pairs} are needed"
    if n_total == 0 or n / n_total < min_valid_ratio:
        return (
            f"only {n} of {n_total} models valid ({n / max(n_total, 1):.0%}); at least "
            f"{min_valid_ratio:.0%} are needed"
        )
    return None


def _valid_pairs(
    proxy: Sequence[float | None], full: Sequence[float | None]
) -> list[tuple[int, float, float]]:
    pairs = []
    for i, (p, f) in enumerate(zip(proxy, full, strict=True)):
        x, y = _finite(p), _finite(f)
        if x is not None and y is not None:
            pairs.append((i, x, y))
    return pairs


def rank_correlation(
    proxy: Sequence[float | None],
    full: Sequence[float | None],
    *,
    min_pairs: int = MIN_PAIRS,
    min_valid_ratio: float = MIN_VALID_RATIO,
) -> Correlation:
    """Kendall tau-b between proxy and full-training scores of the same models.

    Contract: ``proxy[i]`` and ``full[i]`` belong to model ``i``; a pair counts when both are
    finite numbers (None, NaN and ±inf drop it). The correlation is computed only with at
    least ``min_pairs`` valid pairs that are at least ``min_valid_ratio`` of all models; a
    column of equal values has no rank correlation. Otherwise ``tau`` is None with a reason.

    Example::

        rank_correlation([0.1, 0.2, 0.3, 0.4, 0.5], [0.5, 0.6, 0.7, 0.8, 0.9]).tau  # 1.0
    """
    if len(proxy) != len(full):
        raise UsageError(
            f"proxy and full scores must have the same length, got {len(proxy)} and "
            f"{len(full)}. Pass one score per reference model, None where missing."
        )
    check_pair_rules(min_pairs, min_valid_ratio)
    n_total = len(full)
    pairs = _valid_pairs(proxy, full)
    n = len(pairs)
    reason = _pair_rule_reason(n, n_total, min_pairs, min_valid_ratio)
    if reason is not None:
        return Correlation(None, None, n, n_total, reason)
    xs = [x for _, x, _ in pairs]
    ys = [y for _, _, y in pairs]
    if len(set(xs)) == 1:
        return Correlation(None, None, n, n_total, "the proxy scores are all equal")
    if len(set(ys)) == 1:
        return Correlation(None, None, n, n_total, "the full-training scores are all equal")
    result = _scipy_stats().kendalltau(xs, ys, variant="b")
    tau = _finite(result[0])
    p_value = _finite(result[1])
    if tau is None:
        return Correlation(None, None, n, n_total, "scipy returned no tau (constant input)")
    return Correlation(tau, p_value, n, n_total, None)


# --------------------------------------------------------------------------------------------
# Statistics over the step grid
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StepStats:
    """One proxy task's statistics at each step of its grid (the same index in every tuple).

    ``training_steps`` are 0-based end steps; a value that cannot be computed is None.
    """

    training_steps: tuple[int, ...]
    accuracy_correlation_over_step: tuple[float | None, ...]
    accuracy_correlation_p_value_over_step: tuple[float | None, ...]
    num_pairs_over_step: tuple[int, ...]
    median_accuracy_over_step: tuple[float | None, ...]
    median_training_time_hrs_over_step: tuple[float | None, ...]
    # the uncertainty of each step's tau (see proxytask.stats.uncertainty); all None when not asked
    accuracy_correlation_ci_low: tuple[float | None, ...] = ()
    accuracy_correlation_ci_high: tuple[float | None, ...] = ()
    accuracy_correlation_prob_above: tuple[float | None, ...] = ()
    confidence: float | None = None
    desired_accuracy_correlation: float | None = None
    statistic: str = "Kendall tau-b"

    def __post_init__(self) -> None:
        size = len(self.training_steps)
        for name in _UNCERTAINTY_FIELDS:
            if not getattr(self, name):
                object.__setattr__(self, name, (None,) * size)
        for field in dataclasses.fields(self):
            if field.name in _SCALAR_FIELDS:
                continue
            value = getattr(self, field.name)
            if len(value) != size:
                raise UsageError(
                    f"StepStats.{field.name} must have {size} entries like training_steps, "
                    f"got {len(value)}."
                )

    def __len__(self) -> int:
        return len(self.training_steps)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, with the reference field names (None → null)."""
        return {
            field.name: getattr(self, field.name)
            if field.name in _SCALAR_FIELDS
            else list(getattr(self, field.name))
            for field in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "proxy_task_stats") -> StepStats:
        """Parse :meth:`to_dict`'s form; other keys (a ``proxy_task_stats`` entry) are ignored.

        A missing ``num_pairs_over_step`` (a state written without it) reads as zeros. Raise
        StorageError naming ``source`` when the data is malformed.
        """
        try:
            steps = tuple(int(s) for s in data["training_steps"])

            def floats(key: str) -> tuple[float | None, ...]:
                return tuple(_finite(v) for v in data[key])

            def optional(key: str) -> tuple[float | None, ...]:
                return () if data.get(key) is None else floats(key)

            pairs = data.get("num_pairs_over_step")
            return cls(
                training_steps=steps,
                accuracy_correlation_over_step=floats("accuracy_correlation_over_step"),
                accuracy_correlation_p_value_over_step=floats(
                    "accuracy_correlation_p_value_over_step"
                ),
                num_pairs_over_step=(0,) * len(steps)
                if pairs is None
                else tuple(int(n) for n in pairs),
                median_accuracy_over_step=floats("median_accuracy_over_step"),
                median_training_time_hrs_over_step=floats("median_training_time_hrs_over_step"),
                # absent in states written before intervals existed
                accuracy_correlation_ci_low=optional("accuracy_correlation_ci_low"),
                accuracy_correlation_ci_high=optional("accuracy_correlation_ci_high"),
                accuracy_correlation_prob_above=optional("accuracy_correlation_prob_above"),
                confidence=_finite(data.get("confidence")),
                desired_accuracy_correlation=_finite(data.get("desired_accuracy_correlation")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StorageError(
                f"{source} must hold the step statistics lists of equal length, got data "
                f"missing or mistyping {exc}. Let the search controller write this state."
            ) from exc


def trial_total_steps(metrics: TrialTrainingMetrics, total_steps: int | None) -> int | None:
    """The trial's step budget: ``total_steps`` when given, else derived from its last point
    (None when that point has no pct)."""
    if total_steps is not None:
        return total_steps
    last = metrics.training_accuracy_over_steps[-1]
    if not last.training_step_pct > 0:
        return None
    # pct = 100 * (step + 1) / total, so any point gives the trial's total.
    return max(1, round((last.training_step + 1) * 100.0 / last.training_step_pct))


def accuracy_at_step(
    metrics: TrialTrainingMetrics | None, step: int, total: int | None
) -> float | None:
    """The trial's accuracy after 0-based ``step``; None beyond its last evaluation."""
    if metrics is None or total is None or not metrics.training_accuracy_over_steps:
        return None
    points = metrics.training_accuracy_over_steps
    if points[-1].training_step < step:
        return None  # never extrapolate
    for point in points:
        if point.training_step == step:
            return _finite(point.accuracy)  # exact, free of pct round-off
    return _finite(get_accuracy_at_pct(metrics, 100.0 * (step + 1) / total))


def hours_per_step(metrics: TrialTrainingMetrics | None) -> float | None:
    """The trial's training hours per step (None when unknown)."""
    if metrics is None:
        return None
    tt = metrics.training_time
    if tt.total_training_steps <= 0:
        return None
    return _finite(tt.total_training_time_in_secs / tt.total_training_steps / _SECS_PER_HOUR)


@dataclasses.dataclass(frozen=True)
class CurveTable:
    """One proxy task's trials on the union of their steps: what step statistics read.

    ``steps`` is the grid (0-based end steps, sorted); ``recorded[i][g]`` whether trial ``i``
    has a point at ``steps[g]``; ``accuracies[i][g]`` its accuracy there as
    :func:`accuracy_at_step` reads it (None: no value); ``hours_per_step[i]`` its training
    hours per step (None: unknown).
    """

    steps: tuple[int, ...]
    recorded: tuple[tuple[bool, ...], ...]
    accuracies: tuple[tuple[float | None, ...], ...]
    hours_per_step: tuple[float | None, ...]


def curve_table(
    trials: Sequence[TrialTrainingMetrics | None], total_steps: int | None = None
) -> CurveTable:
    """Each trial's accuracy at each step any trial reached (see :func:`step_stats`)."""
    grid = sorted(
        {p.training_step for t in trials if t is not None for p in t.training_accuracy_over_steps}
    )
    recorded: list[tuple[bool, ...]] = []
    accuracies: list[tuple[float | None, ...]] = []
    for trial in trials:
        if trial is None or not trial.training_accuracy_over_steps:
            recorded.append((False,) * len(grid))
            accuracies.append((None,) * len(grid))
            continue
        own: dict[int, float] = {}
        for point in trial.training_accuracy_over_steps:  # the first point of a step counts
            own.setdefault(point.training_step, point.accuracy)
        recorded.append(tuple(step in own for step in grid))
        accuracies.append(_trial_row(trial, own, grid, trial_total_steps(trial, total_steps)))
    return CurveTable(
        steps=tuple(grid),
        recorded=tuple(recorded),
        accuracies=tuple(accuracies),
        hours_per_step=tuple(hours_per_step(t) for t in trials),
    )


def _trial_row(
    trial: TrialTrainingMetrics, own: Mapping[int, float], grid: Sequence[int], total: int | None
) -> tuple[float | None, ...]:
    """:func:`accuracy_at_step` of one trial at every grid step, reading its own points from
    ``own`` (step → accuracy) instead of scanning its curve at each step."""
    if total is None:
        return (None,) * len(grid)
    last = trial.training_accuracy_over_steps[-1].training_step
    row: list[float | None] = []
    for step in grid:
        if last < step:
            row.append(None)  # never extrapolate
        elif step in own:
            row.append(_finite(own[step]))  # exact, free of pct round-off
        else:
            row.append(_finite(get_accuracy_at_pct(trial, 100.0 * (step + 1) / total)))
    return tuple(row)


def median_at_step(
    step: int,
    accuracies: Sequence[float | None],
    per_step: Sequence[float | None],
    metric_mode: MetricMode | str = MetricMode.MAX,
) -> tuple[float, float | None]:
    """The median accuracy of the valid models at ``step`` and the median trial's hours.

    ``accuracies[i]`` is model ``i``'s accuracy (None: not a valid pair; at least one must be
    valid), ``per_step[i]`` its trial's hours per step. The median is
    ``sorted(valid)[n // 2]`` (an actual value); ties go to the lower index, so the median
    trial is deterministic. Its hours are its hours per step times ``step + 1``. Under
    ``metric_mode`` ``min`` the models are ranked by the negated metric (best last, as under
    ``max``), so the same model is the median as for the accuracy the loss mirrors.
    """
    index = _median_index(accuracies, to_metric_mode(metric_mode))
    return _median_and_hours(step, accuracies, per_step, index)


def _median_index(accuracies: Sequence[float | None], metric_mode: MetricMode) -> int:
    """The index of :func:`median_at_step`'s median model."""
    sign = metric_mode.sign
    ranked = sorted((sign * acc, i) for i, acc in enumerate(accuracies) if acc is not None)
    return ranked[len(ranked) // 2][1]


def _median_and_hours(
    step: int, accuracies: Sequence[float | None], per_step: Sequence[float | None], index: int
) -> tuple[float, float | None]:
    """Model ``index``'s accuracy and its trial's hours up to ``step``."""
    median = accuracies[index]
    assert median is not None
    rate = per_step[index]
    return median, None if rate is None else rate * (step + 1)


def step_budget(trials: Sequence[TrialTrainingMetrics | None]) -> int | None:
    """A config's step budget as its trials report it: the largest total (None before any)."""
    totals = []
    for metrics in trials:
        points = metrics.training_accuracy_over_steps if metrics is not None else ()
        if points and points[-1].training_step_pct > 0:
            last = points[-1]
            totals.append(round((last.training_step + 1) * 100.0 / last.training_step_pct))
    return max(totals) if totals else None


def _check_step_inputs(
    trials: Sequence[TrialTrainingMetrics | None],
    full_accuracies: Sequence[float | None],
    total_steps: int | None,
) -> None:
    if len(trials) != len(full_accuracies):
        raise UsageError(
            f"trials and full_accuracies must have the same length, got {len(trials)} and "
            f"{len(full_accuracies)}. Pass one entry per reference model, None where missing."
        )
    if total_steps is not None and (
        isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1
    ):
        raise UsageError(f"total_steps must be an integer >= 1 or None, got {total_steps!r}.")


@functools.lru_cache(maxsize=16384)
def _column(
    accs: tuple[float | None, ...],
    full: tuple[float | None, ...],
    min_pairs: int,
    min_valid_ratio: float,
    metric_mode: MetricMode,
) -> tuple[Correlation, int | None]:
    """One grid step's correlation and the index of its median model (None when the pair
    rules fail); memoised, because a search recomputes every step at each report and most
    steps' columns have not changed."""
    corr = rank_correlation(accs, full, min_pairs=min_pairs, min_valid_ratio=min_valid_ratio)
    valid = {i for i, _, _ in _valid_pairs(accs, full)}
    if _pair_rule_reason(len(valid), len(full), min_pairs, min_valid_ratio):
        return corr, None
    masked = [acc if i in valid else None for i, acc in enumerate(accs)]
    return corr, _median_index(masked, metric_mode)


def step_stats(
    trials: Sequence[TrialTrainingMetrics | None],
    full_accuracies: Sequence[float | None],
    *,
    total_steps: int | None = None,
    min_pairs: int = MIN_PAIRS,
    min_valid_ratio: float = MIN_VALID_RATIO,
    confidence: float | None = None,
    desired_accuracy_correlation: float | None = None,
    metric_mode: MetricMode | str = MetricMode.MAX,
) -> StepStats:
    """Correlation, median accuracy and median training time at every step any trial reached.

    Contract: ``trials[i]`` is the proxy trial of reference model ``i`` (None when it has not
    reported), ``full_accuracies[i]`` that model's full-training accuracy. The grid is the
    union of the trials' recorded 0-based end steps. At grid step ``s`` a trial's accuracy is
    its curve linearly interpolated at pct ``100 * (s + 1) / total`` (with the implicit
    (0 %, 0.0) point), where ``total`` is ``total_steps`` or, when None, the trial's own total
    derived from its points; it is None past the trial's last evaluation (no extrapolation).

    The medians are computed at steps where the pair rules hold (enough valid pairs): see
    :func:`median_at_step` (which reads ``metric_mode``).

    With ``confidence``, each valid tau also gets its two-sided interval and, with
    ``desired_accuracy_correlation`` too, the probability that the true tau exceeds it, both
    adjusted for the repeated looks: each step spends its share of the error budget over the
    step budget (``total_steps``, else the trials' own, :func:`step_budget`); see
    :mod:`proxytask.stats.uncertainty`. None where fewer than 5 pairs count.

    Example::

        stats = step_stats([read_trial_training_metrics(d) for d in dirs], full_scores)
        stats.accuracy_correlation_over_step[-1]
    """
    _check_step_inputs(trials, full_accuracies, total_steps)
    check_pair_rules(min_pairs, min_valid_ratio)
    table = curve_table(trials, total_steps)
    full, mode = tuple(full_accuracies), to_metric_mode(metric_mode)
    by_step = list(zip(*table.accuracies, strict=True)) if table.accuracies else []
    correlations: list[Correlation] = []
    medians: list[tuple[float | None, float | None]] = []
    for step, accs in zip(table.steps, by_step, strict=True):
        corr, index = _column(accs, full, min_pairs, min_valid_ratio, mode)
        correlations.append(corr)
        medians.append(
            (None, None)
            if index is None
            else _median_and_hours(step, accs, table.hours_per_step, index)
        )
    taus = [c.tau for c in correlations]
    counts = [c.n for c in correlations]
    budget = total_steps if total_steps is not None else step_budget(trials)
    lows, highs, probs = _uncertainty(
        taus, counts, confidence, desired_accuracy_correlation, table.steps, budget
    )
    return StepStats(
        training_steps=table.steps,
        accuracy_correlation_over_step=tuple(taus),
        accuracy_correlation_p_value_over_step=tuple(c.p_value for c in correlations),
        num_pairs_over_step=tuple(counts),
        median_accuracy_over_step=tuple(m for m, _ in medians),
        median_training_time_hrs_over_step=tuple(h for _, h in medians),
        accuracy_correlation_ci_low=lows,
        accuracy_correlation_ci_high=highs,
        accuracy_correlation_prob_above=probs,
        confidence=confidence,
        desired_accuracy_correlation=desired_accuracy_correlation,
    )


def with_uncertainty(
    stats: StepStats,
    confidence: float | None,
    desired_accuracy_correlation: float | None,
    total_steps: int | None = None,
) -> StepStats:
    """The same statistics with each step's interval and probability for new settings
    (``total_steps``: the step budget the looks' shares are spread over; None: unknown)."""
    lows, highs, probs = _uncertainty(
        stats.accuracy_correlation_over_step,
        stats.num_pairs_over_step,
        confidence,
        desired_accuracy_correlation,
        stats.training_steps,
        total_steps,
    )
    return dataclasses.replace(
        stats,
        accuracy_correlation_ci_low=lows,
        accuracy_correlation_ci_high=highs,
        accuracy_correlation_prob_above=probs,
        confidence=confidence,
        desired_accuracy_correlation=desired_accuracy_correlation,
    )


def _uncertainty(
    taus: Sequence[float | None],
    counts: Sequence[int],
    confidence: float | None,
    threshold: float | None,
    steps: Sequence[int],
    total_steps: int | None,
) -> tuple[tuple[float | None, ...], tuple[float | None, ...], tuple[float | None, ...]]:
    """Each step's interval and probability, adjusted for the repeated looks (each step
    spends its share of the error budget: :func:`proxytask.stats.uncertainty.look_shares`)."""
    from proxytask.stats.uncertainty import look_shares

    none = (None,) * len(taus)
    if confidence is None:
        return none, none, none
    shares = look_shares(steps, total_steps)
    rows = [
        _step_uncertainty(tau, n, confidence, share, threshold)
        for tau, n, share in zip(taus, counts, shares, strict=True)
    ]
    return (
        tuple(low for low, _, _ in rows),
        tuple(high for _, high, _ in rows),
        tuple(prob for _, _, prob in rows),
    )


@functools.lru_cache(maxsize=16384)
def _step_uncertainty(
    tau: float | None, n: int, confidence: float, share: float, threshold: float | None
) -> tuple[float | None, float | None, float | None]:
    """One step's look-adjusted interval (low, high) and probability above the threshold
    (None where there is no tau or fewer than 5 models); memoised like :func:`_column`."""
    from proxytask.stats.uncertainty import (
        MIN_MODELS_FOR_INTERVAL,
        adjust_probability,
        look_confidence,
        probability_above,
        tau_interval,
    )

    if tau is None or n < MIN_MODELS_FOR_INTERVAL:
        return None, None, None
    interval = tau_interval(tau, n, look_confidence(confidence, share))
    if threshold is None:
        return interval.low, interval.high, None
    return (
        interval.low,
        interval.high,
        adjust_probability(probability_above(tau, n, threshold), share),
    )


def best_proxy_task(results: Mapping[str, tuple[StoppingState, float | None]]) -> str | None:
    """The successful proxy task with the lowest final training time (ties: first by name).

    ``results`` maps a proxy task's name to its stopping state and final training hours. A
    success without a time ranks after every success with one. None when none succeeded.

    Example::

        best_proxy_task({"a": (StoppingState.MET_DESIRED_ACCURACY_CORRELATION, 1.5)})  # "a"
    """
    successes = [
        (hours is None, 0.0 if hours is None else hours, name)
        for name, (state, hours) in results.items()
        if StoppingState(state).is_success
    ]
    return min(successes)[2] if successes else None
