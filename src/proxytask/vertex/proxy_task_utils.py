"""The reference tools' ``proxy_task_utils`` module: same names and signatures.

Behaviour follows proxytask's fixed semantics: stop signals of any value, heartbeat
honoured, atomic writes on local disks and object stores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from proxytask.core import layout, storage
from proxytask.core.errors import StorageError, UsageError
from proxytask.trainer import contract as _contract
from proxytask.trainer.contract import (
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


@dataclasses.dataclass
class AccuracyAtStep:
    """One evaluation, as the reference's mutable class (defaults -1)."""

    training_step_pct: float = -1.0
    training_step: int = -1
    accuracy: float = -1.0


@dataclasses.dataclass
class TrainingTime:
    """Training-only steps and seconds so far, as the reference's mutable class."""

    total_training_steps: int = 0
    total_training_time_in_secs: float = 0.0


@dataclasses.dataclass
class TrialTrainingMetrics:
    """The metrics file's content as the reference's mutable class: code written for it may
    append points or set the latency, then save it with
    :func:`save_trial_training_metrics_file` (checked there)."""

    training_time: TrainingTime = dataclasses.field(default_factory=TrainingTime)
    latency: float = _contract.NO_LATENCY
    training_accuracy_over_steps: list[AccuracyAtStep] = dataclasses.field(default_factory=list)

    @property
    def last_pct(self) -> float:
        """The pct of the last evaluation, 0.0 when there is none."""
        points = self.training_accuracy_over_steps
        return points[-1].training_step_pct if points else 0.0

    @property
    def has_latency(self) -> bool:
        """True when a latency was reported (-1 means none)."""
        return self.latency >= 0

    @classmethod
    def from_contract(cls, metrics: _contract.TrialTrainingMetrics) -> TrialTrainingMetrics:
        """The mutable copy of proxytask's (frozen) metrics."""
        return get_trial_training_metrics_from_dict(metrics.to_dict())

    def to_contract(self) -> _contract.TrialTrainingMetrics:
        """proxytask's checked, frozen form (StorageError when a value is malformed)."""
        return _contract.TrialTrainingMetrics.from_dict(
            dataclasses.asdict(self), source="a TrialTrainingMetrics"
        )


def _contract_metrics(metrics: Any) -> _contract.TrialTrainingMetrics | None:
    """Either kind of metrics object as proxytask's; None stays None."""
    if metrics is None or isinstance(metrics, _contract.TrialTrainingMetrics):
        return metrics
    if isinstance(metrics, TrialTrainingMetrics):
        return metrics.to_contract()
    raise TypeError(f"expected TrialTrainingMetrics, got {type(metrics).__name__}")


def get_accuracy_at_step_from_dict(dict_obj: Mapping[str, Any]) -> AccuracyAtStep:
    """An :class:`AccuracyAtStep` from its JSON dict."""
    return AccuracyAtStep(**dict_obj)


def get_training_time_from_dict(dict_obj: Mapping[str, Any]) -> TrainingTime:
    """A :class:`TrainingTime` from its JSON dict."""
    return TrainingTime(**dict_obj)


def get_trial_training_metrics_from_dict(dict_obj: Mapping[str, Any]) -> TrialTrainingMetrics:
    """A :class:`TrialTrainingMetrics` from the metrics file's JSON dict."""
    return TrialTrainingMetrics(
        latency=dict_obj["latency"],
        training_accuracy_over_steps=[
            get_accuracy_at_step_from_dict(v) for v in dict_obj["training_accuracy_over_steps"]
        ],
        training_time=get_training_time_from_dict(dict_obj["training_time"]),
    )


def get_trial_training_metrics_file(model_dir: str) -> str:
    """Path of ``TRIAL_TRAINING_METRICS.json`` in ``model_dir``."""
    return layout.trial_file(model_dir, layout.TRIAL_TRAINING_METRICS)


def read_trial_training_metrics_file(filepath: str) -> TrialTrainingMetrics | None:
    """Read the metrics file at ``filepath`` (checked); None when it does not exist."""
    data = storage.read_json(filepath)
    if not data:
        return None
    return TrialTrainingMetrics.from_contract(
        _contract.TrialTrainingMetrics.from_dict(data, source=filepath)
    )


def save_trial_training_metrics_file(filepath: str, trial_training_metrics: Any) -> None:
    """Write the metrics file atomically (either kind of metrics object, checked)."""
    metrics = _contract_metrics(trial_training_metrics)
    if metrics is None:
        raise UsageError("trial_training_metrics must be a TrialTrainingMetrics, got None.")
    storage.write_json_atomic(filepath, metrics.to_dict())


def set_stop_training(
    model_dir: str,
    desired_training_step_pct: float | None = None,
    max_training_time_in_hrs: float | None = None,
) -> None:
    """Write the stop signals. Unlike the reference, 0.0 ("stop now") is written too."""
    _set_stop_training(model_dir, desired_training_step_pct, max_training_time_in_hrs)


def has_accuracy_at_step(trial_training_metrics: Any, desired_training_step_pct: float) -> bool:
    """True when the last recorded pct reaches ``desired_training_step_pct``."""
    if trial_training_metrics is None or not trial_training_metrics.training_accuracy_over_steps:
        return False
    return bool(trial_training_metrics.last_pct >= desired_training_step_pct)


def get_accuracy_at_step(
    trial_training_metrics: Any, desired_training_step_pct: float
) -> float | None:
    """Interpolated accuracy at a pct, with an implicit (0, 0.0) point; None if not reached."""
    return get_accuracy_at_pct(_contract_metrics(trial_training_metrics), desired_training_step_pct)


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


_ = compute_training_step_pct
