"""An S3-compatible server (moto) on 127.0.0.1 with one bucket, for the benchmarks.

It runs ``python -m tests.s3_server`` (the tests' server: it binds an OS-chosen port and
serves one request at a time, as S3's conditional puts are atomic) in a subprocess, makes
the bucket, and yields the environment that points fsspec and its child processes at it
with fake credentials. The server is stopped on exit.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_SECS = 60.0


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment with the repository importable (``src`` and the root), plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO), env.get("PYTHONPATH", "")])
    env.update(extra or {})
    return env


@contextlib.contextmanager
def moto_s3(bucket: str) -> Iterator[dict[str, str]]:
    """Start the server, make ``bucket``; yield the environment for processes that use it."""
    with tempfile.TemporaryDirectory(prefix="proxytask-moto-") as tmp:
        port_file = Path(tmp) / "port"
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.s3_server", str(port_file)],
            cwd=REPO,
            env=python_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECS
            while not port_file.exists():
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(
                        f"the moto S3 server must start within {START_TIMEOUT_SECS:.0f} s; "
                        "install the dev extra (pip install -e '.[dev,s3]')"
                    )
                time.sleep(0.05)
            endpoint = f"http://127.0.0.1:{port_file.read_text().strip()}"
            env = python_env(
                {
                    "FSSPEC_S3_ENDPOINT_URL": endpoint,
                    "AWS_ACCESS_KEY_ID": "proxytask-bench",
                    "AWS_SECRET_ACCESS_KEY": "proxytask-bench",
                    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                    "AWS_CONFIG_FILE": os.devnull,
                }
            )
            subprocess.run(
                [sys.executable, "-c", "import s3fs, sys; "
                 "s3fs.S3FileSystem(endpoint_url=sys.argv[1]).mkdir(sys.argv[2])",
                 endpoint, bucket],
                env=env, check=True,
            )  # fmt: skip
            yield env
        finally:
            server.terminate()
            server.wait(timeout=30)
