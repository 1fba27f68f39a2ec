"""One writer per run: a lease file in the dir a controller or workflow writes.

A command that writes a run's dir first takes its lease, ``LEASE.json``: who holds it (host,
pid, the process's start, the command), a random token, and a heartbeat renewed by a
background thread every :data:`RENEW_EVERY_SECS`. The lease is created only if no lease
exists (:func:`proxytask.core.storage.create_exclusive`: a hard link on local disk and NFS, a
conditional put on S3 and GCS), so of two commands started together exactly one gets it;
the other is refused with one line naming the holder and what to do.

A lease whose holder is gone is *stale* and the next command takes it over, saying so: on the
same host at once when the holder's pid is dead (or now belongs to another process); from
anywhere once its heartbeat is older than ``stale_after_secs`` (a crash on another machine, or
a controller frozen that long). A holder that finds on renewal that its lease was taken over
marks it :attr:`Lease.lost`; controllers check it every step and stop
(:meth:`Lease.check`). Read-only commands (``status``, ``report``, ``dashboard``) never take
a lease.

Take-over on an object store deletes the stale lease and creates a new one; two commands
taking over the same stale lease at the very same moment could both believe they won there
(local disk renames the stale file away first, which only one can do). Both then see the
other's token at their next renewal, and the later one stops.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from proxytask.core import storage
from proxytask.core.errors import ProxyTaskError, UsageError

__all__ = [
    "LEASE_FILE",
    "Lease",
    "LeaseLostError",
    "acquire_lease",
    "describe_holder",
    "is_stale",
    "lease_note",
]

logger = logging.getLogger(__name__)

LEASE_FILE = "LEASE.json"
RENEW_EVERY_SECS = 10.0
STALE_AFTER_SECS = 120.0


class LeaseLostError(ProxyTaskError):
    """Another command took this command's lease over (its heartbeat went stale)."""


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()  # field 22 of the whole line: starttime
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(command: str, now: float, token: str) -> dict[str, Any]:
    pid = os.getpid()
    return {
        "version": 1,
        "token": token,
        "host": socket.gethostname(),
        "pid": pid,
        "process_start": _process_start(pid),
        "command": command,
        "started_at": now,
        "heartbeat_at": now,
    }


def is_stale(lease: dict[str, Any], now: float, stale_after_secs: float) -> bool:
    """True when the holder of ``lease`` is gone: on this host, its pid is dead or reused;
    anywhere, its heartbeat is older than ``stale_after_secs``."""
    beat = lease.get("heartbeat_at")
    if not isinstance(beat, (int, float)) or now - beat > stale_after_secs:
        return True
    pid = lease.get("pid")
    if lease.get("host") == socket.gethostname() and isinstance(pid, int):
        if not _pid_alive(pid):
            return True
        start = lease.get("process_start")
        if start is not None and _process_start(pid) not in (None, start):
            return True  # the pid now belongs to another process
    return False


def describe_holder(lease: dict[str, Any], now: float) -> str:
    """``pid 123 on host h (proxytask run …), started 2026-… , last heartbeat 3 s ago``."""
    started = lease.get("started_at")
    beat = lease.get("heartbeat_at")
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
        if isinstance(started, (int, float))
        else "at an unknown time"
    )
    ago = f"{now - beat:.0f} s ago" if isinstance(beat, (int, float)) else "never"
    command = f" ({lease['command']})" if lease.get("command") else ""
    return (
        f"pid {lease.get('pid')} on host {lease.get('host')}{command}, started {when}, "
        f"last heartbeat {ago}"
    )


def lease_note(directory: str, now: float | None = None) -> str | None:
    """One line on who holds ``directory`` now, for ``proxytask status`` (None: no lease,
    nothing runs there). Reads only: a status never takes or changes a lease."""
    lease = _read(storage.join(directory, LEASE_FILE))
    if lease is None:
        return None
    now = time.time() if now is None else now
    if is_stale(lease, now, STALE_AFTER_SECS):
        return (
            f"not running: its last command ({describe_holder(lease, now)}) ended without "
            "releasing the dir; the next resume takes it over"
        )
    return f"running: {describe_holder(lease, now)}"


def _read(path: str) -> dict[str, Any] | None:
    """The lease at ``path``; a damaged one reads as ``{}`` (stale: no heartbeat)."""
    try:
        data = storage.read_json(path)
    except ProxyTaskError:
        return {}
    if data is None:
        return None
    return data if isinstance(data, dict) else {}


def _create(path: str, data: dict[str, Any]) -> bool:
    """Create ``path`` holding ``data`` unless it exists; False when it did."""
    return storage.create_exclusive(path, json.dumps(data, indent=1).encode())


def _remove_stale(path: str, stale: dict[str, Any]) -> bool:
    """Remove the stale lease ``stale`` at ``path``; False when another took it first."""
    if storage.is_local(path):
        aside = f"{path}.stale-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(path, aside)  # only one of several takers can move it
        except FileNotFoundError:
            return False
        moved = _read(aside)
        if moved is not None and moved.get("token") != stale.get("token"):
            os.rename(aside, path)  # a fresh lease, not the stale one we judged: put it back
            return False
        os.unlink(aside)
        return True
    storage.remove(path)
    return True


@dataclasses.dataclass
class Lease:
    """A held lease: renewed in the background until :meth:`release`."""

    path: str
    token: str
    data: dict[str, Any]
    took_over: str | None = None  # the stale holder this lease replaced, described
    lost: str | None = None  # why the lease was lost, once it was
    _stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start_renewing(self, every_secs: float, clock: Callable[[], float]) -> None:
        """Renew the heartbeat every ``every_secs`` in a daemon thread."""

        def loop() -> None:
            while not self._stop.wait(every_secs):
                try:
                    self.renew(clock())
                except Exception:  # a flaky store: the next renewal retries
                    logger.warning("could not renew the lease %s", self.path, exc_info=True)
                if self.lost:
                    return

        self._thread = threading.Thread(target=loop, name="proxytask-lease", daemon=True)
        self._thread.start()

    def renew(self, now: float) -> None:
        """Write a new heartbeat, unless the lease was taken over (then mark it lost)."""
        current = _read(self.path)
        if current is None or current.get("token") != self.token:
            holder = describe_holder(current, now) if current else "nobody (it was removed)"
            self.lost = f"the lease {self.path} is now held by {holder}"
            return
        self.data = {**self.data, "heartbeat_at": now}
        storage.write_json_atomic(self.path, self.data, durable=False)

    def check(self) -> None:
        """Raise :class:`LeaseLostError` when the lease was taken over."""
        if self.lost:
            raise LeaseLostError(
                f"this run lost its dir to another command: {self.lost}. It stopped without "
                "writing more; the other command carries the run on."
            )

    def release(self) -> None:
        """Stop renewing and remove the lease file if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        current = _read(self.path)
        if current is not None and current.get("token") == self.token:
            try:
                storage.remove(self.path)
            except ProxyTaskError:
                logger.warning("could not remove the lease %s", self.path, exc_info=True)


def acquire_lease(
    directory: str,
    command: str,
    *,
    stale_after_secs: float = STALE_AFTER_SECS,
    renew_every_secs: float = RENEW_EVERY_SECS,
    clock: Callable[[], float] = time.time,
) -> Lease:
    """Take the lease of ``directory`` (which must exist) for ``command``, or raise
    :class:`UsageError` naming its holder. A stale lease is taken over (see the module)."""
    path = storage.join(directory, LEASE_FILE)
    token = uuid.uuid4().hex
    for _ in range(3):
        now = clock()
        data = _holder(command, now, token)
        if _create(path, data):
            lease = Lease(path, token, data)
            lease.start_renewing(renew_every_secs, clock)
            return lease
        current = _read(path)
        if current is None:
            continue  # released meanwhile: try again
        if not is_stale(current, now, stale_after_secs):
            raise UsageError(
                f"{directory} is in use by another proxytask command: "
                f"{describe_holder(current, now)}. Wait for it to end or stop it; if it "
                f"crashed on another machine, its lease goes stale {stale_after_secs:g} s "
                f"after its last heartbeat and the next run takes over (or remove {path} once "
                "you are sure it is gone)."
            )
        described = describe_holder(current, now) if current else "a damaged lease"
        if _remove_stale(path, current):
            now = clock()
            data = _holder(command, now, token)
            if _create(path, data):
                logger.warning("took over the stale lease of %s (%s)", directory, described)
                lease = Lease(path, token, data, took_over=described)
                lease.start_renewing(renew_every_secs, clock)
                return lease
    raise UsageError(
        f"{directory} is in use by another proxytask command that took its lease at the same "
        "moment. Wait for it to end or stop it."
    )
