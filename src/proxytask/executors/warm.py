"""Warm trial workers: the trainer's start-up paid once per run, not once per trial.

A trainer opts in with an entry point (``--trainer-entry pkg.mod:main`` or
``path/to/trainer.py:main``): a function that runs one trial from its command-line arguments
and returns the exit code, as the script's ``if __name__ == "__main__"`` block would. The local
executor then starts one fork server per (interpreter, entry, working dir) — the trainer's own
interpreter (the first word of ``--trainer``) running :mod:`proxytask.executors._forkserver` —
which imports the entry's module once (torch, the data pipeline, the contract) and forks a
fresh child for every trial. Each child is a trial process as a launched one is:

- its own session and process group (its pid is the group id), so stop, time limit and kill
  signal the whole group as before;
- its own stdout/stderr appended to the trial dir's logs, its own environment
  (``CLOUD_ML_TRIAL_ID``, ``CUDA_VISIBLE_DEVICES``, ...), working dir and ``sys.argv``
  (``--trainer`` without the interpreter, then the trial's flags);
- its exit status passed through unchanged (exit code, or death by a signal), so failure
  causes are judged exactly as for a launched trial;
- nothing outlives the controller: the server stops every trial when its owner goes
  (whatever way), and the kernel kills every trial when the server dies.

What a trainer must respect: module-level code runs once, in the server, before any trial;
everything a trial sets up (threads, seeds, devices, CUDA) belongs in the entry function.
A module may define ``proxytask_warm_up()``, run once in the server after the import: the
place for first-use costs every trial would pay again (PyTorch's first forward and backward
pass cost the MNIST-1D trainer about a second per trial). It must leave no threads behind
(a forked child has none of them): keep PyTorch to one thread there.
CUDA must not be initialised at import time (a forked child cannot use its parent's CUDA
context); a child initialises its own.

Why fork and not a reused process: a fork gives each trial a clean interpreter with the
imports done (no state leaks between trials, kill and crash stay per trial, logs stay per
trial), at a measured cost of milliseconds per trial (``bench/orchestration.py``). Reusing one
process for several trials would also keep a CUDA context but needs a reset between trials
that no trainer contract can guarantee; proxytask does not do it.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import logging
import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

from proxytask.core.errors import ExecutorError, UsageError

__all__ = ["WarmPool", "WarmProcess", "WarmStartError", "check_trainer_entry"]

logger = logging.getLogger(__name__)

#: How long the first trial waits for the server to import the trainer module.
READY_TIMEOUT_SECS = 600.0
#: How long a fork request waits for its reply.
FORK_TIMEOUT_SECS = 60.0


class WarmStartError(ExecutorError):
    """The warm worker could not start or import the trainer entry (``details``: the traceback)."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def check_trainer_entry(entry: str) -> str:
    """Return ``entry`` if it reads ``pkg.mod:fn`` or ``path/to/file.py:fn``; else UsageError."""
    target, sep, name = entry.rpartition(":")
    is_path = target.endswith(".py") or os.sep in target
    valid_module = all(part.isidentifier() for part in target.split(".")) if target else False
    valid_name = bool(name) and all(part.isidentifier() for part in name.split("."))
    if not sep or not valid_name or not (is_path or valid_module):
        raise UsageError(
            f"--trainer-entry must name a function as PKG.MOD:FN or path/to/trainer.py:FN, got "
            f"{entry!r}. Example: --trainer-entry examples.mnist1d.trainer:main."
        )
    if is_path and not os.path.isfile(target):
        raise UsageError(
            f"--trainer-entry must point at an existing Python file, got {target!r} (from "
            f"{entry!r}), which is not a file. Check the path (relative to this directory)."
        )
    return entry


#: ``python -c`` bootstrap: run the server file as ``__main__`` (readable in ``ps``, and its
#: tracebacks name the file).
_BOOTSTRAP = (
    "import sys; path = sys.argv.pop(1); "
    "exec(compile(open(path, encoding='utf-8').read(), path, 'exec'))"
)


def _server_path() -> str:
    return str(importlib.resources.files("proxytask.executors").joinpath("_forkserver.py"))


@dataclasses.dataclass(eq=False)
class WarmProcess:
    """A trial forked by a :class:`WarmPool`: the part of ``subprocess.Popen`` the executor
    uses (``pid``, ``poll``, ``wait``, ``returncode``)."""

    pool: WarmPool
    pid: int
    returncode: int | None = None

    def poll(self) -> int | None:
        """The exit code once the trial ended (negative: killed by that signal), else None."""
        if self.returncode is None:
            self.returncode = self.pool.exit_code(self.pid, 0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds (None: forever) for the exit code."""
        if self.returncode is None:
            self.returncode = self.pool.exit_code(self.pid, timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(f"warm trial {self.pid}", timeout or 0.0)
        return self.returncode


class WarmPool:
    """One fork server (see the module docstring) and the trials it forked.

    Example::

        pool = WarmPool(("python", "trainer.py"), "trainer.py:main", cwd=".", grace_secs=10)
        proc = pool.fork("job/1", argv, env, stdout_path, stderr_path)
        code = proc.wait(60)
        pool.close()
    """

    def __init__(
        self, trainer_argv: Sequence[str], entry: str, cwd: str, grace_secs: float
    ) -> None:
        self.interpreter = trainer_argv[0]
        self.entry = entry
        self.cwd = cwd
        self.grace_secs = grace_secs
        self.import_secs: float | None = None
        self._server: subprocess.Popen[bytes] | None = None
        self._requests = -1
        self._replies = -1
        self._buffer = b""
        self._exits: dict[int, int] = {}
        self._forked: set[int] = set()
        self._failure: WarmStartError | None = None
        self._dead = False
        self._log_path = ""

    @property
    def server_pid(self) -> int | None:
        """The fork server's pid while it runs (None before the first trial and after)."""
        if self._server is None or self._dead:
            return None
        return self._server.pid

    @property
    def event_fd(self) -> int | None:
        """A descriptor that becomes readable when the server has news (a trial ended);
        None while no server runs."""
        return None if self._dead or self._replies < 0 else self._replies

    # ---- start ---------------------------------------------------------------------------------

    def _start(self) -> None:
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        handle, self._log_path = tempfile.mkstemp(prefix="proxytask-warm-", suffix=".log")
        try:
            self._server = subprocess.Popen(
                [
                    self.interpreter,
                    "-c",
                    _BOOTSTRAP,
                    _server_path(),
                    self.entry,
                    str(request_r),
                    str(reply_w),
                    repr(float(self.grace_secs)),
                ],
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=handle,
                pass_fds=(request_r, reply_w),
                cwd=self.cwd,
                start_new_session=True,  # Ctrl-C in the terminal is the controller's
            )
        except OSError as exc:
            for fd in (request_r, request_w, reply_r, reply_w):
                os.close(fd)
            raise WarmStartError(
                f"the warm worker for --trainer-entry {self.entry} could not start "
                f"{self.interpreter!r}: {exc}. --trainer must start with a Python interpreter."
            ) from exc
        finally:
            os.close(handle)
        os.close(request_r)
        os.close(reply_w)
        self._requests, self._replies = request_w, reply_r
        started = time.monotonic()
        while True:
            for message in self._pump(READY_TIMEOUT_SECS - (time.monotonic() - started)):
                if "ready" in message:
                    if message["ready"]:
                        self.import_secs = float(message.get("import_secs", 0.0))
                        logger.info(
                            "warm worker for %s ready (import %.2f s, pid %d)",
                            self.entry,
                            self.import_secs,
                            self._server.pid,
                        )
                        return
                    raise WarmStartError(
                        f"--trainer-entry {self.entry} could not be imported (or its "
                        "proxytask_warm_up failed): "
                        f"{_last_line(message.get('error', ''))}. Run `{self.interpreter} -c "
                        f"'import ...'` on it to see why; the traceback is in the trial's "
                        "stderr.log.",
                        str(message.get("error", "")),
                    )
            if self._dead or time.monotonic() - started > READY_TIMEOUT_SECS:
                raise WarmStartError(
                    f"the warm worker for --trainer-entry {self.entry} ended before it was "
                    f"ready. Its output: {self._log_tail()!r}",
                    self._log_tail(),
                )

    def _log_tail(self) -> str:
        try:
            with open(self._log_path, "rb") as handle:
                return handle.read()[-2000:].decode("utf-8", errors="replace").strip()
        except OSError:
            return ""

    # ---- messages ------------------------------------------------------------------------------

    def _pump(self, timeout: float | None) -> list[dict[str, Any]]:
        """Read what the server sent (waiting up to ``timeout`` for something); exits are kept."""
        if self._dead or self._replies < 0:
            return []
        wait = None if timeout is None else max(0.0, timeout)
        if not select.select([self._replies], [], [], wait)[0]:
            return []
        try:
            data = os.read(self._replies, 1 << 16)
        except OSError:
            data = b""
        if not data:
            self._on_server_death()
            return []
        self._buffer += data
        messages = []
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            message = json.loads(line)
            if "status" in message:
                self._exits[int(message["pid"])] = os.waitstatus_to_exitcode(message["status"])
            else:
                messages.append(message)
        return messages

    def _on_server_death(self) -> None:
        """The server is gone: its trials died with it (PDEATHSIG); kill what they left."""
        self._dead = True
        for pid in self._forked - set(self._exits):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            self._exits[pid] = -int(signal.SIGKILL)
        if self._server is not None:
            code = self._server.wait()
            if code != 0:
                logger.error(
                    "the warm worker for %s died (exit %s); its trials were killed. Output: %s",
                    self.entry,
                    code,
                    self._log_tail(),
                )

    # ---- trials --------------------------------------------------------------------------------

    def fork(
        self,
        trial_id: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        stdout_path: str,
        stderr_path: str,
        cwd: str | None = None,
    ) -> WarmProcess:
        """Fork one trial (``argv`` becomes its ``sys.argv``); raises WarmStartError when the
        entry cannot be imported (every later fork raises the same)."""
        if self._failure is not None:
            raise self._failure
        if self._dead:
            self._reset()
        if self._server is None:
            try:
                self._start()
            except WarmStartError as exc:
                self._failure = exc
                self.close()
                raise
        request = {
            "id": trial_id,
            "argv": list(argv),
            "env": dict(env),
            "cwd": cwd or self.cwd,
            "stdout": stdout_path,
            "stderr": stderr_path,
        }
        data = (json.dumps(request) + "\n").encode("utf-8")
        try:
            while data:
                data = data[os.write(self._requests, data) :]
        except OSError as exc:
            self._on_server_death()
            raise ExecutorError(f"the warm worker for {self.entry} is gone: {exc}") from exc
        deadline = time.monotonic() + FORK_TIMEOUT_SECS
        while time.monotonic() < deadline and not self._dead:
            for message in self._pump(deadline - time.monotonic()):
                if message.get("id") != trial_id:
                    continue
                if "pid" in message:
                    pid = int(message["pid"])
                    self._forked.add(pid)
                    return WarmProcess(self, pid)
                raise ExecutorError(str(message.get("error", "the fork failed")))
        raise ExecutorError(
            f"the warm worker for {self.entry} did not fork trial {trial_id!r} "
            f"({'it died' if self._dead else 'no reply in time'}). Output: {self._log_tail()!r}"
        )

    def _reset(self) -> None:
        """Forget a dead server so that the next fork starts a new one."""
        for fd in (self._requests, self._replies):
            if fd >= 0:
                os.close(fd)
        self._requests = self._replies = -1
        self._server = None
        self._buffer = b""
        self._dead = False

    def exit_code(self, pid: int, timeout: float | None) -> int | None:
        """``pid``'s exit code once known, waiting up to ``timeout`` seconds (None: forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if pid in self._exits:
                return self._exits[pid]
            if self._dead:
                return self._exits.get(pid)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                self._pump(0.0)
                return self._exits.get(pid)
            self._pump(left if left is not None else 1.0)

    def close(self) -> None:
        """Close the server's lifeline: it stops what still runs and exits; wait for it."""
        if self._requests >= 0:
            os.close(self._requests)
            self._requests = -1
        server = self._server
        if server is not None and not self._dead:
            deadline = time.monotonic() + self.grace_secs + 5.0
            while server.poll() is None and time.monotonic() < deadline:
                self._pump(0.05)
            if server.poll() is None:
                server.kill()
            server.wait()
            while not self._dead and self._replies >= 0:
                self._pump(0.0)
                if not select.select([self._replies], [], [], 0)[0]:
                    break
        if self._replies >= 0:
            os.close(self._replies)
            self._replies = -1
        self._dead = True
        if self._log_path:
            try:
                os.unlink(self._log_path)
            except OSError:
                pass
            self._log_path = ""


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"
