"""Trial processes on one machine, shared by the local executor and the Ray runner.

A trial process runs under a tiny launcher (a stdlib-only Python snippet run with
``python -I -S -c``) in its own session and process group. The launcher

- starts the trainer (argv list, no shell) as its child, with ``PR_SET_PDEATHSIG=SIGKILL`` so
  the trainer dies if the launcher is killed on its own;
- watches a pipe whose write end only the owner (the controller, or a Ray runner) holds: when
  the owner dies for any reason (normal exit, exception, SIGTERM, even SIGKILL) the kernel
  closes that end, the launcher sees EOF, sends SIGTERM to its whole process group (trainer
  and grandchildren), waits the grace period, then SIGKILLs the group, itself included; it
  also notices being re-parented (an owner that forked children keeping the pipe open);
- passes the trainer's exit status through unchanged (exit code, or death by the same
  signal), so the owner sees what a direct child would show.

:class:`TrialProcess` keeps one such process's timeline: SIGTERM on a stop or past the time
limit, SIGKILL of the group after the grace, and how it ended (:class:`ProcessOutcome`, judged
from the exit code and the stderr tail only: the trainer's own files are the monitor's).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from proxytask.core import layout
from proxytask.core.errors import ExecutorError
from proxytask.executors.base import FailureCause, TrainerSpec, TrialSpec, TrialState
from proxytask.executors.causes import classify_exit, describe_exit, failure_message

if TYPE_CHECKING:
    from proxytask.executors.warm import WarmProcess

__all__ = [
    "LAUNCHER",
    "ProcessOutcome",
    "TrialProcess",
    "check_command_trainer",
    "exit_outcome",
    "launcher_argv",
    "read_stderr_tail",
    "signal_group",
    "spawn_trial",
]

logger = logging.getLogger(__name__)

_STDERR_TAIL_BYTES = 8192

# The launcher ("reaper") run as `python -I -S -c LAUNCHER <fd> <grace> <argv...>`.
# Stdlib only and tiny: it starts in ~20 ms. Keep it free of proxytask imports.
LAUNCHER = r"""
import os, select, signal, subprocess, sys
fd = int(sys.argv[1]); grace = float(sys.argv[2]); argv = sys.argv[3:]
me = os.getpid(); parent = os.getppid()
def _ignore(signum, frame):
    pass  # the group signal reaches the trainer too; its exit status is what counts
signal.signal(signal.SIGTERM, _ignore)  # a Python handler (not SIG_IGN): reset on exec
try:
    import ctypes
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except Exception:
    _prctl = None
def _child_setup():
    if _prctl is not None:
        _prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with this launcher
    if os.getppid() != me:
        os._exit(137)
try:
    child = subprocess.Popen(argv, preexec_fn=_child_setup, close_fds=True)
except OSError as exc:
    sys.stderr.write("proxytask: cannot start the trainer %r: %s\n" % (argv[0], exc))
    sys.stderr.flush()
    os._exit(127)
try:
    pidfd = os.pidfd_open(child.pid)
except (AttributeError, OSError):
    pidfd = None
orphaned = False
while child.poll() is None:
    watch = [fd] if pidfd is None else [fd, pidfd]
    ready = select.select(watch, [], [], 1.0 if pidfd is not None else 0.2)[0]
    if fd in ready:
        try:
            data = os.read(fd, 64)
        except OSError:
            data = b""
        if not data:
            orphaned = True
    if orphaned or os.getppid() != parent:
        try:
            os.killpg(0, signal.SIGTERM)
        except OSError:
            pass
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        os.killpg(0, signal.SIGKILL)  # the trainer's leftovers and this launcher
code = child.returncode
if code < 0:
    try:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(me, -code)
    except (OSError, ValueError):
        pass
    os._exit(128 - code)
os._exit(code)
"""


def check_command_trainer(spec: TrialSpec, executor: str) -> None:
    """Raise ExecutorError unless ``spec`` runs a command trainer (all a process can run)."""
    if not isinstance(spec.trainer, TrainerSpec) or not spec.trainer.argv:
        raise ExecutorError(
            f"the {executor} executor must get a command trainer, got {spec.trainer!r} for "
            f"{spec.trial_id!r}."
        )


def launcher_argv(control_fd: int, grace_secs: float, argv: Sequence[str]) -> list[str]:
    """The command that runs ``argv`` under the launcher (see the module docstring).

    ``control_fd`` is the read end of a pipe whose write end only the owner holds: when the
    owner dies, the launcher stops the trial (SIGTERM, ``grace_secs``, SIGKILL).
    """
    return [
        sys.executable or "python3",
        "-I",
        "-S",
        "-c",
        LAUNCHER,
        str(control_fd),
        repr(float(grace_secs)),
        *argv,
    ]


def spawn_trial(
    argv: Sequence[str],
    env: Mapping[str, str],
    log_dir: str,
    control_fd: int,
    grace_secs: float,
    cwd: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` under the launcher in a new session, logs appended in ``log_dir``.

    The launcher's pid is the trial's process-group id (see :func:`signal_group`); its exit
    status is the trainer's. ``env`` is the whole environment; ``cwd`` the working dir (None:
    this process's). Raises OSError when the launcher cannot start.
    """
    out = open(os.path.join(log_dir, layout.STDOUT_LOG), "ab")  # noqa: SIM115
    err = open(os.path.join(log_dir, layout.STDERR_LOG), "ab")  # noqa: SIM115
    try:
        return subprocess.Popen(
            launcher_argv(control_fd, grace_secs, argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=dict(env),
            start_new_session=True,
            pass_fds=(control_fd,),
            cwd=cwd,
        )
    finally:
        out.close()
        err.close()


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to a trial's process group; a group that is gone is fine."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def read_stderr_tail(path: str, limit: int = _STDERR_TAIL_BYTES) -> str:
    """The last ``limit`` bytes of a local log file as text ("" when unreadable)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


@dataclasses.dataclass(frozen=True)
class ProcessOutcome:
    """How a trial process ended: its state, cause, message and exit code."""

    state: TrialState
    cause: FailureCause | None
    message: str
    exit_code: int | None


def exit_outcome(
    code: int, *, stop_requested: bool, timed_out: bool, stderr_tail: str = ""
) -> ProcessOutcome:
    """How a trial process that exited with ``code`` ended.

    A trial stopped on request is STOPPED whatever its code; otherwise exit 0 is SUCCEEDED
    and anything else FAILED with the cause :func:`classify_exit` finds in the code and the
    stderr tail. (A cause the trainer recorded in its files is added by the monitor.)
    """
    if stop_requested:
        message = f"stopped by the controller ({describe_exit(code)})"
        return ProcessOutcome(TrialState.STOPPED, None, message, code)
    cause = classify_exit(code, stderr_tail, timed_out=timed_out)
    if cause is None:
        return ProcessOutcome(TrialState.SUCCEEDED, None, "exited with code 0", code)
    return ProcessOutcome(TrialState.FAILED, cause, failure_message(code, cause, stderr_tail), code)


@dataclasses.dataclass(eq=False)
class TrialProcess:
    """One started trial process: its stop and time-limit timeline, and how it ended.

    Times are the owner's (``now`` passed in): the local executor's injected clock, or a
    Ray runner's monotonic clock on its node. Nothing here blocks except :meth:`wait`.

    Example::

        proc = TrialProcess(spawn_trial(...), log_dir, started=clock.now(), timeout_secs=60,
                            grace_secs=10)
        outcome = proc.check(clock.now())  # None while it runs
    """

    proc: subprocess.Popen[bytes] | WarmProcess
    log_dir: str
    _: dataclasses.KW_ONLY
    started: float
    timeout_secs: float | None
    grace_secs: float
    name: str = ""
    stop_requested: bool = False
    timed_out: bool = False
    kill_at: float | None = None  # SIGKILL the group at this time
    killed: bool = False

    @property
    def pid(self) -> int:
        """The launcher's pid: the trial's process-group id."""
        return self.proc.pid

    def check(self, now: float) -> ProcessOutcome | None:
        """Reap the process or enforce what is due at ``now``; its outcome once it exited."""
        code = self.proc.poll()
        if code is not None:
            return self._finish(code)
        limit = self.timeout_secs
        due = limit is not None and now - self.started >= limit
        if due and not self.timed_out and not self.stop_requested:
            self.timed_out = True
            logger.warning("trial %s ran past its %g s limit; stopping it", self.name, limit)
            self.terminate(now, self.grace_secs)
        if self.kill_at is not None and now >= self.kill_at and not self.killed:
            self.kill()
        return None

    def stop(self, now: float, grace_secs: float) -> None:
        """SIGTERM the group now and SIGKILL it after ``grace_secs`` (once per process)."""
        if not self.stop_requested:
            self.stop_requested = True
            self.terminate(now, grace_secs)

    def terminate(self, now: float, grace_secs: float) -> None:
        """SIGTERM the group; the SIGKILL falls due ``grace_secs`` later (earliest wins)."""
        if self.proc.poll() is not None:
            return
        signal_group(self.pid, signal.SIGTERM)
        deadline = now + grace_secs
        if self.kill_at is None or deadline < self.kill_at:
            self.kill_at = deadline

    def kill(self) -> None:
        """SIGKILL the whole group."""
        self.killed = True
        signal_group(self.pid, signal.SIGKILL)

    def wait(self, timeout_secs: float) -> bool:
        """Wait up to ``timeout_secs`` of real time for the launcher to exit; True if it did."""
        try:
            self.proc.wait(timeout=max(0.0, timeout_secs))
        except subprocess.TimeoutExpired:
            return False
        return True

    def _finish(self, code: int) -> ProcessOutcome:
        signal_group(self.pid, signal.SIGKILL)  # whatever the trainer left in its group
        stopped = self.stop_requested
        tail = "" if stopped else read_stderr_tail(os.path.join(self.log_dir, layout.STDERR_LOG))
        return exit_outcome(
            code, stop_requested=stopped, timed_out=self.timed_out, stderr_tail=tail
        )
