"""The full-vs-full tau ceiling and the confident rule's reference-set size."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from proxytask.core.errors import UsageError
from proxytask.stats.reference_size import (
    DEFAULT_LOOKS,
    ReferenceSizeAdvice,
    full_vs_full_tau,
    models_needed,
    reference_size_advice,
    seed_noise_of_variance_result,
)
from proxytask.stats.uncertainty import probability_above


def _monte_carlo(means: np.ndarray, sigma: np.ndarray, draws: int, seed: int) -> float:
    """The mean Kendall tau-b between two noisy trainings of models with these means."""
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(draws):
        first = means + rng.normal(size=means.size) * sigma
        second = means + rng.normal(size=means.size) * sigma
        taus.append(stats.kendalltau(first, second, variant="b")[0])
    return float(np.mean(taus))


@pytest.mark.parametrize(
    ("spread", "sigma"), [(0.004, 0.003), (0.01, 0.003), (0.03, 0.003), (0.1, 0.02)]
)
def test_the_ceiling_matches_a_monte_carlo_of_two_trainings(spread: float, sigma: float) -> None:
    means = np.random.default_rng(7).normal(0.85, spread, size=12)
    expected = full_vs_full_tau(means.tolist(), sigma)
    simulated = _monte_carlo(means, np.full(means.size, sigma), draws=1500, seed=1)
    assert expected == pytest.approx(simulated, abs=0.015)  # MC standard error ≤ 0.005


def test_per_model_noise_and_noiseless_ties_follow_tau_b() -> None:
    # three models stuck at chance (equal, no noise: tied in every training) and noisy others
    means = np.array([0.1, 0.1, 0.1, 0.80, 0.81, 0.83, 0.86, 0.87, 0.9])
    sigma = np.array([0.0, 0.0, 0.0, 0.006, 0.006, 0.005, 0.003, 0.003, 0.002])
    expected = full_vs_full_tau(means.tolist(), sigma.tolist())
    assert expected == pytest.approx(_monte_carlo(means, sigma, draws=1500, seed=2), abs=0.015)


def test_the_ceiling_is_one_without_noise_and_falls_with_it() -> None:
    accuracies = [0.70, 0.75, 0.80, 0.82, 0.85, 0.88, 0.90]
    assert full_vs_full_tau(accuracies, 0.0) == 1.0
    ceilings = [full_vs_full_tau(accuracies, s) for s in (0.001, 0.005, 0.02, 0.05)]
    assert ceilings == sorted(ceilings, reverse=True)


def test_models_needed_is_the_smallest_n_that_passes_the_confident_rule() -> None:
    for tau, threshold, confidence in ((0.9, 0.65, 0.85), (0.75, 0.65, 0.9), (0.7, 0.6, 0.95)):
        n = models_needed(tau, threshold, confidence)
        assert n is not None
        assert probability_above(tau, n, threshold) >= confidence
        if n > 5:
            assert probability_above(tau, n - 1, threshold) < confidence
    assert models_needed(1.0, 0.65, 0.85) == 5  # a perfect ceiling: the rule's minimum
    # at one of 20 evenly spaced looks the level is 1 − 0.15 / 20
    n = models_needed(0.9, 0.65, 0.85, looks=20)
    assert n is not None and n > models_needed(0.9, 0.65, 0.85)  # type: ignore[operator]
    assert probability_above(0.9, n, 0.65) >= 1 - 0.15 / 20 > probability_above(0.9, n - 1, 0.65)
    with pytest.raises(UsageError, match="looks must be an integer >= 1"):
        models_needed(0.9, 0.65, 0.85, looks=0)


def test_models_needed_grows_with_confidence_and_noise() -> None:
    by_confidence = [models_needed(0.8, 0.65, c) for c in (0.5, 0.7, 0.85, 0.9, 0.95, 0.99)]
    assert all(n is not None for n in by_confidence)
    assert by_confidence == sorted(by_confidence)  # type: ignore[type-var]
    accuracies = [0.80, 0.81, 0.82, 0.83, 0.84, 0.85, 0.86, 0.87, 0.88, 0.89]
    needs = []
    for sigma in (0.001, 0.003, 0.005, 0.007):
        advice = reference_size_advice(accuracies, sigma, 0.65, 0.85)
        assert advice.needed_at_ceiling is not None and advice.needed_midway is not None
        assert advice.needed_midway >= advice.needed_at_ceiling
        needs.append(advice.needed_at_ceiling)
    assert needs == sorted(needs) and needs[-1] > needs[0]


def test_no_size_is_enough_when_the_ceiling_is_at_or_below_the_threshold() -> None:
    assert models_needed(0.65, 0.65, 0.85) is None
    assert models_needed(0.5, 0.65, 0.85) is None
    advice = reference_size_advice([0.80, 0.801, 0.803, 0.805, 0.806], 0.01, 0.65, 0.85)
    assert advice.ceiling < 0.65
    assert not advice.reachable and advice.needed_midway is None and not advice.too_small
    assert advice.warning is not None
    assert "Lower desired-accuracy-correlation" in advice.warning
    assert "reduce the seed noise" in advice.warning
    assert "no reference set can pass" in advice.message


def test_a_crowded_small_set_is_too_small_and_the_warning_says_what_to_set() -> None:
    accuracies = [0.800, 0.804, 0.808, 0.812, 0.816, 0.820]
    advice = reference_size_advice(accuracies, 0.0025, 0.65, 0.85)
    assert advice.reachable and advice.too_small
    assert advice.needed_at_ceiling is not None and advice.needed_at_ceiling > 6
    assert advice.warning is not None
    assert f"final-num-models: {advice.needed_at_ceiling}" in advice.warning


def test_the_advice_reads_and_serialises_its_figures() -> None:
    advice = reference_size_advice([0.9, None, 0.8, 0.7, 0.6, 0.5], 0.002, 0.65, 0.85)
    assert isinstance(advice, ReferenceSizeAdvice)
    assert advice.num_reference_models == 5  # the None accuracy is left out
    assert advice.ceiling == pytest.approx(1.0, abs=1e-6)
    # one look spends the whole error budget: 5 models suffice for a proxy at the ceiling
    once = reference_size_advice([0.9, None, 0.8, 0.7, 0.6, 0.5], 0.002, 0.65, 0.85, looks=1)
    assert once.needed_at_ceiling == 5 and not once.too_small and once.warning is None
    assert "needs 5 reference models for a proxy at the ceiling" in once.message
    # the default 20 evaluations over the budget spend 1/20 of it at each: 7 are needed
    assert advice.looks == DEFAULT_LOOKS == 20
    assert advice.needed_at_ceiling == 7 and advice.too_small and advice.warning is not None
    assert "20 evaluations over the budget) needs 7 reference models" in advice.message
    assert ReferenceSizeAdvice.from_dict(advice.to_dict()) == advice
    old = {k: v for k, v in once.to_dict().items() if k != "looks"}  # a file from before
    assert ReferenceSizeAdvice.from_dict(old).looks == DEFAULT_LOOKS
    data = advice.to_dict()
    assert set(data) == {
        "ceiling_tau",
        "seed_noise_std",
        "num_reference_models",
        "threshold",
        "confidence",
        "needed_at_ceiling",
        "midway_tau",
        "needed_midway",
        "too_small",
        "message",
        "looks",
    }
    assert data["midway_tau"] == pytest.approx((0.65 + advice.ceiling) / 2)


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: full_vs_full_tau([0.8], 0.01), "at least 2 accuracies"),
        (lambda: full_vs_full_tau([0.8, 0.9], -0.01), "must be >= 0"),
        (lambda: full_vs_full_tau([0.8, float("nan")], 0.01), "each accuracy must be a finite"),
        (lambda: full_vs_full_tau([0.8, 0.9], [0.01]), "one std or one per model (2)"),
        (lambda: full_vs_full_tau([0.8, 0.8], 0.0), "must not all be equal"),
        (lambda: models_needed(0.9, 1.0, 0.85), "strictly between -1 and 1"),
        (lambda: models_needed(0.9, 0.65, 0.3), "confidence must lie in [0.5, 1)"),
        (lambda: models_needed(1.5, 0.65, 0.85), "tau must lie in [-1, 1]"),
        (lambda: reference_size_advice([0.8, 0.9], float("inf"), 0.65, 0.85), "finite number"),
    ],
)
def test_bad_input_is_refused_with_a_message_that_teaches(call: object, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        call()  # type: ignore[operator]
    assert fragment in str(info.value)


def test_the_seed_noise_of_a_variance_result_is_its_sample_std() -> None:
    assert seed_noise_of_variance_result({"std": 0.002, "sample_std": 0.0025}) == 0.0025
    assert seed_noise_of_variance_result({"std": 0.002, "sample_std": None}) == 0.002
    assert seed_noise_of_variance_result({"std": None}) is None
    assert seed_noise_of_variance_result(None) is None


def test_the_final_checks_print_and_round_trip_the_advice() -> None:
    from proxytask.controllers.final_checks import FailureRate, FinalChecks
    from proxytask.controllers.search_state import Recommendation

    advice = reference_size_advice([0.800, 0.804, 0.808, 0.812, 0.816, 0.820], 0.0025, 0.65, 0.9)
    rec = Recommendation("good", {}, {"lr": "0.1"}, 4)
    checks = FinalChecks(rec, None, {"search": FailureRate(3, 0, {})}, None, None, {}, advice)
    data = checks.to_dict()
    assert list(data)[-1] == "reference_set_size" and data["reference_set_size"]["too_small"]
    assert FinalChecks.from_dict(data) == checks
    old = {k: v for k, v in data.items() if k != "reference_set_size"}  # an older file
    assert FinalChecks.from_dict(old).reference_set_size is None
    lines = checks.lines()
    assert f"  reference set size: {advice.message}" in lines
    assert f"  warning: {advice.warning}" in lines
