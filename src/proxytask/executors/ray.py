"""The Ray executor: each trial is a detached Ray actor that runs the trainer command on a node.

A trial becomes one *runner*: a detached, named Ray actor (namespace ``proxytask``, named after
the trial dir) holding ``num_cpus``/``num_gpus`` from the trial's resources, placed anywhere in
the cluster. The runner starts the trainer exactly as the local executor does — the same argv
and environment (plus ``CUDA_VISIBLE_DEVICES`` for the GPUs Ray gave it), under the same
launcher (:func:`proxytask.executors.processes.spawn_trial`), so the trainer and its children die
when the runner's worker process dies, however it dies — and keeps its exit status.

- The runner watches its trainer by itself: the time limit (``spec.timeout_secs``) and the
  SIGKILL after a stop's grace are enforced on the node, also while no controller is alive.
  It judges the exit with :class:`proxytask.executors.processes.TrialProcess` (exit code and
  stderr tail), exactly as the local executor does; the monitor adds any cause the trainer
  recorded in its files.
- Logs: ``stdout.log`` and ``stderr.log`` in the trial dir; for a trial dir on shared storage
  (an fsspec URL) they are written in a scratch dir on the node and uploaded through
  :mod:`proxytask.core.storage` every 30 s and at the end.
- The executor polls each runner with one outstanding call at a time and never blocks on it.
  A runner that dies (its worker process killed, its node gone) ends the trial as FAILED with
  cause ``lost`` and a message naming the node; an ended trial's runner is killed at once, so
  its CPUs and GPUs return to the cluster.
- Detached actors outlive the controller. A resumed controller asks :meth:`RayExecutor.reattach`
  for each trial its predecessor had running: policy ``reattach`` adopts the runner as it is
  (no relaunch, same trainer process), policy ``restart`` stops it (SIGTERM, grace, SIGKILL)
  so the controller trains it again from scratch. A runner nobody polls for ``linger_secs``
  after its trainer ended removes itself, and orphaned trainers stop on their own once the
  controller heartbeat is stale (``--heartbeat-threshold-secs``).

Connecting (``--ray-address``): ``auto`` joins the cluster running on this machine (``RAY_ADDRESS``
first, like ``ray status``), ``HOST:PORT`` (or ``ray://HOST:PORT``) a given one, ``local``
starts a private one-machine cluster for this controller, shut down by :meth:`close` (its
trials cannot outlive the controller, so a resumed controller restarts them). For a cluster on
127.0.0.1, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` and ``RAY_AUTH_MODE=disabled`` must be set in
every Ray process (head, nodes, driver); :func:`connect` sets them for the driver when they are
unset and the address is a loopback one (or ``local``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from typing import Any

from proxytask.core import layout, storage
from proxytask.core.clock import Clock, SystemClock
from proxytask.core.errors import ExecutorError, StorageError, UsageError
from proxytask.executors.base import (
    BookkeepingExecutor,
    Executor,
    FailureCause,
    Resources,
    TrialEntry,
    TrialSpec,
    TrialState,
)
from proxytask.executors.causes import ADVICE
from proxytask.executors.processes import (
    ProcessOutcome,
    TrialProcess,
    check_command_trainer,
    spawn_trial,
)

__all__ = [
    "LOOPBACK_ENV",
    "NAMESPACE",
    "ON_RESUME_POLICIES",
    "RayExecutor",
    "RayPlacement",
    "TrialRunner",
    "actor_name",
    "connect",
    "find_local_gcs_addresses",
    "is_loopback",
    "lost_message",
    "resolve_address",
]

logger = logging.getLogger(__name__)
#: Set to 1 when every Ray node mounts the local output path at the same place (NFS).
SHARED_MOUNT_ENV = "PROXYTASK_RAY_SHARED_MOUNT"

#: The Ray namespace of every trial runner.
NAMESPACE = "proxytask"
#: What a resumed controller does with trials still running: keep them, or train them again.
ON_RESUME_POLICIES = ("reattach", "restart")
#: What every Ray process of a cluster on 127.0.0.1 needs in its environment.
LOOPBACK_ENV: Mapping[str, str] = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
}

_EPS = 1e-9
_WATCH_SECS = 0.1
_LOG_UPLOAD_SECS = 30.0
_START_HINT = (
    "Start one with `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_AUTH_MODE=disabled ray start "
    "--head --node-ip-address=127.0.0.1 --num-cpus=N` (one machine), pass a cluster's "
    "--ray-address HOST:PORT, or use --ray-address local for a private one-machine cluster."
)


# --------------------------------------------------------------------------------------------
# Names, addresses and messages (pure functions)
# --------------------------------------------------------------------------------------------


def actor_name(trial_dir: str) -> str:
    """The name of the runner of the trial in ``trial_dir`` (unique: trial dirs are)."""
    return f"trial:{trial_dir}"


def _host_of(address: str) -> str:
    rest = address.split("://", 1)[-1]
    if rest.startswith("["):  # [::1]:6379
        return rest[1:].split("]", 1)[0]
    return rest.rsplit(":", 1)[0] if rest.count(":") == 1 else rest


def is_loopback(address: str) -> bool:
    """True for ``127.x.y.z``, ``localhost`` and ``::1`` addresses (with or without a port).

    Example::

        >>> is_loopback("127.0.0.1:6379"), is_loopback("10.0.0.5:6379")
        (True, False)
    """
    host = _host_of(address).lower()
    return host == "localhost" or host == "::1" or host.startswith("127.")


def find_local_gcs_addresses(proc_root: str = "/proc") -> list[str]:
    """GCS addresses of the Ray clusters with a raylet on this machine, sorted.

    Read from the raylets' command lines (``--gcs-address=HOST:PORT``), as Ray's own
    ``address="auto"`` does, but without importing Ray.
    """
    found: set[str] = set()
    try:
        entries = os.listdir(proc_root)
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc_root, entry, "cmdline"), "rb") as handle:
                args = handle.read().decode("utf-8", errors="replace").split("\0")
        except OSError:
            continue
        if not args or os.path.basename(args[0]) != "raylet":
            continue
        for arg in args:
            for flag in ("--gcs-address=", "--gcs_address="):
                if arg.startswith(flag) and arg[len(flag) :] not in ("", "None"):
                    found.add(arg[len(flag) :])
    return sorted(found)


def resolve_address(
    address: str,
    environ: Mapping[str, str] | None = None,
    proc_root: str = "/proc",
) -> str | None:
    """The cluster address ``--ray-address`` names; None for ``local`` (start a private one).

    ``auto`` is ``RAY_ADDRESS`` when set, else the one cluster with a raylet on this machine;
    no cluster (or several) raises UsageError saying how to start or pick one.
    """
    env = os.environ if environ is None else environ
    value = address.strip()
    if not value:
        raise UsageError(f"--ray-address must be auto, local or HOST:PORT, got {address!r}.")
    if value == "local":
        return None
    if value != "auto":
        return value
    from_env = env.get("RAY_ADDRESS", "").strip()
    if from_env and from_env != "auto":
        return None if from_env == "local" else from_env
    found = find_local_gcs_addresses(proc_root)
    if not found:
        raise UsageError(
            "--ray-address auto must find a running Ray cluster on this machine, got none "
            f"(no raylet process, RAY_ADDRESS unset). {_START_HINT}"
        )
    if len(found) > 1:
        raise UsageError(
            f"--ray-address auto must find one Ray cluster on this machine, got {len(found)}: "
            f"{', '.join(found)}. Pass the one to use, e.g. --ray-address {found[0]}."
        )
    return found[0]


def _check_reachable(address: str, timeout_secs: float = 3.0) -> None:
    """Raise UsageError unless something accepts TCP connections at ``address``."""
    rest = address.split("://", 1)[-1]
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(
            f"--ray-address must be auto, local or HOST:PORT, got {address!r}. Example: "
            "--ray-address 127.0.0.1:6379."
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_secs):
            return
    except OSError as exc:
        raise UsageError(
            f"the Ray cluster at {address} must be running, got no answer there ({exc}); "
            f"a stale Ray process may still name it. {_START_HINT}"
        ) from exc


def lost_message(placement: RayPlacement | None, error: str) -> str:
    """The message of a trial whose runner vanished, naming its node and Ray's reason."""
    lines = [ln.strip() for ln in error.splitlines() if ln.strip()]
    node_died = "node has died" in error or "node was terminated" in error
    where = "on an unknown node"
    if placement is not None:
        where = f"on node {placement.node_ip} ({placement.node_id[:12]})"
    reason = _first_sentences(lines[-1]) if lines else "no reason given"
    if node_died:
        head = f"lost: its Ray node died ({where})"
    elif placement is not None:
        head = f"lost: its Ray worker process (pid {placement.worker_pid}) died {where}"
    else:
        head = f"lost: its Ray runner died {where}"
    return f"{head}: {reason}; {ADVICE[FailureCause.LOST]}"


def _first_sentences(text: str, limit: int = 240) -> str:
    """As many whole sentences of ``text`` as fit in ``limit`` characters (at least one)."""
    out = ""
    for sentence in text.replace(". ", ".\n").splitlines():
        if out and len(out) + len(sentence) + 1 > limit:
            break
        out = f"{out} {sentence}".strip()
    return out if len(out) <= limit else out[: limit - 3].rstrip() + "..."


# --------------------------------------------------------------------------------------------
# Connecting to a cluster
# --------------------------------------------------------------------------------------------


def connect(address: str = "auto", environ: Mapping[str, str] | None = None) -> bool:
    """Connect this process to the Ray cluster ``address`` names; True when it started one.

    Already connected (``ray.is_initialized()``): keeps that connection and returns False.
    ``local`` starts a private one-machine cluster (True: the caller shuts it down). For a
    loopback address the variables of :data:`LOOPBACK_ENV` are set when unset, before Ray is
    imported. Raises UsageError when no cluster answers, with how to start one.
    """
    ray_module = sys.modules.get("ray")
    if ray_module is not None and ray_module.is_initialized():
        return False
    resolved = resolve_address(address, environ)
    if resolved is not None:
        _check_reachable(resolved)
    if resolved is None or is_loopback(resolved):
        for key, value in LOOPBACK_ENV.items():
            os.environ.setdefault(key, value)
    import ray

    if resolved is not None and is_loopback(resolved):
        from ray._private import ray_constants

        if getattr(ray_constants, "ENABLE_RAY_CLUSTER", False):
            raise UsageError(
                f"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER must be 0 before Ray is imported to join "
                f"the cluster at {resolved}, got Ray imported without it (Ray would dial this "
                "machine's network address instead of 127.0.0.1 and hang). Set "
                "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 and RAY_AUTH_MODE=disabled in the "
                "environment, or connect with proxytask.executors.ray.connect first."
            )
    try:
        if resolved is None:
            ray.init(
                address="local",
                namespace=NAMESPACE,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        else:
            ray.init(
                address=resolved,
                namespace=NAMESPACE,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
    except ConnectionError as exc:
        raise UsageError(
            f"--ray-address must name a running Ray cluster, got {address!r} ({exc}). {_START_HINT}"
        ) from exc
    return resolved is None


# --------------------------------------------------------------------------------------------
# The runner: the body of one trial's actor, on a cluster node
# --------------------------------------------------------------------------------------------


class TrialRunner:
    """Runs one trial's trainer on the node Ray placed it on (the class of a detached actor).

    The trainer starts in ``__init__``, in the controller's working dir ``cwd`` when this node
    has it (else the worker's). :meth:`poll` and :meth:`stop` return a report (a plain
    dict: ``state`` is ``running`` or a :class:`TrialState` value; ``exit_code``, ``cause``,
    ``message``, ``started_at``/``ended_at`` in epoch seconds, ``pid`` of the trial's process
    group, ``worker_pid``, ``node_id``, ``node_ip``). A thread enforces the time limit and the
    stop's SIGKILL, and removes this actor when nobody polled it for ``linger_secs`` after the
    trainer ended. It keeps time by this node's clocks: the controller's clock cannot travel.
    """

    def __init__(
        self, spec: TrialSpec, grace_secs: float, linger_secs: float, cwd: str | None = None
    ) -> None:
        import ray

        self._lock = threading.Lock()
        self._spec = spec
        self._grace = float(grace_secs)
        self._linger = float(linger_secs)
        self._remote_dir = not storage.is_local(spec.trial_dir)
        if self._remote_dir:
            self._log_dir = tempfile.mkdtemp(prefix="proxytask-trial-logs-")
            self._fetch_logs()
        else:
            self._log_dir = storage.to_local_path(spec.trial_dir)
        self._node_id = str(ray.get_runtime_context().get_node_id())
        self._node_ip = str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
        self._read_fd, self._write_fd = os.pipe()  # the launcher stops the trial on EOF
        self._process: TrialProcess | None = None
        self._outcome: ProcessOutcome | None = None
        self._started_at = time.time()
        self._ended_at: float | None = None
        self._last_poll = self._last_upload = time.monotonic()
        self._start(cwd, ",".join(str(g) for g in ray.get_gpu_ids()))
        threading.Thread(target=self._watch, name="proxytask-runner", daemon=True).start()

    def _start(self, cwd: str | None, gpus: str) -> None:
        spec = self._spec
        env = {**os.environ, **spec.env, "CUDA_VISIBLE_DEVICES": gpus}
        # relative paths in the trainer command mean what they meant to the controller,
        # where its working dir exists on this node (one machine, or a shared file system)
        workdir = cwd if cwd and os.path.isdir(cwd) else None
        try:
            os.makedirs(self._log_dir, exist_ok=True)
            proc = spawn_trial(spec.argv, env, self._log_dir, self._read_fd, self._grace, workdir)
        except OSError as exc:
            message = f"could not start the trial on node {self._node_ip}: {exc}"
            self._end(ProcessOutcome(TrialState.FAILED, FailureCause.CRASH, message, None))
            return
        self._process = TrialProcess(
            proc,
            self._log_dir,
            started=time.monotonic(),
            timeout_secs=spec.timeout_secs,
            grace_secs=self._grace,
            name=spec.trial_id,
        )

    # ---- actor methods -----------------------------------------------------------------------

    def poll(self) -> dict[str, Any]:
        """The trial's report, after reaping/enforcing what is due."""
        with self._lock:
            self._last_poll = time.monotonic()
            self._check()
            due = time.monotonic() - self._last_upload >= _LOG_UPLOAD_SECS
            if self._remote_dir and self._outcome is None and due:
                self._upload_logs()
            return self._report()

    def stop(self, grace_secs: float) -> dict[str, Any]:
        """SIGTERM the trial's process group; SIGKILL it after ``grace_secs`` (no-op once ended)."""
        with self._lock:
            self._last_poll = time.monotonic()
            self._check()
            if self._outcome is None and self._process is not None:
                self._process.stop(time.monotonic(), max(0.0, float(grace_secs)))
            return self._report()

    # ---- internals ---------------------------------------------------------------------------

    def _report(self) -> dict[str, Any]:
        outcome = self._outcome
        return {
            "state": "running" if outcome is None else outcome.state.value,
            "exit_code": None if outcome is None else outcome.exit_code,
            "cause": None if outcome is None or outcome.cause is None else outcome.cause.value,
            "message": "" if outcome is None else outcome.message,
            "started_at": self._started_at,
            "ended_at": self._ended_at,
            "pid": None if self._process is None else self._process.pid,
            "worker_pid": os.getpid(),
            "node_id": self._node_id,
            "node_ip": self._node_ip,
        }

    def _watch(self) -> None:
        while True:
            time.sleep(_WATCH_SECS)
            with self._lock:
                self._check()
                idle = time.monotonic() - self._last_poll
                done = self._outcome is not None
            if done and idle >= self._linger:
                logger.info(
                    "runner of %s: nobody came for the result; exiting", self._spec.trial_id
                )
                self._exit()
                return

    def _exit(self) -> None:
        import ray

        try:
            ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
        except Exception:  # pragma: no cover - the actor is going anyway
            os._exit(0)

    def _check(self) -> None:
        if self._process is None or self._outcome is not None:
            return
        outcome = self._process.check(time.monotonic())
        if outcome is not None:
            self._end(outcome)

    def _end(self, outcome: ProcessOutcome) -> None:
        self._outcome = outcome
        self._ended_at = time.time()
        if self._remote_dir:
            self._upload_logs()

    def _fetch_logs(self) -> None:
        for name in (layout.STDOUT_LOG, layout.STDERR_LOG):
            try:
                data = storage.read_bytes(layout.trial_file(self._spec.trial_dir, name))
            except (StorageError, OSError):
                data = None
            if data:
                with open(os.path.join(self._log_dir, name), "wb") as handle:
                    handle.write(data)

    def _upload_logs(self) -> None:
        self._last_upload = time.monotonic()
        for name in (layout.STDOUT_LOG, layout.STDERR_LOG):
            try:
                with open(os.path.join(self._log_dir, name), "rb") as handle:
                    data = handle.read()
                storage.write_bytes_atomic(layout.trial_file(self._spec.trial_dir, name), data)
            except (OSError, StorageError) as exc:
                logger.warning("could not upload %s of %s: %s", name, self._spec.trial_id, exc)


# --------------------------------------------------------------------------------------------
# The executor
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RayPlacement:
    """Where a trial runs: its node, its runner's worker process, its trial process group."""

    node_id: str
    node_ip: str
    worker_pid: int
    pid: int | None  # the launcher's pid = the trial's process-group id (None: never started)


@dataclasses.dataclass(kw_only=True)
class _RayTrial(TrialEntry):
    name: str  # the runner's actor name
    actor: Any = None  # the runner's handle once submitted
    inflight: Any = None  # the outstanding poll
    placement: RayPlacement | None = None


class RayExecutor(BookkeepingExecutor[_RayTrial]):
    """Runs each trial as a detached Ray actor anywhere in a cluster (see the module docstring).

    - ``max_parallel_trials`` runners at once; further launches wait PENDING in launch order.
      A submitted trial is PENDING until its runner reports (Ray may still be finding room).
    - Each trial asks Ray for ``resources.cpus`` CPUs and ``resources.gpus`` GPUs (fractions
      share a GPU); a request no live node could ever hold raises ExecutorError at launch.
    - ``stop`` asks the runner to SIGTERM the trial and SIGKILL it after ``grace_secs``;
      ``close`` stops every trial, waits up to ``grace_secs`` (+5 s), kills what is left and
      disconnects a cluster it started.
    - ``on_resume`` is what :meth:`reattach` does with a runner a dead controller left:
      ``reattach`` (keep it) or ``restart`` (stop it; the controller trains it again).
    - ``env``: variables set in every runner's worker process, before it imports anything (so
      the trainer gets them too): e.g. a storage endpoint and credentials the nodes lack.
      By default the nodes' own environment is used (that of ``ray start``).
    - ``clock``: dates the controller's view (ended trials without a runner report, the waits
      of ``close`` and a restart); runners keep time by their node's clocks.
    - ``grace_secs``: the SIGTERM-to-SIGKILL grace of ``close``, a restart and the launcher;
      ``linger_secs``: how long an ended trial's runner waits for a controller to collect its
      result; ``reattach_timeout_secs``: how long :meth:`reattach` waits for a runner's answer.

    Example::

        with RayExecutor(max_parallel_trials=8, address="auto") as executor:
            executor.launch(spec)
            while not executor.status(spec.trial_id).state.is_terminal:
                time.sleep(1)
            print(executor.placement(spec.trial_id))  # its node and process group
    """

    def __init__(
        self,
        max_parallel_trials: int = 1,
        *,
        address: str = "auto",
        on_resume: str = "reattach",
        grace_secs: float = 10.0,
        linger_secs: float = 600.0,
        reattach_timeout_secs: float = 30.0,
        env: Mapping[str, str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(max_parallel_trials, clock if clock is not None else SystemClock())
        if on_resume not in ON_RESUME_POLICIES:
            raise UsageError(
                f"--ray-on-resume must be one of {', '.join(ON_RESUME_POLICIES)}, got "
                f"{on_resume!r}. Use reattach to keep trials that outlived the controller."
            )
        if not grace_secs >= 0 or not linger_secs >= 0:
            raise UsageError(
                f"grace_secs and linger_secs must be >= 0, got {grace_secs!r} and "
                f"{linger_secs!r}. Use e.g. 10 and 600."
            )
        self._on_resume = on_resume
        self._grace = float(grace_secs)
        self._linger = float(linger_secs)
        self._reattach_timeout = float(reattach_timeout_secs)
        self._env = dict(env or {})
        self._owns_cluster = connect(address)
        import ray

        self._ray: Any = ray
        self._runner_class: Any = ray.remote(TrialRunner)
        self._fits: set[tuple[float, float]] = set()
        self._disconnected = False
        self._warned_unshared = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> tuple[Executor, Clock]:
        """``--executor ray``: trials as Ray actors on the cluster ``--ray-address`` names."""
        clock = SystemClock()
        executor = cls(
            max_parallel_trials=int(options["max_parallel_trials"]),
            address=str(options.get("ray_address") or "auto"),
            on_resume=str(options.get("ray_on_resume") or "reattach"),
            clock=clock,
        )
        return executor, clock

    # ---- public API --------------------------------------------------------------------------

    @property
    def on_resume(self) -> str:
        """The policy of :meth:`reattach`: ``reattach`` or ``restart``."""
        return self._on_resume

    def placement(self, trial_id: str) -> RayPlacement | None:
        """Where the trial runs (None until its runner reported)."""
        return self._get(trial_id).placement

    def pid(self, trial_id: str) -> int | None:
        """The trial's process-group id on its node (None until its runner reported)."""
        placement = self._get(trial_id).placement
        return None if placement is None else placement.pid

    def reattach(self, spec: TrialSpec) -> bool:
        """Take over the runner a dead controller left for ``spec``, by the resume policy.

        ``reattach``: when the trial's runner is still alive, adopt it (no relaunch; its
        status, even an ending that happened meanwhile, comes from the runner) and return True.
        ``restart``: stop a live runner (SIGTERM, grace, SIGKILL, then kill it) and return
        False, so the controller trains the trial again from scratch. False when no runner
        is left.
        """
        if self._closed:
            raise ExecutorError(
                f"executor must be open to reattach trials, got a closed one for "
                f"{spec.trial_id!r}. Create a new RayExecutor."
            )
        if spec.trial_id in self._trials:
            return True
        name = actor_name(spec.trial_dir)
        actor = self._find_actor(name)
        if actor is None:
            return False
        if self._on_resume == "restart":
            logger.info("restarting %s: stopping the runner its last controller left", name)
            self._dispose(actor, name)
            return False
        try:
            report = self._ray.get(actor.poll.remote(), timeout=self._reattach_timeout)
        except Exception as exc:  # dead or unreachable: the controller restarts it
            logger.warning("cannot reattach %s (%s); it will be restarted", name, exc)
            self._kill(actor)
            return False
        entry = _RayTrial(spec=spec, name=name, actor=actor)
        self._trials[spec.trial_id] = entry
        self._apply(entry, report)
        logger.info("reattached trial %s (%s)", spec.trial_id, entry.message)
        return True

    def check_output_dir(self, url: str) -> None:
        """Refuse a path on this machine when the cluster spans machines (UsageError).

        Trials on other nodes would write where the controller never looks. A path every
        node mounts at the same place (NFS) is allowed with
        ``PROXYTASK_RAY_SHARED_MOUNT=1`` in the controller's environment.
        """
        if storage.is_shared(url) or os.environ.get(SHARED_MOUNT_ENV) == "1":
            return
        hosts = sorted(
            {str(n.get("NodeManagerAddress")) for n in self._ray.nodes() if n.get("Alive")}
        )
        if len(hosts) > 1:
            raise UsageError(
                f"--root-output-dir must be shared storage when the Ray cluster spans machines "
                f"({', '.join(hosts)}), got the local path {url!r}: trials on other nodes would "
                "write where the controller never looks. Use an fsspec URL such as "
                f"s3://bucket/prefix, or set {SHARED_MOUNT_ENV}=1 if every node mounts this path "
                "at the same place."
            )

    # ---- the hooks ---------------------------------------------------------------------------

    def _admit(self, spec: TrialSpec) -> _RayTrial:
        """Refuse a non-command trainer or resources no live node has."""
        check_command_trainer(spec, "ray")
        self._check_fits(spec.resources)
        self._warn_if_unshared(spec.trial_dir)
        return _RayTrial(spec=spec, name=actor_name(spec.trial_dir))

    def _start(self, entry: _RayTrial, at: float) -> bool:
        """Submit the trial's runner; it stays PENDING until the runner reports."""
        try:
            entry.actor = self._create_runner(entry)
        except Exception as exc:
            message = f"could not start the trial's runner: {exc}"
            self._end(entry, TrialState.FAILED, None, FailureCause.CRASH, message)
            return True
        entry.inflight = entry.actor.poll.remote()
        return True

    def _signal_stop(self, entry: _RayTrial, grace_secs: float) -> None:
        """A runner not placed yet ends the trial STOPPED; a running one gets SIGTERM."""
        if entry.state is TrialState.PENDING:
            self._end(entry, TrialState.STOPPED, None, None, "stopped before it started")
        else:
            entry.actor.stop.remote(grace_secs)

    def _poll(self) -> None:
        if self._disconnected:
            return
        waiting = {e.inflight: e for e in self._trials.values() if e.inflight is not None}
        if waiting:
            ready, _ = self._ray.wait(list(waiting), num_returns=len(waiting), timeout=0)
            for ref in ready:
                entry = waiting[ref]
                entry.inflight = None
                self._absorb(entry, ref)
        for entry in self._trials.values():
            if entry.actor is not None and entry.inflight is None and not entry.state.is_terminal:
                entry.inflight = entry.actor.poll.remote()

    def _release(self, entry: _RayTrial) -> None:
        if entry.actor is not None:
            self._kill(entry.actor)
            entry.actor = None
        entry.inflight = None

    def _can_close(self) -> bool:
        if self._disconnected:
            return False
        if not self._ray.is_initialized():
            self._closed = self._disconnected = True
            return False
        return True

    def _shutdown(self) -> None:
        """Stop every trial, wait up to the grace (+5 s), kill what is left, disconnect."""
        for entry in self._trials.values():
            if entry.state is TrialState.PENDING and entry.actor is not None:
                self._end(entry, TrialState.STOPPED, None, None, "stopped before it started")
            elif entry.state is TrialState.RUNNING and not entry.stop_requested:
                entry.stop_requested = True
                entry.actor.stop.remote(self._grace)
        deadline = self._clock.now() + self._grace + 5.0
        while self._clock.now() < deadline and any(
            not e.state.is_terminal for e in self._trials.values()
        ):
            self._clock.sleep(0.05)
            self._poll()
        for entry in self._trials.values():
            if not entry.state.is_terminal:
                message = "stopped: its runner did not answer in time and was killed"
                self._end(entry, TrialState.STOPPED, None, None, message)
            self._release(entry)
        self._disconnected = True
        if self._owns_cluster:
            self._ray.shutdown()

    # ---- internals ---------------------------------------------------------------------------

    def _check_fits(self, resources: Resources) -> None:
        key = (resources.cpus, resources.gpus)
        if key in self._fits:
            return
        nodes = [n for n in self._ray.nodes() if n.get("Alive")]
        need = {"CPU": resources.cpus, "GPU": resources.gpus}
        for node in nodes:
            have = node.get("Resources", {})
            if all(have.get(k, 0.0) + _EPS >= v for k, v in need.items() if v > _EPS):
                self._fits.add(key)
                return
        largest = max(
            ((n["Resources"].get("CPU", 0.0), n["Resources"].get("GPU", 0.0)) for n in nodes),
            default=(0.0, 0.0),
        )
        raise ExecutorError(
            f"a trial's resources must fit on one live Ray node, got {resources.cpus:g} CPU "
            f"and {resources.gpus:g} GPU per trial while the largest node has {largest[0]:g} "
            f"CPU and {largest[1]:g} GPU ({len(nodes)} node(s)). Lower --gpus-per-trial, or "
            "add a node with enough GPUs to the cluster before starting the controller."
        )

    def _warn_if_unshared(self, trial_dir: str) -> None:
        if self._warned_unshared:
            return
        self._warned_unshared = True
        self.check_output_dir(trial_dir)

    def _absorb(self, entry: _RayTrial, ref: Any) -> None:
        exceptions = self._ray.exceptions
        if entry.state.is_terminal:
            return
        try:
            report = self._ray.get(ref)
        except exceptions.ActorUnavailableError:
            return  # may come back (a network blip); asked again on the next poll
        except exceptions.RayActorError as exc:
            self._runner_died(entry, exc)
            return
        except exceptions.RayError as exc:
            message = lost_message(entry.placement, str(exc))
            self._end(entry, TrialState.FAILED, None, FailureCause.LOST, message)
            return
        self._apply(entry, report)

    def _runner_died(self, entry: _RayTrial, exc: Any) -> None:
        text = str(exc)
        entry.actor = None  # dead: nothing to kill
        if getattr(exc, "actor_init_failed", False):
            last = next((ln for ln in reversed(text.splitlines()) if ln.strip()), text)
            message = (
                f"could not start the trial's runner on the cluster: {last.strip()[:300]}. "
                "Every node must have proxytask installed in the Python environment Ray uses."
            )
            self._end(entry, TrialState.FAILED, None, FailureCause.CRASH, message)
        else:
            message = lost_message(entry.placement, text)
            self._end(entry, TrialState.FAILED, None, FailureCause.LOST, message)

    def _apply(self, entry: _RayTrial, report: Mapping[str, Any]) -> None:
        entry.placement = RayPlacement(
            node_id=str(report["node_id"]),
            node_ip=str(report["node_ip"]),
            worker_pid=int(report["worker_pid"]),
            pid=report["pid"],
        )
        entry.started_at = report["started_at"]
        if report["state"] == "running":
            if entry.state is TrialState.PENDING:
                entry.state = TrialState.RUNNING
                entry.message = (
                    f"running as pid {report['pid']} on node {entry.placement.node_ip}"
                    f" ({entry.placement.node_id[:12]})"
                )
            return
        cause = report["cause"]
        self._end(
            entry,
            TrialState(report["state"]),
            report["exit_code"],
            None if cause is None else FailureCause(cause),
            str(report["message"]),
            at=report["ended_at"],
        )

    def _create_runner(self, entry: _RayTrial) -> Any:
        spec = entry.spec
        options = {
            "name": entry.name,
            "namespace": NAMESPACE,
            "lifetime": "detached",
            "num_cpus": spec.resources.cpus,
            "num_gpus": spec.resources.gpus,
            "max_restarts": 0,
        }
        if self._env:
            options["runtime_env"] = {"env_vars": self._env}
        args = (spec, self._grace, self._linger, os.getcwd())
        try:
            return self._runner_class.options(**options).remote(*args)
        except ValueError:
            # a runner of this trial dir is left from an attempt the controller never recorded
            old = self._find_actor(entry.name)
            if old is None:
                raise
            logger.warning("stopping a leftover runner of %s before relaunching it", entry.name)
            self._dispose(old, entry.name)
            return self._runner_class.options(**options).remote(*args)

    def _find_actor(self, name: str) -> Any:
        try:
            return self._ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return None

    def _dispose(self, actor: Any, name: str) -> None:
        """Stop a runner's trial (SIGTERM, grace, SIGKILL), kill it, wait for its name to free."""
        clock = self._clock
        deadline = clock.now() + self._grace + 10.0
        try:
            report = self._ray.get(actor.stop.remote(self._grace), timeout=self._reattach_timeout)
            while report["state"] == "running" and clock.now() < deadline:
                clock.sleep(0.1)
                report = self._ray.get(actor.poll.remote(), timeout=self._reattach_timeout)
        except Exception as exc:  # already dead or unreachable: killing it is all that is left
            logger.info("runner %s did not answer its stop (%s); killing it", name, exc)
        self._kill(actor)
        while self._find_actor(name) is not None and clock.now() < deadline:
            clock.sleep(0.05)

    def _kill(self, actor: Any) -> None:
        try:
            self._ray.kill(actor, no_restart=True)
        except Exception as exc:  # pragma: no cover - already gone
            logger.debug("could not kill a runner: %s", exc)
