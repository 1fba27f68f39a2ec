"""Every file name and path proxytask uses, in one place.

Trial-dir file names and their JSON keys are a compatibility promise with the reference
(Vertex AI NAS) tools; do not rename them.
"""

from __future__ import annotations

import datetime as _dt
import re

from proxytask.core.errors import UsageError
from proxytask.core.storage import join

# Files in a trial dir (compatibility promise).
TRIAL_TRAINING_METRICS = "TRIAL_TRAINING_METRICS.json"
NAS_PARAMS = "nas_params_str.json"
DESIRED_TRAINING_PCT = "DESIRED_TRAINING_PCT.json"
DESIRED_TRAINING_PCT_KEY = "desired_training_pct"
MAX_TRAINING_TIME = "MAX_TRAINING_TIME.json"
MAX_TRAINING_TIME_KEY = "max_training_time_in_hrs"
CONTROLLER_ALIVE = "controller_alive_timestamp.json"
CONTROLLER_ALIVE_KEY = "timestamp"
# proxytask additions in a trial dir.
FINAL_METRICS = "FINAL_METRICS.json"
TRIAL_FAILURE = "TRIAL_FAILURE.json"
# Latency measured by a latency worker (proxytask latency-worker), next to the trainer's files:
# the controller asks with LATENCY_REQUEST.json, one worker claims the trial with
# LATENCY_CLAIM.json (created exclusively) and answers with LATENCY.json.
LATENCY_REQUEST = "LATENCY_REQUEST.json"
LATENCY_CLAIM = "LATENCY_CLAIM.json"
LATENCY_RESULT = "LATENCY.json"
STDOUT_LOG = "stdout.log"
STDERR_LOG = "stderr.log"
CHECKPOINT_DIR = "checkpoint"

# Environment variables a trial sees.
ENV_TRIAL_ID = "CLOUD_ML_TRIAL_ID"
ENV_MODEL_DIR = "AIP_MODEL_DIR"
ENV_TRIAL_DIR = "PROXYTASK_TRIAL_DIR"
ENV_CONTROLLER_DIR = "PROXYTASK_CONTROLLER_DIR"

# Controller dir kinds (the prefix of each controller dir's name).
KIND_VARIANCE = "Variance_Measurement"
KIND_MODEL_SELECTION = "Model_Selection"
KIND_SEARCH = "Search_controller"
KIND_TRIALS = "Trials"  # `proxytask trial`: trials of a trainer, outside any tool
KIND_FINAL_CHECKS = "Final_checks"  # `proxytask run`: the baseline under the chosen proxy
CONTROLLER_KINDS = (
    KIND_VARIANCE,
    KIND_MODEL_SELECTION,
    KIND_SEARCH,
    KIND_TRIALS,
    KIND_FINAL_CHECKS,
)

# Files in a controller dir.
EVENTS_LOG = "events.jsonl"
MODEL_SELECTION_STATE = "MODEL_SELECTION_STATE.json"
CONTROLLER_INFO = "CONTROLLER_INFO.json"
JOBS_DIR = "jobs"

_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def check_job_name(name: str) -> str:
    """Return ``name`` if it is a valid job name, else raise UsageError."""
    if not _JOB_NAME.match(name):
        raise UsageError(
            f"--job-name must be 1-100 letters, digits, '_', '.' or '-' starting with a letter "
            f"or digit, got {name!r}. Pick a name such as 'digits_v1'."
        )
    return name


def timestamp_suffix(now: float) -> str:
    """Format an epoch time as the ``YYYYmmdd_HHMMSS`` suffix of controller dirs (UTC)."""
    return _dt.datetime.fromtimestamp(now, tz=_dt.timezone.utc).strftime("%Y%m%d_%H%M%S")


def controller_dir(root_output_dir: str, kind: str, job_name: str, now: float) -> str:
    """``<root>/<Kind>_<job-name>_<timestamp>``: where a controller keeps everything."""
    if kind not in CONTROLLER_KINDS:
        raise ValueError(f"unknown controller kind {kind!r}")
    return join(root_output_dir, f"{kind}_{check_job_name(job_name)}_{timestamp_suffix(now)}")


def job_dir(controller_dir: str, job_name: str) -> str:
    """The folder holding one job's trial dirs (the reference's ``retrain_search_job_dir``)."""
    return join(controller_dir, JOBS_DIR, job_name)


def trial_dir(job_dir: str, trial_id: int | str) -> str:
    """The trial dir of trial ``trial_id`` (1-based) inside ``job_dir``."""
    return join(job_dir, str(trial_id))


def trial_file(trial_dir: str, name: str) -> str:
    """A named file inside a trial dir."""
    return join(trial_dir, name)
