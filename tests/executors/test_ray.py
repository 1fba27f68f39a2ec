"""The Ray executor beyond the contract: addresses, lost runners and nodes, reattach/restart.

The pure helpers run without Ray; the rest (marked ``ray``) on the session's local cluster
(``tests/ray_cluster.py``): a 2-CPU head started by ``ray start --head`` on 127.0.0.1, plus a
1-CPU second node for the node-death test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.ray_cluster import RayCluster, RayNode

from proxytask import cli
from proxytask.controllers.base import ControllerContext
from proxytask.controllers.selection import (
    MODEL_SELECTION_STATE,
    REFERENCE_MODELS,
    ModelSelectionController,
    SelectionSettings,
)
from proxytask.controllers.state import EventLog, TrialRecordState
from proxytask.controllers.tracker import TrialSettings, TrialTracker
from proxytask.core.clock import SystemClock
from proxytask.core.errors import ExecutorError, UsageError
from proxytask.core.space import load_search_space
from proxytask.executors.base import FailureCause, Resources, TrialState, TrialStatus
from proxytask.executors.command import parse_trainer_args, parse_trainer_command
from proxytask.executors.factory import EXECUTOR_NAMES, make_executor
from proxytask.executors.ray import (
    RayExecutor,
    RayPlacement,
    actor_name,
    find_local_gcs_addresses,
    is_loopback,
    lost_message,
    resolve_address,
)
from proxytask.testing.processes import pid_alive
from proxytask.testing.specs import FAKE_TRAINER, fake_trainer_spec

SPACE = load_search_space("tests.fixtures.spaces:tiny")


# ---- pure helpers (no Ray) --------------------------------------------------------------------


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1:6379")
    assert is_loopback("localhost:6379")
    assert is_loopback("ray://127.0.0.1:10001")
    assert is_loopback("[::1]:6379")
    assert not is_loopback("10.0.0.5:6379")
    assert not is_loopback("head.example.com:6379")


def _fake_proc(root: Path, pid: int, *args: str) -> None:
    (root / str(pid)).mkdir(parents=True)
    (root / str(pid) / "cmdline").write_bytes("\0".join(args).encode() + b"\0")


def test_auto_finds_the_cluster_of_a_raylet_on_this_machine(tmp_path: Path) -> None:
    _fake_proc(tmp_path, 10, "/venv/ray/core/src/ray/raylet/raylet", "--gcs-address=127.0.0.1:4")
    _fake_proc(tmp_path, 11, "python", "--gcs-address=10.0.0.9:5")  # not a raylet
    (tmp_path / "self").mkdir()
    assert find_local_gcs_addresses(str(tmp_path)) == ["127.0.0.1:4"]
    assert resolve_address("auto", {}, str(tmp_path)) == "127.0.0.1:4"
    assert resolve_address("auto", {"RAY_ADDRESS": "10.1.1.1:6379"}, str(tmp_path)) == (
        "10.1.1.1:6379"
    )
    assert resolve_address("10.0.0.5:6379", {}, str(tmp_path)) == "10.0.0.5:6379"
    assert resolve_address("local", {}, str(tmp_path)) is None


def test_auto_without_a_cluster_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="ray start --head") as err:
        resolve_address("auto", {}, str(tmp_path))
    assert "--ray-address local" in str(err.value)
    _fake_proc(tmp_path, 1, "raylet", "--gcs-address=127.0.0.1:1")
    _fake_proc(tmp_path, 2, "raylet", "--gcs-address=127.0.0.1:2")
    with pytest.raises(UsageError, match=r"got 2: 127\.0\.0\.1:1, 127\.0\.0\.1:2"):
        resolve_address("auto", {}, str(tmp_path))


def test_an_address_where_nothing_answers_is_a_usage_error() -> None:
    import socket

    from proxytask.executors.ray import connect

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    # closed again: nothing listens there now
    with pytest.raises(UsageError, match="must be running, got no answer there"):
        connect(f"127.0.0.1:{port}")


def test_lost_messages_name_the_node_and_the_reason() -> None:
    where = RayPlacement(node_id="ab" * 28, node_ip="10.0.0.7", worker_pid=42, pid=43)
    node = lost_message(
        where,
        "The actor died unexpectedly before finishing this task.\n\tip: 10.0.0.7\nThe actor died "
        "because its node has died. Node Id: abab\n\tthe actor's node was terminated "
        "unexpectedly: health check failed due to missing too many heartbeats",
    )
    assert node.startswith("lost: its Ray node died (on node 10.0.0.7 (abababababab))")
    assert "missing too many heartbeats" in node and "check the cluster" in node
    worker = lost_message(
        where,
        "The actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR "
        "Worker exit detail: Worker unexpectedly exits with a connection error code 2. " * 5,
    )
    assert worker.startswith("lost: its Ray worker process (pid 42) died on node 10.0.0.7")
    assert ": The actor is dead because its worker process has died. Worker exit type" in worker
    assert len(worker) < 400 and ". ;" not in worker
    assert lost_message(None, "").startswith("lost: its Ray runner died on an unknown node")
    assert actor_name("/runs/c/jobs/round1/3") == "trial:/runs/c/jobs/round1/3"


def test_options_and_factory_know_the_ray_executor() -> None:
    with pytest.raises(UsageError, match="--ray-on-resume must be one of reattach, restart"):
        RayExecutor(address="local", on_resume="skip")
    with pytest.raises(UsageError, match="--executor must be local, replay") as info:
        make_executor({"executor": "kubernetes", "max_parallel_trials": 1})
    assert f"{', '.join(EXECUTOR_NAMES[:-1])} or {EXECUTOR_NAMES[-1]}, got" in str(info.value)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["trial", "--executor", "ray", "--ray-on-resume", "sometimes"])
    assert exit_.value.code == 2


# ---- on the local cluster ---------------------------------------------------------------------


@pytest.fixture
def executors(ray_runners: RayCluster) -> Iterator[list[RayExecutor]]:
    made: list[RayExecutor] = []
    yield made
    for executor in made:
        executor.close()


def make(made: list[RayExecutor], **kwargs: Any) -> RayExecutor:
    kwargs.setdefault("grace_secs", 2.0)
    kwargs.setdefault("max_parallel_trials", 2)
    executor = RayExecutor(**kwargs)
    made.append(executor)
    return executor


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def wait_status(
    executor: RayExecutor, trial_id: str, state: TrialState | None = None
) -> TrialStatus:
    """Wait until the trial is in ``state`` (default: ended); return its status."""
    done: Callable[[TrialStatus], bool] = (
        (lambda s: s.state.is_terminal) if state is None else (lambda s: s.state is state)
    )
    wait_until(lambda: done(executor.status(trial_id)), f"{trial_id} to reach {state}")
    return executor.status(trial_id)


def read_json_when_there(path: Path, timeout: float = 30.0) -> Any:
    wait_until(path.exists, f"{path}", timeout)
    return json.loads(path.read_text())


@pytest.mark.ray
def test_a_trial_runs_with_the_local_argv_env_and_logs(
    tmp_path: Path, executors: list[RayExecutor]
) -> None:
    from proxytask.executors.command import build_trial_spec

    executor = make(executors)
    env_file = tmp_path / "env.json"
    spec = build_trial_spec(
        trainer=FAKE_TRAINER,
        job_name="job",
        job_dir=str(tmp_path / "job"),
        trial_number=3,
        controller_dir=str(tmp_path),
        nas_params={"width": 8, "depth": 1},
        trainer_args={"env_file": str(env_file), "start_delay_secs": "0", "note": "a b=c"},
    )
    executor.launch(spec)
    status = wait_status(executor, spec.trial_id)
    assert status.state is TrialState.SUCCEEDED, status
    seen = json.loads(env_file.read_text())
    assert seen["argv"] == list(spec.args)
    assert "--note=a b=c" in seen["argv"]
    assert seen["env"]["CLOUD_ML_TRIAL_ID"] == "3"
    assert seen["env"]["AIP_MODEL_DIR"] == spec.trial_dir
    assert seen["env"]["PROXYTASK_CONTROLLER_DIR"] == str(tmp_path)
    assert seen["env"]["CUDA_VISIBLE_DEVICES"] == ""  # no GPU asked: the trainer stays on CPU
    assert seen["cwd"] == os.getcwd()  # relative trainer paths work as with the local executor
    assert "fake_trainer: step" in (Path(spec.trial_dir) / "stdout.log").read_text()
    placement = executor.placement(spec.trial_id)
    assert placement is not None and placement.node_ip == "127.0.0.1"
    assert placement.pid is not None and not pid_alive(placement.pid)


@pytest.mark.ray
def test_resources_no_node_has_fail_at_launch(tmp_path: Path, executors: list[RayExecutor]) -> None:
    import ray

    executor = make(executors)
    gpus = ray.cluster_resources().get("GPU", 0.0)
    spec = fake_trainer_spec(tmp_path, "job/1", resources=Resources(gpus=gpus + 1))
    with pytest.raises(ExecutorError, match="must fit on one live Ray node"):
        executor.launch(spec)
    assert executor.known_trials() == []


@pytest.mark.ray
def test_a_killed_worker_process_fails_the_trial_as_lost_and_takes_the_trainer_along(
    tmp_path: Path, executors: list[RayExecutor]
) -> None:
    executor = make(executors)
    pid_file = tmp_path / "pid.json"
    spec = fake_trainer_spec(tmp_path, "job/1", "hang", f"--pid_file={pid_file}")
    executor.launch(spec)
    wait_status(executor, spec.trial_id, TrialState.RUNNING)
    trainer_pid = int(read_json_when_there(pid_file)["pid"])
    placement = executor.placement(spec.trial_id)
    assert placement is not None
    os.kill(placement.worker_pid, signal.SIGKILL)
    status = wait_status(executor, spec.trial_id)
    assert status.state is TrialState.FAILED, status
    assert status.cause is FailureCause.LOST
    assert f"worker process (pid {placement.worker_pid}) died on node 127.0.0.1" in status.message
    # the launcher saw its runner go and stopped the trainer (SIGTERM, grace, SIGKILL)
    wait_until(lambda: not pid_alive(trainer_pid), "the trainer to die with its runner", 15)


def _tracker(executor: RayExecutor, cdir: Path, records: Any = ()) -> TrialTracker:
    events = EventLog(str(cdir / "events.jsonl"))
    return TrialTracker(
        executor, SystemClock(), str(cdir), TrialSettings(trainer=FAKE_TRAINER), events, records
    )


def _run_to_the_end(tracker: TrialTracker, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not tracker.all_terminal():
        assert time.monotonic() < deadline, [r.state for r in tracker.records.values()]
        tracker.poll()
        time.sleep(0.1)


@pytest.mark.ray
@pytest.mark.parametrize("policy", ["reattach", "restart"])
def test_a_resumed_controller_reattaches_or_restarts_running_trials(
    policy: str, tmp_path: Path, executors: list[RayExecutor]
) -> None:
    first = make(executors)
    tracker = _tracker(first, tmp_path)
    for number in (1, 2):
        args = {
            "cycles": "10",
            "cycle_secs": "0.25",
            "start_delay_secs": "0",
            "pid_file": str(tmp_path / f"pid{number}.json"),
        }
        tracker.plan("job", number, {"width": 8 * number, "depth": 1}, args)
    keys = tracker.launch_planned()
    wait_until(
        lambda: all(first.status(k).state is TrialState.RUNNING for k in keys), "trials to run"
    )
    before = {k: read_json_when_there(tmp_path / f"pid{k[-1]}.json")["pid"] for k in keys}
    groups = {k: first.pid(k) for k in keys}

    # the controller dies: its executor goes without close(); a new one resumes from the records
    second = make(executors, on_resume=policy)
    resumed = _tracker(second, tmp_path, tracker.records.values())
    replanned = resumed.recover()
    events = [e["event"] for e in resumed.events.read()]
    if policy == "reattach":
        assert replanned == []
        assert second.known_trials() == keys
        assert {k: second.pid(k) for k in keys} == groups  # the same trial processes
        assert all(pid_alive(pid) for pid in before.values())
        assert events.count("trial_reattached") == 2
    else:
        assert sorted(replanned) == keys
        assert not any(pid_alive(pid) for pid in before.values())  # stopped before relaunching
        resumed.launch_planned()
    _run_to_the_end(resumed)
    assert all(r.state == TrialRecordState.SUCCEEDED for r in resumed.records.values())
    after = {k: json.loads((tmp_path / f"pid{k[-1]}.json").read_text())["pid"] for k in keys}
    if policy == "reattach":
        assert after == before and events.count("trial_launched") == 2
    else:
        assert all(after[k] != before[k] for k in keys)
        assert len(list((tmp_path / "jobs" / "job" / ".interrupted").iterdir())) == 2


@pytest.mark.ray
def test_a_dead_node_fails_its_trials_as_lost_and_the_round_goes_on(
    tmp_path: Path, ray_second_node: RayNode
) -> None:
    executor = RayExecutor(max_parallel_trials=3, grace_secs=2.0)  # 2 CPUs on the head + 1
    cdir = tmp_path / "c"
    ctx = ControllerContext(
        controller_dir=str(cdir),
        executor=executor,
        clock=SystemClock(),
        trial_settings=TrialSettings(trainer=FAKE_TRAINER),
        baseline_args={
            "cycles": "6",  # round 1 (6 models) trains to 16.7 %: one cycle
            "cycle_secs": "0.3",
            "total_steps": "600",
            "behaviour": "slow",
            "start_delay_secs": "1.5",
        },
        options={},
        poll_interval_secs=0.2,
    )
    settings = SelectionSettings(start_num_models=6, final_num_models=3)
    try:
        ctl = ModelSelectionController.create(ctx, SPACE, settings)
        lost: str | None = None
        deadline = time.monotonic() + 120.0
        while not ctl.is_finished():
            assert time.monotonic() < deadline, "the model selection did not finish in time"
            ctl.step()
            if lost is None:
                lost = _trial_running_on(executor, ray_second_node.node_id)
                if lost is not None:
                    ray_second_node.kill()  # the machine goes away with all its processes
            time.sleep(0.1)
    finally:
        executor.close()
    assert lost is not None and lost.startswith("round1/")
    assert ctl.phase == "done", ctl.error
    record = ctl.tracker.records[lost]
    assert record.state == TrialRecordState.FAILED and record.cause == "lost", record
    assert "its Ray node died" in record.message
    assert ray_second_node.node_id[:12] in record.message
    # 1 of 6 failed (<= 20 %): the round went on, the lost model was dropped first
    state = json.loads((cdir / MODEL_SELECTION_STATE).read_text())
    assert [it["num_trials"] for it in state["iterations"]] == [6, 3]
    assert [pair[0] for pair in state["rounds"][0]["invalid"]] == [lost.split("/")[1]]
    failed = [r for r in ctl.tracker.records.values() if r.state == TrialRecordState.FAILED]
    assert failed == [record]
    assert json.loads((cdir / REFERENCE_MODELS).read_text())["num_reference_models"] == 3


def _trial_running_on(executor: RayExecutor, node_id: str) -> str | None:
    for key in executor.known_trials():
        placement = executor.placement(key)
        on_node = placement is not None and placement.node_id == node_id
        if on_node and executor.status(key).state is TrialState.RUNNING:
            return key
    return None


@pytest.mark.ray
def test_killing_the_controller_process_and_resuming_reattaches(
    tmp_path: Path, ray_runners: RayCluster
) -> None:
    """A real controller (a CLI process) is SIGKILLed mid-round; the resumed one adopts the
    trials it left running (no relaunch) and finishes. (The resume runs in-process: resuming
    ``select-models`` through the CLI trips over the saved empty --accuracy-metric-id.)"""
    root = tmp_path / "runs"
    trainer = f"{sys.executable} -m proxytask.testing.fake_trainer"
    trainer_args = ["cycles=4", "cycle_secs=0.3", "total_steps=400", "behaviour=slow"]
    trainer_args.append("start_delay_secs=3")
    argv = [
        "select-models",
        f"--trainer={trainer}",
        "--search-space=tests.fixtures.spaces:tiny",
        f"--root-output-dir={root}",
        "--job-name=sel",
        "--start-num-models=4",
        "--final-num-models=2",
        "--num-models-to-remove-per-iter=2",
        "--max-parallel-trials=2",
        "--executor=ray",
        f"--ray-address={ray_runners.address}",
        "--trainer-args",
        *trainer_args,
    ]
    controller = subprocess.Popen(
        [sys.executable, "-m", "proxytask.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:

        def started() -> bool:
            return len(list(root.glob("*/jobs/round1/*/nas_params_str.json"))) >= 2

        wait_until(started, "the first controller's trials to start", 60)
        time.sleep(0.5)  # its state file records them as running
    finally:
        controller.kill()
        controller.wait()
    (cdir,) = root.iterdir()
    executor = RayExecutor(max_parallel_trials=2, grace_secs=2.0, on_resume="reattach")
    ctx = ControllerContext(
        controller_dir=str(cdir),
        executor=executor,
        clock=SystemClock(),
        trial_settings=TrialSettings(trainer=parse_trainer_command(trainer)),
        baseline_args=parse_trainer_args(trainer_args),
        options={},
        poll_interval_secs=0.2,
    )
    try:
        ctl = ModelSelectionController.resume(ctx, SPACE, SelectionSettings(4, 2, 2))
        ctl.run()
    finally:
        executor.close()
    assert ctl.phase == "done", ctl.error
    events = [json.loads(line) for line in (cdir / "events.jsonl").read_text().splitlines()]
    reattached = {e["trial"] for e in events if e["event"] == "trial_reattached"}
    assert reattached == {"round1/1", "round1/2"}, events
    launches = [e["trial"] for e in events if e["event"] == "trial_launched"]
    assert all(launches.count(key) == 1 for key in reattached), launches


@pytest.mark.ray
@pytest.mark.gpu
def test_gpu_trials_see_the_gpus_ray_gave_them(
    tmp_path: Path, executors: list[RayExecutor]
) -> None:
    import ray

    total = int(ray.cluster_resources().get("GPU", 0.0))
    if total < 1:
        pytest.skip("no GPU in the Ray cluster (no CUDA device on this machine)")
    executor = make(executors, max_parallel_trials=3)
    shares = {"job/1": 1.0, "job/2": 0.5, "job/3": 0.5}
    for trial_id, gpus in shares.items():
        env_file = tmp_path / f"env{trial_id[-1]}.json"
        executor.launch(
            fake_trainer_spec(
                tmp_path, trial_id, "ok", f"--env_file={env_file}", resources=Resources(gpus=gpus)
            )
        )
    for trial_id in shares:
        assert wait_status(executor, trial_id).state is TrialState.SUCCEEDED
    seen = {
        trial_id: json.loads((tmp_path / f"env{trial_id[-1]}.json").read_text())["env"]
        for trial_id in shares
    }
    visible = {trial_id: env["CUDA_VISIBLE_DEVICES"] for trial_id, env in seen.items()}
    for trial_id, devices in visible.items():
        assert devices and "," not in devices, (trial_id, visible)  # exactly one GPU each
    if total == 1:  # the two half-GPU trials share the only GPU
        assert visible["job/2"] == visible["job/3"] == visible["job/1"]


@pytest.mark.ray
def test_ray_address_local_runs_trials_on_a_private_cluster_that_ends_with_the_cli(
    tmp_path: Path,
) -> None:
    """``--ray-address local`` from the command line: a one-machine cluster of its own, shut
    down when the command ends (its processes are found by their temp dir, RAY_TMPDIR)."""
    from tests.ray_cluster import descendants, pids_naming, stop_all

    ray_tmp = Path(tempfile.mkdtemp(prefix="pt-ray-"))  # short: Ray socket paths are < 108 B
    command = [
        sys.executable,
        "-m",
        "proxytask.cli",
        "trial",
        "--executor=ray",
        "--ray-address=local",
        f"--trainer={sys.executable} -m proxytask.testing.fake_trainer",
        "--search-space=tests.fixtures.spaces:tiny",
        f"--root-output-dir={tmp_path / 'runs'}",
        "--job-name=t",
        "--num-trials=2",
        "--trainer-args",
        "start_delay_secs=0",
    ]
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "PYTHONPATH": os.getcwd()}
    env.pop("RAY_ADDRESS", None)
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    finally:
        left = stop_all(descendants(pids_naming(str(ray_tmp))))
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "t/1: succeeded" in result.stdout and "t/2: succeeded" in result.stdout
    assert left == [], f"--ray-address local left Ray processes behind: {left}"


@pytest.mark.ray
@pytest.mark.s3
def test_a_trial_dir_on_s3_gets_its_files_logs_and_causes_through_storage(
    s3_root: str, executors: list[RayExecutor]
) -> None:
    from proxytask.core import storage
    from proxytask.executors.command import build_trial_spec

    # the cluster's nodes were started without the test server's endpoint: hand it over
    names = ("FSSPEC_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    executor = make(executors, env={name: os.environ[name] for name in names})
    specs = {
        behaviour: build_trial_spec(
            trainer=FAKE_TRAINER,
            job_name=behaviour,
            job_dir=storage.join(s3_root, behaviour),
            trial_number=1,
            controller_dir=s3_root,
            nas_params={"width": 8, "depth": 1},
            trainer_args={"behaviour": behaviour, "start_delay_secs": "0"},
        )
        for behaviour in ("ok", "nan")
    }
    for spec in specs.values():
        executor.launch(spec)
    ok = wait_status(executor, specs["ok"].trial_id)
    nan = wait_status(executor, specs["nan"].trial_id)
    assert ok.state is TrialState.SUCCEEDED, ok
    assert nan.state is TrialState.FAILED and nan.cause is FailureCause.NAN, nan
    ok_dir = specs["ok"].trial_dir
    assert ok_dir.startswith("s3://")
    assert "fake_trainer: step" in (storage.read_text(storage.join(ok_dir, "stdout.log")) or "")
    assert storage.read_json(storage.join(ok_dir, "TRIAL_TRAINING_METRICS.json"))


@pytest.mark.ray
def test_a_runner_nobody_asks_for_its_result_removes_itself(
    tmp_path: Path, ray_runners: RayCluster
) -> None:
    """A controller that never comes back does not hold the cluster's CPUs for ever."""
    import ray

    from proxytask.executors.ray import NAMESPACE, TrialRunner

    spec = fake_trainer_spec(tmp_path, "job/1", "ok", "--start_delay_secs=0")
    name = actor_name(spec.trial_dir)
    runner = (
        ray.remote(TrialRunner)
        .options(name=name, namespace=NAMESPACE, lifetime="detached", num_cpus=1)
        .remote(spec, 1.0, 0.5, None)  # grace 1 s, linger 0.5 s
    )
    del runner  # the controller is gone: nobody polls

    def removed() -> bool:
        try:
            ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return True
        return False

    wait_until(removed, "the runner to remove itself", 30)
    assert (Path(spec.trial_dir) / "TRIAL_TRAINING_METRICS.json").exists()  # it did run


def test_a_local_output_path_is_refused_when_the_cluster_spans_machines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from proxytask.executors.ray import SHARED_MOUNT_ENV, RayExecutor

    class Nodes:
        def __init__(self, hosts: list[str]) -> None:
            self.hosts = hosts

        def nodes(self) -> list[dict[str, object]]:
            return [{"NodeManagerAddress": h, "Alive": True} for h in self.hosts]

    executor = object.__new__(RayExecutor)  # only the check: no cluster needed
    executor._ray = Nodes(["10.0.0.1", "10.0.0.2"])  # type: ignore[attr-defined]
    monkeypatch.delenv(SHARED_MOUNT_ENV, raising=False)
    with pytest.raises(UsageError, match="must be shared storage when the Ray cluster spans"):
        executor.check_output_dir("/home/me/runs/Model_Selection_x")
    executor.check_output_dir("s3://bucket/runs/Model_Selection_x")  # shared: fine
    monkeypatch.setenv(SHARED_MOUNT_ENV, "1")
    executor.check_output_dir("/mnt/nfs/runs/x")  # the user says every node mounts it
    monkeypatch.delenv(SHARED_MOUNT_ENV)
    executor._ray = Nodes(["127.0.0.1", "127.0.0.1"])  # type: ignore[attr-defined]
    executor.check_output_dir("/home/me/runs/x")  # one machine: a local path is shared
