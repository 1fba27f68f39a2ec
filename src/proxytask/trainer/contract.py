"""The trainer side of proxytask: the functions a user's trainer calls, over its trial dir.

Cheap to import (stdlib + fsspec). A trainer adds three calls and a resume flag::

    from proxytask import trainer as pt

    for cycle in cycles:
        if pt.get_stop_training(job_dir, end_step, total_steps):
            break
        ...train begin..end, timing only the training...
        pt.update_trial_training_accuracy_metric(
            job_dir, accuracy, begin, end, train_secs, total_steps)
    pt.update_trial_training_latency_metric(job_dir, latency_ms)

File names and JSON keys are those of the reference (Vertex AI NAS) tools, so a trainer written
for them works with ``proxytask.vertex`` after changing only its import line.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import numbers
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from proxytask.core import layout, storage
from proxytask.core.errors import NonFiniteMetricError, StorageError, UsageError
from proxytask.core.metric import MetricMode
from proxytask.core.metric import metric_mode as _as_metric_mode

__all__ = [
    "DEFAULT_HEARTBEAT_THRESHOLD_SECS",
    "MAX_ALLOWED_METRIC",
    "MIN_ALLOWED_METRIC",
    "AccuracyAtStep",
    "RewardRangeCheck",
    "TrainingTime",
    "Trial",
    "TrialTrainingMetrics",
    "check_reward_range",
    "compute_reward",
    "compute_training_step_pct",
    "get_accuracy_at_pct",
    "get_finetune_nas_params_str",
    "get_map_finetune_trial_id_to_search_trial_id",
    "get_retrain_search_job_model_dir",
    "get_search_trial_id_to_finetune",
    "get_stop_training",
    "get_trial_id_from_environment",
    "load_nas_params",
    "read_final_metrics",
    "read_trial_training_metrics",
    "record_trial_failure",
    "save_final_metrics",
    "save_nas_params",
    "set_stop_training",
    "str_2_bool",
    "update_trial_training_accuracy_metric",
    "update_trial_training_latency_metric",
    "write_controller_heartbeat",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Values and their JSON codec
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AccuracyAtStep:
    """One evaluation: progress in percent, the 0-based end step, and the accuracy."""

    training_step_pct: float
    training_step: int
    accuracy: float


@dataclasses.dataclass(frozen=True)
class TrainingTime:
    """Training-only steps and seconds accumulated over all reported cycles."""

    total_training_steps: int = 0
    total_training_time_in_secs: float = 0.0


#: The metrics file's latency when none was reported (the reference tools' value).
NO_LATENCY = -1.0


@dataclasses.dataclass(frozen=True)
class TrialTrainingMetrics:
    """The content of ``TRIAL_TRAINING_METRICS.json`` (latency -1 means none reported)."""

    training_time: TrainingTime = TrainingTime()
    latency: float = NO_LATENCY
    training_accuracy_over_steps: tuple[AccuracyAtStep, ...] = ()

    @property
    def last_pct(self) -> float:
        """The pct of the last evaluation, 0.0 when there is none."""
        points = self.training_accuracy_over_steps
        return points[-1].training_step_pct if points else 0.0

    @property
    def has_latency(self) -> bool:
        """True when a latency was reported (the reference stores -1 for none)."""
        return self.latency >= 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, field for field as the reference tools write it."""
        return {
            "training_time": dataclasses.asdict(self.training_time),
            "latency": self.latency,
            "training_accuracy_over_steps": [  # as dataclasses.asdict, without its deep copy
                {
                    "training_step_pct": p.training_step_pct,
                    "training_step": p.training_step,
                    "accuracy": p.accuracy,
                }
                for p in self.training_accuracy_over_steps
            ],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "metrics") -> TrialTrainingMetrics:
        """Parse the JSON form; raise StorageError naming ``source`` when it is malformed."""
        try:
            tt = data["training_time"]
            points = tuple(
                AccuracyAtStep(
                    training_step_pct=float(p["training_step_pct"]),
                    training_step=int(p["training_step"]),
                    accuracy=float(p["accuracy"]),
                )
                for p in data["training_accuracy_over_steps"]
            )
            return cls(
                training_time=TrainingTime(
                    total_training_steps=int(tt["total_training_steps"]),
                    total_training_time_in_secs=float(tt["total_training_time_in_secs"]),
                ),
                latency=float(data.get("latency", -1.0)),
                training_accuracy_over_steps=points,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StorageError(
                f"{source} must follow the TRIAL_TRAINING_METRICS.json schema, got a file "
                f"missing or mistyping {exc}. Let the trainer API write this file."
            ) from exc


def _check_dir(model_dir: object) -> str:
    if not isinstance(model_dir, str) or not model_dir:
        raise UsageError(
            f"model_dir must be a non-empty path or URL string, got {model_dir!r}. "
            "Pass the --job-dir the trial was started with."
        )
    return model_dir


def _check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int >= ``minimum``: Python and numpy integers, and integral floats
    (``300.0``, as trainers that count steps in floats pass them), are accepted."""
    number: int | None = None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        as_float = float(value)
        if math.isfinite(as_float) and as_float.is_integer():
            number = int(as_float)
    if number is None or number < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return number


def _check_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:  # numpy and torch scalars
            value = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise UsageError(f"{name} must be a number, got {value!r}.") from None
    return float(value)


# --------------------------------------------------------------------------------------------
# Reading and writing the metrics file
# --------------------------------------------------------------------------------------------


def compute_training_step_pct(end_training_cycle_step: int, total_training_steps: int) -> float:
    """Progress in percent after the 0-based step ``end_training_cycle_step``."""
    return 100.0 * float(end_training_cycle_step + 1) / float(total_training_steps)


def read_trial_training_metrics(model_dir: str) -> TrialTrainingMetrics | None:
    """Return the trial's metrics, or None when the trainer has not reported yet."""
    path = layout.trial_file(_check_dir(model_dir), layout.TRIAL_TRAINING_METRICS)
    data = storage.read_json(path)
    return None if data is None else TrialTrainingMetrics.from_dict(data, source=path)


def _write_metrics(model_dir: str, metrics: TrialTrainingMetrics) -> None:
    storage.write_json_atomic(
        layout.trial_file(model_dir, layout.TRIAL_TRAINING_METRICS), metrics.to_dict()
    )


def record_trial_failure(model_dir: str, cause: str, message: str) -> None:
    """Write ``TRIAL_FAILURE.json`` so the controller classifies this trial's failure."""
    storage.write_json_atomic(
        layout.trial_file(_check_dir(model_dir), layout.TRIAL_FAILURE),
        {"cause": cause, "message": message, "timestamp": time.time()},
    )


def update_trial_training_accuracy_metric(
    model_dir: str,
    accuracy: float,
    begin_training_cycle_step: int,
    end_training_cycle_step: int,
    training_cycle_time_in_secs: float,
    total_training_steps: int,
) -> None:
    """Record the accuracy reached after a training cycle covering steps ``begin..end``.

    Contract: steps are 0-based and inclusive; ``training_cycle_time_in_secs`` counts training
    only, not evaluation. A report whose pct is not above the last recorded pct is ignored
    with a warning and adds no time. A NaN or infinite accuracy records the trial as failed
    (cause ``nan``) and raises :class:`NonFiniteMetricError`.

    Example::

        update_trial_training_accuracy_metric(job_dir, 0.91, 0, 99, 12.5, 1000)  # 10 %
    """
    model_dir = _check_dir(model_dir)
    total = _check_int("total_training_steps", total_training_steps, 1)
    begin = _check_int("begin_training_cycle_step", begin_training_cycle_step, 0)
    end = _check_int("end_training_cycle_step", end_training_cycle_step, 0)
    if end < begin:
        raise UsageError(
            f"end_training_cycle_step must be >= begin_training_cycle_step ({begin}), got "
            f"{end}. Steps are 0-based and the cycle includes both ends."
        )
    if end >= total:
        raise UsageError(
            f"end_training_cycle_step must be < total_training_steps ({total}), got {end}. "
            "Steps are 0-based: the last step is total_training_steps - 1."
        )
    secs = _check_number("training_cycle_time_in_secs", training_cycle_time_in_secs)
    if not math.isfinite(secs) or secs < 0:
        raise UsageError(f"training_cycle_time_in_secs must be finite and >= 0, got {secs!r}.")
    acc = _check_number("accuracy", accuracy)
    if not math.isfinite(acc):
        message = f"accuracy must be finite, got {acc!r} at step {end} of {total}."
        record_trial_failure(model_dir, "nan", message)
        raise NonFiniteMetricError(
            message + " Lower the learning rate or clip gradients; the trial is marked failed."
        )
    metrics = read_trial_training_metrics(model_dir) or TrialTrainingMetrics()
    pct = compute_training_step_pct(end, total)
    if metrics.training_accuracy_over_steps and pct <= metrics.last_pct:
        logger.warning(
            "ignoring the report at %.4f%% (step %d): the last recorded pct is %.4f%%",
            pct,
            end,
            metrics.last_pct,
        )
        return
    point = AccuracyAtStep(training_step_pct=pct, training_step=end, accuracy=acc)
    time_so_far = metrics.training_time
    _write_metrics(
        model_dir,
        dataclasses.replace(
            metrics,
            training_accuracy_over_steps=(*metrics.training_accuracy_over_steps, point),
            training_time=TrainingTime(
                total_training_steps=time_so_far.total_training_steps + (end - begin + 1),
                total_training_time_in_secs=time_so_far.total_training_time_in_secs + secs,
            ),
        ),
    )


def update_trial_training_latency_metric(model_dir: str, latency: float) -> None:
    """Record the trained model's latency (any unit, used consistently; ms is customary).

    ``-1`` records "no latency", the file's own value for none (reference trainers pass it).
    """
    model_dir = _check_dir(model_dir)
    value = _check_number("latency", latency)
    if not math.isfinite(value) or (value < 0 and value != NO_LATENCY):
        raise UsageError(
            f"latency must be a finite number >= 0 (or {NO_LATENCY:g} for none, as the file "
            f"holds it), got {value!r}. Measure the model again."
        )
    metrics = read_trial_training_metrics(model_dir) or TrialTrainingMetrics()
    _write_metrics(model_dir, dataclasses.replace(metrics, latency=value))


def get_accuracy_at_pct(metrics: TrialTrainingMetrics | None, pct: float) -> float | None:
    """Accuracy at ``pct`` by linear interpolation, with an implicit (0 %, 0.0) first point.

    Defined only once the last recorded point reaches ``pct``; None before that.
    """
    if metrics is None or not metrics.training_accuracy_over_steps:
        return None
    points = metrics.training_accuracy_over_steps
    if points[-1].training_step_pct < pct:
        return None
    xs = [0.0] + [p.training_step_pct for p in points]
    ys = [0.0] + [p.accuracy for p in points]
    if pct <= 0:
        return 0.0
    for i in range(1, len(xs)):
        if xs[i] >= pct:
            x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
            if x1 == x0:
                return y1
            return y0 + (y1 - y0) * (pct - x0) / (x1 - x0)
    return ys[-1]


# --------------------------------------------------------------------------------------------
# Stop signals and the controller heartbeat
# --------------------------------------------------------------------------------------------

#: A heartbeat older than this many seconds means the controller is gone.
DEFAULT_HEARTBEAT_THRESHOLD_SECS = 900.0
_HEARTBEAT_ENV = "PROXYTASK_HEARTBEAT_THRESHOLD_SECS"
_SECS_PER_HOUR = 3600.0


def set_stop_training(
    model_dir: str,
    desired_training_pct: float | None = None,
    max_training_time_in_hrs: float | None = None,
) -> None:
    """Controller side: ask a trial to stop at a pct and/or after a training time.

    Any value is written, 0.0 included (it means "stop now"), both files may exist, and a
    later call may lower (or raise) the target.
    """
    model_dir = _check_dir(model_dir)
    if desired_training_pct is not None:
        value = _check_number("desired_training_pct", desired_training_pct)
        storage.write_json_atomic(
            layout.trial_file(model_dir, layout.DESIRED_TRAINING_PCT),
            {layout.DESIRED_TRAINING_PCT_KEY: value},
        )
    if max_training_time_in_hrs is not None:
        value = _check_number("max_training_time_in_hrs", max_training_time_in_hrs)
        storage.write_json_atomic(
            layout.trial_file(model_dir, layout.MAX_TRAINING_TIME),
            {layout.MAX_TRAINING_TIME_KEY: value},
        )


def write_controller_heartbeat(
    model_dir: str, timestamp: float, threshold_secs: float | None = None
) -> None:
    """Controller side: post ``controller_alive_timestamp.json`` (optionally its threshold)."""
    data: dict[str, float] = {layout.CONTROLLER_ALIVE_KEY: float(timestamp)}
    if threshold_secs is not None:
        data["threshold_secs"] = float(threshold_secs)
    storage.write_json_atomic(
        layout.trial_file(_check_dir(model_dir), layout.CONTROLLER_ALIVE), data
    )


def _read_float(path: str, key: str) -> float | None:
    try:
        data = storage.read_json(path)
    except StorageError as exc:
        logger.warning("ignoring an unreadable signal file: %s", exc)
        return None
    if not isinstance(data, dict) or key not in data:
        return None
    try:
        return float(data[key])
    except (TypeError, ValueError):
        logger.warning("ignoring %s: %r is not a number", path, data[key])
        return None


def _heartbeat_threshold(model_dir: str, explicit: float | None) -> float:
    if explicit is not None:
        return explicit
    posted = _read_float(layout.trial_file(model_dir, layout.CONTROLLER_ALIVE), "threshold_secs")
    if posted is not None:
        return posted
    env = os.environ.get(_HEARTBEAT_ENV)
    if env:
        try:
            return float(env)
        except ValueError:
            logger.warning("ignoring %s=%r: not a number", _HEARTBEAT_ENV, env)
    return DEFAULT_HEARTBEAT_THRESHOLD_SECS


def get_stop_training(
    model_dir: str,
    end_training_cycle_step: int,
    total_training_steps: int,
    *,
    heartbeat_threshold_secs: float | None = None,
    now: float | None = None,
) -> bool:
    """Return True when the trainer should stop now, before its next cycle.

    Call it before each cycle with the last completed 0-based step (-1 before the first).
    True when any of these holds:

    - the controller heartbeat is older than its threshold (900 s by default; the controller
      may post its own, or set ``PROXYTASK_HEARTBEAT_THRESHOLD_SECS``): an orphaned trial ends
      cleanly instead of running on;
    - ``DESIRED_TRAINING_PCT.json`` holds a pct the trial has reached (0.0 means stop now);
    - ``MAX_TRAINING_TIME.json`` holds a time the trial's training-only time exceeds
      (0.0 means stop now).

    Example::

        step = -1
        while not get_stop_training(job_dir, step, total):
            step = train_one_cycle(step + 1)
    """
    model_dir = _check_dir(model_dir)
    total = _check_int("total_training_steps", total_training_steps, 1)
    end = _check_int("end_training_cycle_step", end_training_cycle_step, -1)
    current = time.time() if now is None else now

    beat = _read_float(layout.trial_file(model_dir, layout.CONTROLLER_ALIVE), "timestamp")
    if beat is not None:
        threshold = _heartbeat_threshold(model_dir, heartbeat_threshold_secs)
        if current - beat > threshold:
            logger.warning(
                "stopping: the controller heartbeat is %.0f s old (threshold %.0f s)",
                current - beat,
                threshold,
            )
            return True

    desired = _read_float(
        layout.trial_file(model_dir, layout.DESIRED_TRAINING_PCT), layout.DESIRED_TRAINING_PCT_KEY
    )
    pct = compute_training_step_pct(end, total)
    if desired is not None and pct >= desired:
        logger.info("stopping: reached %.4f%% >= desired %.4f%%", pct, desired)
        return True

    max_hrs = _read_float(
        layout.trial_file(model_dir, layout.MAX_TRAINING_TIME), layout.MAX_TRAINING_TIME_KEY
    )
    if max_hrs is not None:
        if max_hrs <= 0:
            logger.info("stopping: max training time is %s h (stop now)", max_hrs)
            return True
        metrics = read_trial_training_metrics(model_dir)
        if metrics is not None:
            hours = metrics.training_time.total_training_time_in_secs / _SECS_PER_HOUR
            if hours > max_hrs:
                logger.info("stopping: trained %.4f h > max %.4f h", hours, max_hrs)
                return True
    return False


# --------------------------------------------------------------------------------------------
# Continuations and the architecture
# --------------------------------------------------------------------------------------------


def str_2_bool(value: str) -> bool:
    """Parse a command-line boolean the way the reference tools do ("true" → True)."""
    if not isinstance(value, str):
        raise UsageError(f"a boolean flag must be given as a string, got {value!r}.")
    return value.strip().lower() == "true"


def get_trial_id_from_environment() -> str:
    """The 1-based trial id from ``CLOUD_ML_TRIAL_ID`` ("0" with a warning when unset)."""
    value = os.environ.get(layout.ENV_TRIAL_ID)
    if value is None:
        logger.warning("%s is not set; using trial id 0", layout.ENV_TRIAL_ID)
        return "0"
    return value.strip()


def get_map_finetune_trial_id_to_search_trial_id(retrain_search_job_trials: str) -> dict[str, str]:
    """Map "1", "2", … to the comma-separated earlier trial ids (ids may repeat)."""
    if not isinstance(retrain_search_job_trials, str) or not retrain_search_job_trials.strip():
        raise UsageError(
            f"--retrain_search_job_trials must be comma-separated trial ids like '3,7,7', got "
            f"{retrain_search_job_trials!r}."
        )
    ids = [t.strip() for t in retrain_search_job_trials.split(",")]
    if any(not t for t in ids):
        raise UsageError(
            f"--retrain_search_job_trials must not contain empty ids, got "
            f"{retrain_search_job_trials!r}. Remove the doubled or trailing comma."
        )
    return {str(i + 1): t for i, t in enumerate(ids)}


def get_search_trial_id_to_finetune(retrain_search_job_trials: str) -> str:
    """The earlier trial id this trial continues (trial k continues the k-th listed id)."""
    mapping = get_map_finetune_trial_id_to_search_trial_id(retrain_search_job_trials)
    current = get_trial_id_from_environment()
    if current not in mapping:
        raise UsageError(
            f"{layout.ENV_TRIAL_ID} must be between 1 and {len(mapping)} for "
            f"--retrain_search_job_trials={retrain_search_job_trials!r}, got {current!r}."
        )
    return mapping[current]


def get_retrain_search_job_model_dir(
    retrain_search_job_trials: str, retrain_search_job_dir: str
) -> str:
    """The earlier trial dir whose checkpoint this trial continues."""
    if not retrain_search_job_dir:
        raise UsageError("--retrain_search_job_dir must be set to continue an earlier trial.")
    trial = get_search_trial_id_to_finetune(retrain_search_job_trials)
    return layout.trial_dir(retrain_search_job_dir, trial)


def get_finetune_nas_params_str(retrain_search_job_trials: str, retrain_search_job_dir: str) -> str:
    """The path of the earlier trial's ``nas_params_str.json`` (as the reference returns)."""
    return layout.trial_file(
        get_retrain_search_job_model_dir(retrain_search_job_trials, retrain_search_job_dir),
        layout.NAS_PARAMS,
    )


def save_nas_params(model_dir: str, nas_params: Mapping[str, Any] | str) -> dict[str, Any]:
    """Save the architecture as ``nas_params_str.json``; accept a dict or its JSON string."""
    model_dir = _check_dir(model_dir)
    parsed = _parse_nas_params(nas_params) if isinstance(nas_params, str) else dict(nas_params)
    if not isinstance(parsed, dict):
        raise UsageError(f"--nas_params_str must be a JSON object, got {parsed!r}.")
    storage.write_json_atomic(layout.trial_file(model_dir, layout.NAS_PARAMS), parsed)
    return parsed


def _parse_nas_params(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--nas_params_str must be a JSON object, got {text[:80]!r} ({exc})."
        ) from exc


def load_nas_params(source: str) -> dict[str, Any]:
    """Load an architecture from a JSON string, a ``.json`` file, or a trial dir."""
    text: str | None
    if source.lstrip().startswith("{"):
        text = source
    else:
        path = source if source.endswith(".json") else layout.trial_file(source, layout.NAS_PARAMS)
        text = storage.read_text(path)
        if text is None:
            raise UsageError(
                f"architecture file {path!r} must exist, got nothing there. Was the earlier "
                "trial started, and did it call save_nas_params?"
            )
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"architecture must be a JSON object, got {text[:80]!r} ({exc}).") from exc
    if not isinstance(parsed, dict):
        raise UsageError(f"architecture must be a JSON object, got {parsed!r}.")
    return parsed


# --------------------------------------------------------------------------------------------
# Named final metrics, rewards
# --------------------------------------------------------------------------------------------

#: Rewards reported to a NAS controller should lie in this range.
MIN_ALLOWED_METRIC = 1e-3
MAX_ALLOWED_METRIC = 10.0


def save_final_metrics(model_dir: str, metrics: Mapping[str, float]) -> None:
    """Merge named final metrics (any number of them) into ``FINAL_METRICS.json``."""
    model_dir = _check_dir(model_dir)
    path = layout.trial_file(model_dir, layout.FINAL_METRICS)
    current = storage.read_json(path) or {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise UsageError(f"metric names must be non-empty strings, got {name!r}.")
        number = _check_number(f"metric {name!r}", value)
        if not math.isfinite(number):
            raise UsageError(f"metric {name!r} must be finite, got {number!r}.")
        current[name] = number
    storage.write_json_atomic(path, current)


def read_final_metrics(model_dir: str) -> dict[str, float]:
    """The named final metrics a trial saved ({} when none)."""
    data = storage.read_json(layout.trial_file(_check_dir(model_dir), layout.FINAL_METRICS))
    return {str(k): float(v) for k, v in (data or {}).items()}


def compute_reward(
    accuracy: float,
    target_latency_or_flops: float,
    measured_latency_or_flops: float,
    target_memory: float = 0,
    measured_memory: float = 0,
    weight: float = 1.0,
    use_hard_limit: bool = True,
) -> float:
    """MnasNet-style latency-aware reward.

    ``accuracy * min(1, (target / measured) ** weight)`` with ``use_hard_limit``, else
    ``accuracy * (target / measured) ** weight``; a memory target multiplies in the same way.

    Example: ``compute_reward(0.9, 10.0, 20.0, weight=0.07)`` ≈ 0.857.
    """
    measured = _check_number("measured_latency_or_flops", measured_latency_or_flops)
    target = _check_number("target_latency_or_flops", target_latency_or_flops)
    if measured <= 0 or target <= 0:
        raise UsageError(
            f"target and measured latency must be > 0, got target={target!r}, "
            f"measured={measured!r}."
        )
    factor: float = (target / measured) ** weight
    if use_hard_limit:
        factor = min(1.0, factor)
    if target_memory:
        if measured_memory <= 0:
            raise UsageError(f"measured_memory must be > 0 with a target, got {measured_memory!r}.")
        mem_factor: float = (float(target_memory) / float(measured_memory)) ** weight
        factor *= min(1.0, mem_factor) if use_hard_limit else mem_factor
    return float(accuracy) * factor


@dataclasses.dataclass(frozen=True)
class RewardRangeCheck:
    """Whether rewards lie in [1e-3, 10], and a factor that would bring them there."""

    ok: bool
    minimum: float | None
    maximum: float | None
    scale_factor: float
    message: str


def check_reward_range(values: Sequence[float], metric_mode: str = "max") -> RewardRangeCheck:
    """Check rewards against the NAS controller's range [1e-3, 10].

    A NAS controller maximises its reward. With ``metric_mode="min"`` the values are a
    lower-is-better metric (a loss, perplexity, an error rate): no scale factor makes that a
    reward, so the check is never ok; it reports the values' range and says to report a
    reward that rises as the metric falls (e.g. ``1 / (1 + loss)``) and to check that.

    Example::

        >>> check_reward_range([0.5, 0.9]).ok, check_reward_range([0.5, 0.9], "min").ok
        (True, False)
    """
    finite = [float(v) for v in values if math.isfinite(float(v))]
    if not finite:
        return RewardRangeCheck(False, None, None, 1.0, "no finite rewards to check")
    lo, hi = min(finite), max(finite)
    if _as_metric_mode(metric_mode) is MetricMode.MIN:
        return RewardRangeCheck(
            False,
            lo,
            hi,
            1.0,
            f"the metric is lower-is-better (values in [{lo:.4g}, {hi:.4g}]) but a NAS "
            "controller maximises its reward: report a reward that rises as the metric falls, "
            "e.g. 1 / (1 + loss), and check its range with check_reward_range",
        )
    if lo >= MIN_ALLOWED_METRIC and hi <= MAX_ALLOWED_METRIC:
        return RewardRangeCheck(True, lo, hi, 1.0, f"rewards lie in [{lo:.4g}, {hi:.4g}]")
    if hi > MAX_ALLOWED_METRIC:
        factor = MAX_ALLOWED_METRIC / hi
    elif lo > 0:
        factor = MIN_ALLOWED_METRIC / lo
    else:
        factor = 1.0
    if lo * factor < MIN_ALLOWED_METRIC and hi * factor <= MAX_ALLOWED_METRIC and lo > 0:
        # the span is wider than the range allows: bring the top to the top of the range
        factor = MAX_ALLOWED_METRIC / hi
    return RewardRangeCheck(
        False,
        lo,
        hi,
        factor,
        f"rewards span [{lo:.4g}, {hi:.4g}], outside [{MIN_ALLOWED_METRIC}, "
        f"{MAX_ALLOWED_METRIC}]; multiply them by {factor:.4g}",
    )


# --------------------------------------------------------------------------------------------
# A small object API over the same functions
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Trial:
    """A trial seen from inside the trainer: its dir and its step budget.

    Example::

        trial = Trial(job_dir, total_steps=1000)
        step = -1
        while not trial.should_stop(step):
            t = train(step + 1, step + 100)
            step += 100
            trial.report(accuracy=evaluate(), begin=step - 99, end=step, seconds=t)
        trial.report_latency(measure_latency())
    """

    model_dir: str
    total_steps: int

    def should_stop(self, end_step: int) -> bool:
        """See :func:`get_stop_training`."""
        return get_stop_training(self.model_dir, end_step, self.total_steps)

    def report(self, accuracy: float, begin: int, end: int, seconds: float) -> None:
        """See :func:`update_trial_training_accuracy_metric`."""
        update_trial_training_accuracy_metric(
            self.model_dir, accuracy, begin, end, seconds, self.total_steps
        )

    def report_latency(self, latency: float) -> None:
        """See :func:`update_trial_training_latency_metric`."""
        update_trial_training_latency_metric(self.model_dir, latency)

    def save_final_metrics(self, metrics: Mapping[str, float]) -> None:
        """See :func:`save_final_metrics`."""
        save_final_metrics(self.model_dir, metrics)

    def metrics(self) -> TrialTrainingMetrics | None:
        """See :func:`read_trial_training_metrics`."""
        return read_trial_training_metrics(self.model_dir)
