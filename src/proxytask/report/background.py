"""Plots off the controller's critical path: worker processes draw them.

A figure takes matplotlib 0.1–1 s to draw; drawn inside a controller's step, that is time in
which no report is read and no stop is posted (a third of a replayed workflow's time went
there). :func:`submit` hands a renderer from :mod:`proxytask.report.plots`, its figure data
and the PNG's path to a worker process (``python -m proxytask.report._plot_worker``, two of
them, started at the first plot) and returns at once; :func:`drain` waits until every plot
handed over is written. A controller drains before it reports its answer, so what a
finished command prints and links exists (:meth:`proxytask.controllers.base.Controller.run`).

What stays inline (drawn in the caller, as before): a path that is not on this machine's
disk (an object store's credentials and endpoint are the caller's; ``memory://`` lives in
this process), a machine with one core (nothing to run beside), a renderer the workers
cannot import by name (a lambda), and any plot once a worker could not start or died (it is
drawn here instead; a kill costs no plot). The workers run in a session of their own and
ignore Ctrl-C (the caller decides), and exit when the caller's end of their pipe closes, so
none outlives the caller by more than the plot it is drawing. The files are written
atomically either way, so a reader never sees half a PNG.

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

__all__ = ["PlotWorker", "abandon", "drain", "prepare", "submit"]

#: A renderer of :mod:`proxytask.report.plots`: ``render(figure_data, path)``.
Renderer = Callable[[Any, str], None]

_CLOSE_WAIT_SECS = 5.0


@dataclasses.dataclass(frozen=True)
class _Job:
    render: Renderer
    figure: Any
    path: str


@dataclasses.dataclass(eq=False)
class _Process:
    """One worker process; ``alive`` until it is stopped or found dead."""

    proc: subprocess.Popen[bytes]
    alive: bool = True


class PlotWorker:
    """Worker processes that draw the plots handed to them (see the module doc).

    ``processes`` workers (default ``min(2, cores)``: plots come in bursts, when a proxy or a
    stage ends, and two workers draw a burst in half the time, importing matplotlib while
    the controller still works) start at the first plot; each holds one plot at a time and
    the rest wait here, so two plots of one path are drawn in the order submitted.
    ``offload`` decides per path whether the workers may draw it (default: a path on this
    machine's disk, when the machine has more than one core); the rest are drawn inline.
    """

    def __init__(
        self, offload: Callable[[str], bool] | None = None, processes: int | None = None
    ) -> None:
        self._offload = offload or _default_offload
        self._count = processes or min(2, os.cpu_count() or 1)
        self._lock = threading.Condition()
        self._procs: list[_Process] = []
        self._waiting: collections.deque[tuple[int, _Job]] = collections.deque()
        self._in_flight: dict[_Process, tuple[int, _Job]] = {}
        self._errors: dict[int, BaseException] = {}
        self._next_id = 0
        self._broken = False  # a worker could not start or died: draw inline from now on

    # ---- the caller's side --------------------------------------------------------------------

    def submit(self, render: Renderer, figure: Any, path: str) -> None:
        """Have ``render(figure, path)`` run in a worker (or here; see the class doc)."""
        if not self._offload(path) or not _importable(render) or not self._started():
            render(figure, path)
            return
        with self._lock:
            self._next_id += 1
            self._waiting.append((self._next_id, _Job(render, figure, path)))
            self._lock.notify_all()

    def drain(self) -> None:
        """Wait until every submitted plot is written (drawing here those of a worker that
        died); then raise the first error a renderer raised, as an inline call would have."""
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
        """Drop the plots not drawn yet and stop the workers now (the caller is failing, or
        lost its dir: nothing more may be written there)."""
        with self._lock:
            self._waiting.clear()
            self._errors.clear()
        self._stop(kill=True)

    def close(self) -> None:
        """Draw what is left, then end the workers (at interpreter exit)."""
        with contextlib.suppress(Exception):
            self.drain()
        self._stop(kill=False)

    def prepare(self, path: str) -> None:
        """Start a worker now if plots of ``path`` will go to it, so its start-up
        (matplotlib's import) runs while the caller works rather than when it plots; the
        other starts at the first plot (two starting at once would slow the caller more)."""
        if self._offload(path):
            self._started(1)

    @property
    def pids(self) -> list[int]:
        """The worker processes' pids (none before the first plot)."""
        with self._lock:
            return [p.proc.pid for p in self._procs]

    def _next_to_draw_here(self) -> tuple[int, _Job] | None:
        """For :meth:`drain`: None once nothing waits or is in flight; a waiting plot once
        no worker can take it (they died: after any plot of its path still in flight)."""
        with self._lock:
            while True:
                flying = {p: j for p, j in self._in_flight.items() if p.alive}
                if self._waiting and (self._broken or not self._procs):
                    path = self._waiting[0][1].path
                    if all(job.path != path for _, job in flying.values()):
                        return self._waiting.popleft()
                elif not self._waiting and not flying:
                    return None
                self._lock.wait()

    # ---- the worker processes -----------------------------------------------------------------

    def _started(self, count: int | None = None) -> bool:
        """Have ``count`` workers (default: all) running; False when they cannot start."""
        if self._broken:
            return False
        want = self._count if count is None else min(count, self._count)
        while len(self._procs) < want:
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "proxytask.report._plot_worker"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    env=_worker_env(),
                    start_new_session=True,  # a terminal's Ctrl-C is the caller's
                )
            except OSError:
                self._broken = True
                self._stop(kill=True)
                return False
            assert proc.stdin is not None and proc.stdout is not None
            worker = _Process(proc)
            with self._lock:
                self._procs.append(worker)
            for target, args, name in (
                (self._feed, (worker, proc.stdin), "proxytask-plots-in"),
                (self._collect, (worker, proc.stdout), "proxytask-plots-out"),
            ):
                threading.Thread(target=target, args=args, name=name, daemon=True).start()
        return True

    def _feed(self, worker: _Process, stdin: IO[bytes]) -> None:
        """Hand ``worker`` one waiting plot at a time (8 bytes of length, then the pickle);
        close its stdin once it is stopped or gone."""
        try:
            while (item := self._take(worker)) is not None:
                number, job = item
                try:
                    data = pickle.dumps((number, job), protocol=pickle.HIGHEST_PROTOCOL)
                except Exception as exc:  # an unpicklable figure: raised at drain
                    self._answered(worker, number, exc)
                    continue
                stdin.write(len(data).to_bytes(8, "big") + data)
                stdin.flush()
        except (OSError, ValueError):
            self._died(worker)  # the worker is gone: drain draws the rest here
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def _take(self, worker: _Process) -> tuple[int, _Job] | None:
        """Wait until ``worker`` is free and the first waiting plot's path is not in flight
        elsewhere; move that plot in flight. None once the worker may take no more."""
        with self._lock:
            while True:
                if not worker.alive or self._broken:
                    return None
                if worker not in self._in_flight and self._waiting:
                    path = self._waiting[0][1].path
                    if all(job.path != path for _, job in self._in_flight.values()):
                        item = self._waiting.popleft()
                        self._in_flight[worker] = item
                        return item
                self._lock.wait()

    def _collect(self, worker: _Process, stdout: IO[bytes]) -> None:
        """Read ``worker``'s answers: (job number, the renderer's error or None)."""
        try:
            while True:
                number, error = pickle.load(stdout)
                self._answered(worker, number, error)
        except Exception:  # EOF, a broken pipe, a garbled answer: the worker is gone
            self._died(worker)

    def _answered(self, worker: _Process, number: int, error: BaseException | None) -> None:
        with self._lock:
            item = self._in_flight.get(worker)
            if item is not None and item[0] == number:
                del self._in_flight[worker]
                if error is not None:
                    self._errors[number] = error
            self._lock.notify_all()

    def _died(self, worker: _Process) -> None:
        """A worker ended on its own: from now on plots are drawn inline; its plot goes back
        first in line, for drain."""
        with self._lock:
            if worker.alive:
                worker.alive = False
                self._broken = True
                item = self._in_flight.pop(worker, None)
                if item is not None:
                    self._waiting.appendleft(item)
            self._lock.notify_all()

    def _stop(self, kill: bool) -> None:
        with self._lock:
            procs, self._procs = self._procs, []
            for worker in procs:
                worker.alive = False  # its threads stop; a later submit starts new workers
            self._in_flight.clear()
            self._lock.notify_all()
        for worker in procs:
            if kill:
                worker.proc.kill()
        for worker in procs:
            try:
                worker.proc.wait(_CLOSE_WAIT_SECS)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()


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


def prepare(path: str) -> None:
    """Start this process's plot workers for plots under ``path`` (see
    :meth:`PlotWorker.prepare`)."""
    _worker().prepare(path)


def drain() -> None:
    """Wait for every plot submitted in this process (see :meth:`PlotWorker.drain`)."""
    if _WORKER is not None:
        _WORKER.drain()


def abandon() -> None:
    """Drop the plots not drawn yet and stop the worker (see :meth:`PlotWorker.abandon`)."""
    if _WORKER is not None:
        _WORKER.abandon()
