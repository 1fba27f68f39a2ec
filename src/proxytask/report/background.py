"""Plots off the controller's critical path: one worker process draws them.

A figure takes matplotlib 0.1–1 s to draw; drawn inside a controller's step, that is time in
which no report is read and no stop is posted (a third of a replayed workflow's time went
there). :func:`submit` hands a renderer from :mod:`proxytask.report.plots`, its figure data
and the PNG's path to a worker process (``python -m proxytask.report._plot_worker``, started
at the first plot) and returns at once; :func:`drain` waits until every plot handed over is
written. A controller drains before it reports its answer, so what a finished command prints
and links exists (:meth:`proxytask.controllers.base.Controller.run`).

What stays inline (drawn in the caller, as before): a path that is not on this machine's
disk (an object store's credentials and endpoint are the caller's; ``memory://`` lives in
this process), a machine with one core (nothing to run beside), a renderer the worker cannot
import by name (a lambda), and any plot once the worker could not start or died (it is drawn
here instead; a kill costs no plot). The worker ignores Ctrl-C (the caller decides) and exits
when the caller's end of its pipe closes, so it never outlives the caller by more than the
plot it is drawing. The files are written atomically either way, so a reader never sees half
a PNG.

Example::

    from proxytask.report import background
    from proxytask.report.plots import render_variance_figure

    background.submit(render_variance_figure, fig, "runs/x/variance.png")
    ...
    background.drain()  # every submitted plot is on disk (or its error raised)
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from proxytask.core import storage

__all__ = ["PlotWorker", "abandon", "drain", "submit"]

#: A renderer of :mod:`proxytask.report.plots`: ``render(figure_data, path)``.
Renderer = Callable[[Any, str], None]

_CLOSE_WAIT_SECS = 5.0


@dataclasses.dataclass(frozen=True)
class _Job:
    render: Renderer
    figure: Any
    path: str


class PlotWorker:
    """One worker process that draws plots handed to it (see the module doc).

    The worker holds one plot at a time; the rest wait here, so :meth:`drain` can draw
    waiting plots in this process while the worker draws its own (two cores at work when the
    caller has nothing else to do). Two plots of one path are drawn in the order submitted.
    ``offload`` decides per path whether the worker may draw it (default: a path on this
    machine's disk, when the machine has more than one core); the rest are drawn inline.
    """

    def __init__(self, offload: Callable[[str], bool] | None = None) -> None:
        self._offload = offload or _default_offload
        self._lock = threading.Condition()
        self._proc: subprocess.Popen[bytes] | None = None
        self._waiting: collections.deque[tuple[int, _Job]] = collections.deque()
        self._in_flight: tuple[int, _Job] | None = None
        self._errors: dict[int, BaseException] = {}
        self._next_id = 0
        self._generation = 0  # bumped when a worker is stopped: its threads' news is stale
        self._broken = False  # a worker could not start or died: draw inline from now on

    # ---- the caller's side --------------------------------------------------------------------

    def submit(self, render: Renderer, figure: Any, path: str) -> None:
        """Have ``render(figure, path)`` run in the worker (or here; see the class doc)."""
        if not self._offload(path) or not _importable(render) or not self._started():
            render(figure, path)
            return
        with self._lock:
            self._next_id += 1
            self._waiting.append((self._next_id, _Job(render, figure, path)))
            self._lock.notify_all()

    def drain(self) -> None:
        """Wait until every submitted plot is written, drawing waiting ones here meanwhile
        (and those of a worker that died); then raise the first error a renderer raised, as
        an inline call would have."""
        while (item := self._next_to_draw_here()) is not None:
            number, job = item
            try:
                job.render(job.figure, job.path)
            except Exception as exc:
                with self._lock:
                    self._errors[number] = exc
        with self._lock:
            errors = [self._errors[k] for k in sorted(self._errors)]
            self._errors.clear()
        if errors:
            raise errors[0]

    def abandon(self) -> None:
        """Drop the plots not drawn yet and stop the worker now (the caller is failing, or
        lost its dir: nothing more may be written there)."""
        with self._lock:
            self._waiting.clear()
            self._in_flight = None
            self._errors.clear()
        self._stop(kill=True)

    def close(self) -> None:
        """Draw what is left, then end the worker (at interpreter exit)."""
        with contextlib.suppress(Exception):
            self.drain()
        self._stop(kill=False)

    def _next_to_draw_here(self) -> tuple[int, _Job] | None:
        """The next waiting plot for :meth:`drain` to draw (after the worker's plot of the
        same path, if any); None once nothing waits and the worker's plot is written."""
        with self._lock:
            while True:
                alive = self._alive(self._generation)
                flying = self._in_flight if alive else None
                if self._waiting:
                    if flying is None or flying[1].path != self._waiting[0][1].path:
                        return self._waiting.popleft()
                elif flying is None:
                    return None
                self._lock.wait()

    # ---- the worker process -------------------------------------------------------------------

    def _alive(self, generation: int) -> bool:
        return generation == self._generation and self._proc is not None and not self._broken

    def _started(self) -> bool:
        if self._broken:
            return False
        if self._proc is not None:
            return True
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "proxytask.report._plot_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=_worker_env(),
            )
        except OSError:
            self._broken = True
            return False
        assert proc.stdin is not None and proc.stdout is not None
        with self._lock:
            self._proc = proc
            generation = self._generation
        for target, args, name in (
            (self._feed, (proc.stdin, generation), "proxytask-plots-in"),
            (self._collect, (proc.stdout, generation), "proxytask-plots-out"),
        ):
            threading.Thread(target=target, args=args, name=name, daemon=True).start()
        return True

    def _feed(self, stdin: IO[bytes], generation: int) -> None:
        """Hand the worker one waiting plot at a time (8 bytes of length, then the pickle);
        close its stdin when this worker is stopped or gone."""
        try:
            while (item := self._take(generation)) is not None:
                number, job = item
                try:
                    data = pickle.dumps((number, job), protocol=pickle.HIGHEST_PROTOCOL)
                except Exception as exc:  # an unpicklable figure: raised at drain
                    self._answered(number, exc)
                    continue
                stdin.write(len(data).to_bytes(8, "big") + data)
                stdin.flush()
        except (OSError, ValueError):
            self._died(generation)  # the worker is gone: drain draws the rest here
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def _take(self, generation: int) -> tuple[int, _Job] | None:
        """Wait until the worker is free and a plot waits; move it in flight."""
        with self._lock:
            while self._alive(generation) and (self._in_flight or not self._waiting):
                self._lock.wait()
            if not self._alive(generation):
                return None
            self._in_flight = self._waiting.popleft()
            return self._in_flight

    def _collect(self, stdout: IO[bytes], generation: int) -> None:
        """Read the worker's answers: (job number, the renderer's error or None)."""
        try:
            while True:
                number, error = pickle.load(stdout)
                self._answered(number, error)
        except Exception:  # EOF, a broken pipe, a garbled answer: the worker is gone
            self._died(generation)

    def _answered(self, number: int, error: BaseException | None) -> None:
        with self._lock:
            if self._in_flight is not None and self._in_flight[0] == number:
                self._in_flight = None
                if error is not None:
                    self._errors[number] = error
            self._lock.notify_all()

    def _died(self, generation: int) -> None:
        """The worker ended on its own: its plot goes back first in line, for drain."""
        with self._lock:
            if generation == self._generation:
                self._broken = True
                if self._in_flight is not None:
                    self._waiting.appendleft(self._in_flight)
                    self._in_flight = None
            self._lock.notify_all()

    def _stop(self, kill: bool) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
            self._generation += 1  # the old threads stop; a later submit starts a new worker
            self._in_flight = None
            self._lock.notify_all()
        if proc is None:
            return
        if kill:
            proc.kill()
        try:
            proc.wait(_CLOSE_WAIT_SECS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _importable(render: Renderer) -> bool:
    """True for a renderer the worker can import by name (not a lambda or a local function,
    e.g. a benchmark's stand-in that draws nothing)."""
    qualname = getattr(render, "__qualname__", "")
    return bool(getattr(render, "__module__", None)) and "<" not in qualname


def _default_offload(path: str) -> bool:
    return (os.cpu_count() or 1) > 1 and storage.is_local(path)


def _worker_env() -> dict[str, str]:
    """The caller's environment, with this interpreter's import path (a caller may have
    extended ``sys.path`` itself, e.g. a bench script or a test)."""
    env = dict(os.environ)
    paths = [p for p in sys.path if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


_WORKER: PlotWorker | None = None


def _worker() -> PlotWorker:
    global _WORKER
    if _WORKER is None:
        _WORKER = PlotWorker()
        atexit.register(_WORKER.close)
    return _WORKER


def submit(render: Renderer, figure: Any, path: str) -> None:
    """Draw ``render(figure, path)`` in this process's plot worker (see the module doc)."""
    _worker().submit(render, figure, path)


def drain() -> None:
    """Wait for every plot submitted in this process (see :meth:`PlotWorker.drain`)."""
    if _WORKER is not None:
        _WORKER.drain()


def abandon() -> None:
    """Drop the plots not drawn yet and stop the worker (see :meth:`PlotWorker.abandon`)."""
    if _WORKER is not None:
        _WORKER.abandon()
