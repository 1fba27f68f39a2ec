"""The local executor's file watch: a trial's report wakes a waiting controller at once."""

from __future__ import annotations

import os
import pathlib
import select
import sys
import threading

import pytest

from proxytask.core import storage
from proxytask.core.clock import SystemClock
from proxytask.executors.base import TrialState
from proxytask.executors.command import build_trial_spec, parse_trainer_command
from proxytask.executors.local import LocalExecutor
from proxytask.executors.watch import DirWatch

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify: Linux")


def _readable(fd: int, secs: float) -> bool:
    return bool(select.select([fd], [], [], secs)[0])


def test_a_finished_write_in_a_watched_dir_makes_the_watch_readable(tmp_path: pathlib.Path) -> None:
    watch = DirWatch()
    assert watch.fd is not None
    try:
        watch.add(str(tmp_path))
        assert not _readable(watch.fd, 0.0)
        writer = threading.Timer(0.2, storage.write_json_atomic, (str(tmp_path / "m.json"), {}))
        writer.start()
        assert _readable(watch.fd, 30.0)
        writer.join()
        assert watch.drain() and not _readable(watch.fd, 0.0)
        watch.remove(str(tmp_path))
        watch.drain()  # the kernel's note that the watch was removed
        storage.write_json_atomic(str(tmp_path / "m.json"), {"a": 1})
        assert not _readable(watch.fd, 0.2)  # no longer watched
    finally:
        watch.close()
    assert watch.fd is None and not watch.drain()
    watch.add(str(tmp_path))  # inert once closed
    assert watch.watched == 0


REPORT_THEN_SLEEP = (
    "import sys, time; from proxytask.trainer import contract as pt; "
    "d = sys.argv[1].split('=', 1)[1]; "
    "pt.update_trial_training_accuracy_metric(d, 0.5, 0, 9, 0.1, 100); time.sleep(60)"
)


def test_wait_returns_when_a_running_trial_reports_not_when_it_exits(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    executor = LocalExecutor(max_parallel_trials=1, gpus=[], grace_secs=1.0)
    executors.append(executor)
    spec = build_trial_spec(
        trainer=parse_trainer_command(f'{sys.executable} -c "{REPORT_THEN_SLEEP}"'),
        job_name="j",
        job_dir=str(tmp_path / "j"),
        trial_number=1,
        controller_dir=str(tmp_path),
        nas_params={"w": 1},
    )
    os.makedirs(spec.trial_dir, exist_ok=True)
    executor.launch(spec)
    metrics = pathlib.Path(spec.trial_dir) / "TRIAL_TRAINING_METRICS.json"
    for _ in range(20):  # each wait ends at a write in the trial dir (the report among them)
        if metrics.exists():
            break
        executor.wait(SystemClock(), 120.0)
    assert metrics.exists()
    # woken by the report: the trainer is still in its 60 s sleep
    assert executor.status(spec.trial_id).state is TrialState.RUNNING
