"""The executor contract, run against the local executor's warm workers (a fork server)."""

from __future__ import annotations

import dataclasses
import pathlib

from tests.executors import test_contract_local

from proxytask.executors.base import TrainerSpec, TrialSpec
from proxytask.testing.specs import FAKE_TRAINER, fake_trainer_spec

#: The fake trainer with its entry point: every trial is forked from one warm worker.
WARM_FAKE_TRAINER = TrainerSpec(FAKE_TRAINER.argv, entry="proxytask.testing.fake_trainer:run")


class TestWarmContract(test_contract_local.TestLocalContract):
    def make_spec(
        self,
        root: pathlib.Path,
        trial_id: str,
        behaviour: str,
        timeout_secs: float | None = None,
    ) -> TrialSpec:
        spec = fake_trainer_spec(root, trial_id, behaviour, timeout_secs=timeout_secs)
        return dataclasses.replace(spec, trainer=WARM_FAKE_TRAINER)
