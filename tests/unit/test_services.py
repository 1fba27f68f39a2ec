"""The registry that lets CI stop any service process a test left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import services


def test_cleanup_stops_what_is_left_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(services.ENV, str(tmp_path))
    # a process that ignores TERM, like Ray's gcs_server: it takes the KILL
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)",
        ]
    )
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    services.register(stubborn.pid, "gcs")
    services.register(polite.pid, "moto")
    import time

    time.sleep(0.5)  # let the stubborn one install its handler
    original = services.stop_pid
    monkeypatch.setattr(services, "stop_pid", lambda pid: original(pid, grace_secs=1.0))
    leaked = sorted(services.cleanup(tmp_path))
    assert leaked == sorted([f"gcs.{stubborn.pid}", f"moto.{polite.pid}"])
    assert stubborn.wait(5) != 0 and polite.wait(5) != 0
    assert list(tmp_path.glob("*.pid")) == []
    assert services.cleanup(tmp_path) == []  # nothing left: a clean run


def test_the_command_fails_only_when_something_was_left(tmp_path: Path) -> None:
    assert services.main(["cleanup", str(tmp_path)]) == 0
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (tmp_path / f"ray.{proc.pid}.pid").write_text(str(proc.pid))
    assert services.main(["cleanup", str(tmp_path)]) == 1
    assert proc.wait(15) != 0
    assert services.main(["oops"]) == 2
