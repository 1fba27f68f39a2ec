"""The reference tools' ``cloud_nas_utils`` helpers that trainers use: same names.

The pyglove-based helpers of the reference (``parse_and_save_nas_params_str``) are not here:
proxytask architectures are plain JSON, saved with :func:`proxytask.trainer.save_nas_params`.
"""

from __future__ import annotations

from proxytask.core import layout, storage
from proxytask.trainer.contract import (
    MAX_ALLOWED_METRIC,
    MIN_ALLOWED_METRIC,
    compute_reward,
    get_finetune_nas_params_str,
    get_map_finetune_trial_id_to_search_trial_id,
    get_retrain_search_job_model_dir,
    get_search_trial_id_to_finetune,
    get_trial_id_from_environment,
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
    "compute_reward",
    "get_finetune_nas_params_str",
    "get_map_finetune_trial_id_to_search_trial_id",
    "get_retrain_search_job_model_dir",
    "get_search_trial_id_to_finetune",
    "get_trial_id_from_environment",
    "str_2_bool",
    "write_job_status",
]

JOB_STATUS_KEY = "job_status"
JOB_STATUS_SUCCESS = "success"
JOB_STATUS_FAILED = "failed"
JOB_STATUS_FAILED_WITH_NAN_ERROR = "failed_with_nan_error"
ENVIRONMENT_VARIABLE_FOR_MODEL_DIR = layout.ENV_MODEL_DIR
ENVIRONMENT_VARIABLE_FOR_TRIAL_ID = layout.ENV_TRIAL_ID


def write_job_status(model_dir: str, status: str) -> None:
    """Write ``job_status.json`` in the trial dir, as the reference does."""
    storage.write_json_atomic(
        layout.trial_file(model_dir, layout.JOB_STATUS), {JOB_STATUS_KEY: status}
    )
