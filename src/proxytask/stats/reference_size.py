"""How many reference models a search needs: the full-vs-full tau ceiling and the confident
rule's reference-set size.

**The ceiling.** No proxy ranks the reference models better than a second full training of
them does: :func:`full_vs_full_tau` is the Kendall tau-b expected between two independent full
trainings. Each training's accuracy is taken as the model's accuracy plus independent normal
seed noise of std σ (one σ for all models, or one per model). For a pair with accuracy gap
``d``, one training orders it as the truth does with probability ``p = Φ(|d| / sqrt(σ_i² +
σ_j²))``; two independent trainings agree with probability ``p² + (1 − p)²``, so the pair adds
``(2p − 1)²`` to the expected concordance. The ceiling is the mean of that over the pairs. A
pair with equal accuracies and no noise at all is a tie in every training and leaves tau-b's
denominator, as tau-b does (the models stuck at chance in NAS-Bench-201). A test checks the
formula against a Monte Carlo of two noisy trainings.

Assumptions: the seed noise is normal and the same in every training; the recorded accuracies
stand in for the true ones. They are one training each, so their gaps carry noise: when many
reference models are closer than about 2σ, the ceiling is optimistic (by up to ~0.2 for a set
as tightly packed as σ); with a spread-out reference set (the usual case, and what model
selection aims at) it is within ~0.01.

**The size.** The confident rule passes a proxy once ``probability_above(tau, n, threshold)``
(:func:`proxytask.stats.uncertainty.probability_above`, the Fieller–Hartley–Pearson normal
approximation) reaches the level of one look, ``1 − (1 − confidence) / looks`` for a search that
evaluates ``looks`` times over its budget, evenly (:data:`DEFAULT_LOOKS`: every 5 %; see
:func:`proxytask.stats.uncertainty.look_shares`). :func:`models_needed` is the smallest ``n`` for
which a proxy whose measured tau equals ``tau`` passes: at the ceiling (the best any proxy can
do) it is the fewest reference models that can give a verdict at all; midway between the
threshold and the ceiling, a realistic good proxy. It assumes the ceiling measured on the
chosen reference models holds for a set of another size drawn the same way, and that the
measured tau is the true one (at that ``n`` a proxy whose true tau is exactly that passes about
half the time). None when the tau is at or below the threshold: no reference set can pass.

:func:`reference_size_advice` gathers the figures in a frozen :class:`ReferenceSizeAdvice`.

Example::

    >>> advice = reference_size_advice([0.70, 0.80, 0.85, 0.88, 0.90, 0.91], 0.003, 0.65, 0.85)
    >>> advice.needed_at_ceiling, advice.too_small
    (7, True)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import special as _special
from scipy import stats as _scipy_stats

from proxytask.core.errors import UsageError
from proxytask.stats.uncertainty import (
    FHP_VARIANCE,
    MIN_MODELS_FOR_INTERVAL,
    look_confidence,
    probability_above,
)

__all__ = [
    "DEFAULT_LOOKS",
    "MAX_MODELS",
    "ReferenceSizeAdvice",
    "full_vs_full_tau",
    "models_needed",
    "reference_size_advice",
    "seed_noise_of_variance_result",
]

#: :func:`models_needed` reports at most this many models (a larger need is a "no").
MAX_MODELS = 100_000
#: The evaluations a search is assumed to make over a proxy's budget when advising on the
#: reference-set size (one every 5 % of it); the more often a search looks, the more models a
#: confident verdict needs.
DEFAULT_LOOKS = 20


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{name} must be a finite number, got {value!r}.")
    return float(value)


def _check_noise(noise_std: float | Sequence[float], n: int) -> np.ndarray:
    values = [noise_std] * n if isinstance(noise_std, (int, float)) else list(noise_std)
    if len(values) != n:
        raise UsageError(
            f"the seed noise must be one std or one per model ({n}), got {len(values)} values."
        )
    checked = [_finite("the seed noise std", v) for v in values]
    if any(v < 0 for v in checked):
        raise UsageError(
            f"the seed noise std must be >= 0, got {min(checked)!r}. Pass the std of one "
            "model's final accuracy over trainings with different seeds (proxytask variance)."
        )
    return np.asarray(checked, dtype=float)


def _check_threshold(threshold: float) -> float:
    value = _finite("the threshold", threshold)
    if not -1.0 < value < 1.0:
        raise UsageError(
            f"the threshold must lie strictly between -1 and 1, got {threshold!r}. "
            "Use the search's desired accuracy correlation, e.g. 0.65."
        )
    return value


def _check_confidence(confidence: float) -> float:
    value = _finite("the confidence", confidence)
    if not 0.5 <= value < 1.0:
        raise UsageError(f"the confidence must lie in [0.5, 1), got {confidence!r}. Use e.g. 0.85.")
    return value


def full_vs_full_tau(accuracies: Sequence[float], noise_std: float | Sequence[float]) -> float:
    """The Kendall tau-b expected between two independent full trainings of these models.

    ``accuracies``: each model's accuracy (at least 2, not all equal); ``noise_std``: the std
    of one training's accuracy around it (one for all, or one per model). See the module
    docstring for the formula and its assumptions.

    Example::

        >>> round(full_vs_full_tau([0.80, 0.85, 0.90], 0.0), 3)
        1.0
        >>> round(full_vs_full_tau([0.80, 0.801], 0.01), 3)
        0.003
    """
    values = [_finite("each accuracy", a) for a in accuracies]
    if len(values) < 2:
        raise UsageError(
            f"the ceiling needs at least 2 accuracies, got {len(values)}. Train more models."
        )
    sigma = _check_noise(noise_std, len(values))
    x = np.asarray(values, dtype=float)
    i, j = np.triu_indices(len(x), 1)
    gap = np.abs(x[i] - x[j])
    spread = np.sqrt(sigma[i] ** 2 + sigma[j] ** 2)
    tied = (gap == 0) & (spread == 0)  # equal and noiseless: a tie in every training
    if tied.all():
        raise UsageError(
            "the accuracies must not all be equal with no seed noise: Kendall tau-b is "
            "undefined for them."
        )
    safe = np.where(spread > 0, spread, 1.0)
    p = np.where(spread > 0, _special.ndtr(gap / safe), 1.0)
    agreement = np.where(tied, 0.0, (2.0 * p - 1.0) ** 2)
    return float(agreement.sum() / (len(gap) - tied.sum()))


def models_needed(tau: float, threshold: float, confidence: float, looks: int = 1) -> int | None:
    """The fewest models for which a measured ``tau`` gives
    ``probability_above(tau, n, threshold) >= 1 − (1 − confidence) / looks`` (the confident
    rule passes at one of ``looks`` evenly spaced evaluations).

    None when ``tau`` is at or below the threshold (no number of models is enough) or the need
    exceeds :data:`MAX_MODELS`. At least :data:`MIN_MODELS_FOR_INTERVAL`.

    Example::

        >>> models_needed(0.9, 0.65, 0.85), models_needed(0.6, 0.65, 0.85)
        (5, None)
    """
    tau = _finite("tau", tau)
    if not -1.0 <= tau <= 1.0:
        raise UsageError(f"tau must lie in [-1, 1], got {tau!r}.")
    threshold, confidence = _check_threshold(threshold), _check_confidence(confidence)
    if isinstance(looks, bool) or not isinstance(looks, int) or looks < 1:
        raise UsageError(f"looks must be an integer >= 1, got {looks!r}.")
    if tau <= threshold:
        return None
    confidence = look_confidence(confidence, 1.0 / looks)
    q = float(_scipy_stats.norm.ppf(confidence))
    z_gap = (math.atanh(tau) if tau < 1.0 else math.inf) - math.atanh(threshold)
    # the exact answer without probability_above's pull-in at ±1; the pull-in only adds models
    estimate = 4.0 + FHP_VARIANCE * q * q / (z_gap * z_gap)
    n = max(MIN_MODELS_FOR_INTERVAL, math.ceil(estimate) - 1)
    while probability_above(tau, n, threshold) < confidence:
        n += 1
        if n > MAX_MODELS:
            return None
    return n


@dataclasses.dataclass(frozen=True)
class ReferenceSizeAdvice:
    """How many reference models the confident rule needs, for the chosen set.

    ``ceiling``: the full-vs-full Kendall tau-b (:func:`full_vs_full_tau`);
    ``needed_at_ceiling``: the fewest reference models with which a proxy as good as a second
    full training passes (None: no number does, the ceiling is at or below the threshold);
    ``needed_midway``: the same for a proxy whose tau is ``midway_tau``, halfway between the
    threshold and the ceiling; ``too_small``: ``num_reference_models`` is below
    ``needed_at_ceiling``; ``message``: the figures in one line.
    """

    ceiling: float
    seed_noise_std: float
    num_reference_models: int
    threshold: float
    confidence: float
    needed_at_ceiling: int | None
    midway_tau: float
    needed_midway: int | None
    too_small: bool
    message: str
    looks: int = DEFAULT_LOOKS

    @property
    def reachable(self) -> bool:
        """False when no number of reference models lets a proxy pass (ceiling ≤ threshold)."""
        return self.needed_at_ceiling is not None

    @property
    def warning(self) -> str | None:
        """What to change, when the set is too small or no set can pass; None otherwise."""
        if not self.reachable:
            return (
                f"no number of reference models is enough: the full-vs-full ceiling "
                f"{self.ceiling:.3f} is at or below the threshold {self.threshold:g}. Lower "
                "desired-accuracy-correlation below the ceiling, or reduce the seed noise "
                f"(std {self.seed_noise_std:.4g}: e.g. more validation data, a longer schedule)."
            )
        if self.too_small:
            return (
                f"{self.num_reference_models} reference models are too few: even a proxy as "
                f"good as a second full training (tau {self.ceiling:.3f}) reaches a confident "
                f"verdict only with {self.needed_at_ceiling}. Set final-num-models: "
                f"{self.needed_at_ceiling} (--final-num-models {self.needed_at_ceiling}) or more."
            )
        return None

    def lines(self, indent: str = "", label: str = "reference set size") -> list[str]:
        """The message, and the warning when there is one, as terminal lines."""
        out = [f"{indent}{label}: {self.message}"]
        return out + ([f"{indent}warning: {self.warning}"] if self.warning else [])

    def to_dict(self) -> dict[str, Any]:
        """The ``reference_set_size`` entry of ``RECOMMENDATION.json``."""
        return {
            "ceiling_tau": self.ceiling,
            "seed_noise_std": self.seed_noise_std,
            "num_reference_models": self.num_reference_models,
            "threshold": self.threshold,
            "confidence": self.confidence,
            "needed_at_ceiling": self.needed_at_ceiling,
            "midway_tau": self.midway_tau,
            "needed_midway": self.needed_midway,
            "too_small": self.too_small,
            "message": self.message,
            "looks": self.looks,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceSizeAdvice:
        """Parse :meth:`to_dict`'s form."""
        return cls(  # "looks" is absent in files written before it existed
            ceiling=data["ceiling_tau"],
            **{
                f.name: data.get(f.name, DEFAULT_LOOKS) if f.name == "looks" else data[f.name]
                for f in dataclasses.fields(cls)
                if f.name != "ceiling"
            },
        )


def _message(
    ceiling: float,
    noise: float,
    n: int,
    threshold: float,
    confidence: float,
    needed: tuple[int | None, int | None],
    midway: float,
    looks: int,
) -> str:
    head = (
        f"full-vs-full Kendall tau-b ceiling {ceiling:.3f} (seed noise std {noise:.4g}, "
        f"{n} reference models)"
    )
    at_ceiling, at_midway = needed
    if at_ceiling is None:
        return f"{head}: at or below the threshold {threshold:g}, no reference set can pass"
    return (
        f"{head}: the confident rule (threshold {threshold:g}, confidence {confidence:g}, "
        f"{looks} evaluations over the budget) needs "
        f"{at_ceiling} reference models for a proxy at the ceiling, {at_midway} for one at "
        f"tau {midway:.3f}"
    )


def reference_size_advice(
    accuracies: Sequence[float | None],
    seed_noise_std: float,
    threshold: float,
    confidence: float,
    looks: int = DEFAULT_LOOKS,
) -> ReferenceSizeAdvice:
    """The ceiling and reference-set sizes for these reference models (None accuracies are
    left out; ``num_reference_models`` counts the rest), for a search evaluating ``looks``
    times over its budget.

    Example::

        advice = reference_size_advice(result_accuracies, 0.0033, 0.65, 0.85)
        print(advice.message); print(advice.warning or "")
    """
    present = [a for a in accuracies if a is not None]
    noise = _finite("the seed noise std", seed_noise_std)
    ceiling = full_vs_full_tau(present, noise)
    threshold, confidence = _check_threshold(threshold), _check_confidence(confidence)
    midway = (threshold + ceiling) / 2.0
    at_ceiling = models_needed(ceiling, threshold, confidence, looks)
    at_midway = models_needed(midway, threshold, confidence, looks) if at_ceiling else None
    n = len(present)
    return ReferenceSizeAdvice(
        ceiling=ceiling,
        seed_noise_std=noise,
        num_reference_models=n,
        threshold=threshold,
        confidence=confidence,
        needed_at_ceiling=at_ceiling,
        midway_tau=midway,
        needed_midway=at_midway,
        too_small=at_ceiling is not None and n < at_ceiling,
        message=_message(
            ceiling, noise, n, threshold, confidence, (at_ceiling, at_midway), midway, looks
        ),
        looks=looks,
    )


def seed_noise_of_variance_result(result: Mapping[str, Any] | None) -> float | None:
    """The seed noise std of a variance measurement's result (its JSON form): the sample std
    (ddof = 1, an unbiased variance estimate: the population std of 3 copies is ~18 % low),
    else the population std; None when it has neither."""
    for key in ("sample_std", "std"):
        value = (result or {}).get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value) and value >= 0:
            return float(value)
    return None
