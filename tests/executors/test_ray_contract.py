"""The executor contract, run against the Ray executor on a real local cluster (2 CPUs)."""

from __future__ import annotations

import os
import pathlib
import time

import pytest

from proxytask.executors.base import Executor, TrialSpec
from proxytask.testing.contract import ExecutorContract
from proxytask.testing.processes import pid_alive
from proxytask.testing.specs import fake_trainer_spec

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_runners")]


class TestRayContract(ExecutorContract):
    wait_timeout_secs = 30.0
    poll_secs = 0.02
    stop_grace_secs = 2.0

    def make_executor(self, max_parallel_trials: int) -> Executor:
        from proxytask.executors.ray import RayExecutor

        return RayExecutor(max_parallel_trials=max_parallel_trials, grace_secs=2.0)

    def make_spec(
        self,
        root: pathlib.Path,
        trial_id: str,
        behaviour: str,
        timeout_secs: float | None = None,
    ) -> TrialSpec:
        return fake_trainer_spec(root, trial_id, behaviour, timeout_secs=timeout_secs)

    def advance(self, executor: Executor, seconds: float) -> None:
        time.sleep(seconds)

    def assert_nothing_running(self, executor: Executor) -> None:
        from proxytask.executors.ray import RayExecutor

        super().assert_nothing_running(executor)
        assert isinstance(executor, RayExecutor)
        for tid in executor.known_trials():
            pid = executor.pid(tid)
            if pid is None:
                continue
            # the runner reaps its trainer, and the group's last members die, asynchronously
            deadline = time.monotonic() + 15.0
            while (pid_alive(pid) or _group_exists(pid)) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not pid_alive(pid), (tid, pid)
            if _group_exists(pid):
                raise AssertionError(f"process group {pid} of {tid} still exists")


def _group_exists(pgid: int) -> bool:
    """True while any process of the process group ``pgid`` is alive (zombies excluded)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
