"""The local executor: one subprocess per trial on this machine, with GPU slots and cleanup.

Each trial runs under the launcher of :mod:`proxytask.executors.processes`, in its own process
group and session, so the trainer and everything it started die with the controller however
the controller ends. On top of that, the controller closes every live executor at interpreter
exit (``atexit``, which covers KeyboardInterrupt) and on SIGTERM (a handler installed only
where SIGTERM has its default action, chaining to any previous Python handler).
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import select
import shutil
import signal
import subprocess
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
    BookkeepingExecutor,
    Executor,
    FailureCause,
    Resources,
    TrainerSpec,
    TrialEntry,
    TrialSpec,
    TrialState,
)
from proxytask.executors.command import check_local_command
from proxytask.executors.processes import TrialProcess, check_command_trainer, spawn_trial
from proxytask.executors.warm import WarmPool, WarmProcess, WarmStartError
from proxytask.executors.watch import DirWatch

__all__ = ["LocalExecutor", "assign_gpus", "check_gpu_request", "detect_gpus"]

logger = logging.getLogger(__name__)

_EPS = 1e-9


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


@dataclasses.dataclass(kw_only=True)
class _LocalTrial(TrialEntry):
    local_dir: str  # where the logs go: the trial dir, or a scratch dir for a remote one
    process: TrialProcess | None = None
    gpus: tuple[str, ...] = ()
    exit_fd: int | None = None  # a pidfd of a launched trial: readable once it exited


class LocalExecutor(BookkeepingExecutor[_LocalTrial]):
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
    - A trainer with an entry point (``TrainerSpec.entry``, ``--trainer-entry``) runs in warm
      workers (:mod:`proxytask.executors.warm`): one fork server per entry imports the trainer
      once and each trial is a forked child, with everything above unchanged (own process
      group, logs, environment, stop, time limit, exit status, clean-up).

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
        super().__init__(max_parallel_trials, clock if clock is not None else SystemClock())
        if not grace_secs >= 0:
            raise UsageError(f"grace_secs must be >= 0, got {grace_secs!r}. Use e.g. 10.")
        self._gpus: tuple[str, ...] = tuple(detect_gpus() if gpus is None else gpus)
        if len(set(self._gpus)) != len(self._gpus) or any(not g for g in self._gpus):
            raise UsageError(
                f"gpus must be distinct non-empty ids, got {list(self._gpus)!r}. "
                "Pass e.g. ['0', '1']."
            )
        self._grace = float(grace_secs)
        self._gpu_used: dict[str, float] = dict.fromkeys(self._gpus, 0.0)
        self._pipe: tuple[int, int] | None = None
        self._pools: dict[tuple[str, str, str], WarmPool] = {}
        self._owner_pid = os.getpid()
        self._watch = DirWatch()  # wakes wait() when a trial writes a report (Linux)
        _install_process_hooks(handle_signals)
        _LIVE.add(self)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> tuple[Executor, Clock]:
        """``--executor local``: trials as subprocesses here, on the system clock."""
        clock = SystemClock()
        return cls(max_parallel_trials=int(options["max_parallel_trials"]), clock=clock), clock

    @classmethod
    def check_trainer(cls, trainer: TrainerSpec) -> None:
        """The trainer command must start with a program that exists on this machine."""
        check_local_command(trainer.argv[0])

    def check_resources(self, resources: Resources) -> None:
        """``--gpus-per-trial`` must fit the GPUs of this machine."""
        try:
            check_gpu_request(resources.gpus, self._gpus)
        except ExecutorError as exc:
            raise UsageError(str(exc)) from None

    @property
    def gpus(self) -> tuple[str, ...]:
        """The GPU ids this executor hands out."""
        return self._gpus

    def pid(self, trial_id: str) -> int | None:
        """The process-group id of a started trial (its launcher's pid); None if queued."""
        process = self._get(trial_id).process
        return None if process is None else process.pid

    # ---- the hooks ---------------------------------------------------------------------------

    def _admit(self, spec: TrialSpec) -> _LocalTrial:
        """Refuse a non-command trainer, a trial dir out of reach, an impossible GPU request
        or a missing program; make the dir the logs go to."""
        check_command_trainer(spec, "local")
        if not storage.is_local(spec.trial_dir) and not storage.is_shared(spec.trial_dir):
            raise UsageError(
                f"trial dirs of the local executor must be on the local disk or on storage the "
                f"trainer process can reach (an fsspec URL such as s3://bucket/prefix), got "
                f"{spec.trial_dir!r} for {spec.trial_id!r}, which lives inside this process. "
                "Use a local --root-output-dir or a shared one."
            )
        check_gpu_request(spec.resources.gpus, self._gpus)
        _check_executable(spec)
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
        return _LocalTrial(spec=spec, local_dir=local_dir)

    def _start(self, entry: _LocalTrial, at: float) -> bool:
        gpus = assign_gpus(entry.spec.resources.gpus, self._gpus, self._gpu_used)
        if gpus is None:
            return False  # its GPUs are busy
        spec = entry.spec
        env = {**os.environ, **spec.env, "CUDA_VISIBLE_DEVICES": ",".join(gpus)}
        proc: subprocess.Popen[bytes] | WarmProcess
        try:
            if spec.trainer.entry is not None:
                proc = self._fork_warm(entry, env)
            else:
                proc = spawn_trial(spec.argv, env, entry.local_dir, self._control_fd(), self._grace)
                entry.exit_fd = _pidfd(proc.pid)
        except (OSError, ExecutorError) as exc:
            if isinstance(exc, WarmStartError) and exc.details:
                _append_log(entry.local_dir, exc.details)
            message = f"could not start the trial: {exc}"
            self._end(entry, TrialState.FAILED, None, FailureCause.CRASH, message)
            return True
        entry.process = TrialProcess(
            proc,
            entry.local_dir,
            started=at,
            timeout_secs=spec.timeout_secs,
            grace_secs=self._grace,
            name=spec.trial_id,
        )
        entry.gpus = gpus
        for gpu in gpus:
            self._gpu_used[gpu] += _share(entry)
        on_gpus = f" on GPU {','.join(gpus)}" if gpus else ""
        if storage.is_local(spec.trial_dir):
            self._watch.add(entry.local_dir)
        self._mark_running(entry, at, f"running as pid {proc.pid}{on_gpus}")
        logger.info("started trial %s (pid %d)", spec.trial_id, proc.pid)
        return True

    def _fork_warm(self, entry: _LocalTrial, env: Mapping[str, str]) -> WarmProcess:
        """Fork the trial from its entry's warm worker (started on first use)."""
        trainer = entry.spec.trainer
        assert trainer.entry is not None
        cwd = os.getcwd()
        key = (trainer.argv[0], trainer.entry, cwd)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = WarmPool(trainer.argv, trainer.entry, cwd, self._grace)
        return pool.fork(
            entry.spec.trial_id,
            warm_argv(trainer.argv, trainer.entry, entry.spec.args),
            env,
            os.path.join(entry.local_dir, layout.STDOUT_LOG),
            os.path.join(entry.local_dir, layout.STDERR_LOG),
        )

    @property
    def warm_import_secs(self) -> dict[str, float]:
        """Each started warm worker's import time in seconds, by entry (for benchmarks)."""
        return {
            pool.entry: pool.import_secs
            for pool in self._pools.values()
            if pool.import_secs is not None
        }

    def _signal_stop(self, entry: _LocalTrial, grace_secs: float) -> None:
        """SIGTERM the trial's process group now; a later call SIGKILLs it after the grace."""
        assert entry.process is not None
        entry.process.stop(self._clock.now(), grace_secs)

    def _poll(self) -> None:
        now = self._clock.now()
        for entry in self._trials.values():
            if entry.process is None or entry.state.is_terminal:
                continue
            outcome = entry.process.check(now)
            if outcome is not None:
                self._end(entry, outcome.state, outcome.exit_code, outcome.cause, outcome.message)

    def wait(self, clock: Clock, seconds: float) -> None:
        """Sleep up to ``seconds``, returning as soon as a running trial ends or writes a file
        in its (local) trial dir, a report say (real clock; see :mod:`.watch`)."""
        if not isinstance(clock, SystemClock) or seconds <= 0:
            clock.sleep(seconds)
            return
        fds = [
            e.exit_fd
            for e in self._trials.values()
            if e.exit_fd is not None and not e.state.is_terminal
        ]
        fds += [fd for pool in self._pools.values() if (fd := pool.event_fd) is not None]
        if self._watch.fd is not None and self._watch.watched:
            fds.append(self._watch.fd)
        if not fds:
            clock.sleep(seconds)
            return
        try:
            select.select(fds, [], [], seconds)
        except (OSError, ValueError):  # a descriptor closed meanwhile: poll as usual
            clock.sleep(min(seconds, 0.05))
        # writes that came meanwhile are read by the poll that follows; a write during that
        # poll leaves the descriptor readable, so the next wait returns at once for it
        self._watch.drain()

    def _release(self, entry: _LocalTrial) -> None:
        self._watch.remove(entry.local_dir)
        if entry.exit_fd is not None:
            os.close(entry.exit_fd)
            entry.exit_fd = None
        for gpu in entry.gpus:
            self._gpu_used[gpu] = max(0.0, self._gpu_used[gpu] - _share(entry))
        entry.gpus = ()
        if not storage.is_local(entry.spec.trial_dir):
            _upload_logs(entry)

    def _can_close(self) -> bool:
        return os.getpid() == self._owner_pid  # a forked child must not kill its parent's trials

    def _shutdown(self) -> None:
        """Stop every started trial, wait up to the grace (real time), SIGKILL the rest."""
        running = [
            e.process
            for e in self._trials.values()
            if e.process is not None and not e.state.is_terminal
        ]
        now = self._clock.now()
        for process in running:
            if not process.stop_requested and not process.timed_out:
                process.stop(now, self._grace)
        # real time: the processes need it whatever the clock says
        deadline = time.monotonic() + self._grace
        for process in running:
            if not process.wait(deadline - time.monotonic()):
                process.kill()
            if not process.wait(30):  # pragma: no cover - a process in D state
                logger.error(
                    "trial %s (pid %d) did not die after SIGKILL", process.name, process.pid
                )
        self._poll()
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        self._watch.close()
        if self._pipe is not None:
            for fd in self._pipe:
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._pipe = None
        _LIVE.discard(self)

    def _control_fd(self) -> int:
        if self._pipe is None:
            self._pipe = os.pipe()  # both ends close-on-exec; only launchers get the read end
        return self._pipe[0]


def _pidfd(pid: int) -> int | None:
    """A descriptor readable once ``pid`` exits (Linux 5.3+), or None where there is none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def warm_argv(trainer_argv: Sequence[str], entry: str, args: Sequence[str]) -> list[str]:
    """A warm trial's ``sys.argv``: the trainer command without the interpreter and its
    options (``python -u -m pkg.mod --x`` gives ``pkg.mod --x``), then the trial's flags."""
    rest = list(trainer_argv[1:])
    while rest and rest[0].startswith("-") and rest[0] != "-m":
        option = rest.pop(0)
        if option in ("-X", "-W") and rest:
            rest.pop(0)
    if rest and rest[0] == "-m":
        rest.pop(0)
    return [*(rest or [entry]), *args]


def _append_log(log_dir: str, text: str) -> None:
    try:
        with open(os.path.join(log_dir, layout.STDERR_LOG), "a", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
    except OSError:
        pass


def _share(entry: _LocalTrial) -> float:
    request = entry.spec.resources.gpus
    return request if request < 1 - _EPS else 1.0


def _check_executable(spec: TrialSpec) -> None:
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


def _upload_logs(entry: _LocalTrial) -> None:
    """Copy a remote trial's logs from the local scratch dir into its trial dir."""
    for name in (layout.STDOUT_LOG, layout.STDERR_LOG):
        path = os.path.join(entry.local_dir, name)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            continue  # it never started
        try:
            storage.write_bytes_atomic(layout.trial_file(entry.spec.trial_dir, name), data)
        except StorageError as exc:
            logger.warning("could not upload %s of trial %s: %s", name, entry.spec.trial_id, exc)
    shutil.rmtree(entry.local_dir, ignore_errors=True)
