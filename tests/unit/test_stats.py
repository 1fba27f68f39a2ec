"""Statistics: CV with its std CI, sectioned curve smoothness, and per-pct curve spread."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2

from proxytask.core.errors import UsageError
from proxytask.stats import variance as stats

# --------------------------------------------------------------------------------------------
# coefficient_of_variation
# --------------------------------------------------------------------------------------------


def test_cv_uses_population_std_over_mean() -> None:
    r = stats.coefficient_of_variation([0.9, 0.92, 0.94])
    # Deviations from the mean 0.92 are -0.02, 0, +0.02; population std divides by n = 3.
    std = math.sqrt(((-0.02) ** 2 + 0.0 + 0.02**2) / 3)
    assert r.mean == pytest.approx(0.92)
    assert r.std == pytest.approx(std)
    assert r.cv == pytest.approx(std / 0.92)
    # The sample std divides by n - 1 = 2.
    assert r.sample_std == pytest.approx(math.sqrt((0.02**2 * 2) / 2))
    assert r.n == 3
    assert r.values == (0.9, 0.92, 0.94)
    assert r.confidence == 0.95
    assert r.reason is None


def test_cv_std_confidence_interval_matches_direct_chi2() -> None:
    values = [0.71, 0.74, 0.69, 0.75, 0.72]
    r = stats.coefficient_of_variation(values, confidence=0.9)
    s = float(np.std(values, ddof=1))
    n = len(values)
    low = math.sqrt((n - 1) * s**2 / chi2.ppf(0.95, n - 1))
    high = math.sqrt((n - 1) * s**2 / chi2.ppf(0.05, n - 1))
    assert r.std_ci_low == pytest.approx(low)
    assert r.std_ci_high == pytest.approx(high)
    assert r.std_ci_low is not None and r.std_ci_high is not None and r.sample_std is not None
    assert r.std_ci_low <= r.sample_std <= r.std_ci_high
    # A higher confidence gives a wider interval.
    wide = stats.coefficient_of_variation(values, confidence=0.99)
    assert wide.std_ci_low is not None and wide.std_ci_high is not None
    assert wide.std_ci_low < r.std_ci_low and wide.std_ci_high > r.std_ci_high


def test_cv_of_identical_values_is_zero_with_zero_width_interval() -> None:
    r = stats.coefficient_of_variation([0.8, 0.8, 0.8])
    assert r.cv == 0.0 and r.std == 0.0
    assert r.std_ci_low == 0.0 and r.std_ci_high == 0.0


def test_cv_needs_two_values() -> None:
    r = stats.coefficient_of_variation([0.9])
    assert r.cv is None and r.sample_std is None and r.std_ci_low is None
    assert r.reason == "needs at least 2 values, got 1"
    assert r.mean == 0.9 and r.n == 1
    empty = stats.coefficient_of_variation([])
    assert empty.cv is None and empty.mean is None and empty.n == 0
    assert empty.reason == "needs at least 2 values, got 0"


def test_cv_with_zero_mean_is_none_not_a_division_by_zero() -> None:
    r = stats.coefficient_of_variation([-0.1, 0.1])
    assert r.cv is None
    assert r.reason is not None and "mean is 0" in r.reason
    assert r.std == pytest.approx(0.1)


def test_cv_with_non_finite_values_reports_a_reason() -> None:
    r = stats.coefficient_of_variation([0.9, float("nan"), 0.8])
    assert r.cv is None and r.mean is None and r.n == 3
    assert r.reason is not None and "finite" in r.reason and "index 1" in r.reason


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.1])
def test_cv_rejects_a_bad_confidence(confidence: float) -> None:
    with pytest.raises(UsageError, match="confidence must be"):
        stats.coefficient_of_variation([0.9, 0.8], confidence=confidence)


def test_results_are_frozen() -> None:
    r = stats.coefficient_of_variation([0.9, 0.8])
    with pytest.raises(AttributeError):
        r.cv = 1.0  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# curve_smoothness
# --------------------------------------------------------------------------------------------


def test_smoothness_sample_points_are_ten_per_section() -> None:
    points = stats.SMOOTHNESS_SAMPLE_POINTS
    assert len(points) == 30
    assert points[:3] == pytest.approx([0.0, 0.07, 0.14])
    assert points[9] == pytest.approx(0.63)
    assert points[10:12] == pytest.approx([0.7, 0.72])
    assert points[19] == pytest.approx(0.88)
    assert points[20:22] == pytest.approx([0.9, 0.91])
    assert points[29] == pytest.approx(0.99)


def test_smoothness_on_a_hand_worked_curve_with_a_dip() -> None:
    # pcts [0, 50, 85, 100] normalise to x = [0, 0.5, 0.85, 1.0];
    # accuracies [0.2, 0.6, 0.5, 0.8] normalise by (a - 0.2) / 0.6 to y = [0, 2/3, 1/2, 1].
    # Segment slopes: (2/3) / 0.5 = 4/3;  (1/2 - 2/3) / 0.35 = -1/2.1;  (1/2) / 0.15 = 10/3.
    # Samples: [0, 0.7) -> 0.0 .. 0.49 (8 points) in segment 0, 0.56 and 0.63 in segment 1;
    #          [0.7, 0.9) -> 0.70 .. 0.84 (8 points) in segment 1, 0.86 and 0.88 in segment 2;
    #          [0.9, 1.0) -> all 10 points in segment 2.
    # So 10 samples see the dip: smoothness = 10 / 2.1.
    r = stats.curve_smoothness([0, 50, 85, 100], [0.2, 0.6, 0.5, 0.8])
    up, dip, last = 4 / 3, -1 / 2.1, 10 / 3
    expected = [up] * 8 + [dip] * 2 + [dip] * 8 + [last] * 2 + [last] * 10
    assert r.slopes == pytest.approx(expected)
    assert r.value == pytest.approx(10 / 2.1)
    assert r.n_points == 4
    assert r.reason is None


def test_smoothness_normalises_over_the_curves_own_pct_range() -> None:
    # Same shape as above, shifted and scaled on both axes: the same value.
    base = stats.curve_smoothness([0, 50, 85, 100], [0.2, 0.6, 0.5, 0.8])
    moved = stats.curve_smoothness([20, 60, 88, 100], [0.4, 0.8, 0.7, 1.0])
    assert moved.slopes == pytest.approx(base.slopes)


def test_smoothness_at_a_knot_uses_the_segment_to_its_right() -> None:
    # Knot at normalised 0.9, which is itself a sample point: it belongs to the falling
    # segment [0.9, 1.0] (slope -0.5 / 0.1 = -5), as do the 9 samples after it.
    r = stats.curve_smoothness([0, 90, 100], [0.0, 1.0, 0.5])
    assert r.slopes[19] == pytest.approx(1 / 0.9)
    assert r.slopes[20] == pytest.approx(-5.0)
    assert r.value == pytest.approx(50.0)


def test_a_monotone_curve_is_perfectly_smooth() -> None:
    r = stats.curve_smoothness([10, 20, 40, 70, 100], [0.3, 0.5, 0.6, 0.66, 0.7])
    assert r.value == 0.0
    assert len(r.slopes) == 30 and min(r.slopes) >= 0.0


def test_a_flat_curve_is_reported_not_divided_by_zero() -> None:
    r = stats.curve_smoothness([25, 50, 100], [0.5, 0.5, 0.5])
    assert r.value is None and r.slopes == () and r.n_points == 3
    assert r.reason is not None and "flat" in r.reason


@pytest.mark.parametrize(("pcts", "accs", "n"), [([100], [0.9], 1), ([], [], 0)])
def test_a_single_point_curve_is_reported(pcts: list[float], accs: list[float], n: int) -> None:
    r = stats.curve_smoothness(pcts, accs)
    assert r.value is None and r.slopes == ()
    assert r.reason == f"needs at least 2 points, got {n}"


@pytest.mark.parametrize("pcts", [[0, 50, 50, 100], [0, 60, 40, 100]])
def test_smoothness_rejects_non_increasing_pcts(pcts: list[float]) -> None:
    with pytest.raises(ValueError, match="pcts must be strictly increasing"):
        stats.curve_smoothness(pcts, [0.1, 0.2, 0.3, 0.4])


def test_smoothness_rejects_mismatched_lengths_and_nan() -> None:
    with pytest.raises(ValueError, match="same length"):
        stats.curve_smoothness([0, 100], [0.1])
    with pytest.raises(ValueError, match="finite"):
        stats.curve_smoothness([0, 100], [0.1, float("nan")])


def test_mean_smoothness_averages_the_computable_curves() -> None:
    r = stats.mean_smoothness(
        [
            ([0, 50, 85, 100], [0.2, 0.6, 0.5, 0.8]),  # 10 / 2.1
            ([0, 90, 100], [0.0, 1.0, 0.5]),  # 50
            ([25, 50], [0.5, 0.5]),  # flat: left out
        ]
    )
    assert r.n == 3 and r.n_used == 2
    assert r.value == pytest.approx((10 / 2.1 + 50.0) / 2)
    assert r.per_curve[2].value is None
    assert r.reason is None


def test_mean_smoothness_without_computable_curves_gives_a_reason() -> None:
    r = stats.mean_smoothness([([25, 50], [0.5, 0.5]), ([100], [0.9])])
    assert r.value is None and r.n_used == 0 and r.n == 2
    assert r.reason is not None and "flat" in r.reason and "at least 2 points" in r.reason
    none = stats.mean_smoothness([])
    assert none.value is None and none.reason == "no curves given"


# --------------------------------------------------------------------------------------------
# curve_spread
# --------------------------------------------------------------------------------------------


def test_spread_aligns_curves_and_never_extrapolates() -> None:
    a = ([25, 50, 100], [0.4, 0.6, 0.9])
    b = ([50, 75], [0.5, 0.7])  # stopped early at 75 %
    r = stats.curve_spread([a, b])
    # Grid = {25, 50, 75, 100}.
    # 25: a = 0.4; b interpolates from the implicit (0, 0.0) to (50, 0.5) -> 0.25.
    # 50: a = 0.6, b = 0.5.
    # 75: a interpolates (50, 0.6)..(100, 0.9) -> 0.75; b = 0.7.
    # 100: only a is defined (b is not extrapolated), so the pct is left out.
    assert r.pcts == (25.0, 50.0, 75.0)
    assert r.n == (2, 2, 2)
    assert r.mean == pytest.approx([0.325, 0.55, 0.725])
    assert r.std == pytest.approx([0.075, 0.05, 0.025])  # population std of two = |a - b| / 2
    assert r.min == pytest.approx([0.25, 0.5, 0.7])
    assert r.max == pytest.approx([0.4, 0.6, 0.75])
    assert r.max_std == pytest.approx(0.075) and r.max_std_pct == 25.0
    assert r.n_curves == 2 and r.reason is None


def test_spread_counts_the_curves_defined_at_each_pct() -> None:
    a = ([25, 50, 100], [0.4, 0.6, 0.9])
    b = ([50, 75], [0.5, 0.7])
    c = ([100], [0.8])  # one point: 0.2, 0.4, 0.6 at 25, 50, 75 by the implicit origin
    r = stats.curve_spread([a, b, c])
    assert r.pcts == (25.0, 50.0, 75.0, 100.0)
    assert r.n == (3, 3, 3, 2)
    assert r.mean == pytest.approx([(0.4 + 0.25 + 0.2) / 3, 0.5, (0.75 + 0.7 + 0.6) / 3, 0.85])
    assert r.std[3] == pytest.approx(0.05)
    assert r.std[0] == pytest.approx(float(np.std([0.4, 0.25, 0.2])))


def test_spread_matches_the_trainer_interpolation() -> None:
    from proxytask.trainer import contract as trainer

    points = ((30.0, 2, 0.3), (60.0, 5, 0.5), (100.0, 9, 0.8))
    metrics = trainer.TrialTrainingMetrics(
        training_accuracy_over_steps=tuple(trainer.AccuracyAtStep(*p) for p in points)
    )
    other = ([10, 45, 100], [0.1, 0.2, 0.3])
    r = stats.curve_spread([([p[0] for p in points], [p[2] for p in points]), other])
    for pct, mean in zip(r.pcts, r.mean, strict=True):
        mine = trainer.get_accuracy_at_pct(metrics, pct)
        theirs = np.interp(pct, [0, 10, 45, 100], [0, 0.1, 0.2, 0.3])
        assert mine is not None
        assert mean == pytest.approx((mine + theirs) / 2)


def test_spread_without_overlap_gives_a_reason() -> None:
    one = stats.curve_spread([([50, 100], [0.5, 0.9])])
    assert one.pcts == () and one.max_std is None and one.max_std_pct is None
    assert one.reason == "needs at least 2 curves, got 1"
    empty_curves = stats.curve_spread([([], []), ([50], [0.5])])
    assert empty_curves.pcts == () and empty_curves.reason is not None
    assert stats.curve_spread([]).reason == "needs at least 2 curves, got 0"


def test_spread_rejects_decreasing_pcts() -> None:
    with pytest.raises(ValueError, match="non-decreasing"):
        stats.curve_spread([([50, 25], [0.5, 0.4]), ([50], [0.5])])
