"""A real local Ray cluster for the tests: ``ray start --head`` on 127.0.0.1, and extra nodes.

A pytest plugin (listed in ``tests/conftest.py``). Fixtures:

- ``ray_cluster`` (session): a head node with 2 CPUs started by ``ray start --head`` with its
  own ``--temp-dir``, and this test process connected to it as a driver. The GCS health check
  is tightened so a dead node is declared dead within ~2 s (Ray's default is ~30 s).
- ``ray_second_node`` (function): one more node with 1 CPU on 127.0.0.1, joined to the head.
  ``ray start`` refuses a second node while ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (which a
  cluster on 127.0.0.1 needs), so it is started in-process the way
  ``ray.cluster_utils.Cluster.add_node`` does.

Every process of a cluster is found by its temp dir (the daemons' command lines name it) and
their descendants (agents, workers, trainers), registered with :mod:`tests.services`, and
stopped in teardown (TERM, then KILL after 10 s: ``gcs_server`` and ``raylet`` ignore TERM);
``.ci/run`` stops and reports whatever a crashed run left.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from proxytask.executors.ray import LOOPBACK_ENV
from tests import services

__all__ = [
    "RayCluster",
    "RayNode",
    "descendants",
    "pids_naming",
    "stop_all",
]

HEAD_CPUS = 2
# A dead node is noticed after failure_threshold missed checks, period_ms apart.
FAST_HEALTH_CHECK = {
    "RAY_health_check_initial_delay_ms": "0",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "4",
}


def pytest_configure(config: pytest.Config) -> None:
    """Every Ray process of these tests, this driver included, needs the loopback settings
    before Ray is first imported."""
    for key, value in LOOPBACK_ENV.items():
        os.environ.setdefault(key, value)


# ---- processes --------------------------------------------------------------------------------


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", errors="replace")
    except OSError:
        return ""


def _all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def pids_naming(text: str) -> set[int]:
    """Processes whose command line contains ``text`` (e.g. a cluster's temp dir)."""
    me = os.getpid()
    return {pid for pid in _all_pids() if pid != me and text in _cmdline(pid)}


def descendants(roots: Iterable[int]) -> set[int]:
    """``roots`` and every live process below them."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        try:
            with open(f"/proc/{pid}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = [pid for pid in roots if services.alive(pid)]
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


def stop_all(pids: Iterable[int], grace_secs: float = 10.0) -> list[int]:
    """TERM every process, wait up to ``grace_secs`` for all, KILL the rest; the pids that
    were alive. Parallel, so a cluster costs one grace at most."""
    alive = [pid for pid in pids if services.alive(pid)]
    for pid in alive:
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_secs
    while time.monotonic() < deadline and any(services.alive(pid) for pid in alive):
        time.sleep(0.1)
    for pid in alive:
        if services.alive(pid):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(services.alive(pid) for pid in alive):
        time.sleep(0.05)
    return alive


class _Registry:
    """The pid files of one group of service processes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.entries: dict[int, Path] = {}

    def add(self, pids: Iterable[int]) -> None:
        for pid in pids:
            if pid not in self.entries:
                self.entries[pid] = services.register(pid, self.name)

    def release_dead(self) -> None:
        for pid, entry in list(self.entries.items()):
            if not services.alive(pid):
                entry.unlink(missing_ok=True)
                del self.entries[pid]


# ---- the head ---------------------------------------------------------------------------------


@dataclasses.dataclass
class RayCluster:
    """A running head node: its GCS address and temp dir, and its registered processes."""

    address: str
    temp_dir: Path
    registry: _Registry

    def processes(self) -> set[int]:
        """Every live process of the cluster: daemons named by the temp dir, and below them."""
        return descendants(pids_naming(str(self.temp_dir)))

    def register(self) -> None:
        """Register the processes started since the last call (workers, trainers)."""
        self.registry.add(self.processes())


def _ray_command() -> str:
    beside = Path(sys.executable).with_name("ray")  # the ray of this virtualenv
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")


def start_head(temp_dir: Path, num_cpus: int = HEAD_CPUS) -> RayCluster:
    """``ray start --head`` on 127.0.0.1 with its own temp dir; registered at once."""
    env = {**os.environ, **LOOPBACK_ENV, **FAST_HEALTH_CHECK}
    registry = _Registry("ray-head")
    cmd = [
        _ray_command(),
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        "--port=0",
        f"--num-cpus={num_cpus}",
        f"--temp-dir={temp_dir}",
        "--include-dashboard=false",
        "--dashboard-port=0",
        "--disable-usage-stats",
    ]
    try:
        result = subprocess.run(
            cmd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            start_new_session=True,
            check=False,
        )
    finally:
        registry.add(descendants(pids_naming(str(temp_dir))))
    address_file = temp_dir / "ray_current_cluster"
    if result.returncode != 0 or not address_file.exists():
        stop_all(registry.entries)
        registry.release_dead()
        raise RuntimeError(
            f"ray start --head failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    address = address_file.read_text().split()[0]
    return RayCluster(address=address, temp_dir=temp_dir, registry=registry)


def stop_cluster(cluster: RayCluster) -> None:
    """Stop every process of the cluster (registering late ones first) and unregister."""
    cluster.register()
    stop_all(set(cluster.registry.entries) | cluster.processes())
    cluster.registry.release_dead()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """A 2-CPU Ray head on 127.0.0.1 for the whole session, with this process as its driver."""
    pytest.importorskip("ray")
    from proxytask.executors.ray import connect

    temp_dir = Path(tempfile.mkdtemp(prefix="proxytask-ray-"))
    cluster = start_head(temp_dir)
    try:
        connect(cluster.address)
        yield cluster
    finally:
        import ray

        ray.shutdown()
        stop_cluster(cluster)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def ray_runners(ray_cluster: RayCluster) -> Iterator[RayCluster]:
    """The session cluster with no trial runner left and its CPUs free, before and after."""
    free_cluster(ray_cluster)
    yield ray_cluster
    ray_cluster.register()
    free_cluster(ray_cluster)


def free_cluster(cluster: RayCluster, timeout_secs: float = 20.0) -> None:
    """Kill runners a failed test left; wait until the head's CPUs are all free again."""
    import ray

    from proxytask.executors.ray import NAMESPACE

    for entry in ray.util.list_named_actors(all_namespaces=True):
        if entry["namespace"] == NAMESPACE and entry["name"].startswith("trial:"):
            try:
                ray.kill(ray.get_actor(entry["name"], namespace=NAMESPACE))
            except ValueError:
                pass
    deadline = time.monotonic() + timeout_secs
    while ray.available_resources().get("CPU", 0.0) < ray.cluster_resources().get("CPU", 0.0):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the Ray cluster's CPUs are still busy: {ray.available_resources()}"
            )
        time.sleep(0.05)


# ---- a second node ----------------------------------------------------------------------------


@dataclasses.dataclass
class RayNode:
    """A node started in this process (the way ``ray.cluster_utils.Cluster`` adds nodes)."""

    node: Any  # ray._private.node.Node
    temp_dir: Path
    registry: _Registry

    @property
    def node_id(self) -> str:
        """Ray's id of this node (hex)."""
        return str(self.node.node_id)

    @property
    def raylet_pid(self) -> int:
        """The pid of this node's raylet."""
        return int(self.node.all_processes["raylet"][0].process.pid)

    def own_pids(self) -> set[int]:
        """The processes Ray started for this node (raylet, agents)."""
        return {int(p.process.pid) for infos in self.node.all_processes.values() for p in infos}

    def register(self) -> None:
        """Register this node's processes and everything below them (workers, trainers)."""
        self.registry.add(descendants(self.own_pids()))

    def kill(self) -> None:
        """SIGKILL every process of this node at once, as if its machine went away: the raylet,
        its agents, its workers and the trainers they run (registered first, in case one
        survives)."""
        self.register()
        for pid in descendants(self.own_pids()):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


def add_node(cluster: RayCluster, num_cpus: int = 1) -> RayNode:
    """Start one more node on 127.0.0.1 joined to ``cluster``; registered at once."""
    import ray
    from ray._private.node import Node
    from ray._private.parameter import RayParams

    temp_dir = Path(tempfile.mkdtemp(prefix="proxytask-ray-node-"))
    params = RayParams(
        gcs_address=cluster.address,
        node_ip_address="127.0.0.1",
        num_cpus=num_cpus,
        num_gpus=0,
        temp_dir=str(temp_dir),
        include_log_monitor=False,
        node_manager_port=0,
        min_worker_port=0,
        max_worker_port=0,
        object_store_memory=80 * 1024 * 1024,
    )
    params.dashboard_agent_listen_port = None
    node = Node(params, head=False, shutdown_at_exit=False, spawn_reaper=False)
    added = RayNode(node=node, temp_dir=temp_dir, registry=_Registry("ray-node"))
    added.register()
    deadline = time.monotonic() + 30.0
    while not any(n["NodeID"] == added.node_id and n["Alive"] for n in ray.nodes()):
        if time.monotonic() > deadline:
            stop_node(added)
            raise RuntimeError("the second Ray node did not join the cluster within 30 s")
        time.sleep(0.1)
    return added


def stop_node(added: RayNode) -> None:
    """Stop every process of the node (TERM, KILL after 10 s), reap them, unregister."""
    added.register()
    stop_all(set(added.registry.entries) | descendants(added.own_pids()))
    for infos in added.node.all_processes.values():
        for info in infos:
            try:
                info.process.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - a process in D state
                pass
    added.registry.release_dead()


@pytest.fixture
def ray_second_node(ray_runners: RayCluster) -> Iterator[RayNode]:
    """One more 1-CPU node on 127.0.0.1, joined to the session cluster; stopped afterwards."""
    added = add_node(ray_runners)
    try:
        yield added
    finally:
        stop_node(added)
        shutil.rmtree(added.temp_dir, ignore_errors=True)
