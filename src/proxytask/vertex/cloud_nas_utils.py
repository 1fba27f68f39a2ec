"""The reference tools' ``cloud_nas_utils`` helpers that trainers use: same names.

Every function and constant a Vertex AI NAS trainer, generator or latency calculator calls
from the reference ``cloud_nas_utils`` is here with the same name, signature and return type;
the file effects are those of proxytask's trial dir (atomic writes, any fsspec URL). Where the
reference depends on its cloud, the local meaning is documented on the function:
:class:`CloudSession` records the reported metrics in ``FINAL_METRICS.json``;
:func:`get_job_dir_from_environment_if_exist` accepts proxytask's trial dirs as well as the
reference's ``.../nas/search/<id>`` ones; :func:`wait_and_retrieve_latency` waits for the
``model_latency.json`` a latency calculator writes beside the exported model.

The PyGlove helpers (``parse_and_save_nas_params_str``, ``serialize_and_save_tunable_object``)
materialise with the ``pyglove`` package (``pip install 'proxytask[vertex]'``) when the search
space is a PyGlove value; a plain search space's JSON architecture passes through unchanged.
The reference's image-drawing helpers (``draw_boxes``, ``draw_bounding_box_on_image``) draw
detection results with PIL; they are not trainer contract and are not here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from typing import Any

from proxytask.core import layout, storage
from proxytask.core.errors import StorageError, UsageError
from proxytask.trainer.contract import (
    MAX_ALLOWED_METRIC,
    MIN_ALLOWED_METRIC,
    compute_reward,
    get_finetune_nas_params_str,
    get_map_finetune_trial_id_to_search_trial_id,
    get_retrain_search_job_model_dir,
    get_search_trial_id_to_finetune,
    save_final_metrics,
    str_2_bool,
)

__all__ = [
    "ENVIRONMENT_VARIABLE_FOR_MODEL_DIR",
    "ENVIRONMENT_VARIABLE_FOR_TRIAL_ID",
    "JOB_STATUS_FAILED",
    "JOB_STATUS_FAILED_WITH_NAN_ERROR",
    "JOB_STATUS_KEY",
    "JOB_STATUS_SUCCESS",
    "MAX_ALLOWED_METRIC",
    "MIN_ALLOWED_METRIC",
    "SAVED_MODEL_SUB_DIR",
    "VERTEX_SEARCH_TRIAL_DIR_REGEX",
    "VERTEX_TRAIN_TRIAL_DIR_REGEX",
    "CloudSession",
    "compute_reward",
    "get_finetune_nas_params_str",
    "get_job_dir_from_environment_if_exist",
    "get_map_finetune_trial_id_to_search_trial_id",
    "get_retrain_search_job_model_dir",
    "get_saved_model_dir",
    "get_search_trial_id_to_finetune",
    "get_trial_id_from_environment",
    "parse_and_save_nas_params_str",
    "serialize_and_save_tunable_object",
    "setup_logging",
    "str_2_bool",
    "wait_and_retrieve_latency",
    "wait_for_tpu_cluster_resolver_ready",
    "write_job_status",
]

logger = logging.getLogger(__name__)

JOB_STATUS_KEY = "job_status"
JOB_STATUS_SUCCESS = "success"
JOB_STATUS_FAILED = "failed"
JOB_STATUS_FAILED_WITH_NAN_ERROR = "failed_with_nan_error"
ENVIRONMENT_VARIABLE_FOR_MODEL_DIR = layout.ENV_MODEL_DIR
ENVIRONMENT_VARIABLE_FOR_TRIAL_ID = layout.ENV_TRIAL_ID
#: The reference's trial job dirs (``gs://<bucket>/<job>/nas/search/<id>``, ``.../train/<id>``).
VERTEX_SEARCH_TRIAL_DIR_REGEX = r".*nas/search/\d+"
VERTEX_TRAIN_TRIAL_DIR_REGEX = r".*nas/train/\d+"
#: Where a trainer exports its model for a latency calculator, inside the trial dir.
SAVED_MODEL_SUB_DIR = layout.SAVED_MODEL_DIR
#: Where :func:`serialize_and_save_tunable_object` writes, in the trial dir.
SERIALIZED_TUNABLE_OBJECT_FILE = "serialized_tunable_object.json"
#: The file a latency calculator writes beside the exported model.
MODEL_LATENCY_FILE = layout.MODEL_LATENCY
_TPU_RESOLVER_RETRY = 40  # as the reference
_MAX_LATENCY_POLL_SECS = 2.0  # wait_and_retrieve_latency looks at least this often
#: How long :func:`wait_and_retrieve_latency` waits, as the reference (10 minutes).
LATENCY_TIMEOUT_SECS = 600.0


def write_job_status(model_dir: str, status: str) -> None:
    """Write ``job_status.json`` in the trial dir, as the reference does."""
    storage.write_json_atomic(
        layout.trial_file(model_dir, layout.JOB_STATUS), {JOB_STATUS_KEY: status}
    )


def get_trial_id_from_environment() -> str | int:
    """``CLOUD_ML_TRIAL_ID`` as the reference returns it: the string, or the int 0 (with a
    warning) when it is unset."""
    if ENVIRONMENT_VARIABLE_FOR_TRIAL_ID not in os.environ:
        logger.warning(
            "Environment variable %s not found, return 0 as default trial id.",
            ENVIRONMENT_VARIABLE_FOR_TRIAL_ID,
        )
    return os.environ.get(ENVIRONMENT_VARIABLE_FOR_TRIAL_ID, 0)


def parse_and_save_nas_params_str(
    search_space: Any, nas_params_str: str, model_dir: str | None = None
) -> Any:
    """The architecture ``nas_params_str`` names, materialised in ``search_space``.

    ``nas_params_str`` is the JSON proxytask passes (or a path ending ``.json``, as a
    continuation's ``nas_params_str.json``). With a PyGlove ``search_space`` it returns
    ``pg.materialize(search_space, decisions)``, the tunable object; with anything else (a
    plain search space) the decoded dict. With ``model_dir``, the decisions are saved there as
    ``nas_params_str.json``, as the reference does. Raises UsageError for JSON that is not an
    object and for decisions the space cannot materialise.
    """
    text = nas_params_str
    if nas_params_str.endswith(".json"):
        loaded = storage.read_text(nas_params_str)
        if loaded is None:
            raise UsageError(
                f"nas_params_str must name an existing .json file, got {nas_params_str!r}."
            )
        text = loaded
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"nas_params_str must be JSON, got {text!r:.120} ({exc}).") from None
    if not isinstance(params, dict):
        raise UsageError(f"nas_params_str must be a JSON object, got {params!r:.120}.")
    result: Any = params
    if _is_pyglove(search_space):
        import pyglove as pg

        try:
            result = pg.materialize(search_space, params)
        except (TypeError, ValueError, KeyError) as exc:
            raise UsageError(
                f"nas_params_str must hold decisions of this search space, got {params!r:.120} "
                f"({exc}). Was it sampled from another space?"
            ) from None
    if model_dir:
        storage.write_json_atomic(layout.trial_file(model_dir, layout.NAS_PARAMS), params)
    return result


def serialize_and_save_tunable_object(tunable_object: Any, model_dir: str) -> str:
    """Write the tunable object as JSON to ``serialized_tunable_object.json``; return it.

    PyGlove objects are serialised with ``pg.to_json_str`` (indent 2, defaults shown), as the
    reference; plain values with ``json.dumps``.
    """
    if _is_pyglove(tunable_object):
        import pyglove as pg

        text = pg.to_json_str(tunable_object, json_indent=2, hide_default_values=False)
    else:
        text = json.dumps(tunable_object, indent=2, sort_keys=True)
    logger.info("serialized_tunable_object is %s", text)
    storage.write_bytes_atomic(
        storage.join(model_dir, SERIALIZED_TUNABLE_OBJECT_FILE), text.encode("utf-8")
    )
    return str(text)


def _is_pyglove(value: Any) -> bool:
    """True when ``value`` is a PyGlove symbolic value (and pyglove is installed)."""
    try:
        import pyglove as pg
    except ImportError:
        return False
    return isinstance(value, pg.Symbolic)


def setup_logging() -> None:
    """INFO logging to stdout for the trainer's main file, as the reference sets it up.

    Replaces the root logger's handlers with one stdout handler at INFO and drops the
    ``tensorflow`` logger's own handlers (so nothing is logged twice).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    tf_logger = logging.getLogger("tensorflow")
    while tf_logger.handlers:
        tf_logger.removeHandler(tf_logger.handlers[0])
    handler = logging.StreamHandler(sys.stdout)
    handler.setLevel(logging.INFO)
    root.addHandler(handler)


def get_job_dir_from_environment_if_exist(current_job_dir: str) -> str:
    """The trial dir from ``AIP_MODEL_DIR`` when it is set, else ``current_job_dir``.

    Under the reference tools ``AIP_MODEL_DIR`` is a sub-folder of the trial's job dir
    (``.../nas/search/<id>/...``) and the job dir is cut out of it; a path of that form is
    cut the same way here. proxytask sets ``AIP_MODEL_DIR`` to the trial dir itself, which
    is returned as it is. Raises UsageError for an empty ``AIP_MODEL_DIR``.
    """
    model_dir = os.environ.get(ENVIRONMENT_VARIABLE_FOR_MODEL_DIR)
    if model_dir is None:
        logger.info("Keeping current job-dir %s.", current_job_dir)
        return current_job_dir
    if not model_dir.strip():
        raise UsageError(
            f"{ENVIRONMENT_VARIABLE_FOR_MODEL_DIR} must name the trial dir, got an empty "
            "value. Unset it to keep --job-dir."
        )
    for pattern in (VERTEX_SEARCH_TRIAL_DIR_REGEX, VERTEX_TRAIN_TRIAL_DIR_REGEX):
        match = re.match(pattern, model_dir)
        if match:
            model_dir = match.group(0)
            break
    logger.info("Overriding job-dir %s to %s set by the environment.", current_job_dir, model_dir)
    return model_dir


def wait_for_tpu_cluster_resolver_ready(tpu_cluster_resolver_module: Any) -> Any:
    """The TPU cluster resolver of the machine's ``TPU_CONFIG``, or None without one.

    As the reference: ``TPU_CONFIG`` (JSON with ``tpu_node_name``, ``zone``, ``project``)
    names the TPU; the resolver is built with ``tpu_cluster_resolver_module`` and returned once
    its cluster spec has a ``worker`` job, trying 40 times 10 s apart. Without ``TPU_CONFIG``
    (every proxytask machine unless you set it) it returns None, and the trainer trains on
    its CPU/GPU.
    """
    tpu_config = os.environ.get("TPU_CONFIG")
    if not tpu_config:
        logger.info("Missing TPU_CONFIG, use CPU/GPU for training.")
        return None
    node = json.loads(tpu_config)
    for attempt in range(_TPU_RESOLVER_RETRY):
        try:
            resolver = tpu_cluster_resolver_module(
                tpu=[node["tpu_node_name"]],
                zone=node["zone"],
                project=node["project"],
                job_name="worker",
            )
            if "worker" in resolver.cluster_spec().as_dict():
                return resolver
        except Exception:
            if attempt == _TPU_RESOLVER_RETRY - 1:
                raise
            logger.info("Still waiting for provisioning of TPU VM instance.")
        time.sleep(10)
    raise ValueError(f"Cannot get TPUClusterResolver: {node}")


def get_saved_model_dir(trial_job_dir: str) -> str:
    """Where the trainer exports its model: ``<trial dir>/saved_model``."""
    return storage.join(trial_job_dir, SAVED_MODEL_SUB_DIR)


def wait_and_retrieve_latency(
    saved_model_path: str, sleep_time: float = 30, timeout_secs: float = LATENCY_TIMEOUT_SECS
) -> dict[str, Any]:
    """Wait for ``model_latency.json`` in ``saved_model_path`` and return its content.

    A latency calculator (``proxytask latency-worker --protocol vertex``, or the user's own
    process) measures the exported model and writes ``{"latency_in_milliseconds": ...,
    "model_memory": ...}`` there. Looks again after 0.1 s, then twice as long each time up to
    2 s (or ``sleep_time`` if smaller; the reference always slept ``sleep_time``, 30 s by
    default, which made a fast calculator's answer wait); raises TimeoutError after
    ``timeout_secs`` (the reference's 10 minutes) naming the file it waited for. When the
    worker recorded a failed measurement (``LATENCY.json`` with an ``error`` and no
    ``model_latency.json``), raises RuntimeError with that error at once, where the reference
    would wait out its timeout.
    """
    if sleep_time < 0 or timeout_secs <= 0:
        raise UsageError(
            f"sleep_time must be >= 0 and timeout_secs > 0, got {sleep_time} and {timeout_secs}."
        )
    path = storage.join(saved_model_path, MODEL_LATENCY_FILE)
    start = time.monotonic()
    pause = min(0.1, sleep_time)
    while True:
        try:
            data = storage.read_json(path)
        except StorageError:  # a calculator writing it in place: read it again next time
            data = None
        if isinstance(data, dict):
            return data
        failure = _latency_failure(saved_model_path)
        if failure:
            raise RuntimeError(f"the latency calculation for {saved_model_path} failed: {failure}")
        if time.monotonic() - start > timeout_secs:
            raise TimeoutError(
                f"no latency calculation result at {path} after {timeout_secs:g} seconds: is a "
                "latency calculator (proxytask latency-worker --protocol vertex) watching this run?"
            )
        time.sleep(pause)
        pause = min(pause * 2, sleep_time, _MAX_LATENCY_POLL_SECS)


def _latency_failure(saved_model_path: str) -> str:
    """The error a latency worker recorded for this saved model, or ''."""
    try:
        record = storage.read_json(storage.join(saved_model_path, layout.LATENCY_RESULT))
    except StorageError:  # being written: look again next time
        return ""
    if isinstance(record, dict) and record.get("latency") is None and record.get("error"):
        return str(record["error"])
    return ""


class CloudSession:
    """The reference's tuner session, for trainers that report through it.

    ``report(measurement, model_flops, other_metrics)`` records the metrics in the trial
    dir's ``FINAL_METRICS.json`` (the reference sends them to its NAS service): every entry
    of ``measurement.metrics``, ``model_flops`` and ``other_metrics`` (any number of them;
    the reference allows 5). With ``CLOUD_ML_HP_METRIC_TAG`` set, that metric must be among
    ``measurement.metrics`` (ValueError otherwise, as the reference) and is also saved as
    ``reward``.
    """

    def __init__(self, model_dir: str) -> None:
        self._model_dir = model_dir

    @contextlib.contextmanager
    def fail_on_exceptions(self, exceptions: Any) -> Iterator[None]:
        """Turn the given exceptions into a failed trial (``job_status.json`` says failed)."""
        try:
            yield
        except exceptions:
            self.fail(traceback.format_exc())

    def fail(self, message: str) -> None:
        """Record the trial as failed and raise RuntimeError with ``message``."""
        write_job_status(self._model_dir, JOB_STATUS_FAILED)
        raise RuntimeError(message)

    def report(
        self,
        measurement: Any,
        model_flops: float = 0.0,
        other_metrics: Mapping[str, float] | None = None,
    ) -> None:
        """Save the measurement's metrics (see the class doc)."""
        metrics = dict(getattr(measurement, "metrics", {}) or {})
        tag = str(os.environ.get("CLOUD_ML_HP_METRIC_TAG", ""))
        if tag and tag not in metrics:
            raise ValueError(f"hp_metric_tag [{tag}] is missing in the metrics {metrics}")
        values = {str(k): float(v) for k, v in metrics.items()}
        values.update({str(k): float(v) for k, v in (other_metrics or {}).items()})
        values["model_flops"] = float(model_flops)
        if tag:
            values["reward"] = float(metrics[tag])
        save_final_metrics(self._model_dir, values)
        logger.info(
            "Reported metrics at step %s: %s",
            getattr(measurement, "step", None),
            json.dumps(values, sort_keys=True),
        )
