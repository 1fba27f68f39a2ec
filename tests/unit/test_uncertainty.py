"""Uncertainty of Kendall tau: the analytic interval, the probability above a threshold, the
bootstrap, and the confident stopping rule built on them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats as scipy_stats

from proxytask.core.errors import UsageError
from proxytask.stats.search import StepStats, StoppingState, scan_stopping, step_stats
from proxytask.stats.uncertainty import (
    KENDALL_TAU_B,
    adjust_probability,
    bootstrap_tau_interval,
    kendall_tau_b,
    look_confidence,
    look_shares,
    probability_above,
    tau_interval,
    tau_standard_error,
)
from proxytask.trainer.contract import AccuracyAtStep, TrainingTime, TrialTrainingMetrics

# ---- the analytic interval ------------------------------------------------------------------


def test_standard_error_is_fieller_hartley_pearson() -> None:
    assert tau_standard_error(10) == pytest.approx(math.sqrt(0.437 / 6))
    assert tau_standard_error(24) == pytest.approx(math.sqrt(0.437 / 20))


def test_the_issue_numbers_follow_from_the_approximation() -> None:
    # a true tau of 0.5 reaches 0.65 about 20 % of the time at n = 10; 0.8 misses it ~12 %
    # (the normal approximation on the arctanh scale is symmetric in sample and true tau)
    assert probability_above(0.5, 10, 0.65) == pytest.approx(0.20, abs=0.01)
    assert 1 - probability_above(0.8, 10, 0.65) == pytest.approx(0.115, abs=0.01)


def test_the_interval_is_symmetric_on_the_arctanh_scale() -> None:
    iv = tau_interval(0.6, 10, 0.95)
    se = math.sqrt(0.437 / 6)
    assert math.atanh(iv.low) == pytest.approx(math.atanh(0.6) - 1.959964 * se, abs=1e-6)
    assert math.atanh(iv.high) == pytest.approx(math.atanh(0.6) + 1.959964 * se, abs=1e-6)
    assert iv.statistic == KENDALL_TAU_B and iv.method == "fieller_hartley_pearson"
    assert tau_interval(0.6, 10, 0.5).high < iv.high  # narrower at a lower confidence
    assert tau_interval(0.6, 40, 0.95).high < iv.high  # and with more models


def test_perfect_agreement_gives_a_finite_interval_that_holds_the_sample() -> None:
    iv = tau_interval(1.0, 10, 0.95)
    assert iv.high == 1.0 and 0.85 < iv.low < 1.0
    assert tau_interval(-1.0, 10, 0.95).low == -1.0
    # five models in perfect order are not certainty
    small = tau_interval(1.0, 5, 0.95)
    assert small.low < 0.6
    assert probability_above(1.0, 5, 0.65) < 0.95
    assert probability_above(1.0, 20, 0.65) > 0.999


def test_independence_gives_an_interval_around_zero() -> None:
    iv = tau_interval(0.0, 10, 0.9)
    assert iv.low == pytest.approx(-iv.high)
    assert probability_above(0.0, 10, 0.0) == pytest.approx(0.5)
    assert probability_above(0.0, 10, 0.65) < 0.01


def test_the_interval_covers_the_true_tau_in_simulation() -> None:
    # bivariate normal with rho = sin(pi tau / 2): the 90 % interval covers tau ~90 %
    rng = np.random.default_rng(0)
    true_tau, n, draws = 0.6, 10, 2000
    rho = math.sin(math.pi * true_tau / 2)
    cov = [[1, rho], [rho, 1]]
    covered = 0
    for _ in range(draws):
        x, y = rng.multivariate_normal([0, 0], cov, size=n).T
        tau = kendall_tau_b(x.tolist(), y.tolist())
        assert tau is not None
        iv = tau_interval(tau, n, 0.9)
        covered += iv.low <= true_tau <= iv.high
    assert 0.86 <= covered / draws <= 0.95


def test_ties_use_tau_b() -> None:
    x = [1, 1, 2, 3, 4, 5, 6, 7]
    y = [1, 2, 2, 3, 5, 4, 6, 7]
    tau = kendall_tau_b(x, y)
    assert tau == pytest.approx(scipy_stats.kendalltau(x, y, variant="b")[0])
    assert tau is not None and tau < 1.0
    iv = tau_interval(tau, len(x), 0.9)
    assert iv.low < tau < iv.high
    assert kendall_tau_b([1, 1, 1, 1, 1], [1, 2, 3, 4, 5]) is None  # all tied: undefined


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: tau_interval(0.5, 4), "integer >= 5"),
        (lambda: tau_interval(1.5, 10), "must lie in [-1, 1]"),
        (lambda: tau_interval(float("nan"), 10), "finite number"),
        (lambda: tau_interval(0.5, 10, 1.0), "strictly between 0 and 1"),
        (lambda: probability_above(0.5, 10, 2.0), "threshold must lie in [-1, 1]"),
        (lambda: bootstrap_tau_interval([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], draws=10), ">= 100"),
    ],
)
def test_bad_input_is_explained(call: object, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call()  # type: ignore[operator]


# ---- the bootstrap -------------------------------------------------------------------------


def test_the_bootstrap_is_deterministic_and_brackets_the_sample() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=12)
    y = x + rng.normal(scale=0.8, size=12)
    a = bootstrap_tau_interval(x.tolist(), y.tolist(), 0.9, draws=500, seed=3)
    b = bootstrap_tau_interval(x.tolist(), y.tolist(), 0.9, draws=500, seed=3)
    assert a == b and a.method == "bootstrap_percentile"
    assert a.low < a.tau < a.high


def test_the_bootstrap_of_a_perfect_sample_collapses_which_is_why_it_does_not_decide() -> None:
    iv = bootstrap_tau_interval(list(range(10)), list(range(10)), 0.95, draws=200)
    assert iv.low == pytest.approx(1.0) and iv.high == pytest.approx(1.0)
    assert tau_interval(1.0, 10, 0.95).low < 1.0


# ---- per-step uncertainty and the confident rule --------------------------------------------


def _stats(taus: list[float | None], n: int = 10, step: int = 100) -> StepStats:
    k = len(taus)
    return StepStats(
        training_steps=tuple(step * (i + 1) - 1 for i in range(k)),
        accuracy_correlation_over_step=tuple(taus),
        accuracy_correlation_p_value_over_step=(None,) * k,
        num_pairs_over_step=(n,) * k,
        median_accuracy_over_step=(None,) * k,
        median_training_time_hrs_over_step=tuple(0.01 * (i + 1) for i in range(k)),
    )


def test_step_stats_carry_the_interval_and_probability() -> None:
    full = [0.1 * i for i in range(10)]
    trials = []
    for i in range(10):
        points = (AccuracyAtStep(50.0, 49, full[i]), AccuracyAtStep(100.0, 99, full[i]))
        trials.append(
            TrialTrainingMetrics(TrainingTime(100, 100.0), training_accuracy_over_steps=points)
        )
    stats = step_stats(trials, full, confidence=0.9, desired_accuracy_correlation=0.65)
    assert stats.accuracy_correlation_over_step == pytest.approx((1.0, 1.0))
    low = stats.accuracy_correlation_ci_low[0]
    assert low is not None and 0.8 < low < 1.0
    # two looks over the 100-step budget: each spends half of the error budget
    assert stats.accuracy_correlation_prob_above[0] == pytest.approx(
        adjust_probability(probability_above(1.0, 10, 0.65), 0.5), abs=1e-12
    )
    assert low == pytest.approx(tau_interval(1.0, 10, look_confidence(0.9, 0.5)).low)
    again = StepStats.from_dict(stats.to_dict())
    assert again == stats
    plain = step_stats(trials, full)
    assert plain.accuracy_correlation_ci_low == (None, None)


def test_the_point_rule_stops_at_one_lucky_step_and_the_confident_rule_does_not() -> None:
    stats = _stats([0.3, 0.7, 0.5, 0.55])
    point = scan_stopping(stats, desired_accuracy_correlation=0.65)
    assert point.state is StoppingState.MET_DESIRED_ACCURACY_CORRELATION
    confident = scan_stopping(
        stats, desired_accuracy_correlation=0.65, rule="confident", confidence=0.9
    )
    assert confident.state is StoppingState.INVALID_STOPPING_STATE


def test_the_confident_rule_needs_persistent_evidence() -> None:
    # six evaluations over a 600-step budget: each spends 1/6 of the error budget 0.1, so at
    # n = 10 the probability must reach 1 − 0.1 / 6 ≈ 0.983: a sample tau of about 0.88
    assert probability_above(0.9, 10, 0.65) >= 1 - 0.1 / 6 > probability_above(0.85, 10, 0.65)
    stats = _stats([0.5, 0.85, 0.7, 0.85, 0.9, 0.95])
    settings: dict[str, Any] = {
        "desired_accuracy_correlation": 0.65,
        "rule": "confident",
        "confidence": 0.9,
        "total_steps": 600,
    }
    one = scan_stopping(stats, **settings, persistence=1)
    assert one.state is StoppingState.MET_DESIRED_ACCURACY_CORRELATION
    assert one.step_index == 4 and one.final_training_steps == 499
    two = scan_stopping(stats, **settings)
    assert two.step_index == 5 and two.final_training_steps == 599
    assert two.final_training_time_in_hours == pytest.approx(0.06)
    # more models make the same taus convincing sooner
    many = scan_stopping(_stats([0.5, 0.75, 0.75], n=60), **{**settings, "total_steps": 300})
    assert many.step_index == 2
    fewer = scan_stopping(_stats([0.5, 0.75, 0.75], n=30), **{**settings, "total_steps": 300})
    assert not fewer.stopped


def test_looking_more_often_asks_for_more_evidence_at_each_look() -> None:
    # one look at the end of the budget spends the whole error budget: 0.85 passes at 0.9
    assert probability_above(0.85, 10, 0.65) >= 0.9
    once = scan_stopping(
        _stats([0.85, 0.85], step=300),
        desired_accuracy_correlation=0.65,
        rule="confident",
        confidence=0.9,
        persistence=1,
        total_steps=600,
    )
    assert once.step_index == 0  # the first look spends half of it: 1 − 0.1 / 2 = 0.95 ≥ P
    # the same taus at every one of 60 evaluations never pass (each spends 1/60)
    often = scan_stopping(
        _stats([0.85] * 60, step=10),
        desired_accuracy_correlation=0.65,
        rule="confident",
        confidence=0.9,
        persistence=1,
        total_steps=600,
    )
    assert not often.stopped
    # without a known budget the k-th look spends 1 / (k (k + 1)): the first half of it
    unknown = scan_stopping(
        _stats([0.85, 0.85], step=300),
        desired_accuracy_correlation=0.65,
        rule="confident",
        confidence=0.9,
        persistence=1,
    )
    assert unknown.step_index == 0


def test_the_confident_rule_abandons_a_proxy_that_cannot_reach_the_threshold() -> None:
    flat = _stats([0.05, 0.1, 0.1, 0.1, 0.1, 0.1])
    decision = scan_stopping(
        flat, desired_accuracy_correlation=0.65, rule="confident", confidence=0.9, total_steps=1000
    )
    assert decision.state is StoppingState.UNLIKELY_TO_MEET_CORRELATION
    # step 1's rise (0.05 → 0.1) projects to 0.5 at the limit: not hopeless yet; steps 2 and
    # 3 are flat, so the second of them abandons it
    assert decision.step_index == 3
    # a rising curve is given the benefit of its rise
    rising = _stats([0.0, 0.2, 0.4])
    assert not scan_stopping(
        rising,
        desired_accuracy_correlation=0.65,
        rule="confident",
        confidence=0.9,
        total_steps=1000,
    ).stopped
    # without a known limit there is no futility stop
    assert not scan_stopping(
        flat, desired_accuracy_correlation=0.65, rule="confident", confidence=0.9
    ).stopped
    # the point rule never abandons
    assert not scan_stopping(flat, desired_accuracy_correlation=0.65, total_steps=1000).stopped


def test_invalid_steps_carry_no_evidence() -> None:
    stats = _stats([0.9, None, 0.9])
    decision = scan_stopping(
        stats, desired_accuracy_correlation=0.65, rule="confident", confidence=0.9
    )
    assert decision.step_index == 2
    few = _stats([1.0, 1.0, 1.0], n=4)  # under 5 pairs: no interval, no decision
    assert not scan_stopping(
        few, desired_accuracy_correlation=0.65, rule="confident", confidence=0.9
    ).stopped


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rule": "lucky"}, "one of point, confident"),
        ({"rule": "confident", "confidence": 0.3}, r"lie in \[0.5, 1\)"),
        ({"rule": "confident", "persistence": 0}, "integer >= 1"),
    ],
)
def test_bad_rule_settings_are_explained(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        scan_stopping(_stats([0.5]), desired_accuracy_correlation=0.65, **kwargs)  # type: ignore[arg-type]


def test_look_shares_spread_the_error_budget_over_the_step_budget() -> None:
    assert look_shares([9, 19, 39], 40) == (0.25, 0.25, 0.5)
    assert sum(look_shares(list(range(200)), 200)) == pytest.approx(1.0)
    # a budget smaller than the steps reached is the last step + 1
    assert look_shares([9, 19], 10) == (0.5, 0.5)
    # without a budget: 1 / (k (k + 1)), summing to less than 1 however many looks
    assert look_shares([0, 5, 7], None) == pytest.approx((1 / 2, 1 / 6, 1 / 12))
    assert sum(look_shares(list(range(1000)), None)) < 1.0
    assert look_shares([], 10) == ()
    with pytest.raises(UsageError, match="must increase"):
        look_shares([5, 5], 10)


def test_a_look_is_judged_at_its_share_of_the_error_budget() -> None:
    assert look_confidence(0.85, 1.0) == pytest.approx(0.85)
    assert look_confidence(0.85, 0.05) == pytest.approx(0.9925)
    # the adjusted probability reaches the confidence exactly at the look's level
    assert adjust_probability(0.9925, 0.05) == pytest.approx(0.85)
    assert adjust_probability(0.5, 0.05) == 0.0
    assert adjust_probability(0.9, 1.0) == pytest.approx(0.9)
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(UsageError, match="share of the error budget"):
            look_confidence(0.85, bad)
        with pytest.raises(UsageError, match="share of the error budget"):
            adjust_probability(0.9, bad)
    with pytest.raises(UsageError, match="confidence"):
        look_confidence(1.0, 0.5)
