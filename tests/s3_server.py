"""An S3-compatible server (moto) on 127.0.0.1 for the ``s3`` tests, as pytest fixtures.

The session fixture :func:`s3_server` starts ``python -m tests.s3_server PORT_FILE`` as a
subprocess: the server binds port 0 itself and writes the port it got, so there is no race
for a "free" port. A subprocess rather than moto's in-process ``ThreadedMotoServer``: trial
subprocesses reach it independently of the pytest process's GIL and of whatever a test does
in its main thread, it can be registered with :mod:`tests.services` (so ``.ci/run`` stops it
even when pytest crashed), and a test cannot reach into the server's state by accident.

The server handles one request at a time. moto checks ``If-None-Match: *`` and then stores
the object in two steps; AWS S3 does both atomically. Serialising requests gives the test
server S3's atomicity, so a race of conditional puts has exactly one winner here too (the
tests then check proxytask's side: the header is sent, the 412 read as "exists").

For the processes the tests start (trainers), the fixture exports the endpoint and fake
credentials the usual way: ``FSSPEC_S3_ENDPOINT_URL`` (fsspec's configuration, read when
fsspec is imported) and ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``; in this process
it also sets fsspec's loaded configuration. Everything is restored at the end of the session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import services

__all__ = ["BUCKET", "S3Server", "s3_root", "s3_server"]

BUCKET = "proxytask-test"
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECS = 60.0
# Environment the s3 tests set (None: unset) for themselves and the processes they start.
_AWS_ENV: dict[str, str | None] = {
    "AWS_ACCESS_KEY_ID": "proxytask-test",
    "AWS_SECRET_ACCESS_KEY": "proxytask-test",
    "AWS_SESSION_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_DEFAULT_PROFILE": None,
    "AWS_ENDPOINT_URL": None,
    "AWS_ENDPOINT_URL_S3": None,
    # no ~/.aws of the machine: the tests must not depend on it, nor touch a real account
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_CONFIG_FILE": os.devnull,
}


@dataclass(frozen=True)
class S3Server:
    """The running test server: its endpoint and the bucket the tests write to."""

    endpoint: str
    bucket: str
    pid: int

    def url(self, *parts: str) -> str:
        """``s3://<bucket>/<parts...>``."""
        return "/".join([f"s3://{self.bucket}", *parts])

    def new_prefix(self) -> str:
        """A fresh ``s3://`` folder no other test uses."""
        return self.url(f"t-{uuid.uuid4().hex[:12]}")

    def client(self) -> Any:
        """A new s3fs client of its own (no shared listing cache): "another process"."""
        import s3fs

        return s3fs.S3FileSystem(endpoint_url=self.endpoint, skip_instance_cache=True)


class _OneRequestAtATime:
    """WSGI middleware: the wrapped app handles one request at a time (see the module doc)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self._lock:
            return list(self._app(environ, start_response))


def serve(port_file: Path) -> None:
    """Run the moto S3 server on 127.0.0.1, an OS-chosen port written to ``port_file``."""
    import logging

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    app = _OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(server.port))
    os.replace(tmp, port_file)  # the reader sees the whole port or nothing
    server.serve_forever()


def _wait_for_port(port_file: Path, proc: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT_SECS
    while time.monotonic() < deadline:
        if port_file.exists():
            return int(port_file.read_text())
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(
        f"the moto S3 server must start within {START_TIMEOUT_SECS:.0f} s, got exit code "
        f"{proc.poll()}; its log ({log}):\n{log.read_text(errors='replace')[-3000:]}"
    )


def _set_env(values: dict[str, str | None]) -> dict[str, str | None]:
    """Set (or unset, for None) environment variables; return their previous values."""
    previous = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return previous


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """The moto S3 server with bucket :data:`BUCKET`, and the environment pointing at it.

    ``FSSPEC_S3_ENDPOINT_URL`` and fake AWS credentials are in ``os.environ`` (inherited by
    every process a test starts) and in this process's fsspec configuration.
    """
    import fsspec.config

    s3fs = pytest.importorskip("s3fs", reason="the s3 tests need s3fs (pip install -e '.[s3]')")
    pytest.importorskip("moto.server", reason="the s3 tests need moto[server] (the dev extra)")
    workdir = tmp_path_factory.mktemp("s3-server")
    port_file, log = workdir / "port", workdir / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.s3_server", str(port_file)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of pytest does not reach it mid-teardown
        )
    entry = services.register(proc.pid, "moto-s3")
    previous_env: dict[str, str | None] = {}
    s3_conf = fsspec.config.conf.setdefault("s3", {})
    previous_conf = dict(s3_conf)
    try:
        port = _wait_for_port(port_file, proc, log)
        endpoint = f"http://127.0.0.1:{port}"
        previous_env = _set_env({**_AWS_ENV, "FSSPEC_S3_ENDPOINT_URL": endpoint})
        s3_conf["endpoint_url"] = endpoint  # fsspec read its env config at import time
        s3fs.S3FileSystem.clear_instance_cache()
        client = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
        client.mkdir(BUCKET)
        yield S3Server(endpoint=endpoint, bucket=BUCKET, pid=proc.pid)
    finally:
        services.stop_pid(proc.pid, grace_secs=5.0)
        proc.wait(timeout=10)
        entry.unlink(missing_ok=True)
        _set_env(previous_env)
        s3_conf.clear()
        s3_conf.update(previous_conf)
        s3fs.S3FileSystem.clear_instance_cache()  # clients of a server that is gone


@pytest.fixture
def s3_root(s3_server: S3Server) -> str:
    """A fresh ``s3://bucket/t-<id>`` folder for one test."""
    return s3_server.new_prefix()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m tests.s3_server PORT_FILE", file=sys.stderr)
        raise SystemExit(2)
    serve(Path(sys.argv[1]))
