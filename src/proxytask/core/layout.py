"""Every file name and path proxytask uses, in one place.

Trial-dir file names and their JSON keys are a compatibility promise with the reference
(Vertex AI NAS) tools; do not rename them. Controller-dir names are a promise between
proxytask versions (a resumed run finds its files by them). :class:`ControllerPaths` builds
the paths of one controller dir; :data:`KIND_FILES` says what each kind of controller writes.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
from collections.abc import Mapping

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
# The reference tools' latency-calculator protocol (proxytask latency-worker --protocol vertex):
# the trainer exports its model to <trial dir>/saved_model/ and waits for model_latency.json.
SAVED_MODEL_DIR = "saved_model"
SAVED_MODEL_READY = "saved_model.pb"  # the file the reference's calculator waits for
MODEL_LATENCY = "model_latency.json"
STDOUT_LOG = "stdout.log"
STDERR_LOG = "stderr.log"
CHECKPOINT_DIR = "checkpoint"
JOB_STATUS = "job_status.json"  # written by proxytask.vertex, as the reference does
# Written by proxytask's own stand-in trainers inside a trial's checkpoint dir.
REPLAY_STATE = "replay_state.json"  # the replay executor's "checkpoint"
FAKE_TRAINER_STATE = "fake_trainer_state.json"  # proxytask.testing.fake_trainer's

# Environment variables a trial sees.
ENV_TRIAL_ID = "CLOUD_ML_TRIAL_ID"
ENV_MODEL_DIR = "AIP_MODEL_DIR"
ENV_TRIAL_DIR = "PROXYTASK_TRIAL_DIR"
ENV_CONTROLLER_DIR = "PROXYTASK_CONTROLLER_DIR"
# A folder shared by every trial under the same root output dir: measurements that depend only
# on the model (its latency), not on the training run, are kept there and reused.
ENV_CACHE_DIR = "PROXYTASK_CACHE_DIR"
CACHE_DIR = "cache"

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

KIND_WORKFLOW = "Workflow"  # `proxytask run`: the dir holding every stage's controller dir

# Files in every controller dir.
EVENTS_LOG = "events.jsonl"
CONTROLLER_INFO = "CONTROLLER_INFO.json"
JOBS_DIR = "jobs"
# Variance measurement.
MEASUREMENT_STATE = "measurement_state.json"
VARIANCE_RESULT = "variance_and_smoothness.json"
VARIANCE_PLOT = "variance_curves.png"
WORKABLE_JOB = "workable"
COPIES_JOB = "copies"
# Model selection (its state's "phase" also tells latency workers when to stop).
MODEL_SELECTION_STATE = "MODEL_SELECTION_STATE.json"
REFERENCE_MODELS = "REFERENCE_MODELS.json"
SELECTION_SCORES_PLOT = "filtered_trial_scores.png"  # in each round's job dir
BASELINE_JOB = "baseline"
# Proxy-task search.
SEARCH_STATE = "SEARCH_CONTROLLER_STATE.json"
SEARCH_RECOMMENDATION = "PROXY_TASK_RECOMMENDATION.json"
SEARCH_COMPARISON_PLOT = "proxy_task_comparison.png"
SEARCH_TAU_PLOT = "tau_vs_zero_training.png"
SEARCH_STABILITY_PLOT = "winner_stability.png"
# Final checks (the baseline under a model-scaling proxy task).
FINAL_CHECKS_STATE = "FINAL_CHECKS_STATE.json"
SCALED_BASELINE_JOB = "scaled_baseline"
# The workflow dir.
WORKFLOW_STATE = "WORKFLOW_STATE.json"
WORKFLOW_RECOMMENDATION = "RECOMMENDATION.json"
PLOT_SUFFIX = ".png"


@dataclasses.dataclass(frozen=True)
class KindFiles:
    """What one kind of controller writes in its dir: its state file and its answer file."""

    state: str | None
    result: str | None = None


#: Controller kind (and :data:`KIND_WORKFLOW`) → the files it writes.
KIND_FILES: Mapping[str, KindFiles] = {
    KIND_VARIANCE: KindFiles(MEASUREMENT_STATE, VARIANCE_RESULT),
    KIND_MODEL_SELECTION: KindFiles(MODEL_SELECTION_STATE, REFERENCE_MODELS),
    KIND_SEARCH: KindFiles(SEARCH_STATE, SEARCH_RECOMMENDATION),
    KIND_TRIALS: KindFiles(None),
    KIND_FINAL_CHECKS: KindFiles(FINAL_CHECKS_STATE),
    KIND_WORKFLOW: KindFiles(WORKFLOW_STATE, WORKFLOW_RECOMMENDATION),
}

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


def cache_dir(controller_dir: str) -> str:
    """``<root>/cache`` beside a controller dir: shared by every controller under that root."""
    parent, _, _ = controller_dir.rstrip("/").rpartition("/")
    if parent.endswith(":/"):  # "memory://name": the store's root
        parent += "/"
    return join(parent or ".", CACHE_DIR)


def job_dir(controller_dir: str, job_name: str) -> str:
    """The folder holding one job's trial dirs (the reference's ``retrain_search_job_dir``)."""
    return join(controller_dir, JOBS_DIR, job_name)


def trial_dir(job_dir: str, trial_id: int | str) -> str:
    """The trial dir of trial ``trial_id`` (1-based) inside ``job_dir``."""
    return join(job_dir, str(trial_id))


def trial_file(trial_dir: str, name: str) -> str:
    """A named file inside a trial dir."""
    return join(trial_dir, name)


def workflow_dir(root_output_dir: str, job_name: str) -> str:
    """``<root>/Workflow_<job-name>``: no timestamp, so the same file always means one run."""
    return join(root_output_dir, f"{KIND_WORKFLOW}_{check_job_name(job_name)}")


@dataclasses.dataclass(frozen=True)
class JobPaths:
    """The paths of one job dir: ``JobPaths(d).trial(3)`` is its third trial's dir."""

    root: str

    def trial(self, trial_id: int | str) -> str:
        """The dir of trial ``trial_id`` (1-based)."""
        return trial_dir(self.root, trial_id)


@dataclasses.dataclass(frozen=True)
class ControllerPaths:
    """The paths of one controller dir.

    Example::

        paths = ControllerPaths("/runs/Search_controller_x_20240101_000000")
        paths.state_file(KIND_SEARCH)   # .../SEARCH_CONTROLLER_STATE.json
        paths.job("proxy_a").trial(1)   # .../jobs/proxy_a/1
    """

    root: str

    def file(self, name: str) -> str:
        """A named file in the controller dir."""
        return join(self.root, name)

    def state_file(self, kind: str) -> str | None:
        """The state file a controller of ``kind`` keeps here (None for plain trials)."""
        name = KIND_FILES[kind].state
        return None if name is None else self.file(name)

    def result_file(self, kind: str) -> str | None:
        """The answer file a controller of ``kind`` writes here (None if it has none)."""
        name = KIND_FILES[kind].result
        return None if name is None else self.file(name)

    @property
    def jobs(self) -> str:
        """The folder holding the job dirs."""
        return join(self.root, JOBS_DIR)

    def job(self, job_name: str) -> JobPaths:
        """The paths of one job dir."""
        return JobPaths(job_dir(self.root, job_name))
