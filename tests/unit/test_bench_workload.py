"""The workload benchmarks: spread against seed noise, and the demo's stability verdict."""

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

_ROOT = Path(__file__).resolve().parents[2]


def _load(name: str) -> ModuleType:
    """Import bench.<name> from the repository root, whatever pytest's import mode."""
    if str(_ROOT) not in sys.path:
        sys.path.insert(0, str(_ROOT))
    return importlib.import_module(f"bench.{name}")


ws = _load("workload_signal")
ds = _load("demo_stability")


def test_pooled_seed_std_is_the_within_model_spread() -> None:
    acc = np.array([[0.50, 0.52], [0.90, 0.92], [0.70, 0.70]])
    # deviations ±0.01 in two models, 0 in one: sum of squares 4e-4 over 3 degrees of freedom
    assert ws.pooled_seed_std(acc) == pytest.approx(math.sqrt(4e-4 / 3))
    summary = ws.summarise(acc)
    assert summary["range"] == pytest.approx(0.40)
    assert summary["range_over_seed_std"] == pytest.approx(0.40 / math.sqrt(4e-4 / 3))
    assert summary["seed_taus"] == [pytest.approx(1.0)]


def test_seed_taus_compare_every_pair_of_seeds() -> None:
    acc = np.array([[1.0, 1.0, 3.0], [2.0, 2.0, 2.0], [3.0, 3.0, 1.0]])
    assert ws.seed_taus(acc) == [pytest.approx(1.0), pytest.approx(-1.0), pytest.approx(-1.0)]


def test_spread_subset_picks_models_across_the_range() -> None:
    means = np.array([0.60, 0.95, 0.96, 0.97, 0.80, 0.98, 0.70, 0.965, 0.90, 0.975])
    picks = ws.spread_subset(means, 5)
    assert len(picks) == 5 and picks == sorted(set(picks))
    assert 0 in picks and 5 in picks  # both ends
    assert {6, 4} <= set(picks)  # 0.70 and 0.80, not a third model from the 0.95-0.98 cluster
    assert ws.spread_subset(means, 20) == sorted(range(10), key=lambda i: means[i])


def _run(seed: int, proxy: str, hours: float | None, found: bool = True) -> dict[str, Any]:
    return {"seed": seed, "proxy": proxy, "hours_per_model": hours, "found": found}


def test_runs_agree_on_the_same_proxy_or_a_cost_within_25_percent() -> None:
    runs = [
        _run(0, "len20", 1.0),
        _run(1, "len20", 2.0),  # the same proxy at another budget: agrees
        _run(2, "data50", 1.2),  # another proxy within 25 % of run 0's cost
        _run(3, "width0.5", 1.3),  # 30 % above run 0: not with run 0
        _run(4, "len20", None, found=False),
    ]
    verdict = ds.agreement(runs)
    assert verdict["agreeing"] == 3 and verdict["runs"] == 5
    assert verdict["agreeing_seeds"] == [0, 1, 2]
    assert ds.agreement([_run(0, "a", None, found=False)])["agreeing"] == 0


def test_runs_compare_costs_relative_to_full_training_when_they_have_them() -> None:
    # 1.0 s against 1.5 s per model: 50 % apart; relative to full training 0.40 and 0.44
    a = {**_run(0, "data25", 1.0), "relative_cost": 0.40}
    b = {**_run(1, "width0.5", 1.5), "relative_cost": 0.44}
    assert ds.agreement([a, b])["agreeing"] == 2
    assert ds.agreement([a, {**b, "relative_cost": None}])["agreeing"] == 1  # hours: 50 %


def test_relative_cost_is_the_median_ratio_to_each_models_full_training(tmp_path: Path) -> None:
    from proxytask.trainer import contract as pt

    wf = tmp_path / "Workflow_x"
    models = []
    for number, (full_hours, proxy_secs) in enumerate(((1.0, 720.0), (2.0, 2880.0)), start=1):
        models.append({"trial_id": str(number), "training_hours": full_hours})
        # stage 1 to step 399, then stage 2 on to step 799: the latest stage's rate counts
        first = wf / "Search_controller_x" / "jobs" / "proxy_p" / str(number)
        pt.update_trial_training_accuracy_metric(str(first), 0.5, 0, 399, 9999.0, 1000)
        later = wf / "Search_controller_x" / "jobs" / "proxy_p@stage2" / str(number)
        pt.update_trial_training_accuracy_metric(str(later), 0.6, 0, 799, proxy_secs, 1000)
    (wf / "Model_Selection_x").mkdir(parents=True)
    (wf / "Model_Selection_x" / "REFERENCE_MODELS.json").write_text(
        json.dumps({"reference_models": models})
    )
    # per model: (secs / 800 steps * 400 steps) / full: 360 s / 1 h = 0.1, 1440 s / 2 h = 0.2
    assert ds.relative_cost(wf, "p", 400) == pytest.approx(0.15)
    assert ds.relative_cost(tmp_path / "missing", "p", 400) is None


def test_the_stability_table_shows_failed_and_found_runs() -> None:
    found = {
        **_run(0, "len20", 0.0005),
        "found": True,
        "steps": 400,
        "speedup": 3.1,
        "tau_at_stop": 0.85,
        "interval_at_stop": [0.66, 0.94],
        "holdout_tau": 0.71,
        "holdout_interval": [0.3, 0.9],
        "holdout_models": 8,
        "wall_secs": 420.0,
    }
    failed = {"seed": 1, "exit_code": 1, "wall_secs": 3.0, "error": "bad trainer"}
    text = ds.markdown([found, failed], ds.agreement([found, failed]))
    row = "| 0 | len20 | 400 | 1.80 | - | 3.1× | 0.85 [0.66, 0.94] | 0.71 [0.30, 0.90] (8) |"
    assert row in text
    assert "| 1 | failed: bad trainer |" in text
    assert "1 of 2 runs agree" in text


def _full(seed: int, wall: float) -> dict[str, Any]:
    return {
        **_run(seed, "len20", 0.0004),
        "exit_code": 0,
        "wall_secs": wall,
        "steps": 300,
        "speedup": 3.5,
        "tau_at_stop": 0.82,
        "interval_at_stop": [0.64, 0.92],
        "holdout_tau": 0.86,
        "holdout_interval": [0.67, 0.94],
        "holdout_models": 8,
    }


def test_stability_runs_are_saved_one_by_one_and_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def fake_run(workflow: dict[str, Any], seed: int, work: Path) -> dict[str, Any]:
        calls.append(seed)
        if seed == 2:
            raise KeyboardInterrupt  # the benchmark is cut short during seed 2
        return _full(seed, 1.0)

    monkeypatch.setattr(ds, "run_once", fake_run)
    argv = ["--seeds", "0", "1", "2", "--out", str(tmp_path / "out"), "--work", str(tmp_path)]
    with pytest.raises(KeyboardInterrupt):
        ds.main(argv)
    saved = (tmp_path / "out" / "demo_stability.json").read_text()
    assert [r["seed"] for r in json.loads(saved)["runs"]] == [0, 1]
    calls.clear()
    monkeypatch.setattr(
        ds,
        "run_once",
        lambda workflow, seed, work: calls.append(seed) or _full(seed, 2.0),
    )
    assert ds.main([*argv, "--resume"]) == 0
    assert calls == [2]  # only the missing seed
    record = json.loads((tmp_path / "out" / "demo_stability.json").read_text())
    assert [r["seed"] for r in record["runs"]] == [0, 1, 2]
    assert record["verdict"]["agreeing"] == 3 and record["wall_secs"] == 4.0
