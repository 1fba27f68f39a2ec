"""The warm trial worker: a fork server that imports the trainer once and forks each trial.

Not imported by proxytask: :mod:`proxytask.executors.warm` runs this file as ``__main__``
(``python -c <bootstrap> <this file> ENTRY REQUEST_FD REPLY_FD GRACE``) with the trainer's
interpreter, in the controller's working dir, which starts ``sys.path`` (so ``pkg.mod``
entries import as under ``python -m``). Standard library only, and no proxytask import of
its own: whatever the trainer module imports (torch, numpy, proxytask.trainer) is imported
here once, before the first trial.

Protocol (one JSON object per line):

- after the import, the entry module's ``proxytask_warm_up()`` runs if it defines one (a
  trainer's chance to pay its lazy first-use costs once: a first forward pass, a data cache;
  never CUDA or a backward pass, which do not survive ``fork``: the server refuses to serve
  when PyTorch's CUDA is initialised after it), then to the owner:
  ``{"ready": true, "import_secs": S}``, or ``{"ready": false, "error": TRACEBACK}`` and
  exit 1 when the entry cannot be imported or its warm-up fails;
- from the owner: ``{"id", "argv", "env", "cwd", "stdout", "stderr"}``: fork a trial. The child
  starts a new session (its pid is its process-group id, as a launched trial's), asks the
  kernel to SIGKILL it if this server dies (``PR_SET_PDEATHSIG``), appends its stdout and
  stderr to the given files, takes ``env`` as its whole environment, ``cwd`` as its working
  dir and ``argv`` as ``sys.argv``, calls the entry function and exits with its code (an int
  returned, ``SystemExit``'s code, 1 with the traceback on stderr after an exception, 0 after
  None), running ``atexit`` hooks first as an interpreter exit would. Signals have their
  default actions, so SIGTERM from a stop ends it as it ends a fresh process.
- to the owner: ``{"id", "pid"}`` once forked (or ``{"id", "error"}``), and ``{"pid", "status"}``
  (a raw wait status) when a trial process ends.

The owner's end of the request pipe is the owner's lifeline: on EOF (the owner exited, was
killed, or closed the pool) or when this server is re-parented, it SIGTERMs every live trial's
process group, waits ``GRACE`` seconds, SIGKILLs what is left and exits. A trial never
outlives this server (PDEATHSIG), and this server never outlives its owner.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

ENTRY = sys.argv[1]
REQUESTS = int(sys.argv[2])
REPLIES = int(sys.argv[3])
GRACE = float(sys.argv[4])
OWNER = os.getppid()
ME = os.getpid()
_PDEATHSIG = 1  # prctl(PR_SET_PDEATHSIG, ...)

_prctl: Any = None
try:
    import ctypes

    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except Exception:  # pragma: no cover - no libc prctl: the owner's killpg still applies
    pass


def _send(message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode("utf-8")
    while data:
        data = data[os.write(REPLIES, data) :]


def _load(entry: str) -> Callable[..., Any]:
    """The entry function: ``pkg.mod:fn`` or ``path/to/file.py:fn`` (``fn`` may be dotted)."""
    target, _, name = entry.rpartition(":")
    if target.endswith(".py") or os.sep in target:
        import importlib.util

        path = os.path.abspath(target)
        sys.path.insert(0, os.path.dirname(path))  # as `python path/to/file.py` would
        spec = importlib.util.spec_from_file_location("__proxytask_trainer__", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path!r} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        import importlib

        module = importlib.import_module(target)
    found: Any = module
    for part in name.split("."):
        found = getattr(found, part)
    if not callable(found):
        raise TypeError(f"{entry} is not callable (a {type(found).__name__})")
    function: Callable[..., Any] = found
    return function


def _warm_up(fn: Callable[..., Any]) -> None:
    """Run the entry module's ``proxytask_warm_up()`` when it has one, then refuse to serve
    when CUDA was initialised by the import or the warm-up (see :func:`_check_fork_safe`)."""
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    hook = getattr(module, "proxytask_warm_up", None)
    if callable(hook):
        hook()
    _check_fork_safe()


def _check_fork_safe() -> None:
    """Raise when PyTorch has initialised CUDA in this server: a forked trial could not use
    CUDA then (every CUDA call in it fails with an initialisation error)."""
    torch = sys.modules.get("torch")
    is_initialized = getattr(getattr(torch, "cuda", None), "is_initialized", None)
    if callable(is_initialized) and is_initialized():
        raise RuntimeError(
            f"CUDA was initialised while importing {ENTRY} or in its proxytask_warm_up(), so "
            "no forked trial could use the GPU. Keep CUDA (and autograd's backward, which "
            "starts CUDA's threads) out of module-level code and the warm-up: pick the device "
            "inside the entry function."
        )


def _takes_arguments(fn: Callable[..., Any]) -> bool:
    import inspect

    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.kind in positional or p.kind == p.VAR_POSITIONAL for p in parameters)


def _exit_code(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value & 0xFF
    sys.stderr.write(f"{value}\n")  # SystemExit("message"): printed, exit 1
    return 1


def _run_trial(fn: Callable[..., Any], argv: list[str]) -> NoReturn:
    """In the forked child: run the entry as a fresh interpreter would run the script."""
    code = 1
    try:
        result = fn(list(argv[1:])) if _takes_arguments(fn) else fn()
        code = _exit_code(result)
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        import atexit

        atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def _child(fn: Callable[..., Any], request: dict[str, Any], wake: tuple[int, int]) -> NoReturn:
    """Become the trial: own session, streams, environment, working dir and argv."""
    try:
        os.setsid()
        if _prctl is not None:
            _prctl(_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != ME:  # the server died before the line above
            os._exit(137)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in (REQUESTS, REPLIES, *wake):
            os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            handle = os.open(path, flags, 0o644)
            os.dup2(handle, fd)
            os.close(handle)
        os.close(null)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
    except BaseException:
        traceback.print_exc()
        os._exit(127)
    _run_trial(fn, request["argv"])


def _reap(live: set[int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        live.discard(pid)
        _send({"pid": pid, "status": status})


def _signal_all(live: set[int], signum: int) -> None:
    for pid in list(live):
        try:
            os.killpg(pid, signum)
        except OSError:
            pass


def _shutdown(live: set[int]) -> NoReturn:
    """The owner is gone: stop every trial (SIGTERM, the grace, SIGKILL), then exit."""
    _signal_all(live, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    while live and time.monotonic() < deadline:
        try:
            _reap(live)
        except OSError:  # the owner no longer reads: reap without telling
            live.clear()
        time.sleep(0.05)
    _signal_all(live, signal.SIGKILL)
    os._exit(0)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the owner's to handle
    started = time.monotonic()
    try:
        fn = _load(ENTRY)
        _warm_up(fn)
    except BaseException:
        _send({"ready": False, "error": traceback.format_exc()})
        os._exit(1)
    wake = os.pipe()
    os.set_blocking(wake[1], False)
    signal.set_wakeup_fd(wake[1])
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    live: set[int] = set()
    _send({"ready": True, "import_secs": round(time.monotonic() - started, 4)})
    pending = b""
    while True:
        try:
            ready = select.select([REQUESTS, wake[0]], [], [], 1.0)[0]
        except InterruptedError:  # pragma: no cover - retried by Python itself
            continue
        if wake[0] in ready:
            try:
                os.read(wake[0], 4096)
            except BlockingIOError:
                pass
        try:
            _reap(live)
        except OSError:
            _shutdown(live)
        if os.getppid() != OWNER:
            _shutdown(live)
        if REQUESTS not in ready:
            continue
        data = os.read(REQUESTS, 1 << 16)
        if not data:
            _shutdown(live)
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            try:
                pid = os.fork()
            except OSError as exc:
                _send({"id": request["id"], "error": f"could not fork the trial: {exc}"})
                continue
            if pid == 0:
                _child(fn, request, wake)
            live.add(pid)
            _send({"id": request["id"], "pid": pid})


main()
