"""The local executor beyond the contract: GPU slots, argv and env, logs, kills, errors."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any

import pytest

from proxytask.core import layout
from proxytask.core.errors import ExecutorError, UsageError
from proxytask.executors.base import (
    FailureCause,
    Resources,
    TrainerSpec,
    TrialSpec,
    TrialState,
    TrialStatus,
)
from proxytask.executors.command import build_trial_spec
from proxytask.executors.local import (
    LocalExecutor,
    assign_gpus,
    check_gpu_request,
    detect_gpus,
)
from proxytask.testing.processes import pid_alive
from proxytask.testing.specs import fake_trainer_spec as fake_spec
from proxytask.trainer import contract as trainer


def make(executors: list[LocalExecutor], **kwargs: Any) -> LocalExecutor:
    kwargs.setdefault("grace_secs", 2.0)
    kwargs.setdefault("gpus", [])
    executor = LocalExecutor(**kwargs)
    executors.append(executor)
    return executor


def wait_for(
    executor: LocalExecutor, trial_id: str, done: Any = None, timeout: float = 20.0
) -> TrialStatus:
    """Poll until ``done(status)`` (default: the trial ended), bounded by ``timeout``."""
    check = done or (lambda s: s.state.is_terminal)
    deadline = time.monotonic() + timeout
    while True:
        status = executor.status(trial_id)
        if check(status):
            return status
        assert time.monotonic() < deadline, f"timed out waiting on {trial_id}: {status}"
        time.sleep(0.02)


def wait_file(path: pathlib.Path, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return json.loads(path.read_text())


# ---- GPU slots: the pure functions ------------------------------------------------------------


def test_fractional_gpus_go_to_a_free_gpu_then_the_least_used() -> None:
    gpus = ["0", "1"]
    assert assign_gpus(0.5, gpus, {}) == ("0",)
    assert assign_gpus(0.5, gpus, {"0": 0.5}) == ("1",)
    assert assign_gpus(0.5, gpus, {"0": 0.5, "1": 0.5}) == ("0",)
    assert assign_gpus(0.25, gpus, {"0": 0.75, "1": 0.5}) == ("1",)
    assert assign_gpus(0.5, gpus, {"0": 0.75, "1": 0.75}) is None
    assert assign_gpus(0.3, gpus, {"0": 1.0, "1": 0.7}) == ("1",)


def test_whole_gpus_take_free_gpus_only() -> None:
    gpus = ["0", "1", "2"]
    assert assign_gpus(1, gpus, {"0": 0.5}) == ("1",)
    assert assign_gpus(2, gpus, {"1": 1.0}) == ("0", "2")
    assert assign_gpus(2, gpus, {"1": 1.0, "0": 0.1}) is None
    assert assign_gpus(0, gpus, {}) == ()


def test_impossible_gpu_requests_raise_with_advice() -> None:
    check_gpu_request(0, [])
    with pytest.raises(ExecutorError, match="without GPUs"):
        check_gpu_request(0.5, [])
    with pytest.raises(ExecutorError, match="fraction below 1 or a whole number"):
        check_gpu_request(1.5, ["0", "1"])
    with pytest.raises(ExecutorError, match="at most the 2 GPU"):
        check_gpu_request(3, ["0", "1"])
    check_gpu_request(2, ["0", "1"])


def test_detect_gpus_reads_cuda_visible_devices_then_nvidia_smi() -> None:
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "2, 3"}) == ["2", "3"]
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == []

    def smi(*args: Any, **kwargs: Any) -> SimpleNamespace:
        out = "GPU 0: NVIDIA H100 (UUID: GPU-a)\nGPU 1: NVIDIA H100 (UUID: GPU-b)\n"
        return SimpleNamespace(returncode=0, stdout=out)

    def missing(*args: Any, **kwargs: Any) -> SimpleNamespace:
        raise FileNotFoundError("nvidia-smi")

    assert detect_gpus({}, run=smi) == ["0", "1"]
    assert detect_gpus({}, run=missing) == []


# ---- GPU slots: what trials see -----------------------------------------------------------------


def _env_spec(root: pathlib.Path, trial_id: str, gpus: float, behaviour: str = "ok") -> TrialSpec:
    return fake_spec(
        root,
        trial_id,
        behaviour,
        f"--env_file={root}/{trial_id}.env.json",
        resources=Resources(gpus=gpus),
    )


def test_trials_see_their_gpu_slot_in_cuda_visible_devices(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    executor = make(executors, max_parallel_trials=5, gpus=["0", "1"])
    for i in range(4):
        executor.launch(_env_spec(tmp_path, f"half{i}", 0.5, "hang"))
    # all four halves fit; a whole GPU must wait for two of them to end
    executor.launch(_env_spec(tmp_path, "whole", 1.0))
    seen = [
        wait_file(tmp_path / f"half{i}.env.json")["env"]["CUDA_VISIBLE_DEVICES"] for i in range(4)
    ]
    assert seen == ["0", "1", "0", "1"]
    assert executor.status("whole").state is TrialState.PENDING
    executor.stop("half1", grace_secs=1.0)
    time.sleep(0.1)
    assert executor.status("whole").state is TrialState.PENDING  # GPU 1 is still half used
    executor.stop("half3", grace_secs=1.0)
    wait_for(executor, "whole", lambda s: s.state is not TrialState.PENDING)
    assert wait_file(tmp_path / "whole.env.json")["env"]["CUDA_VISIBLE_DEVICES"] == "1"


def test_cpu_trials_get_an_empty_cuda_visible_devices(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    executor = make(executors, gpus=["0", "1"])
    executor.launch(_env_spec(tmp_path, "cpu", 0.0))
    assert wait_for(executor, "cpu").state is TrialState.SUCCEEDED
    assert wait_file(tmp_path / "cpu.env.json")["env"]["CUDA_VISIBLE_DEVICES"] == ""


def test_multi_gpu_trials_get_several_gpus(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    executor = make(executors, gpus=["0", "1"])
    executor.launch(_env_spec(tmp_path, "two", 2.0))
    assert wait_for(executor, "two").state is TrialState.SUCCEEDED
    assert wait_file(tmp_path / "two.env.json")["env"]["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_gpu_trials_on_a_machine_without_gpus_are_refused(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    executor = make(executors, gpus=[])
    with pytest.raises(ExecutorError, match="without GPUs"):
        executor.launch(_env_spec(tmp_path, "gpu", 0.5))
    assert executor.known_trials() == []


# ---- argv, env, logs ----------------------------------------------------------------------------


def test_argv_values_with_equals_and_spaces_arrive_intact(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    executor = make(executors)
    spec = build_trial_spec(
        trainer=TrainerSpec((sys.executable, "-m", "proxytask.testing.fake_trainer")),
        job_name="job",
        job_dir=str(tmp_path / "job dir"),
        trial_number=1,
        controller_dir=str(tmp_path),
        nas_params={"name": "a b=c", "width": 8},
        trainer_args={
            "note": "x=y z  'quoted' \"double\" $HOME ;",
            "cycles": 2,
            "env_file": str(tmp_path / "env.json"),
        },
        extra_env={"MY_VAR": "v = w"},
    )
    executor.launch(spec)
    assert wait_for(executor, spec.trial_id).state is TrialState.SUCCEEDED
    seen = wait_file(tmp_path / "env.json")
    assert seen["argv"] == list(spec.args)
    assert "--note=x=y z  'quoted' \"double\" $HOME ;" in seen["argv"]
    assert seen["env"]["MY_VAR"] == "v = w"
    assert seen["env"][layout.ENV_TRIAL_ID] == "1"
    assert seen["env"][layout.ENV_TRIAL_DIR] == spec.trial_dir
    assert trainer.load_nas_params(spec.trial_dir) == {"name": "a b=c", "width": 8}


def test_logs_land_in_the_trial_dir(tmp_path: pathlib.Path, executors: list[LocalExecutor]) -> None:
    executor = make(executors)
    spec = fake_spec(tmp_path, "crash", "crash")
    executor.launch(spec)
    status = wait_for(executor, "crash")
    assert status.cause is FailureCause.CRASH
    assert "injected crash" in status.message
    out = pathlib.Path(spec.trial_dir, layout.STDOUT_LOG).read_text()
    err = pathlib.Path(spec.trial_dir, layout.STDERR_LOG).read_text()
    assert "fake_trainer: step" in out
    assert "RuntimeError: fake_trainer: injected crash" in err


def test_oom_is_classified_from_stderr(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    executor = make(executors)
    executor.launch(fake_spec(tmp_path, "oom", "oom"))
    status = wait_for(executor, "oom")
    assert (status.state, status.cause, status.exit_code) == (
        TrialState.FAILED,
        FailureCause.OOM,
        1,
    )


def test_a_stale_failure_record_from_an_earlier_run_is_ignored(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    executor = make(executors)
    spec = fake_spec(tmp_path, "again", "ok")
    trainer.record_trial_failure(spec.trial_dir, "nan", "from an earlier attempt")
    executor.launch(spec)
    assert wait_for(executor, "again").state is TrialState.SUCCEEDED


def test_remote_trial_dirs_and_missing_programs_are_refused(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    executor = make(executors)
    spec = fake_spec(tmp_path, "remote", "ok")
    remote = TrialSpec(
        trial_id="remote", trial_dir="memory://bucket/t1", trainer=spec.trainer, args=spec.args
    )
    with pytest.raises(UsageError, match="lives inside this process"):
        executor.launch(remote)  # memory:// cannot be reached from the trainer's process
    missing = TrialSpec(
        trial_id="missing",
        trial_dir=str(tmp_path / "m"),
        trainer=TrainerSpec(("no-such-trainer-command-xyz",)),
        args=(),
    )
    with pytest.raises(ExecutorError, match="executable"):
        executor.launch(missing)
    with pytest.raises(UsageError):
        LocalExecutor(max_parallel_trials=0)


# ---- stopping ---------------------------------------------------------------------------------


def test_stop_escalates_to_sigkill_after_the_grace(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    executor = make(executors)
    pid_file = tmp_path / "stubborn.pids.json"
    spec = fake_spec(
        tmp_path,
        "stubborn",
        "hang",
        "--ignore_sigterm=True",
        "--spawn_grandchild=True",
        f"--pid_file={pid_file}",
    )
    executor.launch(spec)
    pids = wait_file(pid_file)
    began = time.monotonic()
    executor.stop("stubborn", grace_secs=0.3)
    assert executor.status("stubborn").state is TrialState.RUNNING  # stop did not block
    status = wait_for(executor, "stubborn")
    assert time.monotonic() - began >= 0.3
    assert status.state is TrialState.STOPPED
    assert status.exit_code == -signal.SIGKILL
    deadline = time.monotonic() + 5
    while (pid_alive(pids["pid"]) or pid_alive(pids["grandchild"])) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.02)
    assert not pid_alive(pids["pid"]) and not pid_alive(pids["grandchild"])


def test_a_grandchild_left_by_a_finished_trainer_is_killed(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    executor = make(executors)
    pid_file = tmp_path / "leaky.pids.json"
    executor.launch(
        fake_spec(tmp_path, "leaky", "ok", "--spawn_grandchild=True", f"--pid_file={pid_file}")
    )
    assert wait_for(executor, "leaky").state is TrialState.SUCCEEDED
    grandchild = wait_file(pid_file)["grandchild"]
    deadline = time.monotonic() + 5
    while pid_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(grandchild)


def test_close_sigkills_trials_that_ignore_sigterm(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    executor = make(executors, grace_secs=0.3)
    pid_file = tmp_path / "stubborn.pids.json"
    executor.launch(
        fake_spec(tmp_path, "stubborn", "hang", "--ignore_sigterm=True", f"--pid_file={pid_file}")
    )
    pid = wait_file(pid_file)["pid"]
    executor.close()
    assert executor.status("stubborn").state is TrialState.STOPPED
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(pid)


def test_timeouts_use_the_injected_clock(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    from proxytask.core.clock import SimulatedClock

    clock = SimulatedClock()
    executor = make(executors, clock=clock, grace_secs=1.0)
    executor.launch(fake_spec(tmp_path, "slow", "hang", timeout_secs=3600))
    time.sleep(0.2)
    assert executor.status("slow").state is TrialState.RUNNING
    clock.sleep(3601)
    status = wait_for(executor, "slow")
    assert (status.state, status.cause) == (TrialState.FAILED, FailureCause.TIMEOUT)
    assert status.started_at is not None and status.ended_at is not None
    assert status.ended_at - status.started_at >= 3600


def _run_launcher(child_code: str, close_pipe: bool = False) -> int:
    from proxytask.executors import processes

    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-S",
                "-c",
                processes.LAUNCHER,
                str(read_fd),
                "0.2",
                sys.executable,
                "-c",
                child_code,
            ],
            pass_fds=(read_fd,),
            start_new_session=True,
        )
        if close_pipe:
            os.close(write_fd)
        return proc.wait(timeout=20)
    finally:
        os.close(read_fd)
        if not close_pipe:
            os.close(write_fd)


def test_the_launcher_passes_the_trainer_exit_status_through() -> None:
    assert _run_launcher("import sys; sys.exit(0)") == 0
    assert _run_launcher("import sys; sys.exit(3)") == 3
    code = _run_launcher("import os, signal; os.kill(os.getpid(), signal.SIGUSR1)")
    assert code == -signal.SIGUSR1


def test_the_launcher_kills_its_group_when_the_controller_goes() -> None:
    # the write end closes (as when the controller dies): the trainer is killed at once
    began = time.monotonic()
    code = _run_launcher("import time; time.sleep(60)", close_pipe=True)
    assert code == -signal.SIGKILL
    assert time.monotonic() - began < 10


@pytest.mark.gpu
def test_real_gpus_are_detected_and_handed_out(
    tmp_path: pathlib.Path, executors: list[LocalExecutor]
) -> None:
    gpus = detect_gpus()
    if not gpus:
        pytest.skip("no GPU visible on this machine")
    executor = make(executors, gpus=None)
    assert list(executor.gpus) == gpus
    executor.launch(_env_spec(tmp_path, "gpu", 1.0))
    assert wait_for(executor, "gpu").state is TrialState.SUCCEEDED
    seen = wait_file(tmp_path / "gpu.env.json")["env"]["CUDA_VISIBLE_DEVICES"]
    assert seen == gpus[0]
