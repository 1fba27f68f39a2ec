"""The Ray executor: each trial is a detached Ray actor that runs the trainer command on a node.

A trial becomes one *runner*: a detached, named Ray actor (namespace ``proxytask``, named after
the trial dir) holding ``num_cpus``/``num_gpus`` from the trial's resources, placed anywhere in
the cluster. The runner starts the trainer exactly as the local executor does — the same argv
and environment (plus ``CUDA_VISIBLE_DEVICES`` for the GPUs Ray gave it), under the same
launcher (:func:`proxytask.executors.local.spawn_trial`), so the trainer and its children die
when the runner's worker process dies, however it dies — and keeps its exit status.

- The runner watches its trainer by itself: the time limit (``spec.timeout_secs``) and the
  SIGKILL after a stop's grace are enforced on the node, also while no controller is alive.
  It judges the exit with :func:`proxytask.executors.local.exit_outcome` (stderr tail and the
  trainer's ``TRIAL_FAILURE.json``), exactly as the local executor does.
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
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from typing import Any

from proxytask.core import layout, storage
from proxytask.core.errors import ExecutorError, StorageError, UsageError
from proxytask.executors.base import (
    Executor,
    FailureCause,
    Resources,
    TrainerSpec,
    TrialSpec,
    TrialState,
    TrialStatus,
)
from proxytask.executors.causes import ADVICE
from proxytask.executors.local import (
    exit_outcome,
    read_reported_cause,
    read_stderr_tail,
    signal_group,
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
    trainer ended.
    """

    def __init__(
        self,
        spec: TrialSpec,
        grace_secs: float,
        linger_secs: float,
        failure_signature: tuple[Any, ...] | None,
        cwd: str | None = None,
    ) -> None:
        import ray

        self._lock = threading.Lock()
        self._spec = spec
        self._grace = float(grace_secs)
        self._linger = float(linger_secs)
        self._signature = failure_signature
        self._remote_dir = not storage.is_local(spec.trial_dir)
        if self._remote_dir:
            self._log_dir = tempfile.mkdtemp(prefix="proxytask-trial-logs-")
            self._fetch_logs()
        else:
            self._log_dir = storage.to_local_path(spec.trial_dir)
        self._node_id = str(ray.get_runtime_context().get_node_id())
        self._node_ip = str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
        self._read_fd, self._write_fd = os.pipe()  # the launcher stops the trial on EOF
        self._proc: Any = None
        self._outcome: tuple[TrialState, FailureCause | None, str] | None = None
        self._exit_code: int | None = None
        self._stop_requested = False
        self._timed_out = False
        self._kill_at: float | None = None
        self._started_at = time.time()
        self._started = time.monotonic()
        self._ended_at: float | None = None
        self._last_poll = time.monotonic()
        self._last_upload = time.monotonic()
        gpus = ",".join(str(g) for g in ray.get_gpu_ids())
        env = {**os.environ, **spec.env, "CUDA_VISIBLE_DEVICES": gpus}
        # relative paths in the trainer command mean what they meant to the controller,
        # where its working dir exists on this node (one machine, or a shared file system)
        workdir = cwd if cwd and os.path.isdir(cwd) else None
        try:
            os.makedirs(self._log_dir, exist_ok=True)
            self._proc = spawn_trial(
                spec.argv, env, self._log_dir, self._read_fd, self._grace, cwd=workdir
            )
        except OSError as exc:
            self._end(
                (
                    TrialState.FAILED,
                    FailureCause.CRASH,
                    f"could not start the trial on node {self._node_ip}: {exc}",
                ),
                None,
            )
        threading.Thread(target=self._watch, name="proxytask-runner", daemon=True).start()

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
            if self._outcome is None and not self._stop_requested:
                self._stop_requested = True
                self._terminate(max(0.0, float(grace_secs)))
            return self._report()

    # ---- internals ---------------------------------------------------------------------------

    def _report(self) -> dict[str, Any]:
        state, cause, message = self._outcome or (None, None, "")
        return {
            "state": "running" if state is None else state.value,
            "exit_code": self._exit_code,
            "cause": None if cause is None else cause.value,
            "message": message,
            "started_at": self._started_at,
            "ended_at": self._ended_at,
            "pid": None if self._proc is None else self._proc.pid,
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
        proc = self._proc
        if proc is None or self._outcome is not None:
            return
        code = proc.poll()
        if code is not None:
            self._finish(code)
            return
        now = time.monotonic()
        limit = self._spec.timeout_secs
        if (
            limit is not None
            and not self._timed_out
            and not self._stop_requested
            and now - self._started >= limit
        ):
            self._timed_out = True
            self._terminate(self._grace)
        if self._kill_at is not None and now >= self._kill_at:
            self._kill_at = None
            signal_group(proc.pid, signal.SIGKILL)

    def _terminate(self, grace: float) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        signal_group(self._proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        if self._kill_at is None or deadline < self._kill_at:
            self._kill_at = deadline

    def _finish(self, code: int) -> None:
        assert self._proc is not None
        signal_group(self._proc.pid, signal.SIGKILL)  # whatever the trainer left behind
        stopped = self._stop_requested
        tail = "" if stopped else read_stderr_tail(os.path.join(self._log_dir, layout.STDERR_LOG))
        reported = None if stopped else read_reported_cause(self._spec.trial_dir, self._signature)
        outcome = exit_outcome(
            code,
            stop_requested=stopped,
            timed_out=self._timed_out,
            stderr_tail=tail,
            reported_cause=reported,
        )
        self._end(outcome, code)

    def _end(self, outcome: tuple[TrialState, FailureCause | None, str], code: int | None) -> None:
        self._outcome = outcome
        self._exit_code = code
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


@dataclasses.dataclass
class _Trial:
    spec: TrialSpec
    name: str
    state: TrialState = TrialState.PENDING
    actor: Any = None  # the runner's handle once submitted
    inflight: Any = None  # the outstanding poll
    placement: RayPlacement | None = None
    stop_requested: bool = False
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    cause: FailureCause | None = None
    message: str = ""


class RayExecutor(Executor):
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
    - ``grace_secs``: the SIGTERM-to-SIGKILL grace of ``close``, a restart and the launcher;
      ``linger_secs``: how long an ended trial's runner waits for a controller to collect its
      result; ``reattach_timeout_secs``: how long :meth:`reattach` waits for a runner's answer.

    Example::

        with RayExecutor(max_parallel_trials=8, address="auto") as executor:
            executor.launch(spec)
            while not executor.status(spec.trial_id).state.is_terminal:
                time.sleep(1)
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
    ) -> None:
        if (
            isinstance(max_parallel_trials, bool)
            or not isinstance(max_parallel_trials, int)
            or max_parallel_trials < 1
        ):
            raise UsageError(
                f"max_parallel_trials must be an integer >= 1, got {max_parallel_trials!r}. "
                "Pass e.g. --max-parallel-trials 8."
            )
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
        self._max_parallel = max_parallel_trials
        self._on_resume = on_resume
        self._grace = float(grace_secs)
        self._linger = float(linger_secs)
        self._reattach_timeout = float(reattach_timeout_secs)
        self._env = dict(env or {})
        self._owns_cluster = connect(address)
        import ray

        self._ray: Any = ray
        self._runner_class: Any = ray.remote(TrialRunner)
        self._trials: dict[str, _Trial] = {}
        self._queue: list[str] = []
        self._fits: set[tuple[float, float]] = set()
        self._closed = False
        self._disconnected = False
        self._warned_unshared = False

    # ---- public API --------------------------------------------------------------------------

    @property
    def max_parallel_trials(self) -> int:
        """How many trials may run at once."""
        return self._max_parallel

    @property
    def on_resume(self) -> str:
        """The policy of :meth:`reattach`: ``reattach`` or ``restart``."""
        return self._on_resume

    def launch(self, spec: TrialSpec) -> None:
        """Submit the trial's runner now, or queue it (PENDING) until a slot frees.

        Raises ExecutorError for a duplicate id, a closed executor, a trainer that is not a
        command, or resources no live node has.
        """
        if self._closed:
            raise ExecutorError(
                f"executor must be open to launch trials, got a closed one for "
                f"{spec.trial_id!r}. Create a new RayExecutor."
            )
        if spec.trial_id in self._trials:
            raise ExecutorError(
                f"trial ids must be unique per executor, got {spec.trial_id!r} a second time. "
                "Use a new trial id (controllers number trials deterministically)."
            )
        if not isinstance(spec.trainer, TrainerSpec) or not spec.trainer.argv:
            raise ExecutorError(
                f"the ray executor must get a command trainer, got {spec.trainer!r} for "
                f"{spec.trial_id!r}."
            )
        self._check_fits(spec.resources)
        self._warn_if_unshared(spec.trial_dir)
        self._trials[spec.trial_id] = _Trial(spec=spec, name=actor_name(spec.trial_dir))
        self._queue.append(spec.trial_id)
        self._poll()

    def status(self, trial_id: str) -> TrialStatus:
        """The trial's status from the latest runner report (never waits for the runner)."""
        trial = self._get(trial_id)
        self._poll()
        return self._status_of(trial)

    def statuses(self, trial_ids: list[str] | None = None) -> Mapping[str, TrialStatus]:
        """Statuses of several trials (all by default), from one poll."""
        ids = self.known_trials() if trial_ids is None else trial_ids
        trials = [self._get(tid) for tid in ids]
        self._poll()
        return {t.spec.trial_id: self._status_of(t) for t in trials}

    def stop(self, trial_id: str, grace_secs: float = 10.0) -> None:
        """Ask the runner to SIGTERM the trial now and SIGKILL it after ``grace_secs``.

        Returns at once. A trial still waiting (queued, or its runner not yet placed) ends
        STOPPED without running; an ended trial is left as it is.
        """
        trial = self._get(trial_id)
        self._poll()
        if trial.state.is_terminal:
            return
        if trial_id in self._queue:
            self._queue.remove(trial_id)
            self._end(trial, TrialState.STOPPED, None, None, "stopped before it started")
            return
        if trial.state is TrialState.PENDING:
            trial.stop_requested = True
            self._end(trial, TrialState.STOPPED, None, None, "stopped before it started")
            self._release(trial)
            return
        if not trial.stop_requested:
            trial.stop_requested = True
            trial.actor.stop.remote(max(0.0, float(grace_secs)))
        self._poll()

    def free_slots(self) -> int:
        """Trials that would start at once now: the limit minus running and queued trials.

        Cluster capacity is not counted: a runner Ray cannot place yet waits PENDING.
        """
        self._poll()
        if self._closed:
            return 0
        busy = sum(1 for t in self._trials.values() if not t.state.is_terminal)
        return max(0, self._max_parallel - busy)

    def known_trials(self) -> list[str]:
        """Ids of every trial launched or reattached here, in that order."""
        return list(self._trials)

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
        trial = _Trial(spec=spec, name=name, actor=actor)
        self._trials[spec.trial_id] = trial
        self._apply(trial, report)
        logger.info("reattached trial %s (%s)", spec.trial_id, trial.message)
        return True

    def close(self) -> None:
        """Stop every trial (queued ones never start), wait up to the grace, kill the rest.

        Idempotent. Afterwards no runner of this executor is alive, ``status`` still answers,
        and a cluster this executor started is shut down.
        """
        if self._disconnected:
            return
        self._closed = True
        if not self._ray.is_initialized():
            self._disconnected = True
            return
        self._poll()
        for tid in list(self._queue):
            self._end(
                self._trials[tid], TrialState.STOPPED, None, None, "stopped before it started"
            )
        self._queue.clear()
        for trial in self._trials.values():
            if trial.state is TrialState.PENDING and trial.actor is not None:
                self._end(trial, TrialState.STOPPED, None, None, "stopped before it started")
                self._release(trial)
            elif trial.state is TrialState.RUNNING and not trial.stop_requested:
                trial.stop_requested = True
                trial.actor.stop.remote(self._grace)
        deadline = time.monotonic() + self._grace + 5.0
        while time.monotonic() < deadline and any(
            not t.state.is_terminal for t in self._trials.values()
        ):
            time.sleep(0.05)
            self._poll()
        for trial in self._trials.values():
            if not trial.state.is_terminal:
                self._end(
                    trial,
                    TrialState.STOPPED,
                    None,
                    None,
                    "stopped: its runner did not answer in time and was killed",
                )
            self._release(trial)
        self._disconnected = True
        if self._owns_cluster:
            self._ray.shutdown()

    # ---- internals ---------------------------------------------------------------------------

    def _get(self, trial_id: str) -> _Trial:
        try:
            return self._trials[trial_id]
        except KeyError:
            raise KeyError(
                f"trial id must be one launched by this executor, got {trial_id!r}"
            ) from None

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

    def _poll(self) -> None:
        if self._disconnected:
            return
        waiting = {t.inflight: t for t in self._trials.values() if t.inflight is not None}
        if waiting:
            ready, _ = self._ray.wait(list(waiting), num_returns=len(waiting), timeout=0)
            for ref in ready:
                trial = waiting[ref]
                trial.inflight = None
                self._absorb(trial, ref)
        self._submit_queued()
        for trial in self._trials.values():
            if trial.actor is not None and trial.inflight is None and not trial.state.is_terminal:
                trial.inflight = trial.actor.poll.remote()

    def _absorb(self, trial: _Trial, ref: Any) -> None:
        exceptions = self._ray.exceptions
        if trial.state.is_terminal:
            return
        try:
            report = self._ray.get(ref)
        except exceptions.ActorUnavailableError:
            return  # may come back (a network blip); asked again on the next poll
        except exceptions.RayActorError as exc:
            self._runner_died(trial, exc)
            return
        except exceptions.RayError as exc:
            message = lost_message(trial.placement, str(exc))
            self._end(trial, TrialState.FAILED, None, FailureCause.LOST, message)
            self._release(trial)
            return
        self._apply(trial, report)

    def _runner_died(self, trial: _Trial, exc: Any) -> None:
        text = str(exc)
        if getattr(exc, "actor_init_failed", False):
            last = next((ln for ln in reversed(text.splitlines()) if ln.strip()), text)
            message = (
                f"could not start the trial's runner on the cluster: {last.strip()[:300]}. "
                "Every node must have proxytask installed in the Python environment Ray uses."
            )
            self._end(trial, TrialState.FAILED, None, FailureCause.CRASH, message)
        else:
            self._end(
                trial,
                TrialState.FAILED,
                None,
                FailureCause.LOST,
                lost_message(trial.placement, text),
            )
        trial.actor = None

    def _apply(self, trial: _Trial, report: Mapping[str, Any]) -> None:
        trial.placement = RayPlacement(
            node_id=str(report["node_id"]),
            node_ip=str(report["node_ip"]),
            worker_pid=int(report["worker_pid"]),
            pid=report["pid"],
        )
        trial.started_at = report["started_at"]
        if report["state"] == "running":
            if trial.state is TrialState.PENDING:
                trial.state = TrialState.RUNNING
                trial.message = (
                    f"running as pid {report['pid']} on node {trial.placement.node_ip}"
                    f" ({trial.placement.node_id[:12]})"
                )
            return
        cause = report["cause"]
        self._end(
            trial,
            TrialState(report["state"]),
            report["exit_code"],
            None if cause is None else FailureCause(cause),
            str(report["message"]),
            ended_at=report["ended_at"],
        )
        self._release(trial)

    def _submit_queued(self) -> None:
        if self._closed:
            return
        while self._queue:
            active = sum(
                1 for t in self._trials.values() if t.actor is not None and not t.state.is_terminal
            )
            if active >= self._max_parallel:
                return
            trial = self._trials[self._queue.pop(0)]
            try:
                trial.actor = self._create_runner(trial)
            except Exception as exc:
                self._end(
                    trial,
                    TrialState.FAILED,
                    None,
                    FailureCause.CRASH,
                    f"could not start the trial's runner: {exc}",
                )

    def _create_runner(self, trial: _Trial) -> Any:
        spec = trial.spec
        signature = storage.file_signature(layout.trial_file(spec.trial_dir, layout.TRIAL_FAILURE))
        options = {
            "name": trial.name,
            "namespace": NAMESPACE,
            "lifetime": "detached",
            "num_cpus": spec.resources.cpus,
            "num_gpus": spec.resources.gpus,
            "max_restarts": 0,
        }
        if self._env:
            options["runtime_env"] = {"env_vars": self._env}
        args = (spec, self._grace, self._linger, signature, os.getcwd())
        try:
            return self._runner_class.options(**options).remote(*args)
        except ValueError:
            # a runner of this trial dir is left from an attempt the controller never recorded
            old = self._find_actor(trial.name)
            if old is None:
                raise
            logger.warning("stopping a leftover runner of %s before relaunching it", trial.name)
            self._dispose(old, trial.name)
            return self._runner_class.options(**options).remote(*args)

    def _find_actor(self, name: str) -> Any:
        try:
            return self._ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return None

    def _dispose(self, actor: Any, name: str) -> None:
        """Stop a runner's trial (SIGTERM, grace, SIGKILL), kill it, wait for its name to free."""
        deadline = time.monotonic() + self._grace + 10.0
        try:
            report = self._ray.get(actor.stop.remote(self._grace), timeout=self._reattach_timeout)
            while report["state"] == "running" and time.monotonic() < deadline:
                time.sleep(0.1)
                report = self._ray.get(actor.poll.remote(), timeout=self._reattach_timeout)
        except Exception as exc:  # already dead or unreachable: killing it is all that is left
            logger.info("runner %s did not answer its stop (%s); killing it", name, exc)
        self._kill(actor)
        while self._find_actor(name) is not None and time.monotonic() < deadline:
            time.sleep(0.05)

    def _kill(self, actor: Any) -> None:
        try:
            self._ray.kill(actor, no_restart=True)
        except Exception as exc:  # pragma: no cover - already gone
            logger.debug("could not kill a runner: %s", exc)

    def _release(self, trial: _Trial) -> None:
        if trial.actor is not None:
            self._kill(trial.actor)
            trial.actor = None
        trial.inflight = None

    def _end(
        self,
        trial: _Trial,
        state: TrialState,
        code: int | None,
        cause: FailureCause | None,
        message: str,
        *,
        ended_at: float | None = None,
    ) -> None:
        trial.state = state
        trial.exit_code = code
        trial.cause = cause
        trial.message = message
        trial.ended_at = time.time() if ended_at is None else ended_at
        logger.info("trial %s ended %s: %s", trial.spec.trial_id, state.value, message)

    def _status_of(self, trial: _Trial) -> TrialStatus:
        return TrialStatus(
            trial_id=trial.spec.trial_id,
            state=trial.state,
            exit_code=trial.exit_code,
            cause=trial.cause,
            message=trial.message,
            started_at=trial.started_at,
            ended_at=trial.ended_at,
        )
