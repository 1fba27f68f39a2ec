"""The executor contract, run against the replay executor on a simulated clock."""

from __future__ import annotations

import pathlib

from proxytask.core.clock import SimulatedClock
from proxytask.executors.base import Executor, TrainerSpec, TrialSpec
from proxytask.executors.replay import Curve, CurvePoint, ReplayExecutor, ReplayTable
from proxytask.testing.contract import ExecutorContract

_FAULTS = {
    "ok": (),
    "crash": ("--replay_fault=crash@50",),
    "nan": ("--replay_fault=nan@50",),
    "hang": ("--replay_fault=hang@0",),
    "slow": ("--replay_fault=slow_start+30",),
}

TABLE = ReplayTable(
    [
        Curve(
            curve_id="any",
            total_steps=300,
            points=(
                CurvePoint(99, 0.4, 10.0),
                CurvePoint(199, 0.6, 10.0),
                CurvePoint(299, 0.7, 10.0),
            ),
            latency=3.0,
        )
    ]
)


class TestReplayContract(ExecutorContract):
    wait_timeout_secs = 10_000.0
    poll_secs = 1.0

    def make_executor(self, max_parallel_trials: int) -> Executor:
        return ReplayExecutor(TABLE, SimulatedClock(), max_parallel_trials=max_parallel_trials)

    def make_spec(
        self,
        root: pathlib.Path,
        trial_id: str,
        behaviour: str,
        timeout_secs: float | None = None,
    ) -> TrialSpec:
        tdir = str(root / trial_id.replace("/", "_"))
        return TrialSpec(
            trial_id=trial_id,
            trial_dir=tdir,
            trainer=TrainerSpec(("replay",)),
            args=(f"--job-dir={tdir}", '--nas_params_str={"width": 8}', *_FAULTS[behaviour]),
            timeout_secs=timeout_secs,
        )

    def advance(self, executor: Executor, seconds: float) -> None:
        assert isinstance(executor, ReplayExecutor)
        executor.clock.sleep(seconds)
