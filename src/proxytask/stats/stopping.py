"""When a proxy task stops: the stopping rules, each a small object behind one interface.

A rule reads one proxy task's :class:`~proxytask.stats.search.StepStats` and a
:class:`StoppingSettings` and answers with the first step at which it fires
(:meth:`StoppingRule.decide`). A *policy* is an ordered tuple of rules: at each step the first
rule in the tuple that fires there decides, so :func:`scan_stopping` takes the earliest firing
step and, on a tie, the earlier rule. ``--stopping-rule`` picks a policy by name from
:data:`STOPPING_RULES`.

Adding a rule: write a class with a ``decide`` method and add a policy line to
:data:`STOPPING_RULES` (and a test). Nothing else changes: the CLI's choices, the settings'
check and the report read the registry.

State strings are those of the reference (Vertex AI NAS) tools.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol

from proxytask.core.errors import UsageError
from proxytask.core.metric import MetricMode
from proxytask.core.metric import metric_mode as to_metric_mode
from proxytask.stats.uncertainty import (
    MIN_MODELS_FOR_INTERVAL,
    adjust_probability,
    look_shares,
    probability_above,
)

if TYPE_CHECKING:
    from proxytask.stats.search import StepStats

__all__ = [
    "BEST_TIME",
    "DESIRED_ACCURACY",
    "FUTILITY_MIN_FRACTION",
    "NOT_STOPPED",
    "STOPPING_RULES",
    "TIME_LIMIT",
    "ConfidentCorrelationRule",
    "FutilityRule",
    "PointCorrelationRule",
    "StopDecision",
    "StoppingRule",
    "StoppingSettings",
    "StoppingState",
    "ThresholdRule",
    "check_rule_name",
    "decide",
    "scan_stopping",
]

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


#: The decision of a rule that did not fire.
NOT_STOPPED = StopDecision(StoppingState.INVALID_STOPPING_STATE, None, None, None)


@dataclasses.dataclass(frozen=True)
class StoppingSettings:
    """The thresholds every rule reads (a None threshold turns its rule off).

    ``best_training_time_hrs`` is the best finished proxy's time (the early stop);
    ``total_steps`` the proxy's step budget (the futility rule projects to it).
    """

    desired_accuracy_correlation: float | None
    desired_accuracy: float | None = None
    training_time_hrs_limit: float | None = None
    best_training_time_hrs: float | None = None
    confidence: float = 0.85
    persistence: int = 2
    total_steps: int | None = None
    metric_mode: MetricMode = MetricMode.MAX  # min: desired_accuracy is reached from above

    def __post_init__(self) -> None:
        object.__setattr__(self, "metric_mode", to_metric_mode(self.metric_mode))
        confidence, persistence = self.confidence, self.persistence
        if isinstance(confidence, bool) or not 0.5 <= float(confidence) < 1.0:
            raise UsageError(
                f"the confidence must lie in [0.5, 1), got {confidence!r}. Use e.g. 0.9."
            )
        if isinstance(persistence, bool) or not isinstance(persistence, int) or persistence < 1:
            raise UsageError(f"the persistence must be an integer >= 1, got {persistence!r}.")


class StoppingRule(Protocol):
    """One stopping rule.

    Contract: :meth:`decide` is pure; it returns the decision at the *first* step of ``stats``
    where the rule fires (``step_index`` set, a non-invalid state), or :data:`NOT_STOPPED`.
    A rule judges each step only from that step and the earlier ones, so the policy may stop
    at the earliest step any of its rules fires.
    """

    @property
    def name(self) -> str:
        """The rule's name (for reports and errors)."""
        ...

    def decide(self, stats: StepStats, settings: StoppingSettings) -> StopDecision:
        """The first step at which this rule fires, or :data:`NOT_STOPPED`."""
        ...


def _at_least(value: float | None, threshold: float | None) -> bool:
    return value is not None and threshold is not None and value >= threshold


def _stop_at(stats: StepStats, state: StoppingState, i: int) -> StopDecision:
    """Stop at step ``i`` with that step's own steps and hours."""
    return StopDecision(
        state, i, stats.training_steps[i], stats.median_training_time_hrs_over_step[i]
    )


def _interpolated_stop(
    stats: StepStats,
    state: StoppingState,
    values: Sequence[float | None],
    x1: int,
    target: float,
) -> StopDecision:
    """Stop at ``x1``, with the steps and hours interpolated where ``values`` crossed
    ``target`` from the nearest earlier step whose value and time are valid."""
    times = stats.median_training_time_hrs_over_step
    steps = stats.training_steps
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


def _first_at_least(
    stats: StepStats,
    values: Sequence[float | None],
    threshold: float | None,
    state: StoppingState,
    interpolate: bool,
) -> StopDecision:
    for i, value in enumerate(values):
        if threshold is not None and _at_least(value, threshold):
            if interpolate:
                return _interpolated_stop(stats, state, values, i, threshold)
            return _stop_at(stats, state, i)
    return NOT_STOPPED


def _evidence(stats: StepStats, i: int, threshold: float | None) -> bool:
    """True when step ``i``'s tau counts as evidence for a probability (enough pairs)."""
    tau, n = stats.accuracy_correlation_over_step[i], stats.num_pairs_over_step[i]
    return threshold is not None and tau is not None and n >= MIN_MODELS_FOR_INTERVAL


class PointCorrelationRule:
    """The reference tools' rule: the first step whose Kendall tau-b reaches the threshold.

    The final steps and hours are interpolated at the crossing between the nearest earlier
    step whose value and time are valid and the crossing step.
    """

    name: ClassVar[str] = "point"

    def decide(self, stats: StepStats, settings: StoppingSettings) -> StopDecision:
        """See the class docstring."""
        return _first_at_least(
            stats,
            stats.accuracy_correlation_over_step,
            settings.desired_accuracy_correlation,
            StoppingState.MET_DESIRED_ACCURACY_CORRELATION,
            interpolate=True,
        )


class ConfidentCorrelationRule:
    """The probability that the *true* tau exceeds the threshold, adjusted for the repeated
    looks, is ≥ ``confidence`` at ``persistence`` consecutive valid steps; it stops at the last
    of them, with that step's steps and hours (no interpolation: the evidence is for the
    scores at that step).

    Each step of the grid is a look that spends its share of the error budget
    ``1 − confidence`` over the step budget ``settings.total_steps``
    (:func:`proxytask.stats.uncertainty.look_shares`), so a step with share ``w`` passes when
    :func:`~proxytask.stats.uncertainty.probability_above` ≥ ``1 − (1 − confidence)·w``. Judged
    at the full level at every step instead, the rule passed proxies whose true tau was below
    the threshold in 26 % of NAS-Bench-201 searches evaluating every epoch; spent over the
    budget, in 2 % (``bench/real_curves.py``).
    """

    name: ClassVar[str] = "confident"

    def decide(self, stats: StepStats, settings: StoppingSettings) -> StopDecision:
        """See the class docstring."""
        threshold = settings.desired_accuracy_correlation
        shares = look_shares(stats.training_steps, settings.total_steps)
        passes = 0
        for i, tau in enumerate(stats.accuracy_correlation_over_step):
            if not _evidence(stats, i, threshold):
                continue
            assert tau is not None and threshold is not None
            n = stats.num_pairs_over_step[i]
            probability = adjust_probability(probability_above(tau, n, threshold), shares[i])
            passes = passes + 1 if probability >= settings.confidence else 0
            if passes >= settings.persistence:
                return _stop_at(stats, StoppingState.MET_DESIRED_ACCURACY_CORRELATION, i)
        return NOT_STOPPED


@dataclasses.dataclass(frozen=True)
class ThresholdRule:
    """A per-step value reaching a threshold (``value(stats) >= threshold(settings)``).

    With ``interpolate``, the final steps and hours are interpolated at the crossing as the
    point rule does; otherwise they are the stopping step's. A None threshold turns it off.
    With ``directed``, the value is the trainer's metric and "reaching" follows
    ``settings.metric_mode`` (``<=`` under ``min``: both sides are negated).
    """

    name: str
    value: Callable[[StepStats], Sequence[float | None]]
    threshold: Callable[[StoppingSettings], float | None]
    state: StoppingState
    interpolate: bool = False
    directed: bool = False

    def decide(self, stats: StepStats, settings: StoppingSettings) -> StopDecision:
        """See the class docstring."""
        values, threshold = self.value(stats), self.threshold(settings)
        if self.directed and settings.metric_mode is MetricMode.MIN:
            values = [None if v is None else -v for v in values]
            threshold = None if threshold is None else -threshold
        return _first_at_least(stats, values, threshold, self.state, self.interpolate)


#: Median accuracy ≥ ``desired_accuracy`` (≤ under ``metric_mode`` min), interpolated as the
#: point rule.
DESIRED_ACCURACY = ThresholdRule(
    "desired_accuracy",
    lambda stats: stats.median_accuracy_over_step,
    lambda settings: settings.desired_accuracy,
    StoppingState.MET_DESIRED_ACCURACY,
    interpolate=True,
    directed=True,
)
#: Median training time ≥ ``training_time_hrs_limit``.
TIME_LIMIT = ThresholdRule(
    "time_limit",
    lambda stats: stats.median_training_time_hrs_over_step,
    lambda settings: settings.training_time_hrs_limit,
    StoppingState.EXCEEDED_TRAIN_TIME_LIMIT,
)
#: The early stop: median training time ≥ the best finished proxy's
#: (``best_training_time_hrs``; None turns it off).
BEST_TIME = ThresholdRule(
    "best_time",
    lambda stats: stats.median_training_time_hrs_over_step,
    lambda settings: settings.best_training_time_hrs,
    StoppingState.EXCEEDED_BEST_TRAIN_TIME,
)


def _limit_step(stats: StepStats, i: int, settings: StoppingSettings) -> float | None:
    """The last step a proxy may reach: its budget, or where its time hits the limit."""
    ends = []
    if settings.total_steps is not None:
        ends.append(float(settings.total_steps - 1))
    hours = stats.median_training_time_hrs_over_step[i]
    limit = settings.training_time_hrs_limit
    if limit is not None and hours:
        ends.append((stats.training_steps[i] + 1) * limit / hours - 1)
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


class FutilityRule:
    """Abandon a proxy that cannot reach the threshold (``UNLIKELY_TO_MEET_CORRELATION``).

    Once the proxy has spent at least :data:`FUTILITY_MIN_FRACTION` of its limit (its
    ``total_steps`` budget, or the step where its training time reaches
    ``training_time_hrs_limit``) and has at least 3 steps of evidence, at ``persistence``
    consecutive valid steps even an optimistic projection of tau to the limit (the steeper of
    the recent and the overall rise, continued linearly) has a probability ≤
    ``1 − confidence`` of a true tau above the threshold. Without a known limit it is off.
    (The simulation benchmark in ``bench/`` showed that judging earlier abandons proxies that
    are still rising.)
    """

    name: ClassVar[str] = "futility"

    def decide(self, stats: StepStats, settings: StoppingSettings) -> StopDecision:
        """See the class docstring."""
        threshold = settings.desired_accuracy_correlation
        fails = 0
        seen: list[int] = []  # the steps with evidence so far, for the projection
        for i in range(len(stats.training_steps)):
            if not _evidence(stats, i, threshold):
                continue
            assert threshold is not None
            end = _limit_step(stats, i, settings)
            late = end is not None and stats.training_steps[i] + 1 >= FUTILITY_MIN_FRACTION * (
                end + 1
            )
            if end is not None and len(seen) >= 2 and late:
                projected = _projected_tau(stats, i, seen[0], seen[-1], end)
                n = stats.num_pairs_over_step[i]
                hopeless = probability_above(projected, n, threshold) <= 1.0 - settings.confidence
                fails = fails + 1 if hopeless else 0
                if fails >= settings.persistence:
                    return _stop_at(stats, StoppingState.UNLIKELY_TO_MEET_CORRELATION, i)
            seen.append(i)
        return NOT_STOPPED


_LIMITS: tuple[StoppingRule, ...] = (DESIRED_ACCURACY, TIME_LIMIT, BEST_TIME)

#: ``--stopping-rule`` name → its policy: the rules in the order they decide within a step.
STOPPING_RULES: Mapping[str, tuple[StoppingRule, ...]] = {
    "point": (PointCorrelationRule(), *_LIMITS),
    "confident": (ConfidentCorrelationRule(), *_LIMITS, FutilityRule()),
}


def check_rule_name(rule: str) -> None:
    """Raise UsageError unless ``rule`` names a policy of :data:`STOPPING_RULES`."""
    if rule not in STOPPING_RULES:
        raise UsageError(
            f"the stopping rule must be one of {', '.join(STOPPING_RULES)}, got {rule!r}."
        )


def decide(
    stats: StepStats, settings: StoppingSettings, policy: Sequence[StoppingRule]
) -> StopDecision:
    """The first step at which any rule of ``policy`` fires (a tie: the earlier rule)."""
    best = NOT_STOPPED
    for rule in policy:
        decision = rule.decide(stats, settings)
        if decision.step_index is None:
            continue
        if best.step_index is None or decision.step_index < best.step_index:
            best = decision
    return best


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
    metric_mode: MetricMode | str = MetricMode.MAX,
) -> StopDecision:
    """Find the first step at which a proxy task should stop, and its final steps and hours.

    At each step in order, the first rule of the ``rule`` policy that holds decides
    (:data:`STOPPING_RULES`): (1) the correlation rule (:class:`PointCorrelationRule` for
    ``"point"``, :class:`ConfidentCorrelationRule` for ``"confident"``); (2)
    :data:`DESIRED_ACCURACY`; (3) :data:`TIME_LIMIT`; (4) with ``early_stop_if_not_best``,
    :data:`BEST_TIME`; (5) for ``"confident"``,
    :class:`FutilityRule`. A None threshold or value skips its rule. With no stop the state
    is ``INVALID_STOPPING_STATE``. Under ``metric_mode`` ``min`` (a loss) the desired
    accuracy is reached when the median is at or below it; the correlation rules need no
    direction (tau-b is the same when both sides use the same metric).

    Example::

        decision = scan_stopping(stats, desired_accuracy_correlation=0.65,
                                 training_time_hrs_limit=2.0, rule="confident")
        if decision.stopped: ...
    """
    check_rule_name(rule)
    settings = StoppingSettings(
        desired_accuracy_correlation=desired_accuracy_correlation,
        desired_accuracy=desired_accuracy,
        training_time_hrs_limit=training_time_hrs_limit,
        best_training_time_hrs=best_training_time_hrs if early_stop_if_not_best else None,
        confidence=confidence,
        persistence=persistence,
        total_steps=total_steps,
        metric_mode=to_metric_mode(metric_mode),
    )
    return decide(stats, settings, STOPPING_RULES[rule])
