"""Pure statistics over trial results: variation, curve smoothness and curve spread."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from proxytask.core.errors import UsageError, describe
from proxytask.core.metric import MetricMode, metric_mode

__all__ = [
    "SMOOTHNESS_SAMPLE_POINTS",
    "MeanSmoothnessResult",
    "SmoothnessResult",
    "SpreadResult",
    "VariationResult",
    "coefficient_of_variation",
    "curve_smoothness",
    "curve_spread",
    "mean_smoothness",
]

_FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------------------------
# Coefficient of variation
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VariationResult:
    """Spread of a set of values (e.g. the final accuracies of identical training copies).

    ``cv`` is the population std divided by the mean (the reference tools' variance). ``std``
    is the population std (ddof=0), ``sample_std`` the sample std (ddof=1), and
    ``std_ci_low``..``std_ci_high`` a chi-square confidence interval for the std at level
    ``confidence``. A value that cannot be computed is None and ``reason`` says why.
    """

    cv: float | None
    mean: float | None
    std: float | None
    sample_std: float | None
    std_ci_low: float | None
    std_ci_high: float | None
    confidence: float
    n: int
    values: tuple[float, ...]
    reason: str | None = None


def _check_confidence(confidence: float) -> float:
    if isinstance(confidence, bool) or not (0.0 < float(confidence) < 1.0):
        raise UsageError(
            f"confidence must be a number strictly between 0 and 1, got "
            f"{describe(confidence)}. Pass e.g. 0.95 for a 95 % interval."
        )
    return float(confidence)


def coefficient_of_variation(values: Sequence[float], confidence: float = 0.95) -> VariationResult:
    """Coefficient of variation (population std / mean) with the std and its CI.

    The confidence interval of the standard deviation uses the chi-square distribution of
    ``(n - 1) s² / σ²`` for normally distributed values, with ``s`` the sample std::

        low  = sqrt((n - 1) s² / chi2.ppf(1 - α/2, n - 1))
        high = sqrt((n - 1) s² / chi2.ppf(α/2, n - 1)),   α = 1 - confidence

    Never raises on degenerate data: fewer than 2 values, a zero mean or non-finite values
    give None for what cannot be computed, with ``reason`` set.

    Example::

        >>> r = coefficient_of_variation([0.9, 0.92, 0.94])
        >>> round(r.cv, 5), round(r.mean, 2), r.n
        (0.01775, 0.92, 3)
        >>> coefficient_of_variation([0.9]).reason
        'needs at least 2 values, got 1'
    """
    level = _check_confidence(confidence)
    vals = tuple(float(v) for v in values)
    n = len(vals)
    empty = VariationResult(
        cv=None,
        mean=None,
        std=None,
        sample_std=None,
        std_ci_low=None,
        std_ci_high=None,
        confidence=level,
        n=n,
        values=vals,
    )
    bad = [i for i, v in enumerate(vals) if not math.isfinite(v)]
    if bad:
        return dataclasses.replace(
            empty,
            reason=f"values must be finite, got {vals[bad[0]]} at index {bad[0]}",
        )
    if n == 0:
        return dataclasses.replace(empty, reason="needs at least 2 values, got 0")
    # Shifted by the first value, so identical values give exactly 0 (not rounding noise).
    shifted = np.asarray(vals, dtype=np.float64) - vals[0]
    shift_mean = math.fsum(shifted) / n
    mean = vals[0] + shift_mean
    sum_sq = math.fsum((shifted - shift_mean) ** 2)
    std = math.sqrt(sum_sq / n)
    if n < 2:
        return dataclasses.replace(
            empty, mean=mean, std=std, reason=f"needs at least 2 values, got {n}"
        )
    from scipy.stats import chi2  # deferred: scipy.stats is slow to import

    sample_std = math.sqrt(sum_sq / (n - 1))
    alpha = 1.0 - level
    dof = n - 1
    scaled = dof * sample_std**2
    ci_low = math.sqrt(scaled / float(chi2.ppf(1.0 - alpha / 2.0, dof)))
    ci_high = math.sqrt(scaled / float(chi2.ppf(alpha / 2.0, dof)))
    cv: float | None = None
    reason: str | None = None
    if mean == 0.0:
        reason = "the mean is 0, so the coefficient of variation is undefined"
    else:
        cv = std / mean
    return VariationResult(
        cv=cv,
        mean=mean,
        std=std,
        sample_std=sample_std,
        std_ci_low=ci_low,
        std_ci_high=ci_high,
        confidence=level,
        n=n,
        values=vals,
        reason=reason,
    )


# --------------------------------------------------------------------------------------------
# Smoothness
# --------------------------------------------------------------------------------------------

#: Sections of the normalised pct axis sampled by :func:`curve_smoothness`, 10 points each.
_SMOOTHNESS_SECTIONS = ((0.0, 0.7), (0.7, 0.9), (0.9, 1.0))
_POINTS_PER_SECTION = 10

#: The 30 normalised positions where :func:`curve_smoothness` samples the slope:
#: ``start + i * (end - start) / 10`` for i in 0..9 in each section (0.0, 0.07, ..., 0.99).
SMOOTHNESS_SAMPLE_POINTS: tuple[float, ...] = tuple(
    start + i * (end - start) / _POINTS_PER_SECTION
    for start, end in _SMOOTHNESS_SECTIONS
    for i in range(_POINTS_PER_SECTION)
)


@dataclasses.dataclass(frozen=True)
class SmoothnessResult:
    """Smoothness of one learning curve: |sum of the negative sampled slopes| (0 is best).

    ``slopes`` holds the 30 slopes sampled at :data:`SMOOTHNESS_SAMPLE_POINTS` of the
    normalised curve, or () when the value cannot be computed (``value`` None, ``reason``
    set). ``n_points`` is the number of points of the curve.
    """

    value: float | None
    n_points: int
    slopes: tuple[float, ...] = ()
    reason: str | None = None


def _curve_arrays(
    pcts: Sequence[float], accuracies: Sequence[float], *, strict: bool
) -> tuple[_FloatArray, _FloatArray]:
    """Validate one curve; pcts must increase (strictly, or non-decreasing when not strict)."""
    x = np.asarray([float(p) for p in pcts], dtype=np.float64)
    y = np.asarray([float(a) for a in accuracies], dtype=np.float64)
    if x.shape != y.shape:
        raise UsageError(
            f"pcts and accuracies must have the same length, got {x.size} pcts and "
            f"{y.size} accuracies. Pass one accuracy per evaluation pct."
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise UsageError(
            f"a curve's pcts and accuracies must be finite, got pcts {describe(x.tolist())} "
            f"and accuracies {describe(y.tolist())}. Drop failed (NaN) evaluations first."
        )
    steps = np.diff(x)
    bad = np.flatnonzero(steps <= 0 if strict else steps < 0)
    if bad.size:
        i = int(bad[0])
        rule = "strictly increasing" if strict else "non-decreasing"
        raise UsageError(
            f"pcts must be {rule}, got {x[i]} followed by {x[i + 1]} at index {i + 1}. "
            "Pass the evaluations of one trial in the order they were recorded."
        )
    return x, y


def curve_smoothness(
    pcts: Sequence[float],
    accuracies: Sequence[float],
    mode: MetricMode | str = MetricMode.MAX,
) -> SmoothnessResult:
    """Smoothness of a learning curve, by the reference tools' formula.

    Both axes are normalised to [0, 1] over the curve's own points (``(v - min) / (max -
    min)``); the slope of the piecewise-linear curve through the normalised points is
    sampled at 30 points, 10 evenly spaced in each of [0, 0.7), [0.7, 0.9) and [0.9, 1.0)
    (see :data:`SMOOTHNESS_SAMPLE_POINTS`); at a knot the slope of the segment to its right
    is used. The smoothness is the absolute value of the sum of the negative slopes, so a
    monotone curve scores 0.0 and every dip adds to it.

    A flat curve (all accuracies equal) or one with fewer than 2 points has no normalised
    form: ``value`` is None and ``reason`` says why. Raises UsageError (a ValueError) when the
    pcts are not strictly increasing, the lengths differ, or a value is not finite.

    With ``mode`` ``min`` (a loss: lower is better) the curve is judged as its negation, so a
    rising stretch is the bad slope and ``slopes`` are those of the negated curve.

    Example::

        >>> curve_smoothness([25, 50, 75, 100], [0.5, 0.7, 0.8, 0.85]).value
        0.0
        >>> curve_smoothness([25, 50, 75, 100], [2.0, 1.2, 0.9, 0.8], "min").value
        0.0
        >>> r = curve_smoothness([0, 90, 100], [0.0, 1.0, 0.5])  # dip over the last 10 %
        >>> round(r.value, 6)  # 10 samples in [0.9, 1.0) at slope -5
        50.0
    """
    x, y = _curve_arrays(pcts, accuracies, strict=True)
    n = int(x.size)
    if n < 2:
        return SmoothnessResult(value=None, n_points=n, reason=f"needs at least 2 points, got {n}")
    x_range = float(x[-1] - x[0])
    y_range = float(np.max(y) - np.min(y))
    if x_range <= 0.0:  # unreachable with strictly increasing pcts; kept as a guard
        return SmoothnessResult(value=None, n_points=n, reason="the pct range is zero")
    if y_range == 0.0:
        return SmoothnessResult(
            value=None,
            n_points=n,
            reason=f"the curve is flat (every accuracy is {float(y[0])}), so it cannot be "
            "normalised",
        )
    xn = (x - x[0]) / x_range
    y = y * metric_mode(mode).sign  # higher-is-better; the range is unchanged
    yn = (y - np.min(y)) / y_range
    segment_slopes = np.diff(yn) / np.diff(xn)
    samples = np.asarray(SMOOTHNESS_SAMPLE_POINTS, dtype=np.float64)
    # side="right" puts a sample lying on a knot into the segment that starts there.
    seg = np.clip(np.searchsorted(xn, samples, side="right") - 1, 0, n - 2)
    slopes = segment_slopes[seg]
    value = abs(float(np.sum(slopes[slopes < 0])))
    return SmoothnessResult(
        value=value, n_points=n, slopes=tuple(float(s) for s in slopes), reason=None
    )


@dataclasses.dataclass(frozen=True)
class MeanSmoothnessResult:
    """The mean smoothness of several curves (e.g. the copies of a variance measurement).

    ``per_curve`` holds each curve's result in input order; ``value`` is the mean over the
    ``n_used`` computable ones, None (with ``reason``) when none is. ``n`` counts all curves.
    """

    value: float | None
    per_curve: tuple[SmoothnessResult, ...]
    n: int
    n_used: int
    reason: str | None = None


def mean_smoothness(
    curves: Sequence[tuple[Sequence[float], Sequence[float]]],
    mode: MetricMode | str = MetricMode.MAX,
) -> MeanSmoothnessResult:
    """Smoothness per curve (:func:`curve_smoothness`, in ``mode``), then averaged over
    computable ones.

    Example::

        >>> r = mean_smoothness([([50, 100], [0.6, 0.8]), ([50, 100], [0.7, 0.7])])
        >>> r.value, r.n_used, r.n
        (0.0, 1, 2)
    """
    results = tuple(curve_smoothness(p, a, mode) for p, a in curves)
    used = [r.value for r in results if r.value is not None]
    if not used:
        reasons = sorted({r.reason for r in results if r.reason})
        reason = (
            "no curves given"
            if not results
            else f"no curve has a computable smoothness ({'; '.join(reasons)})"
        )
        return MeanSmoothnessResult(
            value=None, per_curve=results, n=len(results), n_used=0, reason=reason
        )
    return MeanSmoothnessResult(
        value=float(np.mean(used)), per_curve=results, n=len(results), n_used=len(used)
    )


# --------------------------------------------------------------------------------------------
# Spread of several curves
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SpreadResult:
    """Per-pct spread of several learning curves, aligned on the union of their pcts.

    Entry ``i`` of ``n``, ``mean``, ``std`` (population), ``min`` and ``max`` describes the
    curves defined at ``pcts[i]``; only pcts where at least 2 curves are defined appear.
    ``max_std`` is the largest std over the grid and ``max_std_pct`` where it occurs (the
    first such pct), None with ``reason`` when the grid is empty. ``n_curves`` counts all
    input curves.
    """

    pcts: tuple[float, ...]
    n: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    min: tuple[float, ...]
    max: tuple[float, ...]
    max_std: float | None
    max_std_pct: float | None
    n_curves: int
    reason: str | None = None


def _interpolate(x: _FloatArray, y: _FloatArray, grid: _FloatArray) -> _FloatArray:
    """The SPEC interpolation at each grid pct (NaN where the curve has not reached it).

    Mirrors ``proxytask.trainer.get_accuracy_at_pct``: an implicit (0 %, 0.0) first point,
    linear between the first recorded point at or beyond the pct and the one before it, and
    undefined past the last point.
    """
    out = np.full(grid.shape, np.nan, dtype=np.float64)
    if x.size == 0:
        return out
    xs = np.concatenate(([0.0], x))
    ys = np.concatenate(([0.0], y))
    for k, p in enumerate(grid):
        if p > xs[-1]:
            continue
        if p <= 0.0:
            out[k] = 0.0
            continue
        i = int(np.searchsorted(xs, p, side="left"))  # first xs[i] >= p, so xs[i-1] < p
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        out[k] = y1 if x1 == x0 else y0 + (y1 - y0) * (p - x0) / (x1 - x0)
    return out


def curve_spread(curves: Sequence[tuple[Sequence[float], Sequence[float]]]) -> SpreadResult:
    """The spread of several curves at each evaluation pct, without extrapolation.

    Each curve is ``(pcts, accuracies)`` with non-decreasing pcts. The grid is the union of
    all curves' pcts; a curve contributes at a grid pct by linear interpolation with an
    implicit (0 %, 0.0) first point, and only once its last point reaches that pct (a copy
    that stopped early is never extrapolated). Grid pcts where fewer than 2 curves are
    defined are left out.

    Example::

        >>> r = curve_spread([([50, 100], [0.6, 0.9]), ([50], [0.4])])
        >>> r.pcts, r.n, r.mean
        ((50.0,), (2,), (0.5,))
    """
    arrays = [_curve_arrays(p, a, strict=False) for p, a in curves]
    n_curves = len(arrays)
    grid = np.unique(np.concatenate([x for x, _ in arrays])) if arrays else np.array([])
    if grid.size == 0:
        table = np.empty((0, 0), dtype=np.float64)
    else:
        table = np.vstack([_interpolate(x, y, grid) for x, y in arrays])
    rows = [
        (float(grid[k]), defined)
        for k in range(grid.size)
        if (defined := table[~np.isnan(table[:, k]), k]).size >= 2
    ]
    stds = tuple(float(np.std(d, ddof=0)) for _, d in rows)
    if not stds:
        reason = (
            f"needs at least 2 curves defined at a common pct, got {n_curves} curve(s)"
            if n_curves >= 2
            else f"needs at least 2 curves, got {n_curves}"
        )
        return SpreadResult((), (), (), (), (), (), None, None, n_curves, reason)
    best = int(np.argmax(stds))
    return SpreadResult(
        pcts=tuple(p for p, _ in rows),
        n=tuple(int(d.size) for _, d in rows),
        mean=tuple(float(np.mean(d)) for _, d in rows),
        std=stds,
        min=tuple(float(np.min(d)) for _, d in rows),
        max=tuple(float(np.max(d)) for _, d in rows),
        max_std=stds[best],
        max_std_pct=rows[best][0],
        n_curves=n_curves,
    )
