"""``metric-mode: min`` end to end on real loss curves (``tests/loss_curves/curves.json``).

The table holds real training runs (``tests/loss_curves/build_table.py``: an MLP on
scikit-learn's digits) with two metrics of the same runs: validation cross-entropy loss and
validation accuracy. The loss, under ``min``, must get the answers the accuracy gets under
``max``: the loss curves are smooth, a bigger model's parameter count predicts a lower loss
(a positive tau once negated), and the search recommends the same proxy task.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from scipy import stats as scipy_stats
from tests.loss_curves import build_table

from proxytask import cli
from proxytask.executors.replay import ReplayTable
from proxytask.stats.variance import mean_smoothness

REPO = Path(__file__).resolve().parents[2]
HERE = REPO / "tests" / "loss_curves"


def _run(tmp_path: Path, report: str, mode: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((HERE / "workflow.yaml").read_text())
    data["root-output-dir"] = str(tmp_path / "runs")
    data["replay-table"] = str(HERE / "curves.json")
    data["trainer-args"]["report"] = report
    data["metric-mode"] = mode
    workflow = tmp_path / "workflow.yaml"
    workflow.write_text(yaml.safe_dump(data))
    assert cli.main(["run", str(workflow)]) == 0
    rec: dict[str, Any] = json.loads(
        (tmp_path / "runs" / "Workflow_digits-loss" / "RECOMMENDATION.json").read_text()
    )
    return rec


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {
        "loss": _run(tmp_path_factory.mktemp("loss"), "loss", "min"),
        "accuracy": _run(tmp_path_factory.mktemp("accuracy"), "accuracy", "max"),
    }


def test_a_loss_gets_the_recommendation_of_the_same_runs_accuracy(
    runs: dict[str, dict[str, Any]],
) -> None:
    loss, accuracy = runs["loss"]["recommendation"], runs["accuracy"]["recommendation"]
    assert loss["found"] is accuracy["found"] is True
    assert loss["best_proxy_task_name"] == accuracy["best_proxy_task_name"] == "data50"
    assert loss["accuracy_correlation_at_stop"] >= 0.65  # a loss ranks like its accuracy
    assert abs(loss["training_steps"] - accuracy["training_steps"]) <= 20  # one evaluation


def test_the_parameter_count_predicts_a_low_loss(runs: dict[str, dict[str, Any]]) -> None:
    rec = runs["loss"]
    selection = Path(rec["stage_dirs"]["model_selection"])
    models = json.loads((selection / "REFERENCE_MODELS.json").read_text())["reference_models"]
    losses = [m["accuracy"] for m in models]
    params = [m["zero_cost_scores"]["params"] for m in models]
    raw_tau = scipy_stats.kendalltau(params, losses).statistic
    assert raw_tau < 0  # more parameters, lower loss
    reported = rec["recommendation"]["zero_training_baselines"]["params"]["tau"]
    assert reported == pytest.approx(-raw_tau) and reported > 0
    accuracy_tau = runs["accuracy"]["recommendation"]["zero_training_baselines"]["params"]["tau"]
    assert accuracy_tau > 0  # the same sign as for the runs' accuracy


def test_falling_losses_are_smooth_only_when_judged_as_a_loss(
    runs: dict[str, dict[str, Any]],
) -> None:
    variance = runs["loss"]["variance"]
    assert variance["variance_good"] is True and variance["smoothness_good"] is True
    assert variance["smoothness_value"] < 1.0
    # the same copies judged the reference tools' way (higher is better): every fall is a dip
    table = ReplayTable.load(str(HERE / "curves.json"))
    copies = [
        c for c in table if c.curve_id.endswith(("-s1", "-s2", "-s3")) and "-loss-" in c.curve_id
    ]
    curves = [
        ([100 * (p.step + 1) / 300 for p in c.points], [p.accuracy for p in c.points])
        for c in copies
    ]
    as_max, as_min = mean_smoothness(curves, "max"), mean_smoothness(curves, "min")
    assert as_min.value is not None and as_max.value is not None
    assert as_min.value < 10.0 < as_max.value  # every architecture's three copies


def test_the_final_checks_say_a_loss_is_no_reward(runs: dict[str, dict[str, Any]]) -> None:
    assert runs["accuracy"]["reward_range"]["ok"] is True
    reward = runs["loss"]["reward_range"]
    assert reward["ok"] is False and "1 / (1 + loss)" in reward["message"]


@pytest.mark.slow
def test_the_builder_rebuilds_the_committed_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "curves.json"
    monkeypatch.setattr(build_table, "TABLE", out)
    assert build_table.main() == 0
    assert out.read_text() == (HERE / "curves.json").read_text()
