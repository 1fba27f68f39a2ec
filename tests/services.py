"""Real services the tests start (a local Ray cluster, an S3-compatible server) and their cleanup.

Every process a test fixture starts is registered here by pid, in the directory named by
``PROXYTASK_TEST_SERVICES_DIR`` (a fresh temp dir per pytest run when unset). Fixtures stop
their own processes in their teardown; ``.ci/run`` then calls ``python -m tests.services
cleanup DIR`` after the test run, which stops anything still alive (TERM, then KILL after 10 s:
Ray's ``gcs_server`` and ``raylet`` ignore TERM) and fails CI when it had to, so a leaked
process is caught even when a test or its teardown crashed.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["alive", "cleanup", "register", "services_dir", "stop_pid"]

ENV = "PROXYTASK_TEST_SERVICES_DIR"


def services_dir() -> Path:
    """The registry dir of this test run (created on first use)."""
    path = os.environ.get(ENV)
    if not path:
        path = tempfile.mkdtemp(prefix="proxytask-services-")
        os.environ[ENV] = path
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def register(pid: int, name: str) -> Path:
    """Record a started service process; returns its pid file (delete it once stopped)."""
    entry = services_dir() / f"{name}.{pid}.pid"
    entry.write_text(str(pid))
    return entry


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def stop_pid(pid: int, grace_secs: float = 10.0) -> bool:
    """TERM, then KILL after ``grace_secs``; True when the process was alive."""
    if not alive(pid):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace_secs
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def cleanup(directory: Path) -> list[str]:
    """Stop every registered process still alive; return the ``name.pid`` of each."""
    leaked = []
    for entry in sorted(directory.glob("*.pid")):
        name = entry.name.removesuffix(".pid")
        try:
            pid = int(entry.read_text().strip())
        except ValueError:
            entry.unlink(missing_ok=True)
            continue
        if stop_pid(pid):
            leaked.append(name)
        entry.unlink(missing_ok=True)
    return leaked


def main(argv: list[str]) -> int:
    """``python -m tests.services cleanup DIR``: exit 1 when a process had been left behind."""
    if len(argv) != 2 or argv[0] != "cleanup":
        print("usage: python -m tests.services cleanup DIR", file=sys.stderr)
        return 2
    directory = Path(argv[1])
    if not directory.is_dir():
        return 0
    leaked = cleanup(directory)
    for name in leaked:
        print(f"tests left a service process behind (now stopped): {name}", file=sys.stderr)
    return 1 if leaked else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
