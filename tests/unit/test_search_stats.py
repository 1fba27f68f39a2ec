"""Proxy-task search statistics: rank correlation, the step grid, stopping, the best task."""

from __future__ import annotations

import json
import math

import pytest

from proxytask.core.errors import StorageError, UsageError
from proxytask.stats.search import (
    MIN_PAIRS,
    MIN_VALID_RATIO,
    StepStats,
    StoppingState,
    best_proxy_task,
    rank_correlation,
    scan_stopping,
    step_stats,
)
from proxytask.trainer.contract import (
    AccuracyAtStep,
    TrainingTime,
    TrialTrainingMetrics,
    compute_training_step_pct,
)


def trial(
    points: list[tuple[int, float]], total: int, secs_per_step: float = 36.0
) -> TrialTrainingMetrics:
    """A trial's metrics as the trainer API writes them: 0-based end steps, pct, time."""
    done = points[-1][0] + 1 if points else 0
    return TrialTrainingMetrics(
        training_time=TrainingTime(done, done * secs_per_step),
        training_accuracy_over_steps=tuple(
            AccuracyAtStep(compute_training_step_pct(s, total), s, a) for s, a in points
        ),
    )


def grid_stats(
    steps: tuple[int, ...],
    corr: tuple[float | None, ...],
    acc: tuple[float | None, ...] | None = None,
    hours: tuple[float | None, ...] | None = None,
) -> StepStats:
    n = len(steps)
    return StepStats(
        training_steps=steps,
        accuracy_correlation_over_step=corr,
        accuracy_correlation_p_value_over_step=(None,) * n,
        num_pairs_over_step=(5,) * n,
        median_accuracy_over_step=acc if acc is not None else (None,) * n,
        median_training_time_hrs_over_step=hours if hours is not None else (None,) * n,
    )


# --------------------------------------------------------------------------------------------
# StoppingState
# --------------------------------------------------------------------------------------------


def test_stopping_state_strings_are_the_reference_ones() -> None:
    assert StoppingState.MET_DESIRED_ACCURACY_CORRELATION.value == "Met desired correlation"
    assert StoppingState.EXCEEDED_TRAIN_TIME_LIMIT.value == "Exceeded training time limit"
    assert StoppingState.INVALID_STOPPING_STATE.value == ""
    assert StoppingState("Proxy task job failed") is StoppingState.JOB_FAILED
    assert json.dumps(StoppingState.EXCESS_TRIAL_FAILURES) == '"Excess trial failures"'
    assert {s for s in StoppingState if s.is_success} == {
        StoppingState.MET_DESIRED_ACCURACY_CORRELATION,
        StoppingState.MET_DESIRED_ACCURACY,
    }


# --------------------------------------------------------------------------------------------
# rank_correlation
# --------------------------------------------------------------------------------------------


def test_rules_defaults() -> None:
    assert (MIN_PAIRS, MIN_VALID_RATIO) == (5, 0.7)


def test_perfect_and_reversed_agreement() -> None:
    full = [0.5, 0.6, 0.7, 0.8, 0.9]
    up = rank_correlation([0.1, 0.2, 0.3, 0.4, 0.5], full)
    down = rank_correlation([0.5, 0.4, 0.3, 0.2, 0.1], full)
    assert up.tau == pytest.approx(1.0)
    assert down.tau == pytest.approx(-1.0)
    assert (up.n, up.n_total, up.reason, up.method) == (5, 5, None, "kendall_tau_b")
    assert up.p_value is not None and 0 < up.p_value < 0.05
    assert up.valid


def test_known_tau_one_discordant_pair() -> None:
    # 10 pairs, one discordant: (9 - 1) / 10
    corr = rank_correlation([1, 3, 2, 4, 5], [1, 2, 3, 4, 5])
    assert corr.tau == pytest.approx(0.8)


def test_ties_use_tau_b() -> None:
    # x has one tied pair: 9 concordant, 0 discordant, tau-b = 9 / sqrt(9 * 10)
    corr = rank_correlation([1, 1, 2, 3, 4], [1, 2, 3, 4, 5])
    assert corr.tau == pytest.approx(9 / math.sqrt(90))


@pytest.mark.parametrize(
    ("proxy", "full", "words"),
    [
        ([0.3] * 5, [0.1, 0.2, 0.3, 0.4, 0.5], "proxy"),
        ([0.1, 0.2, 0.3, 0.4, 0.5], [0.7] * 5, "full"),
    ],
)
def test_constant_column_has_no_tau(proxy: list[float], full: list[float], words: str) -> None:
    corr = rank_correlation(proxy, full)
    assert corr.tau is None and corr.p_value is None
    assert corr.n == 5
    assert corr.reason is not None and words in corr.reason
    assert not corr.valid


def test_invalid_values_drop_pairs() -> None:
    proxy = [0.1, None, 0.3, float("nan"), 0.5, 0.6, 0.7]
    full = [0.1, 0.2, float("inf"), 0.4, 0.5, 0.6, 0.7]
    corr = rank_correlation(proxy, full)
    # valid pairs: indices 0, 4, 5, 6 -> 4 < 5
    assert corr.n == 4 and corr.n_total == 7
    assert corr.tau is None
    assert corr.reason is not None and "5" in corr.reason


def test_five_pairs_rule() -> None:
    corr = rank_correlation([0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4])
    assert corr.tau is None and corr.n == 4


def test_seventy_percent_rule() -> None:
    valid = [0.1, 0.2, 0.3, 0.4, 0.5]
    # 5 of 8 = 62.5 % < 70 %
    low = rank_correlation([*valid, None, None, None], [*valid, 0.6, 0.7, 0.8])
    assert low.tau is None and low.n == 5 and low.n_total == 8
    assert low.reason is not None and "70%" in low.reason
    # 5 of 7 = 71 % >= 70 %
    ok = rank_correlation([*valid, None, None], [*valid, 0.6, 0.7])
    assert ok.tau == pytest.approx(1.0) and ok.n == 5 and ok.n_total == 7


def test_rule_arguments() -> None:
    corr = rank_correlation([1, 2, 3], [1, 2, 3], min_pairs=3)
    assert corr.tau == pytest.approx(1.0)
    with pytest.raises(UsageError):
        rank_correlation([1, 2, 3], [1, 2, 3], min_pairs=1)
    with pytest.raises(UsageError):
        rank_correlation([1, 2, 3], [1, 2, 3], min_valid_ratio=1.5)


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="same length"):
        rank_correlation([0.1, 0.2], [0.1])


def test_empty_input_has_a_reason() -> None:
    corr = rank_correlation([], [])
    assert corr.tau is None and corr.n == 0 and corr.reason


# --------------------------------------------------------------------------------------------
# step_stats
# --------------------------------------------------------------------------------------------

FULL5 = [0.5, 0.6, 0.7, 0.8, 0.9]


def linear(k: float, steps: list[int], total: int) -> list[tuple[int, float]]:
    """A curve through (0 %, 0.0) with slope k per unit of progress: interpolation is exact."""
    return [(s, k * (s + 1) / total) for s in steps]


def test_alignment_of_trials_evaluating_at_different_steps() -> None:
    total = 30
    ks = [0.5, 0.6, 0.7, 0.8, 0.9]
    every_10 = [9, 19, 29]
    every_15 = [14, 29]
    trials = [
        trial(linear(ks[0], every_10, total), total),
        trial(linear(ks[1], every_15, total), total),
        trial(linear(ks[2], every_10, total), total),
        trial(linear(ks[3], every_15, total), total),
        trial(linear(ks[4], every_10, total), total),
    ]
    stats = step_stats(trials, FULL5)
    assert stats.training_steps == (9, 14, 19, 29)
    assert stats.num_pairs_over_step == (5, 5, 5, 5)
    assert stats.accuracy_correlation_over_step == pytest.approx((1.0,) * 4)
    # the median model is k = 0.7 (every 10): at step 14 it is interpolated.
    assert stats.median_accuracy_over_step == pytest.approx(
        tuple(0.7 * (s + 1) / total for s in (9, 14, 19, 29))
    )


def test_alignment_interpolates_between_points_and_from_zero() -> None:
    total = 40
    # the median model (index 2) evaluates only at step 19 and 39
    trials = [trial([(s, 0.1 * (s + 1)) for s in (9, 19, 29, 39)], total) for _ in range(5)]
    trials[2] = trial([(19, 0.4), (39, 0.8)], total)
    full = [0.1, 0.2, 0.3, 0.4, 0.5]
    # make model 2 the median everywhere by scaling the others around it
    trials[0] = trial([(s, 0.001 * (s + 1)) for s in (9, 19, 29, 39)], total)
    trials[1] = trial([(s, 0.002 * (s + 1)) for s in (9, 19, 29, 39)], total)
    trials[3] = trial([(s, 0.5 + 0.01 * s) for s in (9, 19, 29, 39)], total)
    trials[4] = trial([(s, 0.6 + 0.01 * s) for s in (9, 19, 29, 39)], total)
    stats = step_stats(trials, full)
    assert stats.training_steps == (9, 19, 29, 39)
    # step 9 = 25 %: half way from (0 %, 0.0) to (50 %, 0.4); step 29 half way from 0.4 to 0.8
    assert stats.median_accuracy_over_step == pytest.approx((0.2, 0.4, 0.6, 0.8))


def test_no_extrapolation_past_a_trials_last_step() -> None:
    total = 30
    full = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    trials: list[TrialTrainingMetrics | None] = [
        trial(linear(0.3 + 0.1 * i, [9, 19, 29], total), total) for i in range(7)
    ]
    trials[5] = trial(linear(0.8, [9, 19], total), total)  # stopped early
    trials[6] = None  # never reported
    stats = step_stats(trials, full)
    assert stats.training_steps == (9, 19, 29)
    assert stats.num_pairs_over_step == (6, 6, 5)
    # 5 of 7 is >= 70 %: still valid
    assert stats.accuracy_correlation_over_step == pytest.approx((1.0, 1.0, 1.0))
    # one more early stop: 4 pairs, invalid, and no medians there
    trials[4] = trial(linear(0.7, [9, 19], total), total)
    stats = step_stats(trials, full)
    assert stats.num_pairs_over_step == (6, 6, 4)
    assert stats.accuracy_correlation_over_step[2] is None
    assert stats.median_accuracy_over_step[2] is None
    assert stats.median_training_time_hrs_over_step[2] is None


def test_training_time_counts_s_plus_one_steps() -> None:
    total = 20
    # 360 s per step = 0.1 h per step
    trials = [trial(linear(k, [9, 19], total), total, secs_per_step=360.0) for k in FULL5]
    stats = step_stats(trials, FULL5)
    # after 0-based step 9, ten steps are done: 1.0 h (the reference said 0.9 h)
    assert stats.median_training_time_hrs_over_step == pytest.approx((1.0, 2.0))


def test_median_is_an_actual_value_and_its_trial_gives_the_time() -> None:
    total = 10
    accs = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2]
    full = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2]
    secs = [100.0, 200.0, 300.0, 400.0, 500.0, 600.0]
    trials = [trial([(9, a)], total, secs_per_step=s) for a, s in zip(accs, secs, strict=True)]
    stats = step_stats(trials, full)
    # sorted: 0.1 0.2 0.3 0.5 0.7 0.9 -> [6 // 2] = 0.5, model 2, 300 s per step
    assert stats.median_accuracy_over_step == (0.5,)
    assert stats.median_training_time_hrs_over_step == pytest.approx((300.0 * 10 / 3600,))


def test_total_steps_argument_and_derived_total_agree() -> None:
    total = 30
    trials = [trial([(9, 0.1 * k), (29, 0.3 * k)], total) for k in (1, 2, 3, 4, 5)]
    trials[0] = trial([(14, 0.1), (29, 0.2)], total)
    derived = step_stats(trials, FULL5)
    given = step_stats(trials, FULL5, total_steps=total)
    assert derived == given


def test_empty_and_unreported_trials() -> None:
    stats = step_stats([None] * 5, FULL5)
    assert stats.training_steps == () and len(stats) == 0
    assert stats.to_dict()["training_steps"] == []


def test_step_stats_checks_its_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        step_stats([None], FULL5)
    with pytest.raises(UsageError, match="total_steps"):
        step_stats([None] * 5, FULL5, total_steps=0)


def test_to_dict_has_the_reference_names_and_is_json() -> None:
    total = 20
    trials: list[TrialTrainingMetrics | None] = [
        trial(linear(k, [9, 19], total), total) for k in FULL5
    ]
    trials[0] = None
    data = step_stats(trials, FULL5).to_dict()
    assert set(data) == {
        "training_steps",
        "accuracy_correlation_over_step",
        "accuracy_correlation_p_value_over_step",
        "num_pairs_over_step",
        "median_accuracy_over_step",
        "median_training_time_hrs_over_step",
        # proxytask's uncertainty (null when not asked for), labelled with the statistic
        "accuracy_correlation_ci_low",
        "accuracy_correlation_ci_high",
        "accuracy_correlation_prob_above",
        "confidence",
        "desired_accuracy_correlation",
        "statistic",
    }
    assert data["statistic"] == "Kendall tau-b"
    text = json.dumps(data)
    assert "null" in text  # 4 of 5 pairs: no correlation, written as null
    assert data["num_pairs_over_step"] == [4, 4]


# --------------------------------------------------------------------------------------------
# scan_stopping
# --------------------------------------------------------------------------------------------


def test_correlation_crossing_is_interpolated() -> None:
    stats = grid_stats((9, 19, 29), (0.2, 0.5, 0.8), hours=(1.0, 2.0, 3.0))
    decision = scan_stopping(stats, desired_accuracy_correlation=0.65)
    assert decision.state is StoppingState.MET_DESIRED_ACCURACY_CORRELATION
    assert decision.stopped
    assert decision.step_index == 2
    # half way between index 1 and 2
    assert decision.final_training_steps == 24
    assert decision.final_training_time_in_hours == pytest.approx(2.5)


def test_interpolation_skips_an_invalid_step_just_before_the_crossing() -> None:
    stats = grid_stats((9, 19, 29, 39), (0.2, 0.5, None, 0.8), hours=(1.0, 2.0, 3.0, 4.0))
    decision = scan_stopping(stats, desired_accuracy_correlation=0.65)
    assert decision.step_index == 3
    # from index 1 (two steps back), half way: step 19 + 0.5 * 20, 2 h + 0.5 * 2 h
    assert decision.final_training_steps == 29
    assert decision.final_training_time_in_hours == pytest.approx(3.0)


def test_interpolation_skips_a_step_without_a_time() -> None:
    stats = grid_stats((9, 19, 29), (0.5, 0.6, 0.8), hours=(1.0, None, 3.0))
    decision = scan_stopping(stats, desired_accuracy_correlation=0.65)
    # x0 = 0: (0.65 - 0.5) / 0.3 = 0.5 of the way from step 9 to 29
    assert decision.final_training_steps == 19
    assert decision.final_training_time_in_hours == pytest.approx(2.0)


def test_crossing_at_the_first_valid_step_is_not_interpolated() -> None:
    stats = grid_stats((9, 19, 29), (None, 0.9, 0.95), hours=(1.0, 2.0, 3.0))
    decision = scan_stopping(stats, desired_accuracy_correlation=0.65)
    assert decision.state is StoppingState.MET_DESIRED_ACCURACY_CORRELATION
    assert decision.step_index == 1
    assert decision.final_training_steps == 19
    assert decision.final_training_time_in_hours == pytest.approx(2.0)


def test_exact_hit_uses_the_crossing_step() -> None:
    stats = grid_stats((9, 19), (0.4, 0.65), hours=(1.0, 2.0))
    decision = scan_stopping(stats, desired_accuracy_correlation=0.65)
    assert decision.final_training_steps == 19
    assert decision.final_training_time_in_hours == pytest.approx(2.0)


def test_median_accuracy_crossing_is_interpolated() -> None:
    stats = grid_stats((9, 19, 29), (0.1, 0.2, 0.3), acc=(0.3, 0.5, 0.7), hours=(1.0, 2.0, 3.0))
    decision = scan_stopping(stats, desired_accuracy_correlation=0.65, desired_accuracy=0.6)
    assert decision.state is StoppingState.MET_DESIRED_ACCURACY
    assert decision.step_index == 2
    assert decision.final_training_steps == 24
    assert decision.final_training_time_in_hours == pytest.approx(2.5)


def test_time_limit_stop_records_the_crossing_step() -> None:
    stats = grid_stats((9, 19, 29), (0.1, 0.2, 0.3), hours=(1.0, 2.0, 3.0))
    decision = scan_stopping(stats, desired_accuracy_correlation=0.65, training_time_hrs_limit=2.0)
    assert decision.state is StoppingState.EXCEEDED_TRAIN_TIME_LIMIT
    assert not decision.state.is_success
    assert decision.step_index == 1
    assert decision.final_training_steps == 19
    assert decision.final_training_time_in_hours == pytest.approx(2.0)


def test_best_time_stop_only_with_early_stop() -> None:
    stats = grid_stats((9, 19, 29), (0.1, 0.2, 0.3), hours=(1.0, 2.0, 3.0))
    off = scan_stopping(stats, desired_accuracy_correlation=0.65, best_training_time_hrs=1.5)
    assert off.state is StoppingState.INVALID_STOPPING_STATE
    on = scan_stopping(
        stats,
        desired_accuracy_correlation=0.65,
        best_training_time_hrs=1.5,
        early_stop_if_not_best=True,
    )
    assert on.state is StoppingState.EXCEEDED_BEST_TRAIN_TIME
    assert (on.step_index, on.final_training_steps) == (1, 19)
    assert on.final_training_time_in_hours == pytest.approx(2.0)


def test_rule_order_at_one_step() -> None:
    stats = grid_stats((9, 19), (0.1, 0.9), acc=(0.1, 0.9), hours=(1.0, 5.0))
    everything = {
        "desired_accuracy_correlation": 0.65,
        "desired_accuracy": 0.5,
        "training_time_hrs_limit": 4.0,
        "best_training_time_hrs": 3.0,
        "early_stop_if_not_best": True,
    }
    assert scan_stopping(stats, **everything).state is (  # type: ignore[arg-type]
        StoppingState.MET_DESIRED_ACCURACY_CORRELATION
    )
    everything["desired_accuracy_correlation"] = 0.95
    assert scan_stopping(stats, **everything).state is (  # type: ignore[arg-type]
        StoppingState.MET_DESIRED_ACCURACY
    )
    everything["desired_accuracy"] = 0.95
    assert scan_stopping(stats, **everything).state is (  # type: ignore[arg-type]
        StoppingState.EXCEEDED_TRAIN_TIME_LIMIT
    )
    everything["training_time_hrs_limit"] = 6.0
    assert scan_stopping(stats, **everything).state is (  # type: ignore[arg-type]
        StoppingState.EXCEEDED_BEST_TRAIN_TIME
    )


def test_first_step_wins_over_a_stronger_rule_later() -> None:
    stats = grid_stats((9, 19), (0.1, 0.9), hours=(2.0, 3.0))
    decision = scan_stopping(stats, desired_accuracy_correlation=0.65, training_time_hrs_limit=2.0)
    assert decision.state is StoppingState.EXCEEDED_TRAIN_TIME_LIMIT
    assert decision.step_index == 0


def test_none_values_skip_their_rules() -> None:
    stats = grid_stats((9, 19), (None, None), acc=(None, None), hours=(None, None))
    decision = scan_stopping(
        stats,
        desired_accuracy_correlation=0.65,
        desired_accuracy=0.1,
        training_time_hrs_limit=0.0,
    )
    assert decision.state is StoppingState.INVALID_STOPPING_STATE
    assert not decision.stopped
    assert decision.step_index is None
    assert decision.final_training_steps is None
    assert decision.final_training_time_in_hours is None


def test_no_desired_correlation_skips_rule_one() -> None:
    stats = grid_stats((9,), (0.99,), hours=(1.0,))
    assert not scan_stopping(stats, desired_accuracy_correlation=None).stopped


def test_end_to_end_from_curves_to_a_stop() -> None:
    total = 100
    full = [0.5, 0.6, 0.7, 0.8, 0.9]
    # early on the proxy ranks are scrambled, later they agree with full training
    early = [0.4, 0.2, 0.5, 0.1, 0.3]
    late = [0.55, 0.65, 0.75, 0.85, 0.95]
    trials = [
        trial([(9, e), (19, e + 0.01), (29, lt)], total, secs_per_step=36.0)
        for e, lt in zip(early, late, strict=True)
    ]
    stats = step_stats(trials, full)
    assert stats.training_steps == (9, 19, 29)
    assert stats.accuracy_correlation_over_step[2] == pytest.approx(1.0)
    tau_19 = stats.accuracy_correlation_over_step[1]
    assert tau_19 is not None and tau_19 < 0.65
    decision = scan_stopping(stats, desired_accuracy_correlation=0.65)
    assert decision.state is StoppingState.MET_DESIRED_ACCURACY_CORRELATION
    assert decision.step_index == 2
    assert decision.final_training_steps is not None
    assert 19 <= decision.final_training_steps <= 29
    hours = decision.final_training_time_in_hours
    assert hours is not None and 0.2 <= hours <= 0.3


# --------------------------------------------------------------------------------------------
# best_proxy_task
# --------------------------------------------------------------------------------------------


def test_best_proxy_task_is_the_fastest_success() -> None:
    results = {
        "b": (StoppingState.MET_DESIRED_ACCURACY_CORRELATION, 2.0),
        "a": (StoppingState.EXCEEDED_TRAIN_TIME_LIMIT, 0.5),
        "c": (StoppingState.MET_DESIRED_ACCURACY, 1.0),
        "d": (StoppingState.FAILED_DESIRED_LATENCY_CORRELATION, 0.1),
    }
    assert best_proxy_task(results) == "c"


def test_best_proxy_task_ties_and_none() -> None:
    tie = {
        "z": (StoppingState.MET_DESIRED_ACCURACY_CORRELATION, 1.0),
        "m": (StoppingState.MET_DESIRED_ACCURACY_CORRELATION, 1.0),
        "n": (StoppingState.MET_DESIRED_ACCURACY_CORRELATION, None),
    }
    assert best_proxy_task(tie) == "m"
    assert best_proxy_task({"x": (StoppingState.JOB_FAILED, 1.0)}) is None
    assert best_proxy_task({}) is None


def test_from_dict_round_trips_and_ignores_other_keys() -> None:
    stats = grid_stats((9, 19), (None, 0.8), acc=(None, 0.5), hours=(None, 1.0))
    data = json.loads(json.dumps(stats.to_dict()))
    assert StepStats.from_dict(data) == stats
    data["stopping_state"] = "Met desired correlation"
    del data["num_pairs_over_step"]
    old = StepStats.from_dict(data)
    assert old.num_pairs_over_step == (0, 0)
    assert old.accuracy_correlation_over_step == (None, 0.8)


def test_from_dict_rejects_malformed_data() -> None:
    with pytest.raises(StorageError, match="proxy_task_stats"):
        StepStats.from_dict({"training_steps": [1]})
    data = grid_stats((9, 19), (0.1, 0.2)).to_dict()
    data["median_accuracy_over_step"] = [0.1]
    with pytest.raises(StorageError, match="2 entries"):
        StepStats.from_dict(data)


# --------------------------------------------------------------------------------------------
# The stopping rules behind one interface (proxytask.stats.stopping)
# --------------------------------------------------------------------------------------------


def test_each_rule_answers_alone_and_a_policy_takes_the_earliest_then_the_first_rule() -> None:
    from proxytask.stats import stopping

    stats = grid_stats((9, 19, 29), (0.2, 0.5, 0.8), hours=(1.0, 2.0, 3.0))
    settings = stopping.StoppingSettings(0.65, training_time_hrs_limit=3.0)
    point = stopping.PointCorrelationRule().decide(stats, settings)
    limit = stopping.TIME_LIMIT.decide(stats, settings)
    assert point.step_index == limit.step_index == 2
    assert stopping.DESIRED_ACCURACY.decide(stats, settings) is stopping.NOT_STOPPED
    both = stopping.decide(stats, settings, (stopping.PointCorrelationRule(), stopping.TIME_LIMIT))
    assert both.state is StoppingState.MET_DESIRED_ACCURACY_CORRELATION  # same step: first rule
    other = stopping.decide(stats, settings, (stopping.TIME_LIMIT, stopping.PointCorrelationRule()))
    assert other.state is StoppingState.EXCEEDED_TRAIN_TIME_LIMIT
    earlier = stopping.StoppingSettings(0.65, training_time_hrs_limit=2.0)
    assert stopping.decide(stats, earlier, stopping.STOPPING_RULES["point"]).step_index == 1
    assert set(stopping.STOPPING_RULES) == {"point", "confident"}
    with pytest.raises(UsageError, match="stopping rule must be one of point, confident"):
        stopping.check_rule_name("mean")
