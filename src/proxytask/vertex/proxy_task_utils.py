"""The reference tools' ``proxy_task_utils`` module: same names and signatures.

Behaviour follows proxytask's fixed semantics: stop signals of any value, heartbeat
honoured, atomic writes on local disks and object stores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from proxytask.core import layout, storage
from proxytask.core.errors import StorageError
from proxytask.trainer.contract import (
    AccuracyAtStep,
    TrainingTime,
    TrialTrainingMetrics,
    compute_training_step_pct,
    get_accuracy_at_pct,
    get_stop_training,
    update_trial_training_accuracy_metric,
    update_trial_training_latency_metric,
)
from proxytask.trainer.contract import set_stop_training as _set_stop_training

__all__ = [
    "AccuracyAtStep",
    "MissingMetricsError",
    "ProxyTaskConfig",
    "TrainingTime",
    "TrialTrainingMetrics",
    "compute_training_step_pct",
    "copy_trial_training_metrics",
    "get_accuracy_at_step",
    "get_accuracy_at_step_from_dict",
    "get_stop_training",
    "get_training_time_from_dict",
    "get_trial_training_metrics_file",
    "get_trial_training_metrics_from_dict",
    "has_accuracy_at_step",
    "read_trial_training_metrics_file",
    "save_trial_training_metrics_file",
    "set_stop_training",
    "update_trial_training_accuracy_metric",
    "update_trial_training_latency_metric",
]


@dataclasses.dataclass
class ProxyTaskConfig:
    """A proxy-task config as the reference generators build it: a unique ``name`` and
    ``docker_args_map``, the trainer flags it sets. Generators may return these or
    :class:`proxytask.ProxyTaskConfig` (``trainer_args``); proxytask reads either."""

    name: str
    docker_args_map: dict[str, Any]


def get_accuracy_at_step_from_dict(dict_obj: Mapping[str, Any]) -> AccuracyAtStep:
    """An :class:`AccuracyAtStep` from its JSON dict."""
    return AccuracyAtStep(
        training_step_pct=float(dict_obj["training_step_pct"]),
        training_step=int(dict_obj["training_step"]),
        accuracy=float(dict_obj["accuracy"]),
    )


def get_training_time_from_dict(dict_obj: Mapping[str, Any]) -> TrainingTime:
    """A :class:`TrainingTime` from its JSON dict."""
    return TrainingTime(
        total_training_steps=int(dict_obj["total_training_steps"]),
        total_training_time_in_secs=float(dict_obj["total_training_time_in_secs"]),
    )


def get_trial_training_metrics_from_dict(dict_obj: Mapping[str, Any]) -> TrialTrainingMetrics:
    """A :class:`TrialTrainingMetrics` from the metrics file's JSON dict (checked)."""
    return TrialTrainingMetrics.from_dict(dict(dict_obj), source="a metrics dict")


def get_trial_training_metrics_file(model_dir: str) -> str:
    """Path of ``TRIAL_TRAINING_METRICS.json`` in ``model_dir``."""
    return layout.trial_file(model_dir, layout.TRIAL_TRAINING_METRICS)


def read_trial_training_metrics_file(filepath: str) -> TrialTrainingMetrics | None:
    """Read the metrics file at ``filepath``; None when it does not exist."""
    data = storage.read_json(filepath)
    return None if not data else TrialTrainingMetrics.from_dict(data, source=filepath)


def save_trial_training_metrics_file(
    filepath: str, trial_training_metrics: TrialTrainingMetrics
) -> None:
    """Write the metrics file atomically."""
    storage.write_json_atomic(filepath, trial_training_metrics.to_dict())


def set_stop_training(
    model_dir: str,
    desired_training_step_pct: float | None = None,
    max_training_time_in_hrs: float | None = None,
) -> None:
    """Write the stop signals. Unlike the reference, 0.0 ("stop now") is written too."""
    _set_stop_training(model_dir, desired_training_step_pct, max_training_time_in_hrs)


def has_accuracy_at_step(
    trial_training_metrics: TrialTrainingMetrics | None, desired_training_step_pct: float
) -> bool:
    """True when the last recorded pct reaches ``desired_training_step_pct``."""
    if trial_training_metrics is None or not trial_training_metrics.training_accuracy_over_steps:
        return False
    return trial_training_metrics.last_pct >= desired_training_step_pct


def get_accuracy_at_step(
    trial_training_metrics: TrialTrainingMetrics | None, desired_training_step_pct: float
) -> float | None:
    """Interpolated accuracy at a pct, with an implicit (0, 0.0) point; None if not reached."""
    return get_accuracy_at_pct(trial_training_metrics, desired_training_step_pct)


class MissingMetricsError(StorageError, ValueError):
    """No metrics file to copy: a StorageError for proxytask, a ValueError as the reference
    raises, so code written for either catches it."""


def copy_trial_training_metrics(prev_model_dir: str, curr_model_dir: str) -> None:
    """Copy the metrics file of an earlier trial into a continuing trial's dir.

    Raises :class:`MissingMetricsError` (a ValueError, as the reference) when there is none.
    """
    src = get_trial_training_metrics_file(prev_model_dir)
    if not storage.exists(src):
        raise MissingMetricsError(
            f"metrics file {src!r} must exist to be copied, got nothing there."
        )
    storage.copy_file(src, get_trial_training_metrics_file(curr_model_dir))


_ = (AccuracyAtStep, TrainingTime, compute_training_step_pct)
