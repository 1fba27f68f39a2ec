"""The stopping-rule benchmark (bench/stopping_rules.py): its tau, its generator, its rules."""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from scipy import stats as scipy_stats

_ROOT = Path(__file__).resolve().parents[2]


def _load_bench() -> ModuleType:
    """Import bench.stopping_rules from the repository root, whatever pytest's import mode."""
    if str(_ROOT) not in sys.path:
        sys.path.insert(0, str(_ROOT))
    return importlib.import_module("bench.stopping_rules")


sr = _load_bench()
DRAWS = 300


def test_vectorised_tau_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    for n in (5, 10, 20):
        x = rng.standard_normal((7, 3, n))
        y = rng.standard_normal((7, n))
        taus = sr.kendall_tau_batch(x, y)
        assert taus.shape == (7, 3)
        for d in range(7):
            for k in range(3):
                expected = scipy_stats.kendalltau(x[d, k], y[d], variant="b")[0]
                assert taus[d, k] == pytest.approx(expected, abs=1e-12)


def test_true_tau_curve_rises_to_its_final_value() -> None:
    curve = sr.true_tau_curve(0.8)
    assert curve.shape == (sr.NUM_EVALS,)
    assert curve[-1] == pytest.approx(0.8)
    assert np.all(np.diff(curve) > 0)
    assert sr.EVAL_STEPS[0] == 49 and sr.EVAL_STEPS[-1] == 999


@pytest.mark.parametrize("share", [0.7, 0.3])
def test_generator_population_tau_is_the_curve(share: float) -> None:
    # one draw of many models: the sample tau estimates the population tau closely
    models = 20_000
    noise = sr.draw_noise(np.random.default_rng(2), 1, models)
    curve = sr.true_tau_curve(0.8)
    x = sr.proxy_scores(noise, curve, share)
    for k in (0, 5, 19):
        tau = scipy_stats.kendalltau(x[0, k], noise.full[0])[0]
        assert tau == pytest.approx(curve[k], abs=0.015)


def test_sample_taus_are_unbiased_over_draws() -> None:
    noise = sr.draw_noise(np.random.default_rng(3), 2000, 10)
    taus = sr.sample_taus(noise, 0.5, 0.7)
    assert taus.shape == (2000, sr.NUM_EVALS)
    assert taus[:, -1].mean() == pytest.approx(0.5, abs=0.02)


def test_step_stats_for_builds_a_real_step_stats() -> None:
    stats = sr.step_stats_for([0.1] * sr.NUM_EVALS, 10)
    assert len(stats) == sr.NUM_EVALS
    assert stats.num_pairs_over_step == (10,) * sr.NUM_EVALS
    assert stats.median_training_time_hrs_over_step[-1] == pytest.approx(1.0)


def test_wilson_interval_brackets_the_rate() -> None:
    low, high = sr.wilson_interval(50, 1000)
    assert low < 0.05 < high
    assert sr.wilson_interval(0, 100)[0] == pytest.approx(0.0, abs=1e-12)


def test_fhp_one_look_limit_matches_the_issue() -> None:
    assert sr.fhp_one_look_true_pass(10) == pytest.approx(0.65, abs=0.01)


@pytest.fixture(scope="module")
def small_run() -> dict[str, Any]:
    rules = (sr.Rule("point"), sr.Rule("confident", 0.9, 2))
    result: dict[str, Any] = sr.run_benchmark(DRAWS, seed=0, rules=rules)
    return result


def test_run_is_deterministic_for_a_seed(small_run: dict[str, Any]) -> None:
    rules = (sr.Rule("point"), sr.Rule("confident", 0.9, 2))
    again = sr.run_benchmark(DRAWS, seed=0, rules=rules)
    assert again["results"] == small_run["results"]
    other = sr.run_benchmark(DRAWS, seed=1, rules=rules)
    assert other["results"] != small_run["results"]


def test_point_rule_false_passes_more_than_the_confident_rule(
    small_run: dict[str, Any],
) -> None:
    rows = small_run["results"]
    for n in sr.NUM_MODELS:
        point = sr._rate(rows, "point", n, 0.7, sr.BAD_TAU)["pass_rate"]
        confident = sr._rate(rows, "confident(0.90, 2)", n, 0.7, sr.BAD_TAU)["pass_rate"]
        assert point > confident
    # and a good proxy passes the point rule nearly always
    assert sr._rate(rows, "point", 10, 0.7, sr.GOOD_TAU)["pass_rate"] > 0.9


def test_results_are_json_and_markdown(small_run: dict[str, Any]) -> None:
    text = json.dumps(small_run)
    assert "machine" in json.loads(text)
    markdown = sr.to_markdown(small_run)
    assert "| `point` |" in markdown and "n=10 false-pass" in markdown
    row = next(r for r in small_run["results"] if r["label"] == "point")
    assert 0.0 <= row["pass_rate_ci95"][0] <= row["pass_rate"] <= row["pass_rate_ci95"][1]
    assert math.isfinite(row["mean_steps"])
