"""How sure a Kendall tau from a handful of reference models is: intervals and probabilities.

A proxy task's Kendall tau-b is measured on n reference models (10 by default). Its sampling
spread at that size is large: under a bivariate-normal model a proxy whose true tau is 0.5
reaches a sample tau of 0.65 or more about 20 % of the time at n = 10. This module puts a
number on it.

**The analytic interval (default).** Fieller, Hartley and Pearson (1957, *Biometrika* 44)
showed that ``z = arctanh(tau)`` is close to normal with variance ``0.437 / (n - 4)`` for
samples from a bivariate normal population. :func:`tau_interval` is the interval
``tanh(z ± q·se)`` and :func:`probability_above` the chance that the *true* tau exceeds a
threshold, ``Φ((arctanh(tau) − arctanh(t)) / se)`` (the normal approximation read with a flat
prior on z: a confidence, not a p-value). It needs n ≥ 5. It is sound when the scores are
continuous and roughly bivariate normal after a monotone transform (rank statistics do not
change under one); with many ties, tau-b's spread differs and :func:`bootstrap_tau_interval`
is the better check. A perfect sample (tau = ±1) would give an infinite z: tau is first pulled
in by one pair, to ``±(P − 1) / P`` with ``P = n(n − 1) / 2`` pairs, so the interval stays
finite and a perfect ranking of 5 models is not read as certainty.

**The bootstrap interval.** :func:`bootstrap_tau_interval` resamples the models with
replacement and takes percentiles of tau-b. It assumes nothing about the scores' distribution
but is too narrow at n = 10 (a perfect sample bootstraps to [1, 1]); proxytask reports it for
researchers and uses the analytic interval to decide.

**Repeated looks.** A search evaluates a proxy's tau at every step its trials report and
stops at the first that passes, so a per-step level of 85 % would be spent many times over:
on NAS-Bench-201's real curves, the confident rule judged at 85 % per step passed proxies whose
true tau was below the threshold in 26 % of searches evaluating every epoch (the benchmark
``bench/real_curves.py``). The search therefore spends its error budget ``1 − confidence``
across the step budget (a Bonferroni split): a look at step ``s_k`` gets the share
``w_k = (s_k − s_{k−1}) / total_steps`` of it (:func:`look_shares`), its interval is the
two-sided interval at ``1 − (1 − confidence)·w_k`` (:func:`look_confidence`) and its
probability the adjusted ``1 − (1 − P)/w_k`` (:func:`adjust_probability`). Evaluating twice as
often halves each look's share: looking more often costs evidence, not error. The intervals
so made hold the true tau at every look at once with probability ≥ ``confidence``, so they
still do at the step where a rule stopped. Without a known budget the shares are
``1 / (k (k + 1))`` for the k-th look (they also sum to 1).

Every number here is labelled with the statistic it is about: :data:`KENDALL_TAU_B`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from proxytask.core.errors import UsageError

__all__ = [
    "FHP_VARIANCE",
    "KENDALL_TAU_B",
    "MIN_MODELS_FOR_INTERVAL",
    "TauInterval",
    "adjust_probability",
    "bootstrap_tau_interval",
    "kendall_tau_b",
    "look_confidence",
    "look_shares",
    "probability_above",
    "tau_interval",
    "tau_standard_error",
]

#: The statistic's label in every file and plot.
KENDALL_TAU_B = "Kendall tau-b"
#: Fieller–Hartley–Pearson: var(arctanh(tau)) ≈ 0.437 / (n − 4).
FHP_VARIANCE = 0.437
#: The analytic interval needs at least this many models.
MIN_MODELS_FOR_INTERVAL = 5


def _scipy_stats() -> Any:
    """``scipy.stats``, imported at first use: a process that only reads or plots results
    (the plot workers) never pays its import (a second on a small machine)."""
    from scipy import stats

    return stats


def _check_confidence(confidence: float) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
        raise UsageError(f"confidence must be a number in (0, 1), got {confidence!r}.")
    if not 0.0 < float(confidence) < 1.0:
        raise UsageError(
            f"confidence must lie strictly between 0 and 1, got {confidence!r}. Use e.g. 0.9."
        )
    return float(confidence)


def _check_tau(name: str, tau: float) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau):
        raise UsageError(f"{name} must be a finite number in [-1, 1], got {tau!r}.")
    if not -1.0 <= float(tau) <= 1.0:
        raise UsageError(f"{name} must lie in [-1, 1], got {tau!r}.")
    return float(tau)


def _check_share(share: float) -> float:
    if not 0.0 < share <= 1.0:
        raise UsageError(f"a look's share of the error budget must lie in (0, 1], got {share!r}.")
    return share


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < MIN_MODELS_FOR_INTERVAL:
        raise UsageError(
            f"the number of models must be an integer >= {MIN_MODELS_FOR_INTERVAL} for an "
            f"interval on Kendall tau, got {n!r}. Train more reference models."
        )
    return n


@dataclasses.dataclass(frozen=True)
class TauInterval:
    """A two-sided interval for a Kendall tau-b at a confidence level, and how it was made."""

    tau: float
    low: float
    high: float
    confidence: float
    n: int
    method: str  # "fieller_hartley_pearson" or "bootstrap_percentile"
    statistic: str = KENDALL_TAU_B


def tau_standard_error(n: int) -> float:
    """The standard error of ``arctanh(tau)`` from n models: ``sqrt(0.437 / (n − 4))``."""
    return math.sqrt(FHP_VARIANCE / (_check_n(n) - 4))


def _z(tau: float, n: int) -> float:
    pairs = n * (n - 1) / 2
    limit = (pairs - 1) / pairs  # one pair short of perfect: a finite z for tau = ±1
    return math.atanh(max(-limit, min(limit, tau)))


def tau_interval(tau: float, n: int, confidence: float = 0.95) -> TauInterval:
    """The Fieller–Hartley–Pearson interval for a Kendall tau-b from ``n`` models.

    Example::

        >>> iv = tau_interval(0.6, 10, 0.95)
        >>> round(iv.low, 2), round(iv.high, 2)
        (0.16, 0.84)
    """
    tau = _check_tau("tau", tau)
    n = _check_n(n)
    q = float(_scipy_stats().norm.ppf(0.5 + _check_confidence(confidence) / 2.0))
    z, se = _z(tau, n), tau_standard_error(n)
    return TauInterval(  # the pull-in at ±1 must not leave the sample tau outside
        tau=tau,
        low=min(tau, math.tanh(z - q * se)),
        high=max(tau, math.tanh(z + q * se)),
        confidence=confidence,
        n=n,
        method="fieller_hartley_pearson",
    )


def probability_above(tau: float, n: int, threshold: float) -> float:
    """The approximate probability that the true Kendall tau-b exceeds ``threshold``.

    ``Φ((arctanh(tau) − arctanh(threshold)) / se)`` with the Fieller–Hartley–Pearson standard
    error (see the module docstring). 0.5 when the sample tau equals the threshold.

    Example::

        >>> round(probability_above(0.65, 10, 0.65), 2)
        0.5
    """
    tau = _check_tau("tau", tau)
    threshold = _check_tau("threshold", threshold)
    n = _check_n(n)
    if threshold >= 1.0:
        return 0.0
    if threshold <= -1.0:
        return 1.0
    x = (_z(tau, n) - math.atanh(threshold)) / tau_standard_error(n)
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))  # Φ(x), without scipy's overhead


def look_shares(steps: Sequence[int], total_steps: int | None) -> tuple[float, ...]:
    """Each look's share of the error budget (see the module docstring).

    ``steps`` are the looks' 0-based end steps, increasing; ``total_steps`` the proxy's step
    budget (None: unknown). With a budget the share of the look at ``steps[k]`` is its span
    ``(steps[k] − steps[k−1]) / total_steps`` (the first look's span starts at step −1); a
    budget smaller than the steps reached is replaced by the last step + 1. Without one the
    k-th look (from 1) gets ``1 / (k (k + 1))``. The shares sum to at most 1.

    Example::

        >>> look_shares([9, 19, 39], 40)
        (0.25, 0.25, 0.5)
    """
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise UsageError(f"the look steps must increase, got {list(steps)!r}.")
    if not steps:
        return ()
    if total_steps is None:
        return tuple(1.0 / (k * (k + 1)) for k in range(1, len(steps) + 1))
    budget = max(int(total_steps), steps[-1] + 1)
    starts = [-1, *steps[:-1]]
    return tuple((step - start) / budget for start, step in zip(starts, steps, strict=True))


def look_confidence(confidence: float, share: float) -> float:
    """The per-look level that spends ``share`` of the error budget: ``1 − (1 − c)·share``.

    Example::

        >>> round(look_confidence(0.85, 0.05), 4)
        0.9925
    """
    return 1.0 - (1.0 - _check_confidence(confidence)) * _check_share(share)


def adjust_probability(probability: float, share: float) -> float:
    """A probability above the threshold read at one look with ``share`` of the error budget:
    ``1 − min(1, (1 − P) / share)`` (so it reaches a confidence c exactly when
    ``P ≥ look_confidence(c, share)``).

    Example::

        >>> round(adjust_probability(0.995, 0.05), 2)
        0.9
    """
    return 1.0 - min(1.0, (1.0 - probability) / _check_share(share))


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall tau-b of two equal-length score lists (None when either is constant)."""
    if len(x) != len(y):
        raise UsageError(f"x and y must have the same length, got {len(x)} and {len(y)}.")
    if len(set(x)) < 2 or len(set(y)) < 2:
        return None
    value = float(_scipy_stats().kendalltau(x, y, variant="b")[0])
    return value if math.isfinite(value) else None


def bootstrap_tau_interval(
    x: Sequence[float],
    y: Sequence[float],
    confidence: float = 0.95,
    draws: int = 2000,
    seed: int = 0,
) -> TauInterval:
    """A percentile bootstrap interval for Kendall tau-b, resampling models with replacement.

    Resamples in which either score list is constant are skipped. Deterministic for a seed.

    Example::

        iv = bootstrap_tau_interval(proxy_scores, full_scores, 0.9)
    """
    confidence = _check_confidence(confidence)
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 100:
        raise UsageError(f"draws must be an integer >= 100, got {draws!r}.")
    n = _check_n(len(x))
    tau = kendall_tau_b(x, y)
    if tau is None:
        raise UsageError("the scores must not be constant: Kendall tau-b is undefined for them.")
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        idx = rng.integers(0, n, size=n)
        value = kendall_tau_b(xs[idx].tolist(), ys[idx].tolist())
        if value is not None:
            values.append(value)
    if len(values) < draws // 2:
        raise UsageError(
            f"the bootstrap gave too few usable resamples ({len(values)} of {draws}): the "
            "scores are nearly constant. Use more models."
        )
    alpha = 1.0 - confidence
    low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return TauInterval(
        tau=tau,
        low=float(low),
        high=float(high),
        confidence=confidence,
        n=n,
        method="bootstrap_percentile",
    )
