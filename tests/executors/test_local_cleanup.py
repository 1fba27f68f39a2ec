"""No trial process outlives a controller running the local executor, however it ends.

Each test starts a controller process that launches two hanging fake-trainer trials (each
with a grandchild), records every pid (launcher, trainer, grandchild), then ends the
controller (SIGKILL, SIGTERM, SIGINT, or a plain exit without close) and checks by pid that
every trial process is gone within a few seconds. A zombie counts as gone.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from proxytask.testing.processes import pid_alive, process_state

CONTROLLER = r"""
import json, os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from proxytask.executors.base import TrainerSpec, TrialSpec
from proxytask.executors.local import LocalExecutor

root, mode = sys.argv[1], sys.argv[2]
executor = LocalExecutor(max_parallel_trials=2, gpus=[], grace_secs=0.5)
trainer = TrainerSpec((sys.executable, "-m", "proxytask.testing.fake_trainer"))
specs = []
for i in (1, 2):
    tdir = os.path.join(root, "t%d" % i)
    spec = TrialSpec(
        trial_id="job/%d" % i, trial_dir=tdir, trainer=trainer,
        args=("--job-dir=" + tdir, '--nas_params_str={"a": 1}', "--behaviour=hang",
              "--fail_cycle=0", "--spawn_grandchild=True",
              "--pid_file=" + os.path.join(tdir, "pids.json")),
    )
    executor.launch(spec)
    specs.append(spec)
deadline = time.monotonic() + 20.0
while time.monotonic() < deadline:
    if all(os.path.exists(os.path.join(s.trial_dir, "pids.json")) for s in specs):
        break
    time.sleep(0.02)
pids = []
for s in specs:
    with open(os.path.join(s.trial_dir, "pids.json")) as handle:
        data = json.load(handle)
    pids += [executor.pid(s.trial_id), data["pid"], data["grandchild"]]
with open(os.path.join(root, "pids.part"), "w") as handle:
    json.dump(pids, handle)
os.replace(os.path.join(root, "pids.part"), os.path.join(root, "pids.json"))
while time.monotonic() < deadline + 30.0:  # bounded: the test ends this process long before
    if mode == "exit" and os.path.exists(os.path.join(root, "go")):
        sys.exit(0)  # without closing the executor: atexit must clean up
    executor.statuses()
    time.sleep(0.02)
"""


@pytest.mark.parametrize(
    ("how", "sig"),
    [
        ("sigkill", signal.SIGKILL),
        ("sigterm", signal.SIGTERM),
        ("keyboard_interrupt", signal.SIGINT),
        ("exit_without_close", None),
    ],
)
def test_no_trial_process_outlives_the_controller(
    tmp_path: pathlib.Path, how: str, sig: signal.Signals | None
) -> None:
    mode = "exit" if sig is None else "wait"
    controller = subprocess.Popen(
        [sys.executable, "-c", CONTROLLER, str(tmp_path), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    pid_file = tmp_path / "pids.json"
    started: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 30.0
        while not pid_file.exists():
            if controller.poll() is not None and not pid_file.exists():
                out = controller.stdout.read().decode() if controller.stdout else ""
                pytest.fail(f"the controller ended early ({controller.returncode}): {out}")
            assert time.monotonic() < deadline, "the controller never wrote its pids"
            time.sleep(0.02)
        pids = json.loads(pid_file.read_text())
        assert len(pids) == 6 and all(isinstance(p, int) for p in pids), pids
        for pid in pids:
            stat = process_state(pid)
            assert stat is not None and stat[0] not in ("Z", "X"), (pid, stat)
            started[pid] = stat[1]

        if sig is None:
            (tmp_path / "go").write_text("")
        else:
            os.kill(controller.pid, sig)
        code = controller.wait(timeout=20)
        if sig is signal.SIGTERM:
            assert code == -signal.SIGTERM  # closed its trials, then died of SIGTERM
        elif sig is not None:
            assert code != 0
        else:
            assert code == 0

        deadline = time.monotonic() + 5.0
        while any(pid_alive(p, s) for p, s in started.items()) and time.monotonic() < deadline:
            time.sleep(0.02)
        survivors = [p for p, s in started.items() if pid_alive(p, s)]
        assert not survivors, f"{how}: processes {survivors} outlived the controller"
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait()
        for pid, stamp in started.items():  # never leak what this test started
            if pid_alive(pid, stamp):
                os.kill(pid, signal.SIGKILL)
        if controller.stdout:
            controller.stdout.close()
