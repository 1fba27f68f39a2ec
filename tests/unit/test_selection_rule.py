"""The model-selection rule and schedule (SPEC §3), checked against hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from proxytask.core.errors import UsageError
from proxytask.stats.selection import (
    EPS,
    RoundPlan,
    SelectionResult,
    TrialScore,
    find_trial_to_remove,
    next_round_pct,
    normalise_scores,
    removal_count,
    round_schedule,
    select_survivors,
)


def _scores(accuracies: list[float], latencies: list[float | None]) -> list[TrialScore]:
    return [
        TrialScore(chr(ord("a") + i), acc, lat)
        for i, (acc, lat) in enumerate(zip(accuracies, latencies, strict=True))
    ]


# --------------------------------------------------------------------------------------------
# A literal transcription of the reference loop, to compare the vectorised rule against.
# --------------------------------------------------------------------------------------------


def _reference_find(points: list[tuple[float, float]]) -> int | None:
    n = len(points)
    if n <= 2:
        return None
    first_dist, first_idx, second_dist = [], [], []
    for i in range(n):
        first, second, idx = 1e30, 1e30, -1
        for j in range(n):
            if j == i:
                continue
            d = math.sqrt((points[i][0] - points[j][0]) ** 2 + (points[i][1] - points[j][1]) ** 2)
            if d < first:
                second, first, idx = first, d, j
            elif d < second:
                second = d
        first_dist.append(first)
        first_idx.append(idx)
        second_dist.append(second)
    i1 = int(np.argmin(first_dist))
    i2 = first_idx[i1]
    return i1 if second_dist[i1] < second_dist[i2] else i2


def _reference_select(acc: list[float], lat: list[float], num_to_remove: int) -> list[int]:
    def norm(v: list[float]) -> list[float]:
        return [(x - min(v)) / (max(v) - min(v) + EPS) for x in v]

    points = list(zip(norm(acc), norm(lat), strict=True))
    ids = list(range(len(acc)))
    removed = []
    for _ in range(max(0, min(num_to_remove, len(acc) - 2))):
        position = _reference_find(points)
        if position is None:
            break
        points.pop(position)
        removed.append(ids.pop(position))
    return removed


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------


def test_normalise_each_column_independently_with_the_float32_eps() -> None:
    assert float(np.finfo(np.float32).eps) == EPS
    got = normalise_scores([0.5, 0.7, 0.9], [10.0, 40.0, 20.0])
    assert got.shape == (3, 2)
    np.testing.assert_allclose(got[:, 0], [0.0, 0.2 / (0.4 + EPS), 0.4 / (0.4 + EPS)])
    np.testing.assert_allclose(got[:, 1], [0.0, 30 / (30 + EPS), 10 / (30 + EPS)])
    # A constant column becomes all zeros (no division by zero).
    assert normalise_scores([0.5, 0.6], [3.0, 3.0])[:, 1].tolist() == [0.0, 0.0]
    assert normalise_scores([], []).shape == (0, 2)


def test_normalise_rejects_bad_input() -> None:
    with pytest.raises(UsageError, match="equally long"):
        normalise_scores([0.5, 0.6], [1.0])
    with pytest.raises(UsageError, match="must be finite"):
        normalise_scores([0.5, math.nan], [1.0, 2.0])


# --------------------------------------------------------------------------------------------
# find_trial_to_remove on already-normalised points
# --------------------------------------------------------------------------------------------

# Five hand-placed points (already normalised):
#   a (0.0, 0.0)   b (0.9, 0.1)   c (0.0, 1.0)   d (1.0, 0.0)   e (1.0, 1.0)
# Distances:
#   ab = √0.82 = 0.906   ac = 1   ad = 1   ae = √2 = 1.414
#   bc = √1.62 = 1.273   bd = √0.02 = 0.141   be = √0.82 = 0.906
#   cd = √2 = 1.414   ce = 1   de = 1
# closest (neighbour) / second-closest per point:
#   a: 0.906 (b) / 1.0     b: 0.141 (d) / 0.906   c: 1.0 (a) / 1.0
#   d: 0.141 (b) / 1.0     e: 0.906 (b) / 1.0
# The smallest closest distance is 0.141, first at b (i1 = b), whose neighbour is d (i2 = d).
# second(b) = 0.906 < second(d) = 1.0, so b goes: it also crowds a and e.
FIVE = [(0.0, 0.0), (0.9, 0.1), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)]


def test_five_points_worked_by_hand_removes_i1_when_its_second_neighbour_is_closer() -> None:
    assert find_trial_to_remove(np.array(FIVE)) == 1  # b
    # The same pair listed the other way round: d (now index 1) is i1, b (index 3) is i2;
    # second(d) = 1.0 is not < second(b) = 0.906, so i2 = b goes again.
    swapped = [FIVE[0], FIVE[3], FIVE[2], FIVE[1], FIVE[4]]
    assert find_trial_to_remove(swapped) == 3


def test_ties_remove_the_pairs_second_member() -> None:
    # A unit square a (0,0), c (0,1), d (1,0), e (1,1) — what is left of FIVE after b:
    # every closest distance is 1, so i1 = a (first index); scanning a's neighbours in
    # index order, c (distance 1) comes first and d (also 1) is not strictly closer, so
    # i2 = c. second(a) = 1 is not < second(c) = 1, so the pair's second member c goes.
    square = [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)]
    assert find_trial_to_remove(square) == 1
    # Three collinear, evenly spaced points: i1 = 0, i2 = 1, second(0) = 2 is not
    # < second(1) = 1, so the middle one (the pair's second member) goes.
    assert find_trial_to_remove([(0.0, 0.0), (0.5, 0.0), (1.0, 0.0)]) == 1
    # Two identical points and a far one: distance 0 ties, second(0) = second(1) = 1.
    assert find_trial_to_remove([(0.0, 0.0), (0.0, 0.0), (1.0, 0.0)]) == 1


def test_two_or_fewer_points_remove_nothing() -> None:
    assert find_trial_to_remove(np.zeros((2, 2))) is None
    assert find_trial_to_remove(np.zeros((1, 2))) is None
    assert find_trial_to_remove(np.zeros((0, 2))) is None


def test_find_rejects_bad_shapes_and_values() -> None:
    with pytest.raises(UsageError, match=r"\(n, 2\)"):
        find_trial_to_remove(np.zeros((3, 3)))
    with pytest.raises(UsageError, match="finite"):
        find_trial_to_remove([(0.0, 0.0), (math.inf, 0.0), (1.0, 1.0)])


@pytest.mark.parametrize("seed", range(40))
def test_matches_a_literal_transcription_of_the_reference_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 12))
    # Coarse grids make exact ties frequent, the case where the order rules matter.
    acc = (rng.integers(0, 6, n) / 5.0).tolist()
    lat = rng.integers(0, 4, n).astype(float).tolist()
    num_to_remove = int(rng.integers(0, n))
    expected = [chr(ord("a") + i) for i in _reference_select(acc, lat, num_to_remove)]
    got = select_survivors(_scores(acc, lat), num_to_remove, requires_latency=True)
    assert list(got.removed) == expected


# --------------------------------------------------------------------------------------------
# select_survivors
# --------------------------------------------------------------------------------------------

# FIVE as raw scores: accuracy = 0.5 + 0.5·x, latency = 10 + 0.5·y. Both ranges are 0.5, so
# both columns divide by the same 0.5 + EPS and the square's corners stay exact ties.
FIVE_SCORES = _scores(
    [0.5 + 0.5 * x for x, _ in FIVE],
    [10.0 + 0.5 * y for _, y in FIVE],
)


def test_five_scores_removed_one_at_a_time_without_renormalising() -> None:
    # 1st: b (worked above). 2nd: the square a, c, d, e ties, c goes (see the ties test).
    # 3rd: a (0,0), d (1,0), e (1,1): ad = de = 1, ae = √2; i1 = a, i2 = d,
    # second(a) = √2 is not < second(d) = 1, so d goes. a and e remain: the floor of 2.
    expected = {1: ("b",), 2: ("b", "c"), 3: ("b", "c", "d")}
    for count, removed in expected.items():
        result = select_survivors(FIVE_SCORES, count, requires_latency=True)
        assert result.removed == removed
        assert result.kept == tuple(i for i in "abcde" if i not in removed)
        assert result.num_removed_by_rule == count
        assert result.num_to_remove_requested == count
        assert result.invalid == ()
    first = select_survivors(FIVE_SCORES, 1, requires_latency=True)
    np.testing.assert_allclose(
        [(x, y) for _, x, y in first.normalised], FIVE, rtol=1e-6, atol=1e-12
    )
    assert [i for i, _, _ in first.normalised] == list("abcde")


def test_normalises_once_before_the_loop() -> None:
    # acc (0.6, 0.5, 0.0, 1.0), latency (0, 10, 8, 5) normalise to
    #   a (0.6, 0.0)   b (0.5, 1.0)   c (0.0, 0.8)   d (1.0, 0.5)
    # ab = 1.005  ac = 1.0  ad = √0.41 = 0.640  bc = √0.29 = 0.539  bd = √0.5 = 0.707
    # cd = √1.09 = 1.044. Closest pair b–c (0.539): second(b) = 0.707 < second(c) = 1.0,
    # so b goes. Left with a, c, d on the SAME scale: ad = 0.640 is closest (i1 = a,
    # i2 = d); second(a) = ac = 1.0 < second(d) = cd = 1.044, so a goes.
    # Re-normalising after b (latency max 10 → 8) would stretch latency to c (0, 1),
    # d (1, 0.625): ad = 0.742, second(a) = 1.166 vs second(d) = 1.068, and d would go.
    scores = _scores([0.6, 0.5, 0.0, 1.0], [0.0, 10.0, 8.0, 5.0])
    result = select_survivors(scores, 2, requires_latency=True)
    assert result.removed == ("b", "a")
    assert result.kept == ("c", "d")


def test_constant_latency_lets_accuracy_alone_decide() -> None:
    # Latency 5 everywhere normalises to 0; accuracy (0.70, 0.71, 0.80, 0.90, 0.95) over
    # the range 0.25 becomes (0, 0.04, 0.4, 0.8, 1.0).
    # 1st: closest pair a–b (0.04), i1 = a: second(a) = 0.4 is not < second(b) = 0.36, b goes.
    # 2nd: a 0, c 0.4, d 0.8, e 1.0: closest pair d–e (0.2), i1 = d: second(d) = 0.4 (to c)
    #      < second(e) = 0.6 (to c), so d goes.
    accuracies = [0.70, 0.71, 0.80, 0.90, 0.95]
    result = select_survivors(_scores(accuracies, [5.0] * 5), 2, requires_latency=True)
    assert result.removed == ("b", "d")
    assert result.kept == ("a", "c", "e")
    assert all(lat == 0.0 for _, _, lat in result.normalised)
    # Any other constant gives the same answer.
    other = select_survivors(_scores(accuracies, [123.0] * 5), 2, requires_latency=True)
    assert other.removed == result.removed


def test_without_required_latency_missing_latencies_count_as_zero() -> None:
    accuracies = [0.70, 0.71, 0.80, 0.90, 0.95]
    # No latency at all: accuracy alone, as in the constant-latency case above.
    result = select_survivors(_scores(accuracies, [None] * 5), 2, requires_latency=False)
    assert result.invalid == ()
    assert result.removed == ("b", "d")
    # With latency required, every one of them is invalid instead.
    strict = select_survivors(_scores(accuracies, [None] * 5), 2, requires_latency=True)
    assert strict.kept == () and strict.removed == ()
    assert [reason for _, reason in strict.invalid] == ["no latency"] * 5
    # A mix: the missing (or negative) ones sit at latency 0, the recorded ones count.
    mixed = select_survivors(
        _scores([0.5, 0.6, 0.7], [None, 10.0, -1.0]), 0, requires_latency=False
    )
    assert mixed.invalid == ()
    assert [lat for _, _, lat in mixed.normalised] == [0.0, pytest.approx(1.0), 0.0]


def test_invalid_trials_are_dropped_first_and_count_toward_the_removals() -> None:
    # 6 valid + 2 invalid, remove 5: the 2 invalid count, so the rule removes 3 (the floor,
    # 6 - 2 = 4, does not bind).
    valid = _scores([0.50, 0.55, 0.62, 0.70, 0.81, 0.90], [3.0, 9.0, 4.0, 7.0, 1.0, 5.0])
    invalid = [
        TrialScore("x", 0.99, 2.0, invalid_reason="failed (oom)"),
        TrialScore("y", None, 2.0),
    ]
    scores = [valid[0], invalid[0], *valid[1:4], invalid[1], *valid[4:]]
    result = select_survivors(scores, 5, requires_latency=True)
    assert result.invalid == (("x", "failed (oom)"), ("y", "no accuracy at this pct"))
    assert result.num_to_remove_requested == 5
    assert result.num_removed_by_rule == 3 == len(result.removed)
    assert len(result.kept) == 3
    assert set(result.kept) | set(result.removed) == set("abcdef")
    assert result.dropped == ("x", "y", *result.removed)
    # The rule ran on the valid points only: the same as asking the valid ones for 3.
    alone = select_survivors(valid, 3, requires_latency=True)
    assert (alone.kept, alone.removed) == (result.kept, result.removed)
    # As many invalid as requested: the rule removes nothing more.
    assert select_survivors(scores, 2, requires_latency=True).removed == ()


@pytest.mark.parametrize(
    ("score", "reason"),
    [
        (TrialScore("t", 0.5, 1.0, "stopped (killed)"), "stopped (killed)"),
        (TrialScore("t", None, 1.0), "no accuracy at this pct"),
        (TrialScore("t", math.nan, 1.0), "accuracy is not finite (nan)"),
        (TrialScore("t", 0.5, None), "no latency"),
        (TrialScore("t", 0.5, math.inf), "latency is not finite (inf)"),
        (TrialScore("t", 0.5, -1.0), "latency is negative (-1.0)"),
    ],
)
def test_invalid_reasons(score: TrialScore, reason: str) -> None:
    result = select_survivors([score], 0, requires_latency=True)
    assert result.invalid == (("t", reason),)


def test_never_goes_below_two_valid_models() -> None:
    # 3 valid, remove 5 (no invalid): only 1 can go. 2 valid or fewer: none.
    three = select_survivors(FIVE_SCORES[:3], 5, requires_latency=True)
    assert len(three.kept) == 2 and three.num_removed_by_rule == 1
    for count in (2, 1, 0):
        result = select_survivors(FIVE_SCORES[:count], 5, requires_latency=True)
        assert result.removed == () and len(result.kept) == count
    # 2 invalid + 3 valid, remove 5: 3 by the rule is capped at 3 - 2 = 1.
    scores = [*FIVE_SCORES[:3], TrialScore("x", None, 1.0), TrialScore("y", 0.5, None)]
    capped = select_survivors(scores, 5, requires_latency=True)
    assert capped.num_removed_by_rule == 1 and len(capped.kept) == 2
    # A different floor when asked.
    assert len(select_survivors(FIVE_SCORES, 5, requires_latency=True, min_keep=4).kept) == 4


def test_survivors_keep_their_input_order() -> None:
    # Removal order is b, c, d (see above); whatever the input order, kept follows it.
    reordered = [FIVE_SCORES[i] for i in (4, 2, 0, 3, 1)]
    result = select_survivors(reordered, 1, requires_latency=True)
    assert result.removed == ("b",)
    assert result.kept == ("e", "c", "a", "d")
    assert [i for i, _, _ in result.normalised] == ["e", "c", "a", "d", "b"]
    rng = np.random.default_rng(7)
    scores = _scores(rng.random(12).tolist(), rng.random(12).tolist())
    result = select_survivors(scores, 5, requires_latency=True)
    assert result.kept == tuple(s.trial_id for s in scores if s.trial_id in result.kept)
    assert len(result.removed) == 5


def test_select_rejects_bad_arguments() -> None:
    with pytest.raises(UsageError, match="num_to_remove must be an integer ≥ 0, got -1"):
        select_survivors(FIVE_SCORES, -1, requires_latency=True)
    with pytest.raises(UsageError, match="unique"):
        select_survivors([FIVE_SCORES[0], FIVE_SCORES[0]], 1, requires_latency=True)


def test_results_are_frozen() -> None:
    result = select_survivors(FIVE_SCORES, 1, requires_latency=True)
    assert isinstance(result, SelectionResult)
    with pytest.raises(AttributeError):
        result.kept = ()  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# The schedule
# --------------------------------------------------------------------------------------------


def test_schedule_30_to_10_removing_5() -> None:
    # 100/30 = 3.333, + 100/25 = 7.333, + 100/20 = 12.333, + 100/15 = 19.0, then 10: final.
    plans = round_schedule(30, 10, 5)
    assert [p.num_models for p in plans] == [30, 25, 20, 15, 10]
    assert [p.desired_pct for p in plans] == pytest.approx([10 / 3, 22 / 3, 37 / 3, 19.0, 100.0])
    assert [p.is_final for p in plans] == [False] * 4 + [True]
    assert [p.num_to_remove for p in plans] == [5, 5, 5, 5, 0]
    assert [p.index for p in plans] == [0, 1, 2, 3, 4]
    assert f"{plans[3].desired_pct:.2f}" == "19.00"


def test_schedule_12_to_6_removing_2() -> None:
    # 100/12 = 8.333, + 100/10 = 18.333, + 100/8 = 30.833, then 6: final.
    plans = round_schedule(12, 6, 2)
    assert plans == [
        RoundPlan(0, 12, pytest.approx(8.3333333), False, 2),  # type: ignore[arg-type]
        RoundPlan(1, 10, pytest.approx(18.3333333), False, 2),  # type: ignore[arg-type]
        RoundPlan(2, 8, pytest.approx(30.8333333), False, 2),  # type: ignore[arg-type]
        RoundPlan(3, 6, 100.0, True, 0),
    ]


def test_schedule_last_removal_is_capped_and_small_starts_are_final() -> None:
    # 13 → 8 → 6: the second round removes only min(5, 8 - 6) = 2.
    plans = round_schedule(13, 6, 5)
    assert [(p.num_models, p.num_to_remove) for p in plans] == [(13, 5), (8, 2), (6, 0)]
    assert round_schedule(10, 10, 5) == [RoundPlan(0, 10, 100.0, True, 0)]
    assert round_schedule(4, 10, 5) == [RoundPlan(0, 4, 100.0, True, 0)]


def test_next_round_pct_replans_from_the_actual_survivors() -> None:
    assert next_round_pct(0.0, 30, 10) == pytest.approx((10 / 3, False))
    # Fewer survivors than planned (e.g. 24, the floor or an odd count) simply give 100/24.
    assert next_round_pct(10 / 3, 24, 10) == pytest.approx((10 / 3 + 100 / 24, False))
    assert next_round_pct(19.0, 10, 10) == (100.0, True)
    assert next_round_pct(19.0, 7, 10) == (100.0, True)
    pct = 0.0
    for plan in round_schedule(30, 10, 5):
        pct, final = next_round_pct(pct, plan.num_models, 10)
        assert (pct, final) == (plan.desired_pct, plan.is_final)


def test_removal_count() -> None:
    assert [removal_count(k, 5, 10) for k in (30, 15, 13, 10, 8)] == [5, 5, 3, 0, 0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 10, 5), "start_num_models must be an integer ≥ 1, got 0"),
        ((30, 1, 5), "final_num_models must be an integer ≥ 2, got 1"),
        ((30, 10, 0), "num_to_remove_per_iter must be an integer ≥ 1, got 0"),
        ((30.0, 10, 5), "start_num_models must be an integer"),
    ],
)
def test_schedule_rejects_bad_settings(args: tuple[int, int, int], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        round_schedule(*args)


def test_next_round_pct_rejects_bad_values() -> None:
    with pytest.raises(UsageError, match="previous_pct"):
        next_round_pct(math.nan, 10, 5)
    with pytest.raises(UsageError, match="num_models"):
        next_round_pct(0.0, 0, 5)


# ---- held-out models ------------------------------------------------------------------------


def test_stratified_holdout_takes_one_model_from_each_accuracy_stratum() -> None:
    from proxytask.stats.selection import stratified_holdout

    accuracies = [0.97, 0.61, 0.88, 0.95, 0.72, 0.98, 0.84, 0.93, 0.66, 0.9]
    order = sorted(range(10), key=lambda i: accuracies[i])
    for seed in range(30):
        chosen = stratified_holdout(accuracies, 5, (seed, 1))
        assert chosen == sorted(chosen) and len(set(chosen)) == 5
        ranks = sorted(order.index(i) for i in chosen)
        # ten models in five strata of two: one from ranks {0,1}, one from {2,3}, ...
        assert [r // 2 for r in ranks] == [0, 1, 2, 3, 4]
        assert chosen == stratified_holdout(accuracies, 5, (seed, 1))  # seeded
    drawn = {tuple(stratified_holdout(accuracies, 5, (seed, 1))) for seed in range(30)}
    assert len(drawn) > 5  # random within the strata


def test_stratified_holdout_edge_cases() -> None:
    from proxytask.stats.selection import stratified_holdout

    assert stratified_holdout([0.5, 0.6], 0, (0,)) == []
    assert stratified_holdout([], 3, (0,)) == []
    assert stratified_holdout([0.5, 0.6], 5, (0,)) == [0, 1]  # no more than there are
    # models without an accuracy sort last: one stratum of three holds them all
    for seed in range(10):
        chosen = stratified_holdout([None, 0.2, None, 0.1, None, 0.3], 2, (seed,))
        assert len(set(chosen) & {0, 2, 4}) == 1 and len(set(chosen) & {1, 3, 5}) == 1
    for seed in range(10):  # uneven strata: 7 models in 3 runs of 2-3, one drawn from each
        chosen = stratified_holdout([0.1 * i for i in range(7)], 3, (seed,))
        assert len(chosen) == 3 and chosen[0] <= 2 and chosen[-1] >= 4
