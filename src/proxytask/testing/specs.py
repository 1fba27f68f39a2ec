"""Trial specs that run the fake trainer, for tests of real executors."""

from __future__ import annotations

import json
import pathlib
import sys
from collections.abc import Mapping
from typing import Any

from proxytask.executors.base import Resources, TrainerSpec, TrialSpec

__all__ = ["FAKE_TRAINER", "fake_trainer_spec"]

#: The fake trainer as a trainer command, run by this interpreter.
FAKE_TRAINER = TrainerSpec((sys.executable, "-m", "proxytask.testing.fake_trainer"))


def fake_trainer_spec(
    root: pathlib.Path | str,
    trial_id: str,
    behaviour: str = "ok",
    *extra_args: str,
    nas_params: Mapping[str, Any] | None = None,
    cycles: int = 3,
    cycle_secs: float = 0.02,
    resources: Resources = Resources(),
    timeout_secs: float | None = None,
) -> TrialSpec:
    """A fake-trainer trial with its dir at ``root/<trial id with '/' as '_'>``.

    ``hang`` hangs before its first report, other faults fire in the second cycle, ``slow``
    starts 0.3 s late. ``extra_args`` are more ``--k=v`` flags (see the fake trainer).
    """
    tdir = str(pathlib.Path(root) / trial_id.replace("/", "_"))
    arch = dict(nas_params) if nas_params is not None else {"width": 8, "depth": 2}
    return TrialSpec(
        trial_id=trial_id,
        trial_dir=tdir,
        trainer=FAKE_TRAINER,
        args=(
            f"--job-dir={tdir}",
            f"--nas_params_str={json.dumps(arch, separators=(',', ':'))}",
            f"--behaviour={behaviour}",
            f"--cycles={cycles}",
            f"--cycle_secs={cycle_secs}",
            "--fail_cycle=0" if behaviour == "hang" else "--fail_cycle=1",
            "--start_delay_secs=0.3",
            *extra_args,
        ),
        resources=resources,
        timeout_secs=timeout_secs,
    )
