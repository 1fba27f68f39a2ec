"""The trainer API: files field for field, stop signals, interpolation, continuations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from proxytask.core import layout
from proxytask.core.errors import NonFiniteMetricError, UsageError
from proxytask.trainer import contract as trainer


def _read(d: Path, name: str) -> dict:
    return json.loads((d / name).read_text())


def test_metrics_file_matches_the_reference_schema(tmp_path: Path) -> None:
    d = str(tmp_path)
    trainer.update_trial_training_accuracy_metric(d, 0.5, 0, 9, 1.5, 100)
    trainer.update_trial_training_accuracy_metric(d, 0.75, 10, 49, 2.5, 100)
    trainer.update_trial_training_latency_metric(d, 3.25)
    data = _read(tmp_path, "TRIAL_TRAINING_METRICS.json")
    assert data == {
        "training_time": {"total_training_steps": 50, "total_training_time_in_secs": 4.0},
        "latency": 3.25,
        "training_accuracy_over_steps": [
            {"training_step_pct": 10.0, "training_step": 9, "accuracy": 0.5},
            {"training_step_pct": 50.0, "training_step": 49, "accuracy": 0.75},
        ],
    }


def test_report_not_above_last_pct_is_ignored_and_adds_no_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    d = str(tmp_path)
    trainer.update_trial_training_accuracy_metric(d, 0.5, 0, 49, 1.0, 100)
    trainer.update_trial_training_accuracy_metric(d, 0.9, 40, 49, 5.0, 100)
    trainer.update_trial_training_accuracy_metric(d, 0.9, 20, 29, 5.0, 100)
    m = trainer.read_trial_training_metrics(d)
    assert m is not None
    assert len(m.training_accuracy_over_steps) == 1
    assert m.training_time.total_training_time_in_secs == 1.0
    assert "ignoring the report" in caplog.text


def test_latency_default_is_minus_one(tmp_path: Path) -> None:
    trainer.update_trial_training_accuracy_metric(str(tmp_path), 0.5, 0, 0, 0.1, 10)
    assert _read(tmp_path, "TRIAL_TRAINING_METRICS.json")["latency"] == -1.0


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_accuracy_records_failure(tmp_path: Path, value: float) -> None:
    with pytest.raises(NonFiniteMetricError, match="must be finite"):
        trainer.update_trial_training_accuracy_metric(str(tmp_path), value, 0, 9, 1.0, 100)
    failure = _read(tmp_path, layout.TRIAL_FAILURE)
    assert failure["cause"] == "nan"
    assert not (tmp_path / layout.TRIAL_TRAINING_METRICS).exists()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0.5, 5, 4, 1.0, 100), "end_training_cycle_step must be >="),
        ((0.5, 0, 100, 1.0, 100), "must be < total_training_steps"),
        ((0.5, 0, 9, -1.0, 100), "training_cycle_time_in_secs must be finite and >= 0"),
        ((0.5, 0, 9, 1.0, 0), "total_training_steps must be an integer >= 1"),
        (("high", 0, 9, 1.0, 100), "accuracy must be a number"),
        ((0.5, -1, 9, 1.0, 100), "begin_training_cycle_step must be an integer >= 0"),
        ((0.5, 0, 9.5, 1.0, 100), "end_training_cycle_step must be an integer >= 0"),
        ((0.5, 0, True, 1.0, 100), "end_training_cycle_step must be an integer >= 0"),
    ],
)
def test_bad_reports_are_rejected_with_a_clear_message(
    tmp_path: Path, args: tuple, match: str
) -> None:
    with pytest.raises(UsageError, match=match):
        trainer.update_trial_training_accuracy_metric(str(tmp_path), *args)
    assert list(tmp_path.iterdir()) == []


def test_steps_may_be_numpy_integers_or_integral_floats(tmp_path: Path) -> None:
    import numpy as np

    # reference trainers count steps in numpy ints or floats (e.g. 300.0)
    trainer.update_trial_training_accuracy_metric(
        str(tmp_path), 0.5, np.int64(0), np.int64(99), 1.0, 1000.0
    )
    trainer.update_trial_training_accuracy_metric(str(tmp_path), 0.6, 100.0, 199.0, 1.0, 1000)
    data = _read(tmp_path, "TRIAL_TRAINING_METRICS.json")
    assert [p["training_step"] for p in data["training_accuracy_over_steps"]] == [99, 199]
    assert data["training_time"]["total_training_steps"] == 200  # the steps trained so far


def test_latency_minus_one_records_none_and_other_negatives_are_refused(tmp_path: Path) -> None:
    trainer.update_trial_training_latency_metric(str(tmp_path), 3.0)
    trainer.update_trial_training_latency_metric(str(tmp_path), -1)  # the reference's "none"
    metrics = trainer.read_trial_training_metrics(str(tmp_path))
    assert metrics is not None and not metrics.has_latency
    with pytest.raises(UsageError, match=r"latency must be a finite number >= 0 \(or -1"):
        trainer.update_trial_training_latency_metric(str(tmp_path), -2.0)


def test_stop_signals(tmp_path: Path) -> None:
    d = str(tmp_path)
    assert not trainer.get_stop_training(d, -1, 100)
    trainer.set_stop_training(d, desired_training_pct=30.0)
    assert not trainer.get_stop_training(d, 28, 100)
    assert trainer.get_stop_training(d, 29, 100)
    # a later signal may lower the target; 0.0 means stop now, even before the first cycle
    trainer.set_stop_training(d, desired_training_pct=0.0)
    assert trainer.get_stop_training(d, -1, 100)
    assert _read(tmp_path, layout.DESIRED_TRAINING_PCT) == {"desired_training_pct": 0.0}


def test_max_training_time(tmp_path: Path) -> None:
    d = str(tmp_path)
    trainer.set_stop_training(d, max_training_time_in_hrs=1.0 / 3600 * 2)  # 2 seconds
    trainer.update_trial_training_accuracy_metric(d, 0.5, 0, 9, 1.5, 100)
    assert not trainer.get_stop_training(d, 9, 100)
    trainer.update_trial_training_accuracy_metric(d, 0.6, 10, 19, 1.0, 100)
    assert trainer.get_stop_training(d, 19, 100)
    both = tmp_path / "both"
    trainer.set_stop_training(str(both), desired_training_pct=90.0, max_training_time_in_hrs=0.0)
    assert (both / layout.DESIRED_TRAINING_PCT).exists()
    assert (both / layout.MAX_TRAINING_TIME).exists()
    assert trainer.get_stop_training(str(both), -1, 100)


def test_heartbeat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = str(tmp_path)
    trainer.write_controller_heartbeat(d, 1000.0)
    assert _read(tmp_path, layout.CONTROLLER_ALIVE) == {"timestamp": 1000.0}
    assert not trainer.get_stop_training(d, 5, 100, now=1000.0 + 899)
    assert trainer.get_stop_training(d, 5, 100, now=1000.0 + 901)
    assert not trainer.get_stop_training(d, 5, 100, now=1000.0 + 901, heartbeat_threshold_secs=1e4)
    monkeypatch.setenv("PROXYTASK_HEARTBEAT_THRESHOLD_SECS", "10")
    assert trainer.get_stop_training(d, 5, 100, now=1011.0)
    trainer.write_controller_heartbeat(d, 1000.0, threshold_secs=60.0)
    assert not trainer.get_stop_training(d, 5, 100, now=1050.0)
    assert trainer.get_stop_training(d, 5, 100, now=1061.0)


def test_garbage_signal_files_are_ignored(tmp_path: Path) -> None:
    (tmp_path / layout.DESIRED_TRAINING_PCT).write_text("{not json")
    (tmp_path / layout.MAX_TRAINING_TIME).write_text('{"max_training_time_in_hrs": "soon"}')
    assert not trainer.get_stop_training(str(tmp_path), 5, 100)


def test_accuracy_at_pct_interpolation() -> None:
    m = trainer.TrialTrainingMetrics(
        training_accuracy_over_steps=(
            trainer.AccuracyAtStep(20.0, 19, 0.4),
            trainer.AccuracyAtStep(60.0, 59, 0.8),
        )
    )
    assert trainer.get_accuracy_at_pct(m, 10.0) == pytest.approx(0.2)  # implicit (0, 0.0)
    assert trainer.get_accuracy_at_pct(m, 40.0) == pytest.approx(0.6)
    assert trainer.get_accuracy_at_pct(m, 60.0) == pytest.approx(0.8)
    assert trainer.get_accuracy_at_pct(m, 60.5) is None  # not reached yet
    assert trainer.get_accuracy_at_pct(None, 10.0) is None
    assert trainer.get_accuracy_at_pct(trainer.TrialTrainingMetrics(), 0.0) is None


def test_continuation_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = str(tmp_path / "job")
    trainer.save_nas_params(str(tmp_path / "job" / "7"), {"width": 32})
    monkeypatch.setenv("CLOUD_ML_TRIAL_ID", "2")
    assert trainer.get_map_finetune_trial_id_to_search_trial_id("3, 7,7") == {
        "1": "3",
        "2": "7",
        "3": "7",
    }
    assert trainer.get_retrain_search_job_model_dir("3,7,7", job) == str(tmp_path / "job" / "7")
    path = trainer.get_finetune_nas_params_str("3,7", job)
    assert path.endswith("7/nas_params_str.json")
    assert trainer.load_nas_params(path) == {"width": 32}
    assert trainer.load_nas_params(str(tmp_path / "job" / "7")) == {"width": 32}
    monkeypatch.setenv("CLOUD_ML_TRIAL_ID", "9")
    with pytest.raises(UsageError, match="CLOUD_ML_TRIAL_ID must be between 1 and 2"):
        trainer.get_retrain_search_job_model_dir("3,7", job)
    with pytest.raises(UsageError, match="must not contain empty ids"):
        trainer.get_map_finetune_trial_id_to_search_trial_id("3,,7")
    with pytest.raises(UsageError, match="must exist"):
        trainer.load_nas_params(str(tmp_path / "nowhere"))


def test_save_nas_params_rejects_non_objects(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="must be a JSON object"):
        trainer.save_nas_params(str(tmp_path), "[1, 2]")
    with pytest.raises(UsageError, match="must be a JSON object"):
        trainer.save_nas_params(str(tmp_path), "{oops")
    assert list(tmp_path.iterdir()) == []


def test_final_metrics_any_number(tmp_path: Path) -> None:
    d = str(tmp_path)
    trainer.save_final_metrics(d, {f"m{i}": i / 10 for i in range(12)})
    trainer.save_final_metrics(d, {"top1": 0.97})
    saved = trainer.read_final_metrics(d)
    assert len(saved) == 13 and saved["top1"] == 0.97
    with pytest.raises(UsageError, match="must be finite"):
        trainer.save_final_metrics(d, {"bad": math.nan})


def test_reward_and_range() -> None:
    assert trainer.compute_reward(0.9, 10.0, 5.0) == pytest.approx(0.9)  # hard cap at 1
    assert trainer.compute_reward(0.9, 10.0, 5.0, use_hard_limit=False) == pytest.approx(1.8)
    assert trainer.compute_reward(0.9, 10.0, 20.0, weight=0.07) == pytest.approx(0.9 * 0.5**0.07)
    with pytest.raises(UsageError):
        trainer.compute_reward(0.9, 10.0, 0.0)
    ok = trainer.check_reward_range([0.5, 0.9])
    assert ok.ok and ok.scale_factor == 1.0
    big = trainer.check_reward_range([50.0, 97.0])
    assert not big.ok and big.scale_factor == pytest.approx(10 / 97.0)
    small = trainer.check_reward_range([1e-5, 1e-4])
    assert not small.ok and small.scale_factor == pytest.approx(100.0)
    assert not trainer.check_reward_range([]).ok


def test_object_api(tmp_path: Path) -> None:
    trial = trainer.Trial(str(tmp_path), total_steps=10)
    assert not trial.should_stop(-1)
    trial.report(0.7, 0, 4, 0.5)
    trial.report_latency(1.0)
    m = trial.metrics()
    assert m is not None and m.last_pct == 50.0 and m.latency == 1.0


def test_importing_the_trainer_side_pulls_in_no_numpy() -> None:
    """A trainer's start-up pays for what it imports: the contract needs no numpy."""
    import subprocess
    import sys

    code = "import sys, proxytask, proxytask.trainer; print('numpy' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"
