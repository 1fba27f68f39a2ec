"""The model-selection rule (SPEC §3): which trials survive a round, and the rounds' schedule.

Pure functions over plain values: the controller (:mod:`proxytask.controllers.selection`)
gathers each trial's accuracy at the round's pct and its latency into :class:`TrialScore`
values, asks :func:`select_survivors` which to keep, and :func:`next_round_pct` how far the
next round trains. The rule reproduces the reference tools exactly, ties included.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from proxytask.core.errors import UsageError, describe

__all__ = [
    "EPS",
    "MIN_MODELS",
    "RoundPlan",
    "SelectionResult",
    "TrialScore",
    "find_trial_to_remove",
    "next_round_pct",
    "normalise_scores",
    "removal_count",
    "round_schedule",
    "select_survivors",
    "stratified_holdout",
]

_FloatArray = npt.NDArray[np.float64]

#: Added to each column's range before dividing (the reference's float32 epsilon), so a
#: constant column normalises to all zeros instead of dividing by zero.
EPS: float = float(np.finfo(np.float32).eps)

#: The rule never leaves fewer valid models than this (a ranking needs two).
MIN_MODELS = 2


@dataclasses.dataclass(frozen=True)
class TrialScore:
    """One trial's result in a round: accuracy at the round's pct and latency.

    ``accuracy`` or ``latency`` is None when it was not recorded. ``invalid_reason`` is set
    by the caller when the trial cannot take part at all (failed, stopped, ...); such a score
    is dropped before the rule runs and counts toward the round's removals.

    Example::

        >>> TrialScore("7", 0.81, 12.5).invalid_reason is None
        True
    """

    trial_id: str
    accuracy: float | None
    latency: float | None
    invalid_reason: str | None = None


@dataclasses.dataclass(frozen=True)
class SelectionResult:
    """What :func:`select_survivors` decided for one round.

    ``kept`` lists the surviving trial ids in their input order (stable across rounds and
    resumes); ``removed`` the ids the spread rule removed, in removal order; ``invalid`` the
    ``(id, reason)`` pairs dropped before the rule ran. ``normalised`` holds every valid
    point as ``(id, accuracy, latency)`` after normalisation, in input order (what the rule
    measured distances on). ``num_to_remove_requested`` is the removal count asked for and
    ``num_removed_by_rule`` equals ``len(removed)``: the request less the invalid trials,
    capped so that ``min_keep`` valid models remain.
    """

    kept: tuple[str, ...]
    removed: tuple[str, ...]
    invalid: tuple[tuple[str, str], ...]
    normalised: tuple[tuple[str, float, float], ...]
    num_to_remove_requested: int
    num_removed_by_rule: int

    @property
    def dropped(self) -> tuple[str, ...]:
        """Every id that does not go on: the invalid ones, then those the rule removed."""
        return tuple(trial_id for trial_id, _ in self.invalid) + self.removed


@dataclasses.dataclass(frozen=True)
class RoundPlan:
    """One round of a model selection as planned by :func:`round_schedule`.

    ``index`` counts from 0 (the position in the state's ``iterations``). ``num_models`` is
    the round's model count K; ``desired_pct`` the cumulative training pct it trains to
    (100.0 for the final round, which trains to completion); ``num_to_remove`` how many
    models the round removes afterwards (0 for the final round).
    """

    index: int
    num_models: int
    desired_pct: float
    is_final: bool
    num_to_remove: int


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _count(name: str, value: int, minimum: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise UsageError(f"{name} must be an integer ≥ {minimum}, got {describe(value)}. {fix}")
    return int(value)


def _finite(value: float | None) -> float | None:
    """``float(value)`` when it is a finite number, else None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------


def _normalise_column(values: _FloatArray) -> _FloatArray:
    if values.size == 0:
        return np.zeros(0, dtype=np.float64)
    low = float(values.min())
    high = float(values.max())
    scaled: _FloatArray = (values - low) / (high - low + EPS)
    return scaled


def normalise_scores(accuracies: Sequence[float], latencies: Sequence[float]) -> _FloatArray:
    """Normalise accuracy and latency independently to ``[0, 1)``: an ``(n, 2)`` array.

    Each column becomes ``(v - min) / (max - min + EPS)`` with ``EPS`` the float32 epsilon,
    as in the reference tools; a constant column becomes all zeros, so a constant latency
    leaves accuracy alone to decide. Values must be finite and the sequences equally long.

    Example::

        >>> normalise_scores([0.5, 0.75, 1.0], [3.0, 3.0, 3.0]).round(6).tolist()
        [[0.0, 0.0], [0.5, 0.0], [1.0, 0.0]]
    """
    columns = [np.asarray(v, dtype=np.float64).reshape(-1) for v in (accuracies, latencies)]
    acc, lat = columns
    if acc.size != lat.size:
        raise UsageError(
            f"accuracies and latencies must be equally long, got {acc.size} accuracies and "
            f"{lat.size} latencies."
        )
    if not all(np.isfinite(column).all() for column in columns):
        raise UsageError(
            f"scores to normalise must be finite, got accuracies {describe(acc.tolist())} and "
            f"latencies {describe(lat.tolist())}. Drop invalid trials first (select_survivors "
            "does)."
        )
    return np.column_stack([_normalise_column(c) for c in columns])


def find_trial_to_remove(points: npt.ArrayLike) -> int | None:
    """Index of the point to remove so the rest stay spread out; None with ≤ 2 points.

    ``points`` is an ``(n, 2)`` array of already-normalised (accuracy, latency) values. For
    each point the reference scans the others in index order with strict ``<`` to find its
    closest neighbour (the first one on ties) and its second-closest distance (equal to the
    closest when two neighbours tie). Take the point ``i1`` with the smallest closest
    distance (the first index on ties) and its closest neighbour ``i2``; remove ``i1`` when
    its second-closest distance is smaller than that of ``i2``, else ``i2`` — so a full tie
    removes the pair's second member.

    Example::

        >>> # 0 and 1 are the closest pair; 1 is also near 2, so 1 goes.
        >>> find_trial_to_remove([[0.0, 0.0], [0.1, 0.0], [0.3, 0.0], [1.0, 1.0]])
        1
        >>> find_trial_to_remove([[0.0, 0.0], [1.0, 1.0]]) is None
        True
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise UsageError(
            f"points must be an (n, 2) array of (accuracy, latency), got shape {pts.shape}."
        )
    if not np.all(np.isfinite(pts)):
        raise UsageError(f"points must be finite, got {describe(pts.tolist())}.")
    n = pts.shape[0]
    if n <= 2:
        return None
    # diff² summed over the two columns in a fixed order, so d[i, j] == d[j, i] exactly and
    # exact ties stay ties.
    diff = pts[:, None, :] - pts[None, :, :]
    dist = np.sqrt(np.sum(diff * diff, axis=-1))
    np.fill_diagonal(dist, np.inf)
    # Scanning j in order with strict `<` keeps the first j at the minimum (argmin) and makes
    # the second-closest distance the second value of the sorted row (duplicates included).
    closest_idx = np.argmin(dist, axis=1)
    ordered = np.sort(dist, axis=1)
    closest, second = ordered[:, 0], ordered[:, 1]
    i1 = int(np.argmin(closest))
    i2 = int(closest_idx[i1])
    return i1 if second[i1] < second[i2] else i2


def _invalid_reason(score: TrialScore, requires_latency: bool) -> str | None:
    if score.invalid_reason is not None:
        return str(score.invalid_reason)
    if score.accuracy is None:
        return "no accuracy at this pct"
    if _finite(score.accuracy) is None:
        return f"accuracy is not finite ({score.accuracy!r})"
    if requires_latency:
        if score.latency is None:
            return "no latency"
        latency = _finite(score.latency)
        if latency is None:
            return f"latency is not finite ({score.latency!r})"
        if latency < 0:
            return f"latency is negative ({latency!r})"
    return None


def _latency_or_zero(value: float | None) -> float:
    latency = _finite(value)
    return latency if latency is not None and latency >= 0 else 0.0


def select_survivors(
    scores: Sequence[TrialScore],
    num_to_remove: int,
    *,
    requires_latency: bool,
    min_keep: int = MIN_MODELS,
) -> SelectionResult:
    """Decide which trials of a round go on (SPEC §3.3, the reference tools' rule).

    1. Invalid scores are dropped first and count toward ``num_to_remove``: a score is
       invalid when its ``invalid_reason`` is set, its accuracy is missing or not finite, or
       (with ``requires_latency``) its latency is missing, negative or not finite. Without
       ``requires_latency`` a missing (or negative, or non-finite) latency counts as 0.
    2. The rule removes ``max(0, num_to_remove - num_invalid)`` more, but never leaves fewer
       than ``min_keep`` valid models.
    3. The valid points are normalised once (:func:`normalise_scores`), then removed one at
       a time with :func:`find_trial_to_remove` on the remaining points (not re-normalised).

    The caller passes the round's count, ``min(per_iteration, K - final_num_models)`` (see
    :func:`removal_count`). Survivors keep their input order. Trial ids must be unique.

    Example::

        >>> scores = [TrialScore("a", 0.50, 10.0), TrialScore("b", 0.52, 10.1),
        ...           TrialScore("c", 0.90, 10.0), TrialScore("d", 0.70, 20.0),
        ...           TrialScore("e", None, 12.0, "failed (oom)")]
        >>> r = select_survivors(scores, 2, requires_latency=True)
        >>> r.kept, r.removed, r.invalid  # e counts toward the 2; a-b is the closest pair
        (('a', 'c', 'd'), ('b',), (('e', 'failed (oom)'),))
    """
    requested = _count(
        "num_to_remove", num_to_remove, 0, "Pass how many models this round removes."
    )
    keep_floor = _count("min_keep", min_keep, 0, "The reference keeps at least 2.")
    items = tuple(scores)
    ids = [str(s.trial_id) for s in items]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise UsageError(
            f"trial ids must be unique within a round, got {describe(repeated)} more than once."
        )

    invalid: list[tuple[str, str]] = []
    valid: list[TrialScore] = []
    for score in items:
        reason = _invalid_reason(score, requires_latency)
        if reason is None:
            valid.append(score)
        else:
            invalid.append((str(score.trial_id), reason))

    to_remove = max(0, requested - len(invalid))
    to_remove = max(0, min(to_remove, len(valid) - keep_floor))

    valid_ids = [str(s.trial_id) for s in valid]
    points = normalise_scores(
        [float(s.accuracy) for s in valid if s.accuracy is not None],
        [_latency_or_zero(s.latency) for s in valid],
    )
    remaining = list(range(len(valid)))
    removed: list[str] = []
    for _ in range(to_remove):
        position = find_trial_to_remove(points[remaining])
        if position is None:
            break
        removed.append(valid_ids[remaining.pop(position)])

    return SelectionResult(
        kept=tuple(valid_ids[i] for i in remaining),
        removed=tuple(removed),
        invalid=tuple(invalid),
        normalised=tuple(
            (trial_id, float(row[0]), float(row[1]))
            for trial_id, row in zip(valid_ids, points, strict=True)
        ),
        num_to_remove_requested=requested,
        num_removed_by_rule=len(removed),
    )


# --------------------------------------------------------------------------------------------
# The schedule
# --------------------------------------------------------------------------------------------


def removal_count(num_models: int, num_to_remove_per_iter: int, final_num_models: int) -> int:
    """How many models a round of ``num_models`` removes: ``min(per_iter, K - final)``, ≥ 0.

    Example::

        >>> removal_count(30, 5, 10), removal_count(12, 5, 10), removal_count(10, 5, 10)
        (5, 2, 0)
    """
    return max(0, min(num_to_remove_per_iter, num_models - final_num_models))


def next_round_pct(
    previous_pct: float, num_models: int, final_num_models: int
) -> tuple[float, bool]:
    """The next round's cumulative training pct and whether it is the final round.

    A round of K > ``final_num_models`` models trains to ``previous_pct + 100 / K``; with
    K ≤ ``final_num_models`` it is the final round and trains to completion (100.0; the
    reference writes 101 as "never stop"). The controller calls this with the actual number
    of survivors, so invalid trials shift the schedule as in the reference.

    Example::

        >>> next_round_pct(0.0, 25, 10), next_round_pct(19.0, 10, 10)
        ((4.0, False), (100.0, True))
    """
    k = _count("num_models", num_models, 1, "A round needs at least one model.")
    final = _count("final_num_models", final_num_models, 1, "Pass e.g. 10.")
    previous = _finite(previous_pct)
    if previous is None or previous < 0:
        raise UsageError(
            f"previous_pct must be a finite number ≥ 0, got {describe(previous_pct)}. Pass 0 "
            "for the first round."
        )
    if k <= final:
        return 100.0, True
    return previous + 100.0 / k, False


def round_schedule(
    start_num_models: int, final_num_models: int, num_to_remove_per_iter: int
) -> list[RoundPlan]:
    """Plan every round, assuming no trial turns invalid (the controller replans as it goes).

    Round K trains to the cumulative pct ``sum(100 / K)`` over the rounds so far and then
    removes :func:`removal_count` models; the round with K ≤ ``final_num_models`` is the
    final one and trains to completion. ``final_num_models`` must be at least
    :data:`MIN_MODELS`, since the rule never goes below that.

    Example::

        >>> [(p.num_models, round(p.desired_pct, 2), p.is_final)
        ...  for p in round_schedule(30, 10, 5)]  # doctest: +NORMALIZE_WHITESPACE
        [(30, 3.33, False), (25, 7.33, False), (20, 12.33, False), (15, 19.0, False),
         (10, 100.0, True)]
    """
    start = _count("start_num_models", start_num_models, 1, "Pass e.g. 30.")
    final = _count(
        "final_num_models",
        final_num_models,
        MIN_MODELS,
        f"The selection never leaves fewer than {MIN_MODELS} models; pass e.g. 10.",
    )
    per_iter = _count("num_to_remove_per_iter", num_to_remove_per_iter, 1, "Pass e.g. 5.")
    plans: list[RoundPlan] = []
    pct = 0.0
    k = start
    while True:
        pct, is_final = next_round_pct(pct, k, final)
        removing = 0 if is_final else removal_count(k, per_iter, final)
        plans.append(RoundPlan(len(plans), k, pct, is_final, removing))
        if is_final:
            return plans
        k -= removing


def stratified_holdout(
    accuracies: Sequence[float | None], k: int, seed: Sequence[int]
) -> list[int]:
    """Indices of ``k`` models to hold out: one drawn at random from each of ``k`` strata.

    The models, ordered by accuracy (missing ones last), are cut into ``k`` runs of
    consecutive models whose sizes differ by at most one (the larger runs drawn at random);
    one model is drawn at random from each run. Seeded by ``seed``; sorted indices.

    Example::

        stratified_holdout([0.9, 0.5, 0.7, 0.6], 2, (0, 1))  # one of the two weakest, one
                                                               # of the two strongest
    """
    n = len(accuracies)
    if k <= 0 or n == 0:
        return []
    k = min(k, n)
    rng = np.random.default_rng(list(seed))
    order = sorted(range(n), key=lambda i: (accuracies[i] is None, accuracies[i] or 0.0, i))
    sizes = [n // k] * k
    for j in rng.choice(k, size=n % k, replace=False).tolist():
        sizes[j] += 1
    chosen, start = [], 0
    for size in sizes:
        chosen.append(order[start + int(rng.integers(size))])
        start += size
    return sorted(chosen)
