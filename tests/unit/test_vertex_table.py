"""The Vertex semantics table: each reference function, called with the same arguments as a
reference trainer calls it, gives the return value and the files the reference gives
(``docs/guide.md`` section 2 lists them; the differences it names are marked here)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from proxytask.vertex import cloud_nas_utils as cnu
from proxytask.vertex import proxy_task_utils as ptu

#: (name, call(trial dir) -> return value, expected return value, expected files as JSON)
Case = tuple[str, Callable[[Path], Any], Any, dict[str, Any]]


def _seeded(d: Path) -> Path:
    """A trial dir holding two evaluations of a 100-step training, as the reference writes."""
    ptu.update_trial_training_accuracy_metric(str(d), 0.5, 0, 49, 2.0, 100)
    ptu.update_trial_training_accuracy_metric(str(d), 0.7, 50, 99, 2.5, 100)
    return d


def _read(d: Path) -> Any:
    """The seeded dir's metrics, read as a reference trainer reads them."""
    return ptu.read_trial_training_metrics_file(
        ptu.get_trial_training_metrics_file(str(_seeded(d)))
    )


METRICS = {
    "training_time": {"total_training_steps": 100, "total_training_time_in_secs": 4.5},
    "latency": -1,
    "training_accuracy_over_steps": [
        {"training_step_pct": 50.0, "training_step": 49, "accuracy": 0.5},
        {"training_step_pct": 100.0, "training_step": 99, "accuracy": 0.7},
    ],
}

CASES: list[Case] = [
    (
        "update_trial_training_accuracy_metric",
        lambda d: _seeded(d) and None,
        None,
        {"TRIAL_TRAINING_METRICS.json": METRICS},
    ),
    (
        "update_trial_training_latency_metric",
        lambda d: ptu.update_trial_training_latency_metric(str(_seeded(d)), 12.5),
        None,
        {"TRIAL_TRAINING_METRICS.json": {**METRICS, "latency": 12.5}},
    ),
    (
        "compute_training_step_pct",
        lambda d: ptu.compute_training_step_pct(49, 100),
        50.0,
        {},
    ),
    (
        "has_accuracy_at_step",
        lambda d: (ptu.has_accuracy_at_step(_read(d), 100.0), ptu.has_accuracy_at_step(None, 1)),
        (True, False),
        {"TRIAL_TRAINING_METRICS.json": METRICS},
    ),
    (
        "get_accuracy_at_step (interpolated between points, from (0, 0.0))",
        lambda d: (
            ptu.get_accuracy_at_step(_read(d), 75.0),
            ptu.get_accuracy_at_step(_read(d), 25),
        ),
        (0.6, 0.25),
        {"TRIAL_TRAINING_METRICS.json": METRICS},
    ),
    (
        "read_trial_training_metrics_file",
        lambda d: ptu.read_trial_training_metrics_file(str(d / "none.json")),
        None,
        {},
    ),
    (
        "set_stop_training (desired pct)",
        lambda d: ptu.set_stop_training(str(d), desired_training_step_pct=50.0),
        None,
        {"DESIRED_TRAINING_PCT.json": {"desired_training_pct": 50.0}},
    ),
    (
        "get_stop_training at the desired pct",
        lambda d: (
            ptu.set_stop_training(str(d), desired_training_step_pct=50.0),
            ptu.get_stop_training(str(d), 48, 100),
            ptu.get_stop_training(str(d), 49, 100),
        )[1:],
        (False, True),
        {"DESIRED_TRAINING_PCT.json": {"desired_training_pct": 50.0}},
    ),
    (
        "get_stop_training without signals",
        lambda d: ptu.get_stop_training(str(d), 10, 100),
        False,
        {},
    ),
    (
        "copy_trial_training_metrics",
        lambda d: ptu.copy_trial_training_metrics(str(_seeded(d / "a")), str(d / "b")),
        None,
        {"a/TRIAL_TRAINING_METRICS.json": METRICS, "b/TRIAL_TRAINING_METRICS.json": METRICS},
    ),
    (
        "get_trial_training_metrics_file",
        lambda d: (
            ptu.get_trial_training_metrics_file(str(d)) == str(d / "TRIAL_TRAINING_METRICS.json")
        ),
        True,
        {},
    ),
    (
        "write_job_status",
        lambda d: cnu.write_job_status(str(d), cnu.JOB_STATUS_SUCCESS),
        None,
        {"job_status.json": {"job_status": "success"}},
    ),
    ("str_2_bool", lambda d: (cnu.str_2_bool("True"), cnu.str_2_bool("false")), (True, False), {}),
    (
        "compute_reward (hard limit, as the reference's default)",
        lambda d: (cnu.compute_reward(0.8, 10.0, 20.0), cnu.compute_reward(0.8, 10.0, 5.0)),
        (0.4, 0.8),
        {},
    ),
    (
        "compute_reward (soft, weight 0.07)",
        lambda d: round(cnu.compute_reward(0.9, 10.0, 20.0, weight=0.07, use_hard_limit=False), 6),
        round(0.9 * 0.5**0.07, 6),
        {},
    ),
    (
        "wait_for_tpu_cluster_resolver_ready (no TPU_CONFIG: CPU/GPU)",
        lambda d: cnu.wait_for_tpu_cluster_resolver_ready(object),
        None,
        {},
    ),
    (
        "get_saved_model_dir",
        lambda d: cnu.get_saved_model_dir(trial_job_dir=str(d)) == str(d / "saved_model"),
        True,
        {},
    ),
    (
        "get_map_finetune_trial_id_to_search_trial_id",
        lambda d: cnu.get_map_finetune_trial_id_to_search_trial_id("3,7,7"),
        {"1": "3", "2": "7", "3": "7"},
        {},
    ),
    (
        "parse_and_save_nas_params_str (plain JSON)",
        lambda d: cnu.parse_and_save_nas_params_str(None, '{"width": 8}', str(d)),
        {"width": 8},
        {"nas_params_str.json": {"width": 8}},
    ),
    (
        "serialize_and_save_tunable_object (plain value)",
        lambda d: json.loads(cnu.serialize_and_save_tunable_object({"width": 8}, str(d))),
        {"width": 8},
        {"serialized_tunable_object.json": {"width": 8}},
    ),
]


def _files(root: Path) -> dict[str, Any]:
    return {
        str(p.relative_to(root)): json.loads(p.read_text())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(("name", "call", "expected", "files"), CASES, ids=[c[0] for c in CASES])
def test_vertex_semantics_table(
    tmp_path: Path, name: str, call: Callable[[Path], Any], expected: Any, files: dict[str, Any]
) -> None:
    got = call(tmp_path)
    if isinstance(expected, float):
        assert math.isclose(got, expected), (name, got)
    else:
        assert got == expected, (name, got)
    assert _files(tmp_path) == files, name


def test_continuation_helpers_with_the_trial_id_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUD_ML_TRIAL_ID", "2")
    assert cnu.get_trial_id_from_environment() == "2"
    assert cnu.get_search_trial_id_to_finetune("3,7") == "7"
    assert cnu.get_retrain_search_job_model_dir("3,7", str(tmp_path)) == str(tmp_path / "7")
    assert cnu.get_finetune_nas_params_str("3,7", str(tmp_path)) == str(
        tmp_path / "7" / "nas_params_str.json"
    )  # the reference returns the file's path, which its trainers read
    monkeypatch.delenv("CLOUD_ML_TRIAL_ID")
    assert cnu.get_trial_id_from_environment() == 0  # the int, as the reference


def test_cloud_session_report_and_latency_wait_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Measurement:
        def __init__(self) -> None:
            self.step = 99
            self.metrics = {"top_1_accuracy": 0.75}

    monkeypatch.setenv("CLOUD_ML_HP_METRIC_TAG", "top_1_accuracy")
    cnu.CloudSession(str(tmp_path)).report(Measurement(), 1.5, {"model_memory": 3})
    assert json.loads((tmp_path / "FINAL_METRICS.json").read_text()) == {
        "top_1_accuracy": 0.75,
        "model_memory": 3.0,
        "model_flops": 1.5,
        "reward": 0.75,
    }
    saved = tmp_path / "saved_model"
    saved.mkdir()
    stats = {"latency_in_milliseconds": 2.5, "model_memory": 0}
    (saved / "model_latency.json").write_text(json.dumps(stats))
    assert cnu.wait_and_retrieve_latency(str(saved)) == stats


@pytest.fixture(autouse=True)
def _no_tpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TPU_CONFIG", raising=False)


def test_the_tpu_resolver_is_built_from_tpu_config(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    class Spec:
        def as_dict(self) -> dict[str, Any]:
            return {"worker": ["10.0.0.2:8470"]}

    class Resolver:  # what the trainer passes: its TF TPUClusterResolver class
        def __init__(self, **kwargs: Any) -> None:
            calls.append(kwargs)

        def cluster_spec(self) -> Spec:
            return Spec()

    config = {"tpu_node_name": "n", "zone": "z", "project": "p"}
    monkeypatch.setenv("TPU_CONFIG", json.dumps(config))
    assert isinstance(cnu.wait_for_tpu_cluster_resolver_ready(Resolver), Resolver)
    assert calls == [{"tpu": ["n"], "zone": "z", "project": "p", "job_name": "worker"}]
