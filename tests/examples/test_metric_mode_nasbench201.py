"""``metric-mode: min`` end to end on real curves: NAS-Bench-201's error rate (1 − accuracy).

The same real curves (``examples/nasbench201/curves.json``) run through the whole workflow
twice: as accuracy (``max``, the default) and as validation error rate (``1 − accuracy``,
``min``). A direction-aware proxytask must reach the same answers: the same survivors, proxy
ranking, stopping steps, recommendation, held-out check, zero-training comparison and
variance verdict (tau-b is symmetric when both sides use the same metric, and every
direction-dependent rule mirrors).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.examples.conftest import WorkflowRun, nasbench201_config

from proxytask import cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "nasbench201"


def error_rate_table(path: Path) -> Path:
    """The NB201 replay table with every accuracy turned into the error rate 1 − accuracy."""
    data = json.loads((EXAMPLE / "curves.json").read_text())
    for curve in data["curves"]:
        curve["points"] = [[step, 1.0 - acc, secs] for step, acc, secs in curve["points"]]
    data["metadata"] = {**data["metadata"], "derived": "error rate = 1 - validation accuracy"}
    path.write_text(json.dumps(data))
    return path


def _run(tmp_path: Path, table: Path, mode: str | None) -> dict[str, Any]:
    workflow = nasbench201_config(tmp_path, table, mode)
    assert cli.main(["run", str(workflow)]) == 0
    wdir = tmp_path / "runs" / "Workflow_nasbench201"
    rec: dict[str, Any] = json.loads((wdir / "RECOMMENDATION.json").read_text())
    return rec


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, nasbench201_run: WorkflowRun
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The shared accuracy run, and the same curves as an error rate."""
    accuracy: dict[str, Any] = json.loads(
        (nasbench201_run.wdir / "RECOMMENDATION.json").read_text()
    )
    err_dir = tmp_path_factory.mktemp("error")
    error = _run(err_dir, error_rate_table(err_dir / "error_curves.json"), "min")
    return accuracy, error


def _search_state(rec: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(
        (Path(rec["stage_dirs"]["search"]) / "SEARCH_CONTROLLER_STATE.json").read_text()
    )
    return state


def test_the_error_rate_gives_the_same_recommendation(
    runs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    accuracy, error = (r["recommendation"] for r in runs)
    assert accuracy["found"] is error["found"] is True
    for key in (
        "best_proxy_task_name",
        "training_steps",
        "final_training_step",
        "trainer_args",
        "stopping_rule",
    ):
        assert error[key] == accuracy[key], key
    assert error["final_training_time_in_hours"] == pytest.approx(
        accuracy["final_training_time_in_hours"]
    )
    assert error["accuracy_correlation_at_stop"] == pytest.approx(
        accuracy["accuracy_correlation_at_stop"]
    )
    assert error["others"] == accuracy["others"]
    assert error["holdout"]["tau"] == pytest.approx(accuracy["holdout"]["tau"])
    assert error["winner_stability"]["frequencies"] == accuracy["winner_stability"]["frequencies"]


def test_the_error_rate_gives_the_same_proxy_ranking_over_steps(
    runs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    accuracy, error = (_search_state(r) for r in runs)
    assert error["best_proxy_task_name"] == accuracy["best_proxy_task_name"]
    assert error["reference_trial_ids"] == accuracy["reference_trial_ids"]
    for name, entry in accuracy["proxy_tasks_map"].items():
        a, e = entry["proxy_task_stats"], error["proxy_tasks_map"][name]["proxy_task_stats"]
        assert e["stopping_state"] == a["stopping_state"], name
        assert e["training_steps"] == a["training_steps"], name
        assert e["accuracy_correlation_over_step"] == pytest.approx(
            a["accuracy_correlation_over_step"]
        ), name
        # the median model is the same model: its error is 1 − its accuracy, its time equal
        assert [None if v is None else 1.0 - v for v in e["median_accuracy_over_step"]] == (
            pytest.approx(a["median_accuracy_over_step"])
        ), name
        assert e["median_training_time_hrs_over_step"] == pytest.approx(
            a["median_training_time_hrs_over_step"]
        ), name
        assert e["final_training_steps"] == a["final_training_steps"], name


def test_zero_training_scores_are_negated_to_predict_a_low_error(
    runs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    accuracy, error = (r["recommendation"] for r in runs)
    a_base, e_base = accuracy["zero_training_baselines"], error["zero_training_baselines"]
    assert set(e_base) == set(a_base) and len(a_base) == 9
    for name in a_base:
        assert e_base[name]["tau"] == pytest.approx(a_base[name]["tau"]), name
    assert a_base["params"]["tau"] > 0.2  # a real, positive predictor of accuracy
    a_cmp, e_cmp = accuracy["zero_training_comparison"], error["zero_training_comparison"]
    assert e_cmp["best_zero_training_score"] == a_cmp["best_zero_training_score"]
    assert e_cmp["best_zero_training_tau"] == pytest.approx(a_cmp["best_zero_training_tau"])
    assert e_cmp["trained_proxy_beats_zero_training"] == a_cmp["trained_proxy_beats_zero_training"]
    assert e_cmp["message"] == a_cmp["message"]


def test_the_variance_verdict_and_smoothness_mirror(
    runs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    accuracy, error = (r["variance"] for r in runs)
    assert error["variance_good"] is accuracy["variance_good"] is True
    assert error["smoothness_good"] is accuracy["smoothness_good"]
    assert error["smoothness_value"] == pytest.approx(accuracy["smoothness_value"])
    assert error["std"] == pytest.approx(accuracy["std"])


def test_the_final_checks_say_an_error_rate_is_no_reward(
    runs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    accuracy, error = runs
    assert accuracy["reward_range"]["ok"] is True
    assert error["reward_range"]["ok"] is False
    assert "a NAS controller maximises its reward" in error["reward_range"]["message"]
