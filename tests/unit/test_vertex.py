"""A trainer written for the reference tools runs after changing only its imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from proxytask import vertex
from proxytask.core.errors import UsageError
from proxytask.vertex import proxy_task_utils

FIXTURE = Path(__file__).parent.parent / "fixtures" / "reference_style_trainer.py"


def _ported_trainer(tmp_path: Path) -> Path:
    original = FIXTURE.read_text().splitlines()
    ported = []
    changed = 0
    for line in original:
        if line.endswith("# REFERENCE-IMPORT"):
            changed += 1
            if line.startswith("from proxy_task import proxy_task_utils"):
                line = "from proxytask.vertex import proxy_task_utils"
            elif line.startswith("import cloud_nas_utils"):
                line = "from proxytask.vertex import cloud_nas_utils"
        ported.append(line)
    assert changed == 2
    target = tmp_path / "trainer.py"
    target.write_text("\n".join(ported) + "\n")
    return target


def _run(script: Path, *args: str, trial_id: str = "1") -> None:
    env = {**os.environ, "CLOUD_ML_TRIAL_ID": trial_id}
    subprocess.run([sys.executable, str(script), *args], check=True, env=env, timeout=60)


def test_reference_trainer_runs_with_only_the_imports_changed(tmp_path: Path) -> None:
    script = _ported_trainer(tmp_path)
    job = tmp_path / "job"
    _run(script, f"--job-dir={job / '1'}", '--nas_params_str={"width": 10}')
    data = json.loads((job / "1" / "TRIAL_TRAINING_METRICS.json").read_text())
    assert set(data) == {"training_time", "latency", "training_accuracy_over_steps"}
    assert set(data["training_time"]) == {"total_training_steps", "total_training_time_in_secs"}
    assert data["training_time"]["total_training_steps"] == 100
    assert data["latency"] == 1.0
    points = data["training_accuracy_over_steps"]
    assert [p["training_step"] for p in points] == [19, 39, 59, 79, 99]
    assert [p["training_step_pct"] for p in points] == [20.0, 40.0, 60.0, 80.0, 100.0]
    assert all(set(p) == {"training_step_pct", "training_step", "accuracy"} for p in points)
    assert json.loads((job / "1" / "job_status.json").read_text()) == {"job_status": "success"}
    # CloudSession.report: the reference sends the metrics to its service; here, the trial dir
    final = json.loads((job / "1" / "FINAL_METRICS.json").read_text())
    assert set(final) == {"reward", "acc", "model_flops"}


def test_reference_trainer_stop_signal_and_continuation(tmp_path: Path) -> None:
    script = _ported_trainer(tmp_path)
    first = tmp_path / "round1"
    (first / "1").mkdir(parents=True)
    proxy_task_utils.set_stop_training(str(first / "1"), desired_training_step_pct=40.0)
    _run(script, f"--job-dir={first / '1'}", '--nas_params_str={"width": 30}')
    m = proxy_task_utils.read_trial_training_metrics_file(
        proxy_task_utils.get_trial_training_metrics_file(str(first / "1"))
    )
    assert m is not None and m.last_pct == 40.0
    second = tmp_path / "round2"
    proxy_task_utils.copy_trial_training_metrics(str(first / "1"), str(second / "1"))
    _run(
        script,
        f"--job-dir={second / '1'}",
        '--nas_params_str={"width": 30}',  # continuations get it too, as under the reference
        f"--retrain_search_job_dir={first}",
        "--retrain_search_job_trials=1",
        "--retrain_use_search_job_checkpoint=True",
    )
    m2 = proxy_task_utils.read_trial_training_metrics_file(
        proxy_task_utils.get_trial_training_metrics_file(str(second / "1"))
    )
    assert m2 is not None
    assert [p.training_step for p in m2.training_accuracy_over_steps] == [19, 39, 59, 79, 99]
    assert m2.training_time.total_training_steps == 100
    assert proxy_task_utils.get_accuracy_at_step(m2, 50.0) is not None
    assert proxy_task_utils.has_accuracy_at_step(m2, 100.0)


def test_model_selection_runs_the_reference_trainer_through_its_rounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from proxytask import cli

    script = _ported_trainer(tmp_path)
    args = [
        "select-models",
        f"--trainer={sys.executable} {script}",
        "--search-space=tests.fixtures.spaces:tiny",
        f"--root-output-dir={tmp_path / 'runs'}",
        "--job-name=ref",
        "--start-num-models=5",
        "--final-num-models=3",
        "--num-models-to-remove-per-iter=1",
        "--max-parallel-trials=2",
        "--trainer-args",
        "num_steps=100",
        "steps_per_cycle=20",
    ]
    assert cli.main(args) == 0, capsys.readouterr()
    (cdir,) = (tmp_path / "runs").iterdir()
    jobs = sorted(p.name for p in (cdir / "jobs").iterdir())
    assert jobs == ["round1", "round2", "round3"]  # 5 -> 4 -> 3 (trained fully)
    refs = json.loads((cdir / "REFERENCE_MODELS.json").read_text())["reference_models"]
    assert len(refs) == 3
    for ref in refs:  # every continuation got --nas_params_str, which this trainer requires
        saved = json.loads((Path(ref["trial_dir"]) / "nas_params_str.json").read_text())
        assert set(saved) == {"width", "depth"}


def test_stop_now_zero_is_written_unlike_the_reference(tmp_path: Path) -> None:
    vertex.proxy_task_utils.set_stop_training(str(tmp_path), desired_training_step_pct=0.0)
    assert json.loads((tmp_path / "DESIRED_TRAINING_PCT.json").read_text()) == {
        "desired_training_pct": 0.0
    }
    assert vertex.get_stop_training(str(tmp_path), -1, 10)


# ---- cloud_nas_utils: the reference's helpers beyond the three core calls -------------------


def test_job_dir_from_environment_keeps_proxytask_trial_dirs_and_cuts_vertex_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from proxytask.vertex import cloud_nas_utils as cnu

    monkeypatch.delenv("AIP_MODEL_DIR", raising=False)
    assert cnu.get_job_dir_from_environment_if_exist("/given") == "/given"
    monkeypatch.setenv("AIP_MODEL_DIR", "/runs/Search_x/jobs/proxy_a/3")
    assert cnu.get_job_dir_from_environment_if_exist("/given") == "/runs/Search_x/jobs/proxy_a/3"
    monkeypatch.setenv("AIP_MODEL_DIR", "gs://b/job_1/nas/search/12/model")
    assert cnu.get_job_dir_from_environment_if_exist("/given") == "gs://b/job_1/nas/search/12"
    monkeypatch.setenv("AIP_MODEL_DIR", "gs://b/job_1/nas/train/4/x")
    assert cnu.get_job_dir_from_environment_if_exist("/given") == "gs://b/job_1/nas/train/4"
    monkeypatch.setenv("AIP_MODEL_DIR", " ")
    with pytest.raises(UsageError, match="AIP_MODEL_DIR must name the trial dir"):
        cnu.get_job_dir_from_environment_if_exist("/given")


def test_trial_id_from_environment_returns_what_the_reference_returns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from proxytask.vertex import cloud_nas_utils as cnu

    monkeypatch.delenv("CLOUD_ML_TRIAL_ID", raising=False)
    assert cnu.get_trial_id_from_environment() == 0  # the int, as the reference
    monkeypatch.setenv("CLOUD_ML_TRIAL_ID", "7")
    assert cnu.get_trial_id_from_environment() == "7"


def test_saved_model_dir_and_waiting_for_the_latency_file(tmp_path: Path) -> None:
    from proxytask.vertex import cloud_nas_utils as cnu

    saved = cnu.get_saved_model_dir(str(tmp_path / "trial"))
    assert saved == str(tmp_path / "trial" / "saved_model")
    with pytest.raises(TimeoutError, match=r"model_latency\.json after 0\.05 seconds"):
        cnu.wait_and_retrieve_latency(saved, sleep_time=0.01, timeout_secs=0.05)
    Path(saved).mkdir(parents=True)
    stats = {"latency_in_milliseconds": 3.5, "model_memory": 12}
    (Path(saved) / "model_latency.json").write_text(json.dumps(stats))
    assert cnu.wait_and_retrieve_latency(saved, sleep_time=0.01) == stats


def test_cloud_session_records_the_reported_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from proxytask.trainer.contract import read_final_metrics
    from proxytask.vertex import cloud_nas_utils as cnu

    session = cnu.CloudSession(str(tmp_path))
    monkeypatch.setenv("CLOUD_ML_HP_METRIC_TAG", "top_1_accuracy")
    measurement = SimpleNamespace(metrics={"top_1_accuracy": 0.9, "loss": 0.3}, step=100)
    session.report(measurement, model_flops=2.5, other_metrics={"latency": 4.0})
    assert read_final_metrics(str(tmp_path)) == {
        "top_1_accuracy": 0.9,
        "loss": 0.3,
        "latency": 4.0,
        "model_flops": 2.5,
        "reward": 0.9,
    }
    with pytest.raises(ValueError, match=r"hp_metric_tag \[top_1_accuracy\] is missing"):
        session.report(SimpleNamespace(metrics={"loss": 0.2}, step=1))
    with (
        pytest.raises(RuntimeError, match="ZeroDivisionError"),
        session.fail_on_exceptions(ZeroDivisionError),
    ):
        _ = 1 / 0
    assert json.loads((tmp_path / "job_status.json").read_text()) == {"job_status": "failed"}


def test_setup_logging_sends_info_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from proxytask.vertex import cloud_nas_utils as cnu

    root = logging.getLogger()
    saved = (list(root.handlers), root.level, root.propagate)
    try:
        cnu.setup_logging()
        logging.getLogger("some.trainer").info("hello from the trainer")
        assert "hello from the trainer" in capsys.readouterr().out
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        root.propagate = saved[2]


def test_copying_missing_metrics_raises_a_value_error_as_the_reference(tmp_path: Path) -> None:
    from proxytask.core.errors import StorageError

    with pytest.raises(ValueError, match="must exist to be copied") as caught:
        proxy_task_utils.copy_trial_training_metrics(str(tmp_path / "a"), str(tmp_path / "b"))
    assert isinstance(caught.value, StorageError)  # and proxytask's own kind


def test_a_reference_style_generator_is_read_as_is() -> None:
    from proxytask.core.errors import ConfigError
    from proxytask.core.proxies import ProxyTaskConfig, load_proxy_task_configs

    configs = load_proxy_task_configs("tests.fixtures.generators:reference_style", {"lr": "0.1"})
    assert configs == [
        ProxyTaskConfig("data_pct_25", {"lr": "0.1", "train_data_pct": 25}),
        ProxyTaskConfig("data_pct_50", {"lr": "0.1", "train_data_pct": 50}),
    ]
    with pytest.raises(ConfigError, match="must return ProxyTaskConfig items"):
        load_proxy_task_configs("tests.fixtures.generators:reference_style_broken", {})


def test_the_from_dict_helpers_read_the_metrics_file_json(tmp_path: Path) -> None:
    vertex.update_trial_training_accuracy_metric(str(tmp_path), 0.5, 0, 9, 2.0, 100)
    data = json.loads((tmp_path / "TRIAL_TRAINING_METRICS.json").read_text())
    metrics = proxy_task_utils.get_trial_training_metrics_from_dict(data)
    assert metrics.training_accuracy_over_steps[0].accuracy == 0.5
    point = proxy_task_utils.get_accuracy_at_step_from_dict(data["training_accuracy_over_steps"][0])
    assert point.training_step == 9 and point.training_step_pct == 10.0
    tt = proxy_task_utils.get_training_time_from_dict(data["training_time"])
    assert tt.total_training_steps == 10 and tt.total_training_time_in_secs == 2.0


def test_metrics_objects_are_mutable_as_the_references(tmp_path: Path) -> None:
    from proxytask.trainer.contract import read_trial_training_metrics

    vertex.update_trial_training_accuracy_metric(str(tmp_path), 0.5, 0, 9, 2.0, 100)
    path = proxy_task_utils.get_trial_training_metrics_file(str(tmp_path))
    metrics = proxy_task_utils.read_trial_training_metrics_file(path)
    assert metrics is not None
    # code written for the reference edits the object in place, then saves it
    metrics.training_accuracy_over_steps.append(
        proxy_task_utils.AccuracyAtStep(training_step_pct=20.0, training_step=19, accuracy=0.6)
    )
    metrics.training_time.total_training_steps += 10
    metrics.latency = 4.5
    proxy_task_utils.save_trial_training_metrics_file(path, metrics)
    saved = read_trial_training_metrics(str(tmp_path))
    assert saved is not None and saved.latency == 4.5 and saved.last_pct == 20.0
    assert proxy_task_utils.get_accuracy_at_step(metrics, 15.0) == pytest.approx(0.55)
    # a malformed edit is refused on save, not written
    metrics.training_accuracy_over_steps[0].accuracy = "high"  # type: ignore[assignment]
    from proxytask.core.errors import StorageError

    with pytest.raises(StorageError, match=r"TRIAL_TRAINING_METRICS\.json schema"):
        proxy_task_utils.save_trial_training_metrics_file(path, metrics)
    assert read_trial_training_metrics(str(tmp_path)) == saved
