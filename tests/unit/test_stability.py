"""Winner stability under resampling of the reference models (proxytask.stats.stability)."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from proxytask.core.errors import UsageError
from proxytask.stats.search import best_proxy_task, scan_stopping, step_stats
from proxytask.stats.stability import (
    NO_WINNER,
    _full_scores,
    _resampled_stats,
    _table,
    winner_frequencies,
)
from proxytask.trainer.contract import (
    AccuracyAtStep,
    TrainingTime,
    TrialTrainingMetrics,
    compute_training_step_pct,
)

N = 10
STEPS = 10
FULL = [0.5 + 0.04 * i for i in range(N)]
SCAN = {"desired_accuracy_correlation": 0.65}


def trial(
    accuracies: Sequence[float], secs_per_step: float = 36.0, every: int = 10, total: int = 100
) -> TrialTrainingMetrics:
    """A trial evaluated every ``every`` steps (0-based end steps), as the trainer writes it."""
    points = [(every * (k + 1) - 1, a) for k, a in enumerate(accuracies)]
    done = points[-1][0] + 1 if points else 0
    return TrialTrainingMetrics(
        training_time=TrainingTime(done, done * secs_per_step),
        training_accuracy_over_steps=tuple(
            AccuracyAtStep(compute_training_step_pct(s, total), s, a) for s, a in points
        ),
    )


def perfect(secs_per_step: float) -> list[TrialTrainingMetrics | None]:
    """Ranks the models exactly like full training at every step."""
    return [
        trial([0.2 + 0.5 * f * (s + 1) / STEPS for s in range(STEPS)], secs_per_step) for f in FULL
    ]


def shuffled(seed: int, secs_per_step: float = 36.0) -> list[TrialTrainingMetrics | None]:
    """Ranks the models at random at every step: never a useful proxy."""
    rng = random.Random(seed)
    orders = [rng.sample(range(N), N) for _ in range(STEPS)]
    return [
        trial([0.3 + 0.01 * orders[s][i] for s in range(STEPS)], secs_per_step) for i in range(N)
    ]


def noisy(noise: Sequence[float]) -> list[TrialTrainingMetrics | None]:
    """Full accuracy plus noise that shrinks to zero by the last step."""
    return [trial([FULL[i] + noise[i] * (1 - s / STEPS) for s in range(STEPS)]) for i in range(N)]


def test_a_clear_winner_wins_almost_every_draw() -> None:
    # The random proxies cost twice as much per step, so a lucky resample cannot beat exact.
    curves = {"random_1": shuffled(1, 72.0), "exact": perfect(36.0), "random_2": shuffled(2, 72.0)}
    result = winner_frequencies(curves, FULL, SCAN, draws=100, seed=4)
    assert result.observed_winner == "exact"
    assert result.frequencies["exact"] >= 0.95
    assert result.observed_winner_frequency == result.frequencies["exact"]
    assert list(result.frequencies) == ["random_1", "exact", "random_2", NO_WINNER]
    assert sum(result.frequencies.values()) == pytest.approx(1.0)
    assert result.draws == 100 and result.seed == 4 and result.n_models == N


def test_two_equally_good_proxies_split_the_draws() -> None:
    # b is a mirror image of a (models and scores reversed), so over resamples each is as
    # likely as the other to cross the threshold first.
    # The noise is large enough that both rarely stop at the same time (a tie goes to "a").
    rng = random.Random(3)
    noise = [rng.gauss(0.0, 0.3) for _ in range(N)]
    mirrored = [-noise[N - 1 - i] for i in range(N)]
    result = winner_frequencies({"a": noisy(noise), "b": noisy(mirrored)}, FULL, SCAN, draws=400)
    assert 0.35 <= result.frequencies["a"] <= 0.65
    assert 0.35 <= result.frequencies["b"] <= 0.65
    assert result.frequencies[NO_WINNER] == 0.0
    assert result.tied_draws < 40


def test_equal_final_times_go_to_the_first_name_and_are_counted() -> None:
    curves = {"b": perfect(36.0), "a": perfect(36.0)}
    result = winner_frequencies(curves, FULL, SCAN, draws=30)
    assert result.frequencies == {"b": 0.0, "a": 1.0, NO_WINNER: 0.0}
    assert result.observed_winner == "a" and result.tied_draws == 30


def test_the_same_seed_gives_the_same_result_and_another_seed_another() -> None:
    rng = random.Random(3)
    noise = [rng.gauss(0.0, 0.1) for _ in range(N)]
    curves = {"a": noisy(noise), "b": noisy([-noise[N - 1 - i] for i in range(N)])}
    first = winner_frequencies(curves, FULL, SCAN, draws=150, seed=7)
    again = winner_frequencies(curves, FULL, SCAN, draws=150, seed=7)
    other = winner_frequencies(curves, FULL, SCAN, draws=150, seed=8)
    assert first == again
    assert first.to_dict() == again.to_dict()
    assert other.frequencies != first.frequencies


def test_the_stopping_rule_decides_who_wins() -> None:
    # "fast" ranks the models well only at its first step (tau 31/45 = 0.69, one step above
    # 0.65) and at random afterwards; "slow" ranks them exactly but costs ten times more per
    # step. The point rule stops fast at once; the confident rule is not convinced by one
    # noisy step of 10 models and waits for slow.
    ranks = [7, 0, 1, 2, 3, 4, 5, 6, 8, 9]
    rng = random.Random(3)
    later = [rng.sample(range(N), N) for _ in range(STEPS - 1)]
    fast: list[TrialTrainingMetrics | None] = [
        trial([0.3 + 0.01 * ranks[i]] + [0.3 + 0.01 * later[s][i] for s in range(STEPS - 1)], 3.6)
        for i in range(N)
    ]
    curves = {"fast": fast, "slow": perfect(36.0)}
    point = winner_frequencies(curves, FULL, {**SCAN, "rule": "point"})
    confident = winner_frequencies(curves, FULL, {**SCAN, "rule": "confident", "persistence": 2})
    assert point.rule == "point" and confident.rule == "confident"
    assert point.observed_winner == "fast"
    assert 0.5 < point.frequencies["fast"] < 0.95  # a lucky step does not survive resampling
    assert confident.observed_winner == "slow"
    assert confident.frequencies["slow"] == 1.0


def test_draws_without_any_success_count_as_no_winner() -> None:
    curves = {"x": shuffled(1), "y": perfect(36.0)}
    # No correlation rule, and an accuracy no trial reaches: no config meets its goal.
    scan = {"desired_accuracy_correlation": None, "desired_accuracy": 0.99}
    result = winner_frequencies(curves, FULL, scan, draws=50)
    assert result.observed_winner is None
    assert result.frequencies == {"x": 0.0, "y": 0.0, NO_WINNER: 1.0}
    assert result.observed_winner_frequency == 1.0


def test_result_to_dict_is_plain_json() -> None:
    result = winner_frequencies({"exact": perfect(36.0)}, FULL, SCAN, draws=20, seed=1)
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload == {
        "draws": 20,
        "seed": 1,
        "n_models": N,
        "rule": "point",
        "frequencies": {"exact": 1.0, "none": 0.0},
        "observed_winner": "exact",
        "observed_winner_frequency": 1.0,
        "tied_draws": 0,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.draws = 3  # type: ignore[misc]


def _random_config(rng: random.Random, n: int) -> list[TrialTrainingMetrics | None]:
    """Trials with gaps, ties, unequal evaluation grids, budgets and speeds."""
    out: list[TrialTrainingMetrics | None] = []
    for _ in range(n):
        if rng.random() < 0.1:
            out.append(None)
            continue
        every = rng.choice([10, 10, 15, 20])
        count = rng.choice([4, 6, 10])
        digits = rng.choice([1, 4])  # one digit: many ties
        accuracies = [round(rng.random(), digits) for _ in range(count)]
        total = rng.choice([100, 150, 200])
        out.append(trial(accuracies, rng.choice([0.0, 36.0, 50.0]), every, total))
    return out


def test_resampled_statistics_equal_step_stats_on_the_resampled_lists() -> None:
    rng = random.Random(11)
    compared = 0
    for _ in range(60):
        n = rng.randint(4, 12)
        trials = _random_config(rng, n)
        full: list[float | None] = [
            None if rng.random() < 0.1 else round(rng.random(), rng.choice([1, 3]))
            for _ in range(n)
        ]
        table, scores = _table(trials), _full_scores(full)
        for _ in range(10):
            index = np.array([rng.randrange(n) for _ in range(n)], dtype=np.int64)
            fast = _resampled_stats(table, scores, index, 5, 0.7)
            reference = step_stats([trials[i] for i in index], [full[i] for i in index])
            no_p = (None,) * len(reference)
            assert fast == dataclasses.replace(
                reference, accuracy_correlation_p_value_over_step=no_p
            )
            compared += sum(t is not None for t in fast.accuracy_correlation_over_step)
    assert compared > 500  # the comparison covered many computed taus, not only None


@pytest.mark.parametrize("rule", ["point", "confident"])
def test_frequencies_equal_a_direct_recomputation(rule: str) -> None:
    rng = random.Random(5)
    curves = {name: noisy([rng.gauss(0.0, 0.12) for _ in range(N)]) for name in "abc"}
    scan: dict[str, Any] = {**SCAN, "rule": rule, "total_steps": 100}
    draws, seed = 40, 3
    result = winner_frequencies(curves, FULL, scan, draws=draws, seed=seed)
    # The documented draws, each config scanned on its own with the real functions.
    picks = np.random.default_rng(seed).integers(0, N, size=(draws, N))
    wins = dict.fromkeys([*curves, NO_WINNER], 0)
    for index in picks:
        decisions = {}
        for name, trials in curves.items():
            stats = step_stats([trials[i] for i in index], [FULL[i] for i in index])
            decision = scan_stopping(stats, **scan)
            decisions[name] = (decision.state, decision.final_training_time_in_hours)
        wins[best_proxy_task(decisions) or NO_WINNER] += 1
    assert dict(result.frequencies) == {k: v / draws for k, v in wins.items()}


def test_models_without_a_full_accuracy_never_give_a_winner() -> None:
    result = winner_frequencies({"a": perfect(1.0)}, [None] * N, SCAN, draws=5)
    assert result.frequencies == {"a": 0.0, NO_WINNER: 1.0}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"draws": 0}, "draws must be an integer >= 1"),
        ({"draws": True}, "draws must be an integer"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"min_pairs": 1}, "min_pairs"),
        ({"full_accuracies": FULL[:-1]}, "one trial per reference model"),
        ({"full_accuracies": []}, "full_accuracies is empty"),
        ({"full_accuracies": ["0.5"] * N}, r"full_accuracies\[0\] must be a number"),
        ({"curves": {}}, "non-empty mapping"),
        ({"curves": {"none": perfect(1.0)}}, "other than 'none'"),
        ({"curves": {"a": ["trial"] * N}}, "TrialTrainingMetrics or None"),
        ({"scan": {}}, "must set desired_accuracy_correlation"),
        ({"scan": {**SCAN, "early_stop_if_not_best": True}}, "judged on its own"),
        ({"scan": {**SCAN, "best_training_time_hrs": 1.0}}, "judged on its own"),
        ({"scan": {**SCAN, "rules": "point"}}, "unknown scan_stopping arguments rules"),
        ({"scan": {**SCAN, "rule": "lucky"}}, "stopping rule must be one of"),
        ({"scan": 0.65}, "mapping of scan_stopping keyword arguments"),
    ],
)
def test_bad_input_is_rejected_with_a_fix(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"curves": {"a": perfect(1.0)}, "full_accuracies": FULL, "scan": SCAN}
    options = {k: kwargs.pop(k) for k in list(kwargs) if k not in args}
    args.update(kwargs)
    with pytest.raises(UsageError, match=match):
        winner_frequencies(args["curves"], args["full_accuracies"], args["scan"], **options)
