"""The executor contract, run against the local executor with the fake trainer."""

from __future__ import annotations

import os
import pathlib
import time

from proxytask.executors.base import Executor, TrialSpec
from proxytask.executors.local import LocalExecutor
from proxytask.testing.contract import ExecutorContract
from proxytask.testing.processes import pid_alive
from proxytask.testing.specs import fake_trainer_spec


class TestLocalContract(ExecutorContract):
    wait_timeout_secs = 20.0
    poll_secs = 0.02
    stop_grace_secs = 2.0

    def make_executor(self, max_parallel_trials: int) -> Executor:
        return LocalExecutor(max_parallel_trials=max_parallel_trials, gpus=[], grace_secs=2.0)

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
        super().assert_nothing_running(executor)
        assert isinstance(executor, LocalExecutor)
        for tid in executor.known_trials():
            pid = executor.pid(tid)
            if pid is not None:
                assert not pid_alive(pid), (tid, pid)
                # the whole process group is gone too
                try:
                    os.killpg(pid, 0)
                except ProcessLookupError:
                    pass
                else:
                    raise AssertionError(f"process group {pid} of {tid} still exists")
