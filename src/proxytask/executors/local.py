"""The local executor: one subprocess per trial on this machine, with GPU slots and cleanup.

Each trial runs in its own process group and session, started through a tiny launcher (a
stdlib-only Python snippet run with ``python -I -S -c``) that

- starts the trainer (argv list, no shell) as its child, with ``PR_SET_PDEATHSIG=SIGKILL`` so
  the trainer dies if the launcher is killed on its own;
- watches a pipe whose write end only the controller holds: when the controller dies for any
  reason (normal exit, exception, SIGTERM, even SIGKILL) the kernel closes that end, the
  launcher sees EOF, sends SIGTERM to its whole process group (trainer and grandchildren),
  waits the grace period, then SIGKILLs the group, itself included; it also notices being
  re-parented (a controller that forked children keeping the pipe open);
- passes the trainer's exit status through unchanged (exit code, or death by the same
  signal), so the controller sees what a direct child would show.

On top of that, the controller closes every live executor at interpreter exit (``atexit``,
which covers KeyboardInterrupt) and on SIGTERM (a handler installed only where SIGTERM has
its default action, chaining to any previous Python handler).
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

from proxytask.core import layout, storage
from proxytask.core.clock import Clock, SystemClock
from proxytask.core.errors import ExecutorError, StorageError, UsageError
from proxytask.executors.base import (
    Executor,
    FailureCause,
    TrainerSpec,
    TrialSpec,
    TrialState,
    TrialStatus,
)
from proxytask.executors.causes import classify_exit, describe_exit, failure_message

__all__ = [
    "LocalExecutor",
    "assign_gpus",
    "check_gpu_request",
    "detect_gpus",
    "exit_outcome",
    "launcher_argv",
    "read_reported_cause",
    "read_stderr_tail",
    "signal_group",
    "spawn_trial",
]

logger = logging.getLogger(__name__)

_EPS = 1e-9
_STDERR_TAIL_BYTES = 8192

# The launcher ("reaper") run as `python -I -S -c _LAUNCHER <fd> <grace> <argv...>`.
# Stdlib only and tiny: it starts in ~20 ms. Keep it free of proxytask imports.
_LAUNCHER = r"""
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


# --------------------------------------------------------------------------------------------
# GPU slots (pure functions)
# --------------------------------------------------------------------------------------------


def detect_gpus(
    environ: Mapping[str, str] | None = None,
    run: Callable[..., Any] = subprocess.run,
) -> list[str]:
    """The GPU ids this process may hand out to trials.

    ``CUDA_VISIBLE_DEVICES`` wins when set (empty or ``-1`` means no GPU); otherwise the
    indices listed by ``nvidia-smi -L``; no ``nvidia-smi`` (or it fails) means no GPU.
    """
    env = os.environ if environ is None else environ
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [v.strip() for v in visible.split(",") if v.strip()]
        return [] if not ids or ids[0] == "-1" else ids
    try:
        result = run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    if result.returncode != 0:
        return []
    gpus = []
    for line in str(result.stdout).splitlines():
        head, sep, _ = line.partition(":")
        words = head.split()
        if sep and len(words) == 2 and words[0] == "GPU" and words[1].isdigit():
            gpus.append(words[1])
    return gpus


def check_gpu_request(request: float, gpus: Sequence[str]) -> None:
    """Raise ExecutorError unless ``request`` GPUs can ever be granted from ``gpus``.

    Valid requests: 0 (CPU only), a fraction in (0, 1) (trials share a GPU), or a whole
    number of GPUs no larger than ``len(gpus)``.
    """
    if request <= _EPS:
        return
    if not gpus:
        raise ExecutorError(
            f"gpus per trial must be 0 on a machine without GPUs, got {request:g}. Set "
            "--gpus-per-trial 0, or make GPUs visible (CUDA_VISIBLE_DEVICES, nvidia-smi)."
        )
    if request > 1 + _EPS and abs(request - round(request)) > _EPS:
        raise ExecutorError(
            f"gpus per trial must be a fraction below 1 or a whole number, got {request:g}. "
            f"Use e.g. 0.5 (two trials per GPU) or {max(1, round(request))}."
        )
    if request > len(gpus) + _EPS:
        raise ExecutorError(
            f"gpus per trial must be at most the {len(gpus)} GPU(s) available "
            f"({','.join(gpus)}), got {request:g}. Lower --gpus-per-trial."
        )


def assign_gpus(
    request: float, gpus: Sequence[str], used: Mapping[str, float]
) -> tuple[str, ...] | None:
    """Pick GPUs for a trial needing ``request`` GPUs, or None when they are busy now.

    ``used`` maps a GPU id to the share of it already handed out. A fraction goes to a free
    GPU first, then to the least used GPU that still has room (ties: the first in ``gpus``).
    A whole number ``n`` takes the first ``n`` free GPUs. 0 takes none. Call
    :func:`check_gpu_request` first.

    Example::

        assign_gpus(0.5, ["0", "1"], {"0": 0.5})  # ("1",)
        assign_gpus(0.5, ["0", "1"], {"0": 0.5, "1": 0.5})  # ("0",)
    """
    if request <= _EPS:
        return ()
    if request < 1 - _EPS:
        room = [g for g in gpus if used.get(g, 0.0) + request <= 1 + _EPS]
        if not room:
            return None
        order = {g: i for i, g in enumerate(gpus)}
        return (min(room, key=lambda g: (used.get(g, 0.0), order[g])),)
    count = round(request)
    free = [g for g in gpus if used.get(g, 0.0) <= _EPS]
    return tuple(free[:count]) if len(free) >= count else None


# --------------------------------------------------------------------------------------------
# One trial process: start it under the launcher, signal it, say how it ended. Shared with the
# Ray executor, whose runner actor starts the same launcher on a cluster node.
# --------------------------------------------------------------------------------------------


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
        _LAUNCHER,
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


def read_reported_cause(trial_dir: str, signature: tuple[Any, ...] | None) -> str | None:
    """The cause the trainer recorded in ``TRIAL_FAILURE.json`` during this run, if any.

    ``signature`` is :func:`proxytask.core.storage.file_signature` of that file taken before the
    trial started: an unchanged file is left over from an earlier run and does not count.
    """
    path = layout.trial_file(trial_dir, layout.TRIAL_FAILURE)
    if storage.file_signature(path) == signature:
        return None  # absent, or left over from an earlier run in this dir
    try:
        data = storage.read_json(path)
    except StorageError:
        return None
    cause = data.get("cause") if isinstance(data, dict) else None
    return cause if isinstance(cause, str) else None


def exit_outcome(
    code: int,
    *,
    stop_requested: bool,
    timed_out: bool,
    stderr_tail: str = "",
    reported_cause: str | None = None,
) -> tuple[TrialState, FailureCause | None, str]:
    """How a trial process that exited with ``code`` ended: state, cause and message.

    A trial stopped on request is STOPPED whatever its code; otherwise exit 0 is SUCCEEDED
    and anything else FAILED with the cause :func:`classify_exit` finds.
    """
    if stop_requested:
        return TrialState.STOPPED, None, f"stopped by the controller ({describe_exit(code)})"
    cause = classify_exit(code, stderr_tail, reported_cause, timed_out)
    if cause is None:
        return TrialState.SUCCEEDED, None, "exited with code 0"
    return TrialState.FAILED, cause, failure_message(code, cause, stderr_tail)


# --------------------------------------------------------------------------------------------
# Process-exit safety net shared by every LocalExecutor of this process
# --------------------------------------------------------------------------------------------

_LIVE: set[LocalExecutor] = set()
_hooks_installed = False
_previous_sigterm: Any = None


def _close_all() -> None:
    for executor in list(_LIVE):
        try:
            executor.close()
        except Exception:  # pragma: no cover - best effort at exit
            logger.exception("could not close a local executor at exit")


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _close_all()
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_process_hooks(handle_signals: bool) -> None:
    global _hooks_installed, _previous_sigterm
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_close_all)
    if not handle_signals or threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGTERM)
    if current in (signal.SIG_IGN, None) or current is _on_sigterm:
        return
    _previous_sigterm = None if current == signal.SIG_DFL else current
    signal.signal(signal.SIGTERM, _on_sigterm)


# --------------------------------------------------------------------------------------------
# The executor
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Trial:
    spec: TrialSpec
    local_dir: str
    failure_signature: tuple[Any, ...] | None
    state: TrialState = TrialState.PENDING
    proc: subprocess.Popen[bytes] | None = None
    gpus: tuple[str, ...] = ()
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    cause: FailureCause | None = None
    message: str = ""
    stop_requested: bool = False
    timed_out: bool = False
    kill_deadline: float | None = None  # SIGKILL the group at this clock time
    killed: bool = False


class LocalExecutor(Executor):
    """Runs each trial as a subprocess of this machine, ``max_parallel_trials`` at a time.

    - The trainer starts as ``spec.argv`` (a list, no shell) in its own process group, with
      ``os.environ`` + ``spec.env`` + ``CUDA_VISIBLE_DEVICES`` for its GPU slot (empty for
      ``resources.gpus == 0`` so trainers stay on the CPU). Fractional GPUs share a GPU:
      the free one first, then the least used with room; whole numbers take that many GPUs.
    - Its stdout and stderr go to ``stdout.log`` and ``stderr.log`` in the trial dir,
      appended to across relaunches. A trial dir on shared storage (an fsspec URL such as
      ``s3://...``: the trainer writes its files there itself) gets its logs at the end of the
      trial, from a local scratch dir.
    - Launches beyond the limit (or waiting for GPUs) stay PENDING, in launch order, and start
      when a later ``launch``/``status``/``free_slots``/``stop`` call finds room.
    - ``spec.timeout_secs`` ends a trial (SIGTERM, grace, SIGKILL) as FAILED/TIMEOUT.
    - ``stop`` sends SIGTERM to the trial's process group and returns; the SIGKILL follows on
      a later call once ``grace_secs`` have passed. ``close`` waits up to ``grace_secs`` (real
      time) for every trial, then SIGKILLs what is left.
    - No trial process survives this process, however it ends (see the module docstring).

    ``clock`` dates statuses and decides timeouts and stop deadlines; ``close`` waits in real
    time. ``gpus=None`` detects them (:func:`detect_gpus`).

    Example::

        with LocalExecutor(max_parallel_trials=2, gpus=["0"]) as executor:
            executor.launch(spec)
            while not executor.status(spec.trial_id).state.is_terminal:
                clock.sleep(5)
    """

    def __init__(
        self,
        max_parallel_trials: int = 1,
        gpus: Sequence[str] | None = None,
        clock: Clock | None = None,
        grace_secs: float = 10.0,
        *,
        handle_signals: bool = True,
    ) -> None:
        if (
            isinstance(max_parallel_trials, bool)
            or not isinstance(max_parallel_trials, int)
            or (max_parallel_trials < 1)
        ):
            raise UsageError(
                f"max_parallel_trials must be an integer >= 1, got {max_parallel_trials!r}. "
                "Pass e.g. --max-parallel-trials 2."
            )
        if not grace_secs >= 0:
            raise UsageError(f"grace_secs must be >= 0, got {grace_secs!r}. Use e.g. 10.")
        self._max_parallel = max_parallel_trials
        self._gpus: tuple[str, ...] = tuple(detect_gpus() if gpus is None else gpus)
        if len(set(self._gpus)) != len(self._gpus) or any(not g for g in self._gpus):
            raise UsageError(
                f"gpus must be distinct non-empty ids, got {list(self._gpus)!r}. "
                "Pass e.g. ['0', '1']."
            )
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._grace = float(grace_secs)
        self._trials: dict[str, _Trial] = {}
        self._queue: list[str] = []
        self._gpu_used: dict[str, float] = dict.fromkeys(self._gpus, 0.0)
        self._pipe: tuple[int, int] | None = None
        self._closed = False
        self._owner_pid = os.getpid()
        _install_process_hooks(handle_signals)
        _LIVE.add(self)

    # ----------------------------------------------------------------------------------------
    # Public API
    # ----------------------------------------------------------------------------------------

    @property
    def gpus(self) -> tuple[str, ...]:
        """The GPU ids this executor hands out."""
        return self._gpus

    @property
    def max_parallel_trials(self) -> int:
        """How many trials may run at once."""
        return self._max_parallel

    def launch(self, spec: TrialSpec) -> None:
        """Start the trial now, or queue it (PENDING) until a slot and its GPUs are free.

        Raises ExecutorError for a duplicate id, a closed executor, an impossible GPU request
        or a trainer that is not an executable command; UsageError for a remote trial dir.
        """
        if self._closed:
            raise ExecutorError(
                f"executor must be open to launch trials, got a closed one for "
                f"{spec.trial_id!r}. Create a new LocalExecutor."
            )
        if spec.trial_id in self._trials:
            raise ExecutorError(
                f"trial ids must be unique per executor, got {spec.trial_id!r} a second time. "
                "Use a new trial id (controllers number trials deterministically)."
            )
        if not isinstance(spec.trainer, TrainerSpec) or not spec.trainer.argv:
            raise ExecutorError(
                f"the local executor must get a command trainer, got {spec.trainer!r} for "
                f"{spec.trial_id!r}."
            )
        if not storage.is_local(spec.trial_dir) and not storage.is_shared(spec.trial_dir):
            raise UsageError(
                f"trial dirs of the local executor must be on the local disk or on storage the "
                f"trainer process can reach (an fsspec URL such as s3://bucket/prefix), got "
                f"{spec.trial_dir!r} for {spec.trial_id!r}, which lives inside this process. "
                "Use a local --root-output-dir or a shared one."
            )
        check_gpu_request(spec.resources.gpus, self._gpus)
        self._check_executable(spec)
        if storage.is_local(spec.trial_dir):
            local_dir = storage.to_local_path(spec.trial_dir)
        else:  # a trial dir on shared storage: the logs gather here and are uploaded at the end
            local_dir = tempfile.mkdtemp(prefix="proxytask-trial-logs-")
        try:
            os.makedirs(local_dir, exist_ok=True)
        except OSError as exc:
            raise ExecutorError(
                f"trial dir {local_dir!r} must be a folder this user can create, got {exc}. "
                "Check --root-output-dir and its permissions."
            ) from exc
        failure = storage.file_signature(layout.trial_file(spec.trial_dir, layout.TRIAL_FAILURE))
        self._poll()
        self._trials[spec.trial_id] = _Trial(
            spec=spec, local_dir=local_dir, failure_signature=failure
        )
        self._queue.append(spec.trial_id)
        self._start_pending()

    def status(self, trial_id: str) -> TrialStatus:
        """The trial's status; reaps ended trials, escalates kills, starts queued trials."""
        trial = self._get(trial_id)
        self._poll()
        return self._status_of(trial)

    def statuses(self, trial_ids: list[str] | None = None) -> Mapping[str, TrialStatus]:
        """Statuses of several trials (all by default), from one poll."""
        self._poll()
        ids = self.known_trials() if trial_ids is None else trial_ids
        return {tid: self._status_of(self._get(tid)) for tid in ids}

    def stop(self, trial_id: str, grace_secs: float = 10.0) -> None:
        """SIGTERM the trial's process group now; SIGKILL it after ``grace_secs``.

        Returns at once: the SIGKILL is sent by a later call (``status``, ``stop``,
        ``free_slots``, ``close``) once the grace has passed. A queued trial ends STOPPED
        without starting; an ended trial is left as it is.
        """
        trial = self._get(trial_id)
        self._poll()
        if trial.state.is_terminal:
            return
        if trial.state is TrialState.PENDING:
            self._queue.remove(trial_id)
            self._end(trial, TrialState.STOPPED, None, None, "stopped before it started")
            self._start_pending()
            return
        if not trial.stop_requested:
            trial.stop_requested = True
            self._terminate(trial, max(0.0, float(grace_secs)))
        self._poll()

    def free_slots(self) -> int:
        """Trials that would start at once now: the limit minus running and queued trials.

        GPU capacity is not counted: a trial whose GPUs are busy waits PENDING.
        """
        self._poll()
        if self._closed:
            return 0
        busy = sum(1 for t in self._trials.values() if not t.state.is_terminal)
        return max(0, self._max_parallel - busy)

    def known_trials(self) -> list[str]:
        """Ids of every trial launched here, in launch order."""
        return list(self._trials)

    def pid(self, trial_id: str) -> int | None:
        """The process-group id of a started trial (its launcher's pid); None if queued."""
        trial = self._get(trial_id)
        return None if trial.proc is None else trial.proc.pid

    def close(self) -> None:
        """Stop every trial (queued ones never start), wait up to the grace, SIGKILL the rest.

        Idempotent. Afterwards no trial process of this executor is alive and ``status``
        still answers.
        """
        if os.getpid() != self._owner_pid:
            return  # a forked child must not kill its parent's trials
        self._closed = True
        self._poll()
        for tid in list(self._queue):
            self._end(
                self._trials[tid], TrialState.STOPPED, None, None, "stopped before it started"
            )
        self._queue.clear()
        running = [
            t for t in self._trials.values() if t.proc is not None and not t.state.is_terminal
        ]
        for trial in running:
            if not trial.stop_requested and not trial.timed_out:
                trial.stop_requested = True
                self._terminate(trial, self._grace)
        deadline = time.monotonic() + self._grace
        for trial in running:
            assert trial.proc is not None
            try:
                trial.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._kill(trial)
            try:
                trial.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # pragma: no cover - a process in D state
                logger.error(
                    "trial %s (pid %d) did not die after SIGKILL",
                    trial.spec.trial_id,
                    trial.proc.pid,
                )
        self._poll()
        if self._pipe is not None:
            for fd in self._pipe:
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._pipe = None
        _LIVE.discard(self)

    # ----------------------------------------------------------------------------------------
    # Internals
    # ----------------------------------------------------------------------------------------

    def _get(self, trial_id: str) -> _Trial:
        try:
            return self._trials[trial_id]
        except KeyError:
            raise KeyError(
                f"trial id must be one launched by this executor, got {trial_id!r}"
            ) from None

    def _check_executable(self, spec: TrialSpec) -> None:
        program = spec.trainer.argv[0]
        path = {**os.environ, **spec.env}.get("PATH", os.defpath)
        if os.sep in program:
            found = os.path.isfile(program) and os.access(program, os.X_OK)
        else:
            found = shutil.which(program, path=path) is not None
        if not found:
            raise ExecutorError(
                f"the trainer command must start with an executable, got {program!r} (not "
                f"found or not executable) for {spec.trial_id!r}. Check --trainer, e.g. "
                "'python train.py'."
            )

    def _control_fd(self) -> int:
        if self._pipe is None:
            self._pipe = os.pipe()  # both ends close-on-exec; only launchers get the read end
        return self._pipe[0]

    def _poll(self) -> None:
        now = self._clock.now()
        for trial in self._trials.values():
            if trial.proc is None or trial.state.is_terminal:
                continue
            code = trial.proc.poll()
            if code is not None:
                self._finish(trial, code)
                continue
            timeout = trial.spec.timeout_secs
            if (
                timeout is not None
                and not trial.timed_out
                and not trial.stop_requested
                and trial.started_at is not None
                and now - trial.started_at >= timeout
            ):
                trial.timed_out = True
                logger.warning(
                    "trial %s ran past its %g s limit; stopping it", trial.spec.trial_id, timeout
                )
                self._terminate(trial, self._grace)
            if trial.kill_deadline is not None and now >= trial.kill_deadline and not trial.killed:
                self._kill(trial)
        self._start_pending()

    def _start_pending(self) -> None:
        if self._closed:
            return
        while self._queue:
            running = sum(1 for t in self._trials.values() if t.state is TrialState.RUNNING)
            if running >= self._max_parallel:
                return
            trial = self._trials[self._queue[0]]
            gpus = assign_gpus(trial.spec.resources.gpus, self._gpus, self._gpu_used)
            if gpus is None:
                return  # strict launch order: the head waits for its GPUs
            self._queue.pop(0)
            try:
                self._start(trial, gpus)
            except OSError as exc:
                self._end(
                    trial,
                    TrialState.FAILED,
                    None,
                    FailureCause.CRASH,
                    f"could not start the trial: {exc}",
                )

    def _share(self, trial: _Trial) -> float:
        request = trial.spec.resources.gpus
        return request if request < 1 - _EPS else 1.0

    def _start(self, trial: _Trial, gpus: tuple[str, ...]) -> None:
        spec = trial.spec
        env = {**os.environ, **spec.env, "CUDA_VISIBLE_DEVICES": ",".join(gpus)}
        trial.proc = spawn_trial(spec.argv, env, trial.local_dir, self._control_fd(), self._grace)
        trial.gpus = gpus
        for gpu in gpus:
            self._gpu_used[gpu] += self._share(trial)
        trial.state = TrialState.RUNNING
        trial.started_at = self._clock.now()
        trial.message = f"running as pid {trial.proc.pid}" + (
            f" on GPU {','.join(gpus)}" if gpus else ""
        )
        logger.info("started trial %s (pid %d)", spec.trial_id, trial.proc.pid)

    def _signal_group(self, trial: _Trial, sig: int) -> None:
        if trial.proc is not None:
            signal_group(trial.proc.pid, sig)

    def _terminate(self, trial: _Trial, grace: float) -> None:
        assert trial.proc is not None
        if trial.proc.poll() is not None:
            return
        self._signal_group(trial, signal.SIGTERM)
        deadline = self._clock.now() + grace
        if trial.kill_deadline is None or deadline < trial.kill_deadline:
            trial.kill_deadline = deadline

    def _kill(self, trial: _Trial) -> None:
        trial.killed = True
        self._signal_group(trial, signal.SIGKILL)

    def _finish(self, trial: _Trial, code: int) -> None:
        assert trial.proc is not None
        # the trainer is gone; SIGKILL whatever it left in its process group
        self._signal_group(trial, signal.SIGKILL)
        tail = "" if trial.stop_requested else self._stderr_tail(trial)
        reported = None if trial.stop_requested else self._read_reported_cause(trial)
        state, cause, message = exit_outcome(
            code,
            stop_requested=trial.stop_requested,
            timed_out=trial.timed_out,
            stderr_tail=tail,
            reported_cause=reported,
        )
        self._end(trial, state, code, cause, message)

    def _read_reported_cause(self, trial: _Trial) -> str | None:
        return read_reported_cause(trial.spec.trial_dir, trial.failure_signature)

    def _stderr_tail(self, trial: _Trial) -> str:
        return read_stderr_tail(os.path.join(trial.local_dir, layout.STDERR_LOG))

    def _end(
        self,
        trial: _Trial,
        state: TrialState,
        code: int | None,
        cause: FailureCause | None,
        message: str,
    ) -> None:
        for gpu in trial.gpus:
            self._gpu_used[gpu] = max(0.0, self._gpu_used[gpu] - self._share(trial))
        trial.gpus = ()
        trial.state = state
        trial.exit_code = code
        trial.cause = cause
        trial.message = message
        trial.ended_at = self._clock.now()
        logger.info("trial %s ended %s: %s", trial.spec.trial_id, state.value, message)
        if not storage.is_local(trial.spec.trial_dir):
            self._upload_logs(trial)

    def _upload_logs(self, trial: _Trial) -> None:
        """Copy a remote trial's logs from the local scratch dir into its trial dir."""
        for name in (layout.STDOUT_LOG, layout.STDERR_LOG):
            path = os.path.join(trial.local_dir, name)
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue  # it never started
            try:
                storage.write_bytes_atomic(layout.trial_file(trial.spec.trial_dir, name), data)
            except StorageError as exc:
                logger.warning(
                    "could not upload %s of trial %s: %s", name, trial.spec.trial_id, exc
                )
        shutil.rmtree(trial.local_dir, ignore_errors=True)

    def _status_of(self, trial: _Trial) -> TrialStatus:
        return TrialStatus(
            trial_id=trial.spec.trial_id,
            state=trial.state,
            exit_code=trial.exit_code,
            cause=trial.cause,
            message=trial.message,
            started_at=trial.started_at,
            ended_at=trial.ended_at,
        )
