"""The latency worker: measures trained models' latency for a controller, from any machine.

A controller that needs latency measured on the target device (SPEC §3.7) does not run the
measurement itself. It asks through files in the trial dirs, and one or more
``proxytask latency-worker`` processes, possibly on other machines that see the same storage
(a shared disk, NFS, or an fsspec URL such as ``s3://``), answer. File names and JSON keys
below are a compatibility promise between proxytask versions.

The protocol
------------
1. **Request.** Once a trial has ended and its saved model (the trial dir's files, e.g.
   ``checkpoint/``) is final, the controller writes ``LATENCY_REQUEST.json``
   ``{"requested_at": <epoch secs>, "trial_dir": <the dir as the controller sees it>}``
   (:func:`request_latency`).
2. **Scan.** A worker lists ``<controller dir>/jobs/<job>/<trial>/`` and keeps the trial dirs
   holding a request and no ``LATENCY.json`` (:func:`find_pending`). It uses the path where it
   found the request, not the ``trial_dir`` recorded in it: the storage may be mounted at
   another place on the worker's machine.
3. **Claim.** The worker creates ``LATENCY_CLAIM.json`` ``{"worker_id", "claimed_at", "host",
   "pid", "token"}`` *exclusively* (:func:`proxytask.core.storage.create_exclusive`: a hard link on
   a local or NFS disk, a conditional put on an object store). Of several workers, exactly one
   creates it; the others skip the trial. Claims are never deleted.
4. **Measure.** The claimer runs the latency command (an argv list, no shell) with the trial
   dir appended as its last argument and ``PROXYTASK_TRIAL_DIR=<trial dir>`` in its
   environment, with a timeout (:func:`measure`). The command prints the latency (a finite
   number >= 0, in the unit the user chose, e.g. milliseconds) as the last non-empty line of
   its stdout. It gets the trial dir as the worker sees it, so with an ``s3://`` controller dir
   the command must read ``s3://`` paths itself.
5. **Answer.** The worker writes ``LATENCY.json`` atomically (:func:`write_result`)::

       {"latency": 12.5, "error": null, "worker_id": "gpu-box-4242", "host": "gpu-box",
        "measured_at": 1700000000.0, "duration_secs": 3.1, "exit_code": 0,
        "command": "python bench.py"}

   On failure (the command could not start, exited non-zero, timed out, or printed no number)
   ``"latency"`` is ``null`` and ``"error"`` says what happened in one line, with the last line
   of the command's stderr, so the controller counts the trial invalid with that cause instead
   of waiting forever (:func:`read_latency`).
6. **Stale claims.** A claim older than the claim timeout (``claimed_at`` against the worker's
   clock; keep machine clocks in sync) whose trial still has no ``LATENCY.json`` belongs to a
   worker that died. Another worker takes it over: it re-reads the claim, and if it is unchanged
   replaces it with its own (an atomic overwrite), then reads it back and measures only if the
   claim is now its own. Overwriting is not exclusive: two workers that take over the same
   stale claim at the same moment, or a stuck worker that wakes up, may both measure the trial.
   That is accepted: it can only happen to a trial stuck for the whole claim timeout, both
   answers are real measurements written atomically (the last one stays; a failure never
   replaces a success), and no trial is ever left unanswered. The claim timeout must exceed
   the command timeout, so a running measurement is never taken for a dead one.

The reference tools' protocol (``protocol="vertex"``)
---------------------------------------------------
A trainer written for the Vertex AI NAS tools measures its own latency: it exports its model to
``<trial dir>/saved_model/`` and blocks in ``cloud_nas_utils.wait_and_retrieve_latency`` until a
latency calculator writes ``saved_model/model_latency.json``
``{"latency_in_milliseconds": 12.5, "model_memory": 0}``. With ``protocol="vertex"`` the worker
is that calculator, for the trials of a controller dir or of every stage of a workflow dir:

* a **request** is a ``saved_model/`` (``saved_model_dir`` names another path in the trial
  dir, e.g. ``model`` as the reference's tutorial trainers use) holding the ready file
  (``saved_model.pb``, the file the reference waits for; ``saved_model_file`` names another,
  e.g. ``model.pt``: write it last) and no ``LATENCY.json`` yet
  (:func:`find_pending_saved_models`);
* claim, stale claims and ``LATENCY.json`` are as above, inside ``saved_model/``;
* the command gets the ``saved_model/`` dir as its last argument (``PROXYTASK_TRIAL_DIR`` is the
  trial dir, ``PROXYTASK_SAVED_MODEL_DIR`` the saved model's) and prints either the latency in
  milliseconds or a JSON object with ``latency_in_milliseconds`` (and ``model_memory`` or any
  other key) on its last stdout line (:func:`parse_vertex_latency_output`);
* on success ``model_latency.json`` is written first, then ``LATENCY.json``. On failure only
  ``LATENCY.json`` (with its ``error``): proxytask's ``wait_and_retrieve_latency`` then raises
  that error at once, instead of waiting out its 10 minutes, and the trial fails with it.

A worker stops when the run it serves is finished (:func:`run_finished`: the controller's state
says ``done`` or ``failed``; a workflow holds its ``RECOMMENDATION.json`` or a failed stage),
with ``once`` after the first pass that finds nothing to measure, or after ``max_idle_secs``
without work. It polls on an injected :class:`~proxytask.core.clock.Clock`.

Example (on the device machine)::

    proxytask latency-worker --controller-dir /shared/runs/Model_Selection_x_20240101_000000 \\
        --latency-command 'python bench/latency.py --device cuda'

    # a Vertex-style trainer waiting in wait_and_retrieve_latency, in every stage of a workflow
    proxytask latency-worker --protocol vertex --saved-model-file model.pt \\
        --controller-dir runs/Workflow_my-job --latency-command 'python bench/latency_ms.py'
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from proxytask.controllers.command_options import LATENCY_WORKER_OPTIONS
from proxytask.core import layout, storage
from proxytask.core.clock import Clock, SystemClock
from proxytask.core.errors import ProxyTaskError, StorageError, UsageError, describe

__all__ = [
    "LATENCY_WORKER_OPTIONS",
    "PROTOCOLS",
    "LatencyOutcome",
    "LatencyOutputError",
    "LatencyResult",
    "LatencyWorker",
    "default_worker_id",
    "find_pending",
    "find_pending_saved_models",
    "main",
    "measure",
    "parse_latency_output",
    "parse_vertex_latency_output",
    "read_latency",
    "request_latency",
    "run_finished",
    "run_latency_worker",
    "saved_model_dir",
    "try_claim",
    "write_result",
    "write_vertex_result",
]

logger = logging.getLogger(__name__)

# The model-selection controller's state file; its "phase" tells a worker when to stop.
MODEL_SELECTION_STATE = layout.MODEL_SELECTION_STATE
FINISHED_PHASES = ("done", "failed")
#: The request protocols a worker serves: proxytask's files, or the reference tools' saved model.
PROTOCOLS = ("proxytask", "vertex")
ENV_SAVED_MODEL_DIR = "PROXYTASK_SAVED_MODEL_DIR"
#: The keys of a reference-style ``model_latency.json``.
LATENCY_MS_KEY = "latency_in_milliseconds"
MODEL_MEMORY_KEY = "model_memory"

_ERROR_CHARS = 500  # an error line in LATENCY.json stays readable
_KILL_GRACE_SECS = 5.0  # SIGTERM → this long → SIGKILL for a command past its timeout


class LatencyOutputError(ProxyTaskError, ValueError):
    """A latency command's stdout did not end with a latency value."""


# ---- values ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LatencyOutcome:
    """How one run of the latency command went: a latency, or an error line.

    Exactly one of ``latency`` and ``error`` is set. ``exit_code`` is None when the command
    did not start or was killed on its timeout. ``model_metrics``: with the reference tools'
    protocol, what ``model_latency.json`` gets (None otherwise).
    """

    latency: float | None
    error: str | None
    exit_code: int | None
    duration_secs: float
    model_metrics: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if (self.latency is None) == (self.error is None):
            raise ValueError(f"exactly one of latency and error must be set, got {self}")

    @property
    def ok(self) -> bool:
        """True when a latency was measured."""
        return self.latency is not None


@dataclasses.dataclass(frozen=True)
class LatencyResult:
    """A trial's ``LATENCY.json`` as the controller reads it.

    ``latency`` is None when the measurement failed; ``error`` then says why.
    """

    latency: float | None
    error: str | None
    worker_id: str = ""
    measured_at: float | None = None
    command: str = ""

    @property
    def ok(self) -> bool:
        """True when the trial has a valid latency."""
        return self.latency is not None


# ---- the controller side --------------------------------------------------------------------


def request_latency(trial_dir: str, now: float) -> None:
    """Ask latency workers to measure the trial in ``trial_dir`` (idempotent).

    Call it once the trial has ended and its saved model is final. A request already there
    is kept (with its first ``requested_at``).
    """
    path = layout.trial_file(trial_dir, layout.LATENCY_REQUEST)
    if storage.exists(path):
        return
    storage.write_json_atomic(path, {"requested_at": float(now), "trial_dir": trial_dir})


def _finite_non_negative(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def read_latency(trial_dir: str) -> LatencyResult | None:
    """Return the trial's latency result, or None while no worker has answered.

    A result file that cannot be read as a latency comes back as an error result (the trial
    then counts as invalid with that cause) rather than an exception.
    """
    path = layout.trial_file(trial_dir, layout.LATENCY_RESULT)
    try:
        data = storage.read_json(path)
    except StorageError as exc:
        return LatencyResult(latency=None, error=f"{layout.LATENCY_RESULT} is not JSON: {exc}")
    if data is None:
        return None
    if not isinstance(data, dict):
        return LatencyResult(
            latency=None, error=f"{layout.LATENCY_RESULT} must hold an object, got {data!r:.80}"
        )
    raw_latency = data.get("latency")
    error = data.get("error")
    latency = _finite_non_negative(raw_latency)
    if raw_latency is not None and latency is None:
        error = f"latency must be a finite number >= 0, got {describe(raw_latency)}"
    if latency is None and not error:
        error = "the latency worker recorded no latency and no error"
    measured_at = data.get("measured_at")
    return LatencyResult(
        latency=latency,
        error=None if latency is not None else str(error),
        worker_id=str(data.get("worker_id", "")),
        measured_at=float(measured_at) if isinstance(measured_at, (int, float)) else None,
        command=str(data.get("command", "")),
    )


# ---- the worker side: pure-ish steps --------------------------------------------------------


def _natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting '2' before '10' (trial ids, round-numbered job names)."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name)
    )


def _trial_dirs(controller_dir: str) -> Iterator[str]:
    """The trial dirs ``<controller_dir>/jobs/*/*``, by job name then trial id, naturally
    (``2`` before ``10``); hidden entries (``.interrupted``) are skipped."""
    jobs_dir = storage.join(controller_dir, layout.JOBS_DIR)
    for job in sorted(storage.listdir(jobs_dir), key=_natural_key):
        if job.startswith("."):
            continue
        job_dir = layout.job_dir(controller_dir, job)
        for trial in sorted(storage.listdir(job_dir), key=_natural_key):
            if not trial.startswith("."):
                yield layout.trial_dir(job_dir, trial)


def find_pending(controller_dir: str) -> list[str]:
    """Trial dirs under ``<controller_dir>/jobs/*/*`` with a latency request and no result.

    Sorted by job name then trial id, naturally (``2`` before ``10``).
    """
    pending: list[str] = []
    for trial_dir in _trial_dirs(controller_dir):
        names = set(storage.listdir(trial_dir))  # one listing instead of two lookups
        if layout.LATENCY_REQUEST in names and layout.LATENCY_RESULT not in names:
            pending.append(trial_dir)
    return pending


def _controller_dirs(root: str) -> list[str]:
    """``root`` when it holds jobs, and each stage dir of a workflow dir that does."""
    found = [root] if storage.exists(storage.join(root, layout.JOBS_DIR)) else []
    if storage.exists(storage.join(root, layout.WORKFLOW_STATE)):
        for name in sorted(storage.listdir(root), key=_natural_key):
            child = storage.join(root, name)
            if not name.startswith(".") and storage.exists(storage.join(child, layout.JOBS_DIR)):
                found.append(child)
    return found


def saved_model_dir(trial_dir: str, subdir: str = layout.SAVED_MODEL_DIR) -> str:
    """Where a reference-style trainer exports its model: ``<trial dir>/saved_model`` (the
    reference's ``get_saved_model_dir``), or another ``subdir`` of the trial dir."""
    return storage.join(trial_dir, *subdir.split("/"))


def find_pending_saved_models(
    root: str,
    ready_file: str = layout.SAVED_MODEL_READY,
    subdir: str = layout.SAVED_MODEL_DIR,
) -> list[str]:
    """Trial dirs whose ``saved_model/`` (or ``subdir``) holds ``ready_file`` and no
    ``LATENCY.json`` yet.

    ``root`` is a controller dir or a workflow dir (then every stage's trials count). Sorted
    by controller dir, job name and trial id, naturally.
    """
    top = subdir.split("/")[0]
    pending: list[str] = []
    for cdir in _controller_dirs(root):
        for trial_dir in _trial_dirs(cdir):
            if top not in set(storage.listdir(trial_dir)):
                continue
            names = set(storage.listdir(saved_model_dir(trial_dir, subdir)))
            if ready_file in names and layout.LATENCY_RESULT not in names:
                pending.append(trial_dir)
    return pending


def run_finished(run_dir: str) -> bool:
    """True when the run in ``run_dir`` will start no more trials.

    A controller dir is finished when its state's ``phase`` is ``done`` or ``failed`` (model
    selection, variance measurement, final checks); a workflow dir when it holds its
    ``RECOMMENDATION.json`` or a stage failed. Other dirs (a search alone, plain trials) are
    never taken for finished: stop their worker with ``once`` or ``max_idle_secs``. A state
    that cannot be read counts as not finished (it may be being replaced).
    """

    def read(name: str) -> Any:
        path = storage.join(run_dir, name)
        try:
            return storage.read_json(path)
        except StorageError as exc:
            logger.warning("cannot read %s: %s", path, exc)
            return None

    workflow = read(layout.WORKFLOW_STATE)
    if isinstance(workflow, dict):
        if storage.exists(storage.join(run_dir, layout.WORKFLOW_RECOMMENDATION)):
            return True
        stages = workflow.get("stages")
        return isinstance(stages, dict) and any(
            isinstance(entry, dict) and entry.get("status") == "failed" for entry in stages.values()
        )
    for name in (layout.MODEL_SELECTION_STATE, layout.MEASUREMENT_STATE, layout.FINAL_CHECKS_STATE):
        state = read(name)
        if isinstance(state, dict):
            return state.get("phase") in FINISHED_PHASES
    return False


def _claim_bytes(worker_id: str, now: float) -> bytes:
    claim = {
        "worker_id": worker_id,
        "claimed_at": float(now),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "token": uuid.uuid4().hex,  # tells this claim from an earlier one of the same worker
    }
    return (json.dumps(claim, indent=2) + "\n").encode("utf-8")


def _claimed_at(raw: bytes) -> float | None:
    try:
        claim = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    value = claim.get("claimed_at") if isinstance(claim, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def try_claim(
    trial_dir: str,
    worker_id: str,
    now: float,
    claim_timeout_secs: float,
    *,
    take_unreadable: bool = False,
) -> bool:
    """Claim the trial for ``worker_id``; True when this worker must measure it.

    False when the trial already has a result, or another worker holds a claim younger than
    ``claim_timeout_secs``. A stale claim is taken over (see the module docstring for the
    small race this leaves). A claim that cannot be parsed is respected, since an O_EXCL
    fallback may show it before its bytes, unless ``take_unreadable``: the worker passes that
    once it has seen the same unreadable claim for a whole claim timeout.
    """
    result = layout.trial_file(trial_dir, layout.LATENCY_RESULT)
    claim = layout.trial_file(trial_dir, layout.LATENCY_CLAIM)
    if storage.exists(result):
        return False
    mine = _claim_bytes(worker_id, now)
    if storage.create_exclusive(claim, mine):
        return True
    seen = storage.read_bytes(claim)
    if seen is None:  # deleted by hand in between: one more exclusive try
        return storage.create_exclusive(claim, mine)
    claimed_at = _claimed_at(seen)
    if claimed_at is None:
        if not take_unreadable:
            logger.warning("unreadable latency claim %s; respected for now", claim)
            return False
    elif now - claimed_at <= claim_timeout_secs:
        return False
    # Take-over: only if nobody answered or took over since we read the claim.
    if storage.exists(result) or storage.read_bytes(claim) != seen:
        return False
    logger.warning("taking over the stale latency claim %s (%r)", claim, seen[:200])
    storage.write_bytes_atomic(claim, mine)
    return storage.read_bytes(claim) == mine


def parse_latency_output(stdout: str) -> float:
    """Return the latency printed on the last non-empty line of ``stdout``.

    Raises LatencyOutputError (a ValueError) when that line is missing or is not a finite
    number >= 0.

    Example::

        parse_latency_output("warming up\\n12.5\\n")  # 12.5
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    fix = "Print the latency (e.g. milliseconds) alone on the last line of stdout."
    if not lines:
        raise LatencyOutputError(
            f"the latency command's output must end with a line holding the latency, got no "
            f"output. {fix}"
        )
    last = lines[-1]
    try:
        value = float(last)
    except ValueError:
        raise LatencyOutputError(
            f"the last line of the latency command's output must be a number, got "
            f"{describe(last)}. {fix}"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise LatencyOutputError(
            f"the latency must be a finite number >= 0, got {describe(last)}. Check the "
            "measurement."
        )
    return value


def parse_vertex_latency_output(stdout: str) -> dict[str, Any]:
    """The ``model_latency.json`` content a latency command printed on its last line.

    The line is either the latency in milliseconds (``model_memory`` is then 0) or a JSON
    object with ``latency_in_milliseconds`` (a finite number >= 0) and any other keys, such
    as ``model_memory`` (0 when missing). Raises LatencyOutputError (a ValueError) otherwise.

    Example::

        parse_vertex_latency_output('{"latency_in_milliseconds": 3.5, "model_memory": 12}')
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines or not lines[-1].startswith("{"):
        return {LATENCY_MS_KEY: parse_latency_output(stdout), MODEL_MEMORY_KEY: 0}
    fix = (
        f'Print e.g. {{"{LATENCY_MS_KEY}": 12.5, "{MODEL_MEMORY_KEY}": 0}} or the latency in '
        "milliseconds alone on the last line of stdout."
    )
    try:
        data = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise LatencyOutputError(
            f"the last line of the latency command's output must be a JSON object or a number, "
            f"got {describe(lines[-1])} ({exc}). {fix}"
        ) from None
    if not isinstance(data, dict) or _finite_non_negative(data.get(LATENCY_MS_KEY)) is None:
        raise LatencyOutputError(
            f"the latency command's JSON must hold {LATENCY_MS_KEY!r}, a finite number >= 0, "
            f"got {describe(lines[-1])}. {fix}"
        )
    memory = data.setdefault(MODEL_MEMORY_KEY, 0)
    if isinstance(memory, bool) or not isinstance(memory, (int, float)):
        raise LatencyOutputError(
            f"{MODEL_MEMORY_KEY!r} must be a number, got {describe(memory)}. {fix}"
        )
    return data


def _one_line(message: str) -> str:
    line = " ".join(message.split())
    return line if len(line) <= _ERROR_CHARS else line[: _ERROR_CHARS - 3] + "..."


def _last_line(textual: str) -> str:
    lines = [line.strip() for line in textual.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _with_stderr(what: str, stderr: str) -> str:
    last = _last_line(stderr)
    return _one_line(f"{what}; last stderr line: {last}" if last else f"{what}; no stderr")


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the command's process group, wait a grace period, then SIGKILL what is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    try:
        proc.wait(timeout=_KILL_GRACE_SECS)
    except subprocess.TimeoutExpired:
        pass
    try:  # the leader may be gone while children it started in its group live on
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def measure(
    trial_dir: str,
    command: Sequence[str],
    timeout_secs: float,
    *,
    protocol: str = "proxytask",
    saved_model_subdir: str = layout.SAVED_MODEL_DIR,
) -> LatencyOutcome:
    """Run ``command + [trial_dir]`` and read the latency from its stdout.

    The command runs without a shell, in its own process group (all of it is stopped on the
    timeout), with ``PROXYTASK_TRIAL_DIR`` set. With ``protocol="vertex"`` it gets the trial's
    ``saved_model/`` dir (or ``saved_model_subdir``) instead (also in
    ``PROXYTASK_SAVED_MODEL_DIR``) and its output is read
    by :func:`parse_vertex_latency_output`. Never raises for a failing command: the outcome
    then holds a one-line error naming what happened and the last stderr line.
    """
    if protocol not in PROTOCOLS:
        raise UsageError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}.")
    vertex = protocol == "vertex"
    target = saved_model_dir(trial_dir, saved_model_subdir) if vertex else trial_dir
    argv = [*command, target]
    env = {**os.environ, layout.ENV_TRIAL_DIR: trial_dir}
    if vertex:
        env[ENV_SAVED_MODEL_DIR] = target
    started = time.monotonic()

    def failed(error: str, exit_code: int | None) -> LatencyOutcome:
        return LatencyOutcome(
            latency=None,
            error=error,
            exit_code=exit_code,
            duration_secs=time.monotonic() - started,
        )

    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        return failed(_one_line(f"the latency command {argv[0]!r} could not start: {exc}"), None)
    timed_out = False
    try:
        try:
            out, err = proc.communicate(timeout=timeout_secs)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop_group(proc)
            try:
                out, err = proc.communicate(timeout=_KILL_GRACE_SECS)
            except subprocess.TimeoutExpired:  # a grandchild outside the group holds a pipe
                proc.kill()
                out, err = b"", b""
    except BaseException:  # Ctrl-C or an error here: leave nothing running
        _stop_group(proc)
        raise
    stdout = out.decode("utf-8", errors="replace")
    stderr = err.decode("utf-8", errors="replace")
    metrics: dict[str, Any] | None = None
    if timed_out:
        return failed(
            _with_stderr(f"the latency command timed out after {timeout_secs:g} s", stderr), None
        )
    code = proc.returncode
    if code != 0:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return failed(_with_stderr(f"the latency command {how}", stderr), code)
    try:
        if vertex:
            metrics = parse_vertex_latency_output(stdout)
            latency = float(metrics[LATENCY_MS_KEY])
        else:
            latency = parse_latency_output(stdout)
    except LatencyOutputError as exc:
        return failed(_with_stderr(str(exc), stderr), code)
    return LatencyOutcome(
        latency=latency,
        error=None,
        exit_code=code,
        duration_secs=time.monotonic() - started,
        model_metrics=metrics,
    )


def write_result(
    trial_dir: str,
    outcome: LatencyOutcome,
    *,
    worker_id: str,
    command: Sequence[str],
    now: float,
) -> dict[str, Any]:
    """Write the trial's ``LATENCY.json`` atomically and return what was written."""
    data: dict[str, Any] = {
        "latency": outcome.latency,
        "error": outcome.error,
        "worker_id": worker_id,
        "host": socket.gethostname(),
        "measured_at": float(now),
        "duration_secs": round(outcome.duration_secs, 6),
        "exit_code": outcome.exit_code,
        "command": shlex.join(command),
    }
    storage.write_json_atomic(layout.trial_file(trial_dir, layout.LATENCY_RESULT), data)
    return data


def write_vertex_result(
    trial_dir: str,
    outcome: LatencyOutcome,
    *,
    worker_id: str,
    command: Sequence[str],
    now: float,
    saved_model_subdir: str = layout.SAVED_MODEL_DIR,
) -> dict[str, Any]:
    """Answer a reference-style trainer: ``saved_model/model_latency.json`` on success, then
    ``saved_model/LATENCY.json`` (with the error on failure); return the latter."""
    target = saved_model_dir(trial_dir, saved_model_subdir)
    if outcome.ok:
        metrics = dict(outcome.model_metrics or {LATENCY_MS_KEY: outcome.latency})
        metrics.setdefault(MODEL_MEMORY_KEY, 0)
        storage.write_json_atomic(storage.join(target, layout.MODEL_LATENCY), metrics)
    return write_result(target, outcome, worker_id=worker_id, command=command, now=now)


def default_worker_id() -> str:
    """``<hostname>-<pid>``: unique among the workers running at one time."""
    return f"{socket.gethostname()}-{os.getpid()}"


# ---- the worker loop ------------------------------------------------------------------------


class LatencyWorker:
    """Claims and measures requested trials of one controller dir until it is finished.

    Example::

        worker = LatencyWorker(cdir, ["python", "bench.py"], "box-1", SystemClock())
        worker.run(once=True)  # measure everything pending now, then return the count
    """

    def __init__(
        self,
        controller_dir: str,
        command: Sequence[str],
        worker_id: str,
        clock: Clock,
        poll_secs: float = 5.0,
        claim_timeout_secs: float = 3600.0,
        command_timeout_secs: float = 600.0,
        *,
        on_result: Callable[[str, LatencyOutcome], None] | None = None,
        protocol: str = "proxytask",
        saved_model_file: str = layout.SAVED_MODEL_READY,
        saved_model_dir: str = layout.SAVED_MODEL_DIR,
    ) -> None:
        if not command or not all(isinstance(a, str) for a in command):
            raise UsageError(
                f"the latency command must be a non-empty list of strings, got "
                f"{describe(command)}. Example: ['python', 'bench.py']."
            )
        if not worker_id.strip():
            raise UsageError(f"--worker-id must be a non-empty name, got {worker_id!r}.")
        for name, value in (
            ("poll-secs", poll_secs),
            ("claim-timeout-secs", claim_timeout_secs),
            ("command-timeout-secs", command_timeout_secs),
        ):
            if not (math.isfinite(value) and value > 0):
                raise UsageError(f"--{name} must be a finite number > 0, got {value!r}.")
        if protocol not in PROTOCOLS:
            raise UsageError(
                f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}. 'vertex' "
                "serves trainers that wait in wait_and_retrieve_latency."
            )
        if not saved_model_file.strip() or "/" in saved_model_file:
            raise UsageError(
                f"--saved-model-file must be a file name inside saved_model/, got "
                f"{saved_model_file!r}. Example: --saved-model-file model.pt."
            )
        parts = saved_model_dir.split("/")
        if not saved_model_dir.strip() or any(p in ("", ".", "..") for p in parts):
            raise UsageError(
                f"--saved-model-dir must be a relative path inside the trial dir, got "
                f"{saved_model_dir!r}. Example: --saved-model-dir saved_model (the reference's "
                "get_saved_model_dir) or --saved-model-dir model."
            )
        if claim_timeout_secs <= command_timeout_secs:
            raise UsageError(
                f"--claim-timeout-secs must be greater than --command-timeout-secs, got "
                f"{claim_timeout_secs:g} <= {command_timeout_secs:g}. A claim must outlive the "
                "longest measurement, or other workers take running ones for dead ones."
            )
        self.controller_dir = controller_dir
        self.command = tuple(command)
        self.worker_id = worker_id
        self.clock = clock
        self.poll_secs = float(poll_secs)
        self.claim_timeout_secs = float(claim_timeout_secs)
        self.command_timeout_secs = float(command_timeout_secs)
        self.on_result = on_result
        self.protocol = protocol
        self.saved_model_file = saved_model_file
        self.saved_model_subdir = saved_model_dir
        self._unreadable_since: dict[str, tuple[bytes | None, float]] = {}

    def is_finished(self) -> bool:
        """True when the run served is finished (:func:`run_finished`)."""
        return run_finished(self.controller_dir)

    def _pending(self) -> list[str]:
        if self.protocol == "vertex":
            return find_pending_saved_models(
                self.controller_dir, self.saved_model_file, self.saved_model_subdir
            )
        return find_pending(self.controller_dir)

    def _answer_dir(self, trial_dir: str) -> str:
        """Where the claim and ``LATENCY.json`` go: the trial dir, or its ``saved_model/``."""
        if self.protocol == "vertex":
            return saved_model_dir(trial_dir, self.saved_model_subdir)
        return trial_dir

    def _unreadable_expired(self, trial_dir: str, now: float) -> bool:
        """True once the trial's claim has stayed the same unreadable bytes a claim timeout."""
        seen = self._unreadable_since.get(trial_dir)
        if seen is None:
            return False
        raw = storage.read_bytes(layout.trial_file(trial_dir, layout.LATENCY_CLAIM))
        return raw == seen[0] and now - seen[1] > self.claim_timeout_secs

    def _track_unreadable(self, trial_dir: str, now: float) -> None:
        """Remember when an unreadable claim was first seen (other claims are forgotten)."""
        raw = storage.read_bytes(layout.trial_file(trial_dir, layout.LATENCY_CLAIM))
        if raw is None or _claimed_at(raw) is not None:
            self._unreadable_since.pop(trial_dir, None)
        elif trial_dir not in self._unreadable_since or self._unreadable_since[trial_dir][0] != raw:
            self._unreadable_since[trial_dir] = (raw, now)

    def run_once(self) -> int:
        """One pass: claim and measure every pending trial it can; return how many."""
        measured = 0
        for trial_dir in self._pending():
            answer_dir = self._answer_dir(trial_dir)
            now = self.clock.now()
            take = self._unreadable_expired(answer_dir, now)
            if not try_claim(
                answer_dir, self.worker_id, now, self.claim_timeout_secs, take_unreadable=take
            ):
                self._track_unreadable(answer_dir, now)
                continue
            self._unreadable_since.pop(answer_dir, None)
            logger.info("measuring %s", answer_dir)
            outcome = measure(
                trial_dir,
                self.command,
                self.command_timeout_secs,
                protocol=self.protocol,
                saved_model_subdir=self.saved_model_subdir,
            )
            existing = read_latency(answer_dir)
            if existing is not None and existing.ok and not outcome.ok:
                # A double measurement after a take-over: never replace a success by a failure.
                logger.warning("keeping the latency already measured for %s", answer_dir)
            elif self.protocol == "vertex":
                write_vertex_result(
                    trial_dir,
                    outcome,
                    worker_id=self.worker_id,
                    command=self.command,
                    now=self.clock.now(),
                    saved_model_subdir=self.saved_model_subdir,
                )
            else:
                write_result(
                    trial_dir,
                    outcome,
                    worker_id=self.worker_id,
                    command=self.command,
                    now=self.clock.now(),
                )
            measured += 1
            if self.on_result is not None:
                self.on_result(trial_dir, outcome)
        return measured

    def run(self, once: bool = False, max_idle_secs: float | None = None) -> int:
        """Poll and measure until the controller is finished; return how many were measured.

        ``once``: return after the first pass that measures nothing. ``max_idle_secs``: return
        after that long (on the clock) without measuring anything.
        """
        total = 0
        idle_since = self.clock.now()
        while not self.is_finished():
            count = self.run_once()
            total += count
            if count:
                idle_since = self.clock.now()
                continue  # more may have arrived while measuring
            if once:
                break
            if max_idle_secs is not None and self.clock.now() - idle_since >= max_idle_secs:
                logger.info("no latency work for %g s; stopping", max_idle_secs)
                break
            self.clock.sleep(self.poll_secs)
        return total


# ---- command line (its options: proxytask.core.options.LATENCY_WORKER_OPTIONS) ---------------


def _check_program(program: str) -> None:
    from proxytask.executors.command import check_local_command

    check_local_command(program, option="--latency-command", example="'python bench/latency.py'")


def _parse_command(command: Any) -> tuple[str, ...]:
    from proxytask.executors.command import parse_trainer_command

    if isinstance(command, str) and not command.strip():
        raise UsageError(
            f"--latency-command must name a command, got {command!r}. Example: "
            "--latency-command 'python bench/latency.py'."
        )
    try:
        return parse_trainer_command(command).argv
    except UsageError as exc:  # its wording names --trainer
        raise UsageError(
            f"--latency-command must be a command line with balanced quotes and a program, "
            f"got {describe(command)}. {exc}"
        ) from exc


def _check_controller_dir(controller_dir: Any) -> str:
    if not isinstance(controller_dir, str) or not controller_dir.strip():
        raise UsageError(
            f"--controller-dir must be given, got {controller_dir!r}. Use the dir the "
            "controller printed at start."
        )
    if not storage.exists(controller_dir):
        raise UsageError(
            f"--controller-dir must be an existing controller dir, got {controller_dir!r}, "
            "which does not exist here. Use the dir the controller printed at start, as this "
            "machine sees it."
        )
    marks = (layout.JOBS_DIR, layout.CONTROLLER_INFO, layout.WORKFLOW_STATE)
    if not any(storage.exists(storage.join(controller_dir, name)) for name in marks):
        raise UsageError(
            f"--controller-dir must be a proxytask controller dir (holding '{layout.JOBS_DIR}/' "
            f"or {layout.CONTROLLER_INFO}) or a workflow dir (holding {layout.WORKFLOW_STATE}), "
            f"got {controller_dir!r}. Point at the Model_Selection_<job>_<time> or "
            "Workflow_<job> dir itself, not its parent."
        )
    return controller_dir


def run_latency_worker(values: Mapping[str, Any]) -> int:
    """The body of ``proxytask latency-worker``: check the inputs, serve, return the exit code.

    ``values`` are the resolved options (missing keys take their defaults). Bad input raises
    UsageError. Returns 0 when the worker stopped normally (failed measurements are results,
    not worker failures).
    """
    merged = {o.dest: o.default for o in LATENCY_WORKER_OPTIONS}
    merged.update(values)
    controller_dir = _check_controller_dir(merged["controller_dir"])
    command = _parse_command(merged["latency_command"])
    _check_program(command[0])
    worker_id = merged["worker_id"] or default_worker_id()

    def report(trial_dir: str, outcome: LatencyOutcome) -> None:
        if outcome.ok:
            print(f"{trial_dir}: latency {outcome.latency:g} ({outcome.duration_secs:.1f} s)")
        else:
            print(f"{trial_dir}: failed: {outcome.error}")
        sys.stdout.flush()

    worker = LatencyWorker(
        controller_dir,
        command,
        worker_id,
        SystemClock(),
        poll_secs=merged["poll_secs"],
        claim_timeout_secs=merged["claim_timeout_secs"],
        command_timeout_secs=merged["command_timeout_secs"],
        on_result=report,
        protocol=merged["protocol"],
        saved_model_file=merged["saved_model_file"],
        saved_model_dir=merged["saved_model_dir"],
    )
    print(f"latency worker {worker_id}: serving {controller_dir}", flush=True)
    count = worker.run(once=bool(merged["once"]), max_idle_secs=merged["max_idle_secs"])
    print(f"latency worker {worker_id}: measured {count} trial(s)", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m proxytask.controllers.latency``: ``proxytask latency-worker``, the same
    options, messages and exit codes."""
    from proxytask.cli import run_command

    args = sys.argv[1:] if argv is None else list(argv)
    return run_command(
        ["latency-worker", *args],
        interrupted="interrupted; the running latency command was stopped.",
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
