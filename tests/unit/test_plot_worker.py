"""The plot worker (proxytask.report.background): plots drawn beside the controller, in a
process of their own, with nothing lost when the worker dies and nothing left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxytask.report.background import PlotWorker

REPO = Path(__file__).resolve().parents[2]


def write_pid(figure: str, path: str) -> None:
    """A renderer: the figure's text and the pid of the process that drew it."""
    Path(path).write_text(f"{figure} {os.getpid()}")


def slow_write(figure: tuple[float, str], path: str) -> None:
    """A renderer that takes ``figure[0]`` seconds, then writes ``figure[1]`` and its pid."""
    time.sleep(figure[0])
    Path(path).write_text(f"{figure[1]} {os.getpid()}")


def disk_full(figure: object, path: str) -> None:
    raise OSError(28, "No space left on device", path)


def _drawn(path: Path) -> tuple[str, int]:
    text, pid = path.read_text().rsplit(" ", 1)
    return text, int(pid)


def _busy_pid(worker: PlotWorker, within: float = 5.0) -> int:
    """The pid of the worker process drawing a plot now."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with worker._lock:
            busy = [w.proc.pid for w in worker._in_flight]
        if busy:
            return busy[0]
        time.sleep(0.02)
    raise AssertionError("no worker took the plot")


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # our own child: reap it if it ended
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.05)
    return False


@pytest.fixture
def worker() -> Iterator[PlotWorker]:
    """Workers that may draw any path, closed after the test."""
    plots = PlotWorker(offload=lambda path: True)
    try:
        yield plots
    finally:
        plots.close()


def test_plots_are_drawn_by_the_worker_and_all_written_after_drain(
    worker: PlotWorker, tmp_path: Path
) -> None:
    paths = [tmp_path / f"p{i}.png" for i in range(6)]
    started = time.monotonic()
    for i, path in enumerate(paths):
        worker.submit(slow_write, (0.2, f"plot{i}"), str(path))
    # submit returns at once: the caller's step does not wait for the drawing
    assert time.monotonic() - started < 0.5
    worker.drain()
    drawn = [_drawn(p) for p in paths]
    assert [text for text, _ in drawn] == [f"plot{i}" for i in range(6)]
    pids = {pid for _, pid in drawn}
    assert len(worker.pids) == 2
    assert pids <= set(worker.pids)  # all drawn by the workers, none by the caller


def test_drain_raises_the_renderers_error_as_an_inline_call_would(
    worker: PlotWorker, tmp_path: Path
) -> None:
    worker.submit(slow_write, (0.3, "first"), str(tmp_path / "a.png"))
    worker.submit(disk_full, None, str(tmp_path / "b.png"))
    worker.submit(write_pid, "after", str(tmp_path / "c.png"))
    with pytest.raises(OSError, match="No space left"):
        worker.drain()
    assert _drawn(tmp_path / "a.png")[0] == "first"
    assert _drawn(tmp_path / "c.png")[0] == "after"  # the others were still drawn
    worker.drain()  # the error was reported once


def test_a_killed_worker_costs_no_plot(worker: PlotWorker, tmp_path: Path) -> None:
    worker.submit(slow_write, (5.0, "in flight"), str(tmp_path / "a.png"))
    for i in range(3):
        worker.submit(write_pid, f"waiting{i}", str(tmp_path / f"w{i}.png"))
    pid = _busy_pid(worker)  # the worker that took the slow plot
    os.kill(pid, signal.SIGKILL)
    worker.drain()
    assert _drawn(tmp_path / "a.png") == ("in flight", os.getpid())  # drawn here instead
    for i in range(3):
        assert _drawn(tmp_path / f"w{i}.png")[0] == f"waiting{i}"
    worker.submit(write_pid, "later", str(tmp_path / "later.png"))  # inline from now on
    assert _drawn(tmp_path / "later.png") == ("later", os.getpid())
    assert all(_gone(p) for p in worker.pids)  # the other worker ended too


def test_two_plots_of_one_path_land_in_the_order_submitted(
    worker: PlotWorker, tmp_path: Path
) -> None:
    path = tmp_path / "same.png"
    worker.submit(slow_write, (0.8, "old"), str(path))
    time.sleep(0.3)  # one worker holds "old"; the other is free but "new" must wait for it
    worker.submit(write_pid, "new", str(path))
    worker.drain()
    assert _drawn(path)[0] == "new"


def test_abandon_drops_waiting_plots_and_ends_the_worker(
    worker: PlotWorker, tmp_path: Path
) -> None:
    worker.submit(slow_write, (5.0, "in flight"), str(tmp_path / "a.png"))
    worker.submit(slow_write, (5.0, "waiting"), str(tmp_path / "b.png"))
    worker.submit(write_pid, "waiting too", str(tmp_path / "c.png"))
    pids = worker.pids
    _busy_pid(worker)
    time.sleep(0.3)
    worker.abandon()
    assert len(pids) == 2 and all(_gone(pid) for pid in pids)
    worker.drain()  # nothing is left to wait for
    assert not any((tmp_path / f"{n}.png").exists() for n in "abc")
    # a later plot starts new workers
    worker.submit(write_pid, "next", str(tmp_path / "d.png"))
    worker.drain()
    assert _drawn(tmp_path / "d.png")[0] == "next"


def test_paths_the_worker_may_not_write_are_drawn_inline(tmp_path: Path) -> None:
    worker = PlotWorker(offload=lambda path: False)
    worker.submit(write_pid, "here", str(tmp_path / "a.png"))
    assert _drawn(tmp_path / "a.png") == ("here", os.getpid())  # before any drain
    assert worker.pids == []  # no process was started for it


def test_a_renderer_the_worker_cannot_import_is_drawn_inline(
    worker: PlotWorker, tmp_path: Path
) -> None:
    drawn: list[str] = []
    worker.submit(lambda figure, path: drawn.append(path), None, str(tmp_path / "a.png"))
    assert drawn == [str(tmp_path / "a.png")]
    assert worker.pids == []
    worker.drain()


def test_default_offload_keeps_object_stores_and_memory_inline() -> None:
    from proxytask.report.background import _default_offload

    assert not _default_offload("memory://runs/a.png")
    assert not _default_offload("s3://bucket/runs/a.png")
    assert _default_offload("/runs/a.png") == ((os.cpu_count() or 1) > 1)


def test_the_worker_ignores_ctrl_c(worker: PlotWorker, tmp_path: Path) -> None:
    worker.submit(write_pid, "first", str(tmp_path / "first.png"))
    worker.drain()  # the workers are up
    worker.submit(slow_write, (1.0, "kept"), str(tmp_path / "a.png"))
    pid = _busy_pid(worker)
    # a terminal's Ctrl-C goes to the foreground group: the workers have a session of
    # their own; and a SIGINT sent to one anyway does not stop it
    assert os.getsid(pid) == pid != os.getsid(0)
    os.kill(pid, signal.SIGINT)  # what a terminal's Ctrl-C sends the whole group
    worker.drain()
    assert _drawn(tmp_path / "a.png") == ("kept", pid)


def test_the_worker_ends_when_its_caller_dies(tmp_path: Path) -> None:
    """A SIGKILLed controller leaves no plot worker behind: it ends after its plot."""
    script = textwrap.dedent(
        f"""
        import os, sys, time
        sys.path.insert(0, {str(REPO)!r})
        from proxytask.report.background import PlotWorker
        from tests.unit.test_plot_worker import slow_write
        worker = PlotWorker(offload=lambda path: True)
        worker.submit(slow_write, (1.0, "x"), {str(tmp_path / "a.png")!r})
        print(*worker.pids, flush=True)
        time.sleep(60)
        """
    )
    caller = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert caller.stdout is not None
    worker_pids = [int(p) for p in caller.stdout.readline().split()]
    assert len(worker_pids) == 2
    caller.kill()
    caller.wait()
    assert all(_gone(p, within=15.0) for p in worker_pids), "a plot worker outlived its caller"
