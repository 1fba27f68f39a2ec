"""How stable the proxy-task winner is: resample the reference models, no extra training.

A proxy-task search picks one winner from a handful of reference models (10 by default). With
so few models the winner may owe as much to which models happened to be drawn as to the proxy.
:func:`winner_frequencies` asks, from the learning curves already recorded, how often the same
proxy would win had a different set of reference models been drawn: each draw resamples the
models with replacement (the same models for every proxy config: a paired bootstrap),
recomputes every config's step statistics and stopping decision on the resampled lists, and
picks the winner as the search does (:func:`proxytask.stats.search.best_proxy_task`).

**Each config is judged on its own.** In a live search, ``early_stop_if_not_best`` stops a
config once it runs longer than the best config that already finished, so the outcome depends
on the order the configs finish in. A resample has no such order, so every config is scanned
independently with the same rule and thresholds (the early-stop rule is off); the fastest
successful config then wins. The observed winner reported here is computed the same way on the
models as drawn, so it may differ from a live search's winner when that search stopped a config
early against another.

**What it cannot see.** The bootstrap is an approximation at n = 10: a resample holds about 6.5
distinct models (a repeated model is a tie in both scores), and a config that ranks the drawn
models perfectly ranks every resample perfectly too (see :mod:`proxytask.stats.uncertainty`). A high
frequency says the choice does not hinge on which of these models were drawn, not that it would
survive a new set of models.

**Speed.** A draw recomputes every config's statistics at every step, 200 times per search,
so the Kendall tau-b of a resample is counted over all pairs in numpy (the same floats as
scipy's) instead of one scipy call per step. Everything else is step_stats' own code: the
grid and each trial's accuracy on it come once per config from
:func:`proxytask.stats.search.curve_table`, the medians from
:func:`proxytask.stats.search.median_at_step`, and
:func:`proxytask.stats.search.scan_stopping` decides. The p-values are not computed (None):
the stopping rules do not read them.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from proxytask.core.errors import UsageError
from proxytask.stats.search import (
    MIN_PAIRS,
    MIN_VALID_RATIO,
    StepStats,
    StopDecision,
    StoppingState,
    best_proxy_task,
    check_pair_rules,
    curve_table,
    median_at_step,
    scan_stopping,
    step_budget,
)
from proxytask.trainer.contract import TrialTrainingMetrics

__all__ = ["NO_WINNER", "StabilityResult", "winner_frequencies"]

#: The key of :attr:`StabilityResult.frequencies` for draws in which no config succeeded.
NO_WINNER = "none"

#: The scan_stopping arguments that compare a config against the others: refused here.
_COMPARING_ARGS = frozenset({"best_training_time_hrs", "early_stop_if_not_best"})

_FloatArray = npt.NDArray[np.float64]
_IntArray = npt.NDArray[np.int64]
_BoolArray = npt.NDArray[np.bool_]


@dataclasses.dataclass(frozen=True)
class StabilityResult:
    """How often each proxy config won over ``draws`` paired resamples of the reference models.

    ``frequencies`` maps every config's name, in the order given, and then :data:`NO_WINNER`
    (draws in which no config met its goal) to the fraction of draws it won; they sum to 1.
    ``observed_winner`` is the winner on the models as drawn (None: no config succeeded) and
    ``observed_winner_frequency`` the fraction of draws it also wins (for None, the fraction of
    draws without a winner). ``rule`` is the stopping rule used, ``n_models`` the number of
    reference models resampled in each draw. ``tied_draws`` counts the draws whose winner
    shared its final training time with another successful config: best_proxy_task then takes
    the first name, as the search does, so many ties favour the names that sort first.
    """

    draws: int
    seed: int
    n_models: int
    rule: str
    frequencies: Mapping[str, float]
    observed_winner: str | None
    observed_winner_frequency: float
    tied_draws: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``frequencies`` as a plain object, None → null)."""
        return {
            "draws": self.draws,
            "seed": self.seed,
            "n_models": self.n_models,
            "rule": self.rule,
            "frequencies": dict(self.frequencies),
            "observed_winner": self.observed_winner,
            "observed_winner_frequency": self.observed_winner_frequency,
            "tied_draws": self.tied_draws,
        }


@dataclasses.dataclass(frozen=True)
class _Table:
    """One config's trials on its full step grid: what a resample's statistics are built from.

    ``recorded[i, g]``: trial ``i`` has a point at ``steps[g]``; ``accuracy[i, g]``: its
    accuracy there as step_stats reads it (NaN for None); ``hours_per_step[i]``: its seconds
    per step in hours (None when unknown).
    """

    steps: _IntArray
    recorded: _BoolArray
    accuracy: _FloatArray
    hours_per_step: tuple[float | None, ...]


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return value


def _full_scores(full_accuracies: Sequence[float | None]) -> _FloatArray:
    """The full-training accuracies as floats, NaN where missing (None, NaN or ±inf)."""
    if isinstance(full_accuracies, (str, bytes)) or not isinstance(full_accuracies, Sequence):
        raise UsageError(
            f"full_accuracies must be a list with one accuracy per reference model, got "
            f"{full_accuracies!r}."
        )
    if not full_accuracies:
        raise UsageError("full_accuracies is empty: pass one accuracy per reference model.")
    out = np.full(len(full_accuracies), np.nan)
    for i, value in enumerate(full_accuracies):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(
                f"full_accuracies[{i}] must be a number or None (missing), got {value!r}."
            )
        if math.isfinite(value):
            out[i] = float(value)
    return out


def _check_curves(
    curves: Mapping[str, Sequence[TrialTrainingMetrics | None]], n_models: int
) -> dict[str, list[TrialTrainingMetrics | None]]:
    if not isinstance(curves, Mapping) or not curves:
        raise UsageError(
            f"curves must be a non-empty mapping of proxy config name to its trials (one per "
            f"reference model), got {curves!r}."
        )
    out: dict[str, list[TrialTrainingMetrics | None]] = {}
    for name, trials in curves.items():
        if not isinstance(name, str) or name == NO_WINNER:
            raise UsageError(
                f"proxy config names must be strings other than {NO_WINNER!r} (which counts "
                f"the draws without a winner), got {name!r}. Rename the config."
            )
        if isinstance(trials, (str, bytes)) or not isinstance(trials, Sequence):
            raise UsageError(f"curves[{name!r}] must be a list of trials, got {trials!r}.")
        if len(trials) != n_models:
            raise UsageError(
                f"curves[{name!r}] must have one trial per reference model ({n_models}, like "
                f"full_accuracies), got {len(trials)}. Put None where a trial is missing."
            )
        for i, trial in enumerate(trials):
            if trial is not None and not isinstance(trial, TrialTrainingMetrics):
                raise UsageError(
                    f"curves[{name!r}][{i}] must be a TrialTrainingMetrics or None, got "
                    f"{trial!r}. Read it with proxytask.trainer.read_trial_training_metrics."
                )
        out[name] = list(trials)
    return out


def _check_scan(scan: Mapping[str, Any]) -> dict[str, Any]:
    """The scan_stopping keyword arguments, checked by name (values are checked by it)."""
    if not isinstance(scan, Mapping):
        raise UsageError(
            f"scan must be a mapping of scan_stopping keyword arguments, got {scan!r}. "
            "Use e.g. {'desired_accuracy_correlation': 0.65, 'rule': 'confident'}."
        )
    allowed = set(inspect.signature(scan_stopping).parameters) - {"stats"} - _COMPARING_ARGS
    comparing = sorted(set(scan) & _COMPARING_ARGS)
    if comparing:
        raise UsageError(
            f"scan must not set {', '.join(comparing)}: each config is judged on its own in a "
            "resample (no early stop against the others). Remove them."
        )
    unknown = sorted(str(k) for k in set(scan) - allowed)
    if unknown:
        raise UsageError(
            f"scan has unknown scan_stopping arguments {', '.join(unknown)}; use "
            f"{', '.join(sorted(allowed))}."
        )
    if "desired_accuracy_correlation" not in scan:
        raise UsageError(
            "scan must set desired_accuracy_correlation (e.g. 0.65, or None for no "
            "correlation rule): it decides when a proxy config meets its goal."
        )
    return dict(scan)


# --------------------------------------------------------------------------------------------
# A config's table and a resample's step statistics
# --------------------------------------------------------------------------------------------


def _table(trials: Sequence[TrialTrainingMetrics | None]) -> _Table:
    """Each trial's accuracy at each step of the config's full grid, as step_stats reads it."""
    table = curve_table(trials)
    steps = len(table.steps)
    recorded = np.asarray(table.recorded, dtype=bool).reshape(len(trials), steps)
    accuracy = np.asarray(
        [[np.nan if a is None else a for a in row] for row in table.accuracies], dtype=np.float64
    ).reshape(len(trials), steps)
    return _Table(
        steps=np.asarray(table.steps, dtype=np.int64).reshape(steps),
        recorded=recorded,
        accuracy=accuracy,
        hours_per_step=table.hours_per_step,
    )


def _tau_b(x: _FloatArray, y: _FloatArray, valid: _BoolArray) -> tuple[_FloatArray, _IntArray]:
    """Kendall tau-b of each column of ``x`` (models × steps) against ``y`` over valid pairs.

    Counted as scipy does (concordant minus discordant over the square roots of the untied
    pair counts, clipped to [-1, 1]), so the values are the same floats. NaN where either
    side is constant. Also returns the number of valid models per column.
    """
    m = x.shape[0]
    upper = np.triu(np.ones((m, m), dtype=bool), k=1)[:, :, None]
    pair = valid[:, None, :] & valid[None, :, :] & upper
    with np.errstate(invalid="ignore"):
        dx = np.where(pair, np.sign(x[:, None, :] - x[None, :, :]), 0.0)
        dy = np.where(pair, np.sign(y[:, None] - y[None, :])[:, :, None], 0.0)
    total = pair.sum(axis=(0, 1)).astype(np.float64)
    x_untied = total - (pair & (dx == 0.0)).sum(axis=(0, 1))
    y_untied = total - (pair & (dy == 0.0)).sum(axis=(0, 1))
    agreement = (dx * dy).sum(axis=(0, 1))
    defined = (x_untied > 0) & (y_untied > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = agreement / np.sqrt(x_untied) / np.sqrt(y_untied)
    tau = np.where(defined, np.clip(tau, -1.0, 1.0), np.nan)
    return tau, valid.sum(axis=0).astype(np.int64)


def _medians(
    x: _FloatArray,
    valid: _BoolArray,
    enough: _BoolArray,
    steps: _IntArray,
    per_step: Sequence[float | None],
    metric_mode: str,
) -> tuple[list[float | None], list[float | None]]:
    """Per step: step_stats' median accuracy and the median trial's training hours."""
    accs: list[float | None] = []
    hours: list[float | None] = []
    for g in range(x.shape[1]):
        if not enough[g]:
            accs.append(None)
            hours.append(None)
            continue
        # Positions in the resampled list, as step_stats would see them.
        column = [float(v) if ok else None for v, ok in zip(x[:, g], valid[:, g], strict=True)]
        acc, hrs = median_at_step(int(steps[g]), column, per_step, metric_mode)
        accs.append(acc)
        hours.append(hrs)
    return accs, hours


def _resampled_stats(
    table: _Table,
    full: _FloatArray,
    index: _IntArray,
    min_pairs: int,
    min_valid_ratio: float,
    metric_mode: str = "max",
) -> StepStats:
    """step_stats of the trials ``index`` picks (p-values None), from the config's table."""
    mask = table.recorded[index].any(axis=0)
    steps = table.steps[mask]
    x = table.accuracy[index][:, mask]
    y = full[index]
    valid = np.isfinite(x) & np.isfinite(y)[:, None]
    tau, counts = _tau_b(x, y, valid)
    m = len(index)
    enough = (counts >= min_pairs) & (counts / m >= min_valid_ratio)
    tau = np.where(enough, tau, np.nan)
    per_step = [table.hours_per_step[i] for i in index.tolist()]
    accs, hours = _medians(x, valid, enough, steps, per_step, metric_mode)
    size = len(steps)
    return StepStats(
        training_steps=tuple(steps.tolist()),
        accuracy_correlation_over_step=tuple(None if math.isnan(t) else t for t in tau.tolist()),
        accuracy_correlation_p_value_over_step=(None,) * size,
        num_pairs_over_step=tuple(counts.tolist()),
        median_accuracy_over_step=tuple(accs),
        median_training_time_hrs_over_step=tuple(hours),
    )


def _rule(scan_args: Mapping[str, Any]) -> str:
    """The stopping rule the scan uses: the one given, or scan_stopping's default."""
    default = inspect.signature(scan_stopping).parameters["rule"].default
    return str(scan_args.get("rule", default))


def _winner(
    tables: Mapping[str, _Table],
    scans: Mapping[str, Mapping[str, Any]],
    full: _FloatArray,
    index: _IntArray,
    min_pairs: int,
    min_valid_ratio: float,
) -> tuple[str | None, bool]:
    """The winner on the models ``index`` picks (each config scanned on its own), and whether
    another successful config had the same final training time (best_proxy_task then takes
    the first name)."""
    results: dict[str, tuple[StoppingState, float | None]] = {}
    for name, table in tables.items():
        mode = str(scans[name].get("metric_mode", "max"))
        stats = _resampled_stats(table, full, index, min_pairs, min_valid_ratio, mode)
        decision: StopDecision = scan_stopping(stats, **scans[name])
        results[name] = (decision.state, decision.final_training_time_in_hours)
    winner = best_proxy_task(results)
    if winner is None:
        return None, False
    hours = results[winner][1]
    tied = any(
        name != winner and state.is_success and time == hours
        for name, (state, time) in results.items()
    )
    return winner, tied


# --------------------------------------------------------------------------------------------
# The public function
# --------------------------------------------------------------------------------------------


def winner_frequencies(
    curves: Mapping[str, Sequence[TrialTrainingMetrics | None]],
    full_accuracies: Sequence[float | None],
    scan: Mapping[str, Any],
    *,
    draws: int = 200,
    seed: int = 0,
    min_pairs: int = MIN_PAIRS,
    min_valid_ratio: float = MIN_VALID_RATIO,
) -> StabilityResult:
    """How often each proxy config wins when the reference models are resampled.

    Contract: ``curves[name][i]`` is proxy config ``name``'s trial of reference model ``i``
    (None when missing), ``full_accuracies[i]`` that model's full-training accuracy (None
    when missing). ``scan`` holds the keyword arguments of
    :func:`proxytask.stats.search.scan_stopping` (``desired_accuracy_correlation`` required;
    ``desired_accuracy``, ``training_time_hrs_limit``, ``rule``, ``confidence``,
    ``persistence``, ``total_steps`` optional), applied to every config. Without
    ``total_steps`` each config's own budget is read from its trials, as the search does.
    ``early_stop_if_not_best`` and ``best_training_time_hrs`` are refused: every config is
    judged on its own (see the module docstring). ``min_pairs`` and ``min_valid_ratio`` are
    step_stats' pair rules.

    Draw ``d`` keeps the models ``numpy.random.default_rng(seed).integers(0, n, (draws,
    n))[d]`` (with replacement; the same models for every config), recomputes each config's
    step statistics and stopping decision on them, and counts the
    :func:`~proxytask.stats.search.best_proxy_task` winner (:data:`NO_WINNER` when none
    succeeds; equal final times go to the first name, counted in ``tied_draws``).
    Deterministic for a seed.

    Example::

        result = winner_frequencies({"data_25": trials_25, "data_50": trials_50}, full,
                                    {"desired_accuracy_correlation": 0.65, "rule": "confident"})
        result.observed_winner, result.observed_winner_frequency  # e.g. ("data_25", 0.83)
    """
    draws = _check_count("draws", draws, 1)
    seed = _check_count("seed", seed, 0)
    check_pair_rules(min_pairs, min_valid_ratio)
    full = _full_scores(full_accuracies)
    n = len(full)
    trials = _check_curves(curves, n)
    scan_args = _check_scan(scan)
    scans = {
        name: {"total_steps": step_budget(config), **scan_args} for name, config in trials.items()
    }
    tables = {name: _table(config) for name, config in trials.items()}

    everyone = np.arange(n, dtype=np.int64)
    observed, _ = _winner(tables, scans, full, everyone, min_pairs, min_valid_ratio)
    wins = dict.fromkeys([*trials, NO_WINNER], 0)
    tied_draws = 0
    picks = np.random.default_rng(seed).integers(0, n, size=(draws, n), dtype=np.int64)
    for index in picks:
        winner, tied = _winner(tables, scans, full, index, min_pairs, min_valid_ratio)
        wins[NO_WINNER if winner is None else winner] += 1
        tied_draws += int(tied)
    frequencies = {name: count / draws for name, count in wins.items()}
    return StabilityResult(
        draws=draws,
        seed=seed,
        n_models=n,
        rule=_rule(scan_args),
        frequencies=types.MappingProxyType(frequencies),
        observed_winner=observed,
        observed_winner_frequency=frequencies[NO_WINNER if observed is None else observed],
        tied_draws=tied_draws,
    )
