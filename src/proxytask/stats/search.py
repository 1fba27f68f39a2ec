"""Proxy-task search statistics: correlation over the step grid, and when to stop a proxy task.

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
import enum
import math
from collections.abc import Mapping, Sequence
from typing import Any

from scipy import stats as _scipy_stats

from proxytask.core.errors import StorageError, UsageError
from proxytask.trainer.contract import TrialTrainingMetrics, get_accuracy_at_pct

__all__ = [
    "MIN_PAIRS",
    "MIN_VALID_RATIO",
    "STOPPING_RULES",
    "Correlation",
    "StepStats",
    "StopDecision",
    "StoppingState",
    "best_proxy_task",
    "rank_correlation",
    "scan_stopping",
    "step_stats",
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

#: The stopping rules of :func:`scan_stopping`.
STOPPING_RULES = ("point", "confident")
#: The confident rule's futility stop judges a proxy only after this fraction of its limit.
FUTILITY_MIN_FRACTION = 0.3


class StoppingState(str, enum.Enum):
    """Why a proxy task stopped; the values are the reference tools' strings, exactly."""

    MET_DESIRED_ACCURACY_CORRELATION = "Met desired correlation"
    MET_DESIRED_ACCURACY = "Met desired accuracy"
    EXCEEDED_TRAIN_TIME_LIMIT = "Exceeded training time limit"
    EXCEEDED_BEST_TRAIN_TIME = "Exceeded best training time"
    INVALID_STOPPING_STATE = ""
    FAILED_DESIRED_LATENCY_CORRELATION = "Failed desired latency correlation"
    JOB_FAILED = "Proxy task job failed"
    RAN_TILL_COMPLETION = "Ran till completion"
    EXCESS_TRIAL_FAILURES = "Excess trial failures"
    # proxytask's own (the confident rule's futility stop); not a reference state
    UNLIKELY_TO_MEET_CORRELATION = "Unlikely to meet desired correlation"

    @property
    def is_success(self) -> bool:
        """True for the two states in which the proxy task met its goal."""
        return self in (
            StoppingState.MET_DESIRED_ACCURACY_CORRELATION,
            StoppingState.MET_DESIRED_ACCURACY,
        )


# --------------------------------------------------------------------------------------------
# Rank correlation
# --------------------------------------------------------------------------------------------


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
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _check_rules(min_pairs: int, min_valid_ratio: float) -> None:
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
    _check_rules(min_pairs, min_valid_ratio)
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
    result = _scipy_stats.kendalltau(xs, ys, variant="b")
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


def _trial_total_steps(metrics: TrialTrainingMetrics, total_steps: int | None) -> int | None:
    if total_steps is not None:
        return total_steps
    last = metrics.training_accuracy_over_steps[-1]
    if not last.training_step_pct > 0:
        return None
    # pct = 100 * (step + 1) / total, so any point gives the trial's total.
    return max(1, round((last.training_step + 1) * 100.0 / last.training_step_pct))


def _accuracy_at_step(
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


def _hours_per_step(metrics: TrialTrainingMetrics | None) -> float | None:
    if metrics is None:
        return None
    tt = metrics.training_time
    if tt.total_training_steps <= 0:
        return None
    return _finite(tt.total_training_time_in_secs / tt.total_training_steps / _SECS_PER_HOUR)


def step_stats(
    trials: Sequence[TrialTrainingMetrics | None],
    full_accuracies: Sequence[float | None],
    *,
    total_steps: int | None = None,
    min_pairs: int = MIN_PAIRS,
    min_valid_ratio: float = MIN_VALID_RATIO,
    confidence: float | None = None,
    desired_accuracy_correlation: float | None = None,
) -> StepStats:
    """Correlation, median accuracy and median training time at every step any trial reached.

    Contract: ``trials[i]`` is the proxy trial of reference model ``i`` (None when it has not
    reported), ``full_accuracies[i]`` that model's full-training accuracy. The grid is the
    union of the trials' recorded 0-based end steps. At grid step ``s`` a trial's accuracy is
    its curve linearly interpolated at pct ``100 * (s + 1) / total`` (with the implicit
    (0 %, 0.0) point), where ``total`` is ``total_steps`` or, when None, the trial's own total
    derived from its points; it is None past the trial's last evaluation (no extrapolation).

    The medians are computed at steps where the pair rules hold (enough valid pairs): the
    median accuracy is ``sorted(accuracies)[n // 2]`` over the valid pairs (an actual value),
    and the median training time is that trial's seconds per step times ``s + 1``, in hours.

    With ``confidence``, each valid tau also gets its two-sided interval at that level and,
    with ``desired_accuracy_correlation`` too, the probability that the true tau exceeds it
    (:mod:`proxytask.stats.uncertainty`; None where fewer than 5 pairs count).

    Example::

        stats = step_stats([read_trial_training_metrics(d) for d in dirs], full_scores)
        stats.accuracy_correlation_over_step[-1]
    """
    if len(trials) != len(full_accuracies):
        raise UsageError(
            f"trials and full_accuracies must have the same length, got {len(trials)} and "
            f"{len(full_accuracies)}. Pass one entry per reference model, None where missing."
        )
    if total_steps is not None and (
        isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1
    ):
        raise UsageError(f"total_steps must be an integer >= 1 or None, got {total_steps!r}.")
    _check_rules(min_pairs, min_valid_ratio)

    totals = [
        None
        if t is None or not t.training_accuracy_over_steps
        else _trial_total_steps(t, total_steps)
        for t in trials
    ]
    grid = sorted(
        {p.training_step for t in trials if t is not None for p in t.training_accuracy_over_steps}
    )
    hours_per_step = [_hours_per_step(t) for t in trials]

    taus: list[float | None] = []
    p_values: list[float | None] = []
    counts: list[int] = []
    median_accs: list[float | None] = []
    median_hours: list[float | None] = []
    for step in grid:
        accs = [_accuracy_at_step(t, step, total) for t, total in zip(trials, totals, strict=True)]
        corr = rank_correlation(
            accs, full_accuracies, min_pairs=min_pairs, min_valid_ratio=min_valid_ratio
        )
        taus.append(corr.tau)
        p_values.append(corr.p_value)
        counts.append(corr.n)
        pairs = _valid_pairs(accs, full_accuracies)
        if _pair_rule_reason(len(pairs), len(full_accuracies), min_pairs, min_valid_ratio):
            median_accs.append(None)
            median_hours.append(None)
            continue
        # Ties go to the lower model index, so the median trial is deterministic.
        ranked = sorted((acc, i) for i, acc, _ in pairs)
        median_acc, median_index = ranked[len(ranked) // 2]
        median_accs.append(median_acc)
        per_step = hours_per_step[median_index]
        median_hours.append(None if per_step is None else per_step * (step + 1))

    lows, highs, probs = _uncertainty(taus, counts, confidence, desired_accuracy_correlation)
    return StepStats(
        training_steps=tuple(grid),
        accuracy_correlation_over_step=tuple(taus),
        accuracy_correlation_p_value_over_step=tuple(p_values),
        num_pairs_over_step=tuple(counts),
        median_accuracy_over_step=tuple(median_accs),
        median_training_time_hrs_over_step=tuple(median_hours),
        accuracy_correlation_ci_low=lows,
        accuracy_correlation_ci_high=highs,
        accuracy_correlation_prob_above=probs,
        confidence=confidence,
        desired_accuracy_correlation=desired_accuracy_correlation,
    )


def with_uncertainty(
    stats: StepStats, confidence: float | None, desired_accuracy_correlation: float | None
) -> StepStats:
    """The same statistics with each step's interval and probability for new settings."""
    lows, highs, probs = _uncertainty(
        stats.accuracy_correlation_over_step,
        stats.num_pairs_over_step,
        confidence,
        desired_accuracy_correlation,
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
) -> tuple[tuple[float | None, ...], tuple[float | None, ...], tuple[float | None, ...]]:
    from proxytask.stats.uncertainty import MIN_MODELS_FOR_INTERVAL, probability_above, tau_interval

    none = (None,) * len(taus)
    if confidence is None:
        return none, none, none
    lows: list[float | None] = []
    highs: list[float | None] = []
    probs: list[float | None] = []
    for tau, n in zip(taus, counts, strict=True):
        if tau is None or n < MIN_MODELS_FOR_INTERVAL:
            lows.append(None)
            highs.append(None)
            probs.append(None)
            continue
        interval = tau_interval(tau, n, confidence)
        lows.append(interval.low)
        highs.append(interval.high)
        probs.append(None if threshold is None else probability_above(tau, n, threshold))
    return tuple(lows), tuple(highs), tuple(probs)


# --------------------------------------------------------------------------------------------
# Stopping
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StopDecision:
    """Whether and where a proxy task stops.

    ``state`` is ``INVALID_STOPPING_STATE`` when no rule fired yet; ``step_index`` indexes the
    step grid at the crossing; the final values are interpolated for the two success states.
    """

    state: StoppingState
    step_index: int | None
    final_training_steps: int | None
    final_training_time_in_hours: float | None

    @property
    def stopped(self) -> bool:
        """True when a stopping rule fired."""
        return self.state is not StoppingState.INVALID_STOPPING_STATE


def _at_least(value: float | None, threshold: float | None) -> bool:
    return value is not None and threshold is not None and value >= threshold


def _interpolated_stop(
    stats: StepStats,
    state: StoppingState,
    values: Sequence[float | None],
    x1: int,
    target: float,
) -> StopDecision:
    times = stats.median_training_time_hrs_over_step
    steps = stats.training_steps
    # The nearest earlier step with a valid value and time; invalid neighbours are skipped.
    x0 = next(
        (i for i in range(x1 - 1, -1, -1) if values[i] is not None and times[i] is not None),
        None,
    )
    y1, t1 = values[x1], times[x1]
    if x0 is None or t1 is None or y1 is None:
        return StopDecision(state, x1, steps[x1], t1)
    y0, t0 = values[x0], times[x0]
    assert y0 is not None and t0 is not None
    frac = 1.0 if y1 == y0 else (target - y0) / (y1 - y0)
    frac = min(1.0, max(0.0, frac))
    final_steps = int(steps[x0] + frac * (steps[x1] - steps[x0]))
    final_hours = t0 + frac * (t1 - t0)
    return StopDecision(state, x1, final_steps, final_hours)


def _check_rule(rule: str, confidence: float, persistence: int) -> None:
    if rule not in STOPPING_RULES:
        raise UsageError(
            f"the stopping rule must be one of {', '.join(STOPPING_RULES)}, got {rule!r}."
        )
    if isinstance(confidence, bool) or not 0.5 <= float(confidence) < 1.0:
        raise UsageError(f"the confidence must lie in [0.5, 1), got {confidence!r}. Use e.g. 0.9.")
    if isinstance(persistence, bool) or not isinstance(persistence, int) or persistence < 1:
        raise UsageError(f"the persistence must be an integer >= 1, got {persistence!r}.")


def _limit_step(
    stats: StepStats, i: int, total_steps: int | None, training_time_hrs_limit: float | None
) -> float | None:
    """The last step a proxy may reach: its budget, or where its time hits the limit."""
    ends = []
    if total_steps is not None:
        ends.append(float(total_steps - 1))
    hours = stats.median_training_time_hrs_over_step[i]
    if training_time_hrs_limit is not None and hours:
        ends.append((stats.training_steps[i] + 1) * training_time_hrs_limit / hours - 1)
    return min(ends) if ends else None


def _projected_tau(stats: StepStats, i: int, first: int, previous: int, end: float) -> float:
    """An optimistic tau at step ``end``: the steeper of the recent and the overall rise
    (never a fall) continued linearly.

    Correlation curves rise and then flatten, so a straight line from either slope is
    optimistic: a proxy is abandoned only when even this projection stays confidently below
    the threshold.
    """
    taus, steps = stats.accuracy_correlation_over_step, stats.training_steps
    tau = taus[i]
    assert tau is not None

    def slope(j: int) -> float:
        before = taus[j]
        assert before is not None
        span = steps[i] - steps[j]
        return max(0.0, (tau - before) / span) if span > 0 else 0.0

    rise = max(slope(first), slope(previous))
    return min(1.0, tau + rise * max(0.0, end - steps[i]))


def scan_stopping(
    stats: StepStats,
    *,
    desired_accuracy_correlation: float | None,
    desired_accuracy: float | None = None,
    training_time_hrs_limit: float | None = None,
    best_training_time_hrs: float | None = None,
    early_stop_if_not_best: bool = False,
    rule: str = "point",
    confidence: float = 0.85,
    persistence: int = 2,
    total_steps: int | None = None,
) -> StopDecision:
    """Find the first step at which a proxy task should stop, and its final steps and hours.

    At each step in order, the first rule that holds decides: (1) the correlation rule;
    (2) median accuracy ≥ ``desired_accuracy``; (3) median training time ≥
    ``training_time_hrs_limit``; (4) with ``early_stop_if_not_best``, median training time ≥
    ``best_training_time_hrs``; (5) with ``rule="confident"``, the futility rule. A None
    threshold or value skips its rule.

    The correlation rule (1) depends on ``rule``:

    - ``"point"`` (the reference tools'): the first step whose Kendall tau-b ≥
      ``desired_accuracy_correlation``. The final steps and hours are interpolated at the
      crossing between the nearest earlier step whose value and time are valid and the
      crossing step; with no such step, the crossing step's own values are used.
    - ``"confident"``: the probability that the *true* tau exceeds the threshold
      (:func:`proxytask.stats.uncertainty.probability_above`, from each step's tau and number of
      pairs) is ≥ ``confidence`` at ``persistence`` consecutive valid steps. The proxy stops
      at the last of them, with that step's steps and hours (no interpolation: the evidence
      is for the scores at that step).

    The futility rule (5): once the proxy has spent at least ``FUTILITY_MIN_FRACTION`` of
    its limit (its ``total_steps`` budget, or the step where its training time reaches
    ``training_time_hrs_limit``) and has at least 3 steps of evidence, at ``persistence``
    consecutive valid steps even an optimistic projection of tau to the limit (the steeper of
    the recent and the overall rise, continued linearly) has a probability ≤
    ``1 − confidence`` of a true tau above the threshold. The proxy is abandoned as
    ``UNLIKELY_TO_MEET_CORRELATION`` at that step. Without a known limit the rule is off.
    (The simulation benchmark in ``bench/`` showed that judging earlier abandons proxies
    that are still rising.)

    For (2) the final values are interpolated as in the point rule; for (3), (4) and (5) they
    are the stopping step's. With no stop the state is ``INVALID_STOPPING_STATE``.

    Example::

        decision = scan_stopping(stats, desired_accuracy_correlation=0.65,
                                 training_time_hrs_limit=2.0, rule="confident")
        if decision.stopped: ...
    """
    from proxytask.stats.uncertainty import MIN_MODELS_FOR_INTERVAL, probability_above

    _check_rule(rule, confidence, persistence)
    corrs = stats.accuracy_correlation_over_step
    accs = stats.median_accuracy_over_step
    times = stats.median_training_time_hrs_over_step
    threshold = desired_accuracy_correlation
    best = best_training_time_hrs if early_stop_if_not_best else None
    confident = rule == "confident"
    passes = fails = 0
    seen: list[int] = []  # the steps with evidence so far, for the projection
    for i in range(len(stats.training_steps)):
        tau, n = corrs[i], stats.num_pairs_over_step[i]
        evidence = confident and threshold is not None and tau is not None
        evidence = evidence and n >= MIN_MODELS_FOR_INTERVAL
        if not confident and threshold is not None and _at_least(tau, threshold):
            return _interpolated_stop(
                stats, StoppingState.MET_DESIRED_ACCURACY_CORRELATION, corrs, i, threshold
            )
        if evidence:
            assert tau is not None and threshold is not None
            passes = passes + 1 if probability_above(tau, n, threshold) >= confidence else 0
            if passes >= persistence:
                return StopDecision(
                    StoppingState.MET_DESIRED_ACCURACY_CORRELATION,
                    i,
                    stats.training_steps[i],
                    times[i],
                )
        if desired_accuracy is not None and _at_least(accs[i], desired_accuracy):
            return _interpolated_stop(
                stats, StoppingState.MET_DESIRED_ACCURACY, accs, i, desired_accuracy
            )
        if _at_least(times[i], training_time_hrs_limit):
            return StopDecision(
                StoppingState.EXCEEDED_TRAIN_TIME_LIMIT, i, stats.training_steps[i], times[i]
            )
        if _at_least(times[i], best):
            return StopDecision(
                StoppingState.EXCEEDED_BEST_TRAIN_TIME, i, stats.training_steps[i], times[i]
            )
        if evidence:
            assert threshold is not None
            end = _limit_step(stats, i, total_steps, training_time_hrs_limit)
            judged = end is not None and len(seen) >= 2
            if (
                judged
                and end is not None
                and (stats.training_steps[i] + 1 >= FUTILITY_MIN_FRACTION * (end + 1))
            ):
                projected = _projected_tau(stats, i, seen[0], seen[-1], end)
                hopeless = probability_above(projected, n, threshold) <= 1.0 - confidence
                fails = fails + 1 if hopeless else 0
                if fails >= persistence:
                    return StopDecision(
                        StoppingState.UNLIKELY_TO_MEET_CORRELATION,
                        i,
                        stats.training_steps[i],
                        times[i],
                    )
            seen.append(i)
    return StopDecision(StoppingState.INVALID_STOPPING_STATE, None, None, None)


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
