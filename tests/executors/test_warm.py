"""Warm trial workers beyond the contract: one import, per-trial isolation, clean-up, errors."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from tests.executors.test_contract_warm import WARM_FAKE_TRAINER
from tests.executors.test_local import make, wait_file, wait_for

from proxytask.core import layout
from proxytask.core.errors import UsageError
from proxytask.executors.base import FailureCause, TrainerSpec, TrialSpec, TrialState
from proxytask.executors.command import parse_trainer_command
from proxytask.executors.local import LocalExecutor, warm_argv
from proxytask.executors.warm import check_trainer_entry
from proxytask.testing.processes import pid_alive
from proxytask.testing.specs import fake_trainer_spec


def warm_spec(root: pathlib.Path, trial_id: str, behaviour: str = "ok", *extra: str) -> TrialSpec:
    spec = fake_trainer_spec(root, trial_id, behaviour, *extra)
    return dataclasses.replace(spec, trainer=WARM_FAKE_TRAINER)


def write_module(tmp_path: pathlib.Path, body: str) -> pathlib.Path:
    path = tmp_path / "warm_trainer.py"
    path.write_text(textwrap.dedent(body))
    return path


def module_spec(
    module: pathlib.Path, tmp_path: pathlib.Path, trial_id: str, *args: str
) -> TrialSpec:
    tdir = tmp_path / trial_id
    return TrialSpec(
        trial_id=trial_id,
        trial_dir=str(tdir),
        trainer=TrainerSpec((sys.executable, str(module)), entry=f"{module}:main"),
        args=(f"--job-dir={tdir}", *args),
        env={"CLOUD_ML_TRIAL_ID": trial_id},
    )


COUNTING_TRAINER = """
    import json, os, sys
    with open(os.environ["IMPORT_LOG"], "a") as handle:   # module level: once per worker
        handle.write("%d\\n" % os.getpid())

    def main(argv):
        print(json.dumps({"argv": sys.argv, "args": argv, "trial": os.environ["CLOUD_ML_TRIAL_ID"],
                          "pid": os.getpid(), "ppid": os.getppid(), "cwd": os.getcwd()}))
        return int(os.environ["CLOUD_ML_TRIAL_ID"]) % 3   # trial 3 exits 0, 1 exits 1, 2 exits 2
"""


def test_the_trainer_module_is_imported_once_and_each_trial_is_its_own_process(
    tmp_path: pathlib.Path, executors: list[LocalExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    imports = tmp_path / "imports.log"
    monkeypatch.setenv("IMPORT_LOG", str(imports))
    module = write_module(tmp_path, COUNTING_TRAINER)
    executor = make(executors, max_parallel_trials=2)
    for n in ("1", "2", "3"):
        executor.launch(module_spec(module, tmp_path, n, f"--x={n}"))
    ends = {n: wait_for(executor, n) for n in ("1", "2", "3")}
    assert [ends[n].exit_code for n in ("1", "2", "3")] == [1, 2, 0]
    assert ends["3"].state is TrialState.SUCCEEDED
    assert ends["1"].state is TrialState.FAILED and ends["1"].cause is FailureCause.CRASH
    server = [int(line) for line in imports.read_text().split()]
    assert len(server) == 1  # one import for three trials
    seen = {}
    for n in ("1", "2", "3"):
        log = (tmp_path / n / layout.STDOUT_LOG).read_text().strip().splitlines()
        assert len(log) == 1  # each trial's output in its own log
        seen[n] = json.loads(log[0])
        assert seen[n]["trial"] == n
        assert seen[n]["argv"] == [str(module), f"--job-dir={tmp_path / n}", f"--x={n}"]
        assert seen[n]["args"] == seen[n]["argv"][1:]
        assert seen[n]["ppid"] == server[0]  # forked by the worker
        assert seen[n]["cwd"] == os.getcwd()
    assert len({s["pid"] for s in seen.values()}) == 3
    assert executor.warm_import_secs.keys() == {f"{module}:main"}


def test_an_entry_that_cannot_be_imported_fails_each_trial_with_its_traceback(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    module = write_module(tmp_path, "import no_such_module_here\ndef main(argv):\n    return 0\n")
    executor = make(executors)
    for n in ("1", "2"):
        executor.launch(module_spec(module, tmp_path, n))
    for n in ("1", "2"):
        status = wait_for(executor, n)
        assert (status.state, status.cause) == (TrialState.FAILED, FailureCause.CRASH)
        assert "could not be imported" in status.message
        assert "no_such_module_here" in status.message
        stderr = (tmp_path / n / layout.STDERR_LOG).read_text()
        assert "Traceback" in stderr and "ModuleNotFoundError" in stderr


def test_system_exit_and_exceptions_give_the_codes_a_script_would(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    module = write_module(
        tmp_path,
        """
        import sys
        def main(argv):
            what = argv[-1]
            if what == "exit3":
                sys.exit(3)
            if what == "message":
                sys.exit("bad flag")
            if what == "raise":
                raise RuntimeError("boom")
            if what == "signal":
                import os, signal
                os.kill(os.getpid(), signal.SIGUSR1)
            return None
        """,
    )
    executor = make(executors, max_parallel_trials=4)
    cases = {"exit3": 3, "message": 1, "raise": 1, "signal": -signal.SIGUSR1, "none": 0}
    for what in cases:
        executor.launch(module_spec(module, tmp_path, what, what))
    for what, code in cases.items():
        assert wait_for(executor, what).exit_code == code, what
    assert "RuntimeError: boom" in (tmp_path / "raise" / layout.STDERR_LOG).read_text()
    assert "bad flag" in (tmp_path / "message" / layout.STDERR_LOG).read_text()


def test_a_stubborn_warm_trial_and_its_grandchild_are_killed_after_the_grace(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    executor = make(executors)
    pid_file = tmp_path / "pids.json"
    executor.launch(
        warm_spec(
            tmp_path,
            "stubborn",
            "hang",
            "--ignore_sigterm=True",
            "--spawn_grandchild=True",
            f"--pid_file={pid_file}",
        )
    )
    pids = wait_file(pid_file)
    assert pids["pid"] == executor.pid("stubborn")  # the forked child is the group leader
    executor.stop("stubborn", grace_secs=0.3)
    status = wait_for(executor, "stubborn")
    assert status.state is TrialState.STOPPED and status.exit_code == -signal.SIGKILL
    deadline = time.monotonic() + 5
    while (pid_alive(pids["pid"]) or pid_alive(pids["grandchild"])) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.02)
    assert not pid_alive(pids["pid"]) and not pid_alive(pids["grandchild"])


OWNER = """
import dataclasses, json, sys, time
from proxytask.executors.local import LocalExecutor
from proxytask.testing.specs import fake_trainer_spec
from tests.executors.test_contract_warm import WARM_FAKE_TRAINER
root, pid_file = sys.argv[1], sys.argv[2]
executor = LocalExecutor(max_parallel_trials=1, gpus=[], grace_secs=1.0)
spec = fake_trainer_spec(root, "t", "hang", "--spawn_grandchild=True", "--pid_file=" + pid_file)
executor.launch(dataclasses.replace(spec, trainer=WARM_FAKE_TRAINER))
print(json.dumps({"server": [p.server_pid for p in executor._pools.values()][0]}), flush=True)
while True:  # as a controller: poll
    executor.status("t")
    time.sleep(0.1)
"""


@pytest.mark.parametrize("victim", ["controller", "worker"])
def test_nothing_outlives_a_killed_controller_or_worker(
    tmp_path: pathlib.Path, victim: str
) -> None:
    pid_file = tmp_path / "pids.json"
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path), str(pid_file)],
        stdout=subprocess.PIPE,
        cwd=pathlib.Path(__file__).resolve().parents[2],
    )
    try:
        assert owner.stdout is not None
        server = json.loads(owner.stdout.readline())["server"]
        pids = wait_file(pid_file)
        assert pid_alive(pids["pid"]) and pid_alive(pids["grandchild"])
        os.kill(owner.pid if victim == "controller" else server, signal.SIGKILL)
        deadline = time.monotonic() + 10
        survivors = [pids["pid"], pids["grandchild"], *([server] if victim == "controller" else [])]
        while any(pid_alive(p) for p in survivors) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(pid_alive(p) for p in survivors), survivors
    finally:
        owner.kill()
        owner.wait()


def test_a_dead_worker_fails_its_trials_and_the_next_trial_gets_a_new_one(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    executor = make(executors, max_parallel_trials=2)
    executor.launch(warm_spec(tmp_path, "a", "hang"))
    wait_for(executor, "a", lambda s: s.state is TrialState.RUNNING)
    (pool,) = executor._pools.values()
    assert pool.server_pid is not None
    os.kill(pool.server_pid, signal.SIGKILL)
    status = wait_for(executor, "a")
    assert (status.state, status.cause) == (TrialState.FAILED, FailureCause.KILLED)
    executor.launch(warm_spec(tmp_path, "b", "ok"))
    assert wait_for(executor, "b").state is TrialState.SUCCEEDED


@pytest.mark.parametrize(
    ("trainer", "expected"),
    [
        (("python", "t.py"), ["t.py", "--a=1"]),
        (("python", "-u", "t.py", "--fixed=2"), ["t.py", "--fixed=2", "--a=1"]),
        (("python", "-X", "dev", "-m", "pkg.mod"), ["pkg.mod", "--a=1"]),
        (("python",), ["pkg.mod:main", "--a=1"]),
    ],
)
def test_a_warm_trials_argv_is_the_command_without_its_interpreter(
    trainer: tuple[str, ...], expected: list[str]
) -> None:
    assert warm_argv(trainer, "pkg.mod:main", ["--a=1"]) == expected


@pytest.mark.parametrize(
    "entry", ["", "main", "pkg.mod", "pkg.mod:", ":main", "pkg..mod:main", "1pkg:main", "x.py:m"]
)
def test_bad_entries_are_refused_with_an_example(entry: str) -> None:
    with pytest.raises(UsageError, match="--trainer-entry") as info:
        parse_trainer_command("python t.py", entry)
    assert "Example" in str(info.value) or "not a file" in str(info.value)


def test_good_entries_are_accepted(tmp_path: pathlib.Path) -> None:
    script = tmp_path / "t.py"
    script.write_text("def main(argv):\n    return 0\n")
    assert check_trainer_entry("pkg.mod:main") == "pkg.mod:main"
    assert check_trainer_entry(f"{script}:main") == f"{script}:main"
    assert parse_trainer_command("python t.py", "a.b:c.d").entry == "a.b:c.d"


def test_the_modules_warm_up_runs_once_in_the_worker_before_any_trial(
    tmp_path: pathlib.Path, executors: list[LocalExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "warm.log"
    monkeypatch.setenv("WARM_LOG", str(log))
    module = write_module(
        tmp_path,
        """
        import os
        WARMED = []

        def proxytask_warm_up():
            WARMED.append(os.getpid())
            with open(os.environ["WARM_LOG"], "a") as handle:
                handle.write("warm %d\\n" % os.getpid())

        def main(argv):
            with open(os.environ["WARM_LOG"], "a") as handle:
                handle.write("trial %d warmed by %s\\n" % (os.getpid(), WARMED))
            return 0
        """,
    )
    executor = make(executors, max_parallel_trials=2)
    for n in ("1", "2"):
        executor.launch(module_spec(module, tmp_path, n))
    for n in ("1", "2"):
        assert wait_for(executor, n).state is TrialState.SUCCEEDED
    lines = log.read_text().splitlines()
    server = int(lines[0].split()[1])
    assert lines[0] == f"warm {server}" and len(lines) == 3
    assert all(line.endswith(f"warmed by [{server}]") for line in lines[1:])


def test_a_failing_warm_up_fails_the_trials_like_an_import_error(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    module = write_module(
        tmp_path,
        "def proxytask_warm_up():\n    raise RuntimeError('no data')\n"
        "def main(argv):\n    return 0\n",
    )
    executor = make(executors)
    executor.launch(module_spec(module, tmp_path, "1"))
    status = wait_for(executor, "1")
    assert (status.state, status.cause) == (TrialState.FAILED, FailureCause.CRASH)
    assert "RuntimeError: no data" in status.message


def test_a_worker_whose_warm_up_initialised_cuda_refuses_to_serve(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    # torch's CUDA state as the warm-up left it: a forked trial could not use the GPU then
    # (seen on an H200: every trial failed). This machine has no GPU, so the module stands in
    # for torch with the one call the server makes.
    module = write_module(
        tmp_path,
        """
        import sys, types
        def proxytask_warm_up():
            torch = types.ModuleType("torch")
            torch.cuda = types.SimpleNamespace(is_initialized=lambda: True)
            sys.modules["torch"] = torch
        def main(argv):
            return 0
        """,
    )
    executor = make(executors)
    executor.launch(module_spec(module, tmp_path, "1"))
    status = wait_for(executor, "1")
    assert (status.state, status.cause) == (TrialState.FAILED, FailureCause.CRASH)
    assert "CUDA was initialised while importing" in status.message
    assert "pick the device inside the entry function" in status.message
