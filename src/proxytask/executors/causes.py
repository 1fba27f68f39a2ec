"""How a trial process ended, in words a user can act on. Pure functions."""

from __future__ import annotations

import dataclasses
import re
import signal

from proxytask.executors.base import FailureCause, TrialState, TrialStatus

__all__ = [
    "ADVICE",
    "classify_exit",
    "describe_exit",
    "failure_message",
    "reported_cause",
    "with_reported_cause",
]

_OOM = re.compile(
    r"(CUDA out of memory|OutOfMemoryError|out of memory|MemoryError|"
    r"RESOURCE_EXHAUSTED|Cannot allocate memory|CUBLAS_STATUS_ALLOC_FAILED)",
    re.IGNORECASE,
)
_NAN = re.compile(r"(NonFiniteMetricError|\bloss is nan\b|\bnan loss\b|non-finite loss)", re.I)

ADVICE: dict[FailureCause, str] = {
    FailureCause.OOM: "lower the batch size or the model size, or give each trial more memory",
    FailureCause.NAN: "lower the learning rate or clip gradients",
    FailureCause.CRASH: "read the trial's stderr.log for the traceback",
    FailureCause.KILLED: "something outside proxytask killed the trial; check the host's logs",
    FailureCause.TIMEOUT: "raise the trial time limit or lower the step budget",
    FailureCause.LOST: "the machine running the trial went away; check the cluster",
    FailureCause.NO_REPORT: (
        "the trainer must call update_trial_training_accuracy_metric after each training cycle"
    ),
    FailureCause.INCOMPLETE: (
        "the trainer exited before the pct it was asked to reach; check its total_steps and "
        "its own stopping logic"
    ),
}


def classify_exit(
    exit_code: int,
    stderr_tail: str = "",
    reported_cause: str | None = None,
    timed_out: bool = False,
) -> FailureCause | None:
    """Return why a trial failed, or None when it ended well (exit 0).

    ``exit_code`` follows ``subprocess`` (negative = killed by that signal).
    ``reported_cause`` is the cause the trainer itself recorded (``TRIAL_FAILURE.json``).
    """
    if timed_out:
        return FailureCause.TIMEOUT
    if reported_cause:
        try:
            return FailureCause(reported_cause)
        except ValueError:
            pass
    if exit_code == 0:
        return None
    if _NAN.search(stderr_tail):
        return FailureCause.NAN
    if _OOM.search(stderr_tail):
        return FailureCause.OOM
    if exit_code == -signal.SIGKILL or exit_code == 137:
        # the kernel's OOM killer sends SIGKILL; without a message we cannot tell it apart
        return FailureCause.KILLED
    if exit_code < 0:
        return FailureCause.KILLED
    return FailureCause.CRASH


def describe_exit(code: int) -> str:
    """``exited with code N`` or ``killed by SIGNAME`` for a ``subprocess`` return code."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exited with code {code}"


def failure_message(code: int, cause: FailureCause, stderr_tail: str = "") -> str:
    """The status message of a failed trial: how it ended, why, the advice, the last error."""
    last = next((ln.strip() for ln in reversed(stderr_tail.splitlines()) if ln.strip()), "")
    message = _failure_head(code, cause)
    if last:
        message += f". Last stderr line: {last[:300]}"
    return message


def _failure_head(code: int, cause: FailureCause | None) -> str:
    if cause is None:
        return describe_exit(code)
    return f"{describe_exit(code)}: {cause.value}; {ADVICE[cause]}"


def reported_cause(record: object) -> FailureCause | None:
    """The cause in a ``TRIAL_FAILURE.json`` record, or None when it names none we know."""
    cause = record.get("cause") if isinstance(record, dict) else None
    try:
        return FailureCause(cause) if isinstance(cause, str) else None
    except ValueError:
        return None


def with_reported_cause(status: TrialStatus, reported: FailureCause | None) -> TrialStatus:
    """``status`` once the trainer's own record (``TRIAL_FAILURE.json``) says ``reported``.

    A trial that exited by itself (0 or not) failed of the cause its trainer recorded; a
    trial stopped by the controller, timed out, or with no exit code (lost, never started)
    keeps the executor's verdict. The message keeps its last stderr line.

    Example::

        with_reported_cause(crashed, FailureCause.OOM).cause  # FailureCause.OOM
    """
    code = status.exit_code
    exited = status.state in (TrialState.SUCCEEDED, TrialState.FAILED)
    if reported is None or code is None or not exited or status.cause is FailureCause.TIMEOUT:
        return status
    if status.cause is reported:
        return status
    head = _failure_head(code, status.cause)
    rest = status.message[len(head) :] if status.message.startswith(head) else ""
    return dataclasses.replace(
        status,
        state=TrialState.FAILED,
        cause=reported,
        message=_failure_head(code, reported) + rest,
    )
