"""``--metric-mode min``: every place where the metric's direction matters (a loss, an error)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from proxytask import cli
from proxytask.controllers.base import write_controller_info
from proxytask.controllers.command_options import TRIAL_OPTIONS
from proxytask.controllers.context import check_same_metric_mode
from proxytask.controllers.selection import (
    BaselineModel,
    ReferenceModel,
    selection_warnings,
)
from proxytask.controllers.state import TrialRecordState
from proxytask.controllers.workflow import resolve_workflow
from proxytask.core.errors import ConfigError, UsageError
from proxytask.core.metric import METRIC_MODES, MetricMode, metric_mode
from proxytask.report.data import CurveSeries, selection_figure, variance_figure
from proxytask.stats.search import StepStats, StoppingState, median_at_step, scan_stopping
from proxytask.stats.selection import TrialScore, select_survivors
from proxytask.stats.variance import curve_smoothness, mean_smoothness
from proxytask.trainer.contract import check_reward_range

REPO = Path(__file__).resolve().parents[2]


def test_the_mode_parses_and_teaches() -> None:
    assert metric_mode(None) is MetricMode.MAX
    assert metric_mode("MIN") is MetricMode.MIN
    assert metric_mode(MetricMode.MIN) is MetricMode.MIN
    with pytest.raises(UsageError, match="must be one of max, min, got 'down'"):
        metric_mode("down")
    assert MetricMode.MIN.reached(0.2, 0.3) and not MetricMode.MIN.reached(0.4, 0.3)
    assert MetricMode.MAX.reached(0.3, 0.3) and MetricMode.MIN.reached(0.3, 0.3)
    assert MetricMode.MIN.best([0.5, 0.2, 0.9]) == 0.2
    assert MetricMode.MAX.label == "accuracy"


def test_metric_mode_is_a_shared_trial_option_defaulting_to_max() -> None:
    (opt,) = [o for o in TRIAL_OPTIONS if o.name == "metric-mode"]
    assert opt.default == "max" and opt.choices == METRIC_MODES == ("max", "min")


# ---- smoothness: a rising loss is the bad slope -----------------------------------------------


def test_smoothness_of_a_loss_is_the_smoothness_of_its_negation() -> None:
    pcts = [10, 30, 50, 70, 90, 95, 100]
    accuracy = [0.2, 0.5, 0.45, 0.7, 0.8, 0.75, 0.85]
    loss = [2.0 - a for a in accuracy]
    as_accuracy = curve_smoothness(pcts, accuracy)
    as_loss = curve_smoothness(pcts, loss, "min")
    assert as_accuracy.value is not None and as_accuracy.value > 0
    assert as_loss.value == pytest.approx(as_accuracy.value)
    assert as_loss.slopes == pytest.approx(as_accuracy.slopes)


def test_a_falling_loss_is_smooth_and_judged_as_accuracy_it_would_be_rough() -> None:
    pcts, loss = [25, 50, 75, 100], [2.0, 1.2, 0.9, 0.8]
    assert curve_smoothness(pcts, loss, MetricMode.MIN).value == 0.0
    assert (curve_smoothness(pcts, loss).value or 0.0) > 1.0  # max would call it a dip
    # a loss rising over the last 10 %: the reference formula's dip, mirrored
    assert curve_smoothness([0, 90, 100], [1.0, 0.0, 0.5], "min").value == pytest.approx(50.0)
    mean = mean_smoothness([(pcts, loss), ([0, 90, 100], [1.0, 0.0, 0.5])], "min")
    assert mean.value == pytest.approx(25.0)


def test_a_flat_loss_keeps_its_reason_with_the_value_as_given() -> None:
    result = curve_smoothness([50, 100], [0.7, 0.7], "min")
    assert result.value is None and "every accuracy is 0.7" in (result.reason or "")


def test_the_variance_figure_names_the_metric() -> None:
    series = [CurveSeries("copy 1", [50, 100], [1.0, 0.5], [0.1, 0.2])]
    assert variance_figure(series, "V", None, None).metric_label == "accuracy"
    fig = variance_figure(series, "V", None, None, metric_label=MetricMode.MIN.label)
    assert fig.metric_label == "metric (lower is better)"


# ---- --desired-accuracy: reached from above under min ----------------------------------------


def _stats(median: tuple[float | None, ...]) -> StepStats:
    n = len(median)
    return StepStats(
        training_steps=tuple(100 * (i + 1) - 1 for i in range(n)),
        accuracy_correlation_over_step=(None,) * n,
        accuracy_correlation_p_value_over_step=(None,) * n,
        num_pairs_over_step=(5,) * n,
        median_accuracy_over_step=median,
        median_training_time_hrs_over_step=tuple(0.1 * (i + 1) for i in range(n)),
    )


def test_desired_accuracy_under_min_is_reached_when_the_median_falls_to_it() -> None:
    accuracy = _stats((0.2, None, 0.5, 0.7, 0.9))
    loss = _stats((0.8, None, 0.5, 0.3, 0.1))
    by_max = scan_stopping(accuracy, desired_accuracy_correlation=None, desired_accuracy=0.6)
    by_min = scan_stopping(
        loss, desired_accuracy_correlation=None, desired_accuracy=0.4, metric_mode="min"
    )
    assert by_min.state is by_max.state is StoppingState.MET_DESIRED_ACCURACY
    assert (by_min.step_index, by_min.final_training_steps) == (
        by_max.step_index,
        by_max.final_training_steps,
    )
    assert by_min.final_training_time_in_hours == pytest.approx(by_max.final_training_time_in_hours)
    # under max the falling loss never "reaches" 0.4 from below: it is already above it
    wrong = scan_stopping(loss, desired_accuracy_correlation=None, desired_accuracy=0.4)
    assert wrong.step_index == 0
    never = scan_stopping(
        loss, desired_accuracy_correlation=None, desired_accuracy=0.05, metric_mode="min"
    )
    assert not never.stopped


# ---- model selection: the spread rule is direction-free; the baseline comparison is not ------


def test_the_spread_rule_keeps_the_same_models_for_a_loss() -> None:
    accs = [0.61, 0.62, 0.70, 0.74, 0.80, 0.83, 0.90, 0.91]
    lats = [3.0, 3.2, 4.1, 2.2, 5.0, 4.4, 6.0, 6.1]
    ids = [str(i) for i in range(len(accs))]
    rows = list(zip(ids, accs, lats, strict=True))
    by_acc = select_survivors([TrialScore(i, a, t) for i, a, t in rows], 3, requires_latency=True)
    by_err = select_survivors(
        [TrialScore(i, 1.0 - a, t) for i, a, t in rows], 3, requires_latency=True
    )
    assert by_err.kept == by_acc.kept and by_err.removed == by_acc.removed


def _model(trial: str, value: float) -> ReferenceModel:
    return ReferenceModel(trial, f"d/{trial}", trial, None, value, None, None, {})


def test_baseline_comparison_follows_the_direction() -> None:
    baseline = BaselineModel("d/b", TrialRecordState.SUCCEEDED, 0.30, None)
    losses = [_model("1", 0.35), _model("2", 0.5)]  # best loss 0.35: 0.05 worse
    (warning,) = selection_warnings(losses, baseline, 0, 0, MetricMode.MIN)
    assert "more than 1 point above (worse than) the baseline" in warning and "0.3500" in warning
    assert selection_warnings([_model("1", 0.305)], baseline, 0, 0, MetricMode.MIN) == ()
    # the same numbers as accuracies: the best (0.5) is above the baseline, no warning
    assert selection_warnings(losses, baseline, 0, 0) == ()
    (below,) = selection_warnings([_model("1", 0.2)], baseline, 0, 0)
    assert "more than 1 point below the baseline" in below


def test_the_selection_figure_names_the_metric() -> None:
    scores = [TrialScore("1", 0.5, 3.0), TrialScore("2", 0.4, 3.1), TrialScore("3", 0.1, 4.0)]
    result = select_survivors(scores, 1, requires_latency=True)
    assert selection_figure(scores, result, 1, 10.0).x_label == "accuracy"
    fig = selection_figure(scores, result, 1, 10.0, metric_label=MetricMode.MIN.label)
    assert fig.x_label == "metric (lower is better)"


# ---- rewards: a NAS controller maximises ------------------------------------------------------


def test_reward_range_of_a_loss_says_to_turn_it_into_a_reward() -> None:
    as_max = check_reward_range([0.5, 0.9])
    as_min = check_reward_range([0.5, 0.9], "min")
    assert as_max.ok and not as_min.ok
    assert (as_min.minimum, as_min.maximum, as_min.scale_factor) == (0.5, 0.9, 1.0)
    assert "lower-is-better" in as_min.message and "1 / (1 + loss)" in as_min.message
    assert check_reward_range([], "min").message == "no finite rewards to check"


# ---- the search: the median model, and a selection run the other way -------------------------


def test_the_median_model_is_the_same_for_an_error_rate() -> None:
    accs = [0.6, None, 0.9, 0.7, 0.8]
    per_step = [1.0, 2.0, 3.0, 4.0, 5.0]
    errs = [None if a is None else 1.0 - a for a in accs]
    acc_median, acc_hours = median_at_step(9, accs, per_step)
    err_median, err_hours = median_at_step(9, errs, per_step, "min")
    assert (acc_median, acc_hours) == (0.8, 50.0)  # sorted(valid)[n // 2]: the better middle
    assert err_median == pytest.approx(1.0 - acc_median) and err_hours == acc_hours
    other, other_hours = median_at_step(9, errs, per_step)  # max: another model
    assert other == pytest.approx(0.3) and other_hours == 40.0


def test_a_search_refuses_a_selection_run_with_the_other_mode(tmp_path: Path) -> None:
    selection = str(tmp_path / "sel")
    write_controller_info(selection, "Model_Selection", {"metric_mode": "min"})
    check_same_metric_mode({"model_selection_dir": selection, "metric_mode": "min"})
    with pytest.raises(UsageError, match="--metric-mode must match the model selection's"):
        check_same_metric_mode({"model_selection_dir": selection, "metric_mode": "max"})
    older = str(tmp_path / "old")  # a selection saved before the option: max
    write_controller_info(older, "Model_Selection", {})
    check_same_metric_mode({"model_selection_dir": older, "metric_mode": "max"})
    with pytest.raises(UsageError, match="Pass --metric-mode max"):
        check_same_metric_mode({"model_selection_dir": older, "metric_mode": "min"})


def test_the_cli_refuses_another_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["variance", "--metric-mode", "lower", "--trainer", "x"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'lower'" in capsys.readouterr().err


def test_a_workflow_section_may_not_turn_the_direction_round(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "tests" / "loss_curves" / "workflow.yaml").read_text())
    data["root-output-dir"] = str(tmp_path / "runs")
    data["replay-table"] = str(REPO / "tests" / "loss_curves" / "curves.json")
    data["search"]["metric-mode"] = "max"
    path = tmp_path / "workflow.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="metric-mode must be the same in every section, got "):
        resolve_workflow(str(path), None)
    assert not (tmp_path / "runs").exists()
    del data["search"]["metric-mode"]
    path.write_text(yaml.safe_dump(data))
    _, values = resolve_workflow(str(path), None)
    assert values.search["metric_mode"] == values.variance["metric_mode"] == "min"


def test_proxytask_trial_names_the_metric(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        [
            "trial",
            "--trainer=replay",
            "--search-space=tests.loss_curves.space:sample",
            "--architecture",
            '{"num_pixels": 64, "width": 32, "learning_rate": 0.1}',
            f"--root-output-dir={tmp_path / 'runs'}",
            "--job-name=t",
            "--executor=replay",
            f"--replay-table={REPO / 'tests' / 'loss_curves' / 'curves.json'}",
            "--trainer-args",
            "report=loss",
            "train_data_pct=100",
            "--metric-mode=min",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "t/1: succeeded; final metric 0.1416" in out
    info = json.loads(
        next((tmp_path / "runs").iterdir()).joinpath("CONTROLLER_INFO.json").read_text()
    )
    assert info["options"]["metric_mode"] == "min"
