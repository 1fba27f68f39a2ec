"""One writer per run: the lease of a controller or workflow dir, locally and on S3."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from proxytask.core import storage
from proxytask.core.errors import UsageError
from proxytask.core.lease import LEASE_FILE, LeaseLostError, acquire_lease, is_stale
from tests.s3_server import ROOT


def _write_lease(directory: Path, **fields: object) -> None:
    data = {
        "version": 1,
        "token": "old",
        "host": socket.gethostname(),
        "pid": 1,
        "process_start": None,
        "command": "proxytask search",
        "started_at": time.time() - 50,
        "heartbeat_at": time.time(),
        **fields,
    }
    (directory / LEASE_FILE).write_text(json.dumps(data))


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_second_writer_is_refused_with_the_holder_named_until_the_first_releases(
    tmp_path: Path,
) -> None:
    first = acquire_lease(str(tmp_path), "proxytask search --job-name a")
    try:
        with pytest.raises(UsageError) as refused:
            acquire_lease(str(tmp_path), "proxytask search --job-name b")
        message = str(refused.value)
        assert "is in use by another proxytask command" in message
        assert f"pid {os.getpid()}" in message
        assert "proxytask search --job-name a" in message and "goes stale" in message
    finally:
        first.release()
    assert not (tmp_path / LEASE_FILE).exists()
    second = acquire_lease(str(tmp_path), "proxytask search --job-name b")
    second.release()


def test_the_lease_of_a_dead_process_on_this_host_is_taken_over_and_said(tmp_path: Path) -> None:
    _write_lease(tmp_path, pid=_dead_pid())
    lease = acquire_lease(str(tmp_path), "proxytask search")
    try:
        assert lease.took_over is not None and "proxytask search" in lease.took_over
        assert json.loads((tmp_path / LEASE_FILE).read_text())["token"] == lease.token
        assert [p.name for p in tmp_path.iterdir()] == [LEASE_FILE]  # nothing left aside
    finally:
        lease.release()


def test_a_lease_from_another_host_is_kept_until_its_heartbeat_is_stale(tmp_path: Path) -> None:
    _write_lease(tmp_path, host="elsewhere", heartbeat_at=time.time() - 30)
    with pytest.raises(UsageError, match="pid 1 on host elsewhere"):
        acquire_lease(str(tmp_path), "proxytask run", stale_after_secs=120)
    _write_lease(tmp_path, host="elsewhere", heartbeat_at=time.time() - 300)
    lease = acquire_lease(str(tmp_path), "proxytask run", stale_after_secs=120)
    assert lease.took_over is not None and "on host elsewhere" in lease.took_over
    lease.release()


def test_a_reused_pid_or_a_damaged_lease_counts_as_stale(tmp_path: Path) -> None:
    now = time.time()
    mine = {"host": socket.gethostname(), "heartbeat_at": now, "pid": os.getpid()}
    assert not is_stale({**mine, "process_start": None}, now, 120)
    assert is_stale({**mine, "process_start": "1"}, now, 120)  # the pid started at another time
    assert is_stale({}, now, 120)
    (tmp_path / LEASE_FILE).write_text('{"token": ')  # torn by hand
    lease = acquire_lease(str(tmp_path), "proxytask run")
    assert lease.took_over == "a damaged lease"
    lease.release()


def test_a_holder_whose_lease_was_taken_over_learns_it_and_stops(tmp_path: Path) -> None:
    lease = acquire_lease(str(tmp_path), "proxytask search", renew_every_secs=3600)
    try:
        lease.renew(time.time())
        lease.check()  # still ours
        _write_lease(tmp_path, token="theirs", pid=4242, host="other")
        lease.renew(time.time())
        with pytest.raises(LeaseLostError, match="pid 4242 on host other"):
            lease.check()
    finally:
        lease.release()
    assert json.loads((tmp_path / LEASE_FILE).read_text())["token"] == "theirs"  # not removed


def test_the_heartbeat_is_renewed_in_the_background(tmp_path: Path) -> None:
    lease = acquire_lease(str(tmp_path), "proxytask run", renew_every_secs=0.05)
    try:
        first = json.loads((tmp_path / LEASE_FILE).read_text())["heartbeat_at"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if json.loads((tmp_path / LEASE_FILE).read_text())["heartbeat_at"] > first:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the heartbeat was not renewed")
    finally:
        lease.release()


_RACER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from proxytask.core.errors import UsageError
    from proxytask.core.lease import acquire_lease
    directory, go = sys.argv[1], Path(sys.argv[2])
    Path(f"{go}.{sys.argv[3]}").touch()
    while not go.exists():
        time.sleep(0.001)
    try:
        lease = acquire_lease(directory, "racer")
    except UsageError:
        print("refused")
    else:
        print("won")
        time.sleep(1.0)
        lease.release()
    """
)


def _race(directory: str, go: Path, racers: int) -> list[str]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, directory, str(go), str(n)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(racers)
    ]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(Path(f"{go}.{n}").exists() for n in range(racers)):
            break
        time.sleep(0.01)
    go.touch()  # all are ready: they start together
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outcomes.append(out.strip())
    return outcomes


def test_of_writers_started_together_exactly_one_gets_the_lease(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    outcomes = _race(str(tmp_path / "run"), tmp_path / "go", 6)
    assert sorted(outcomes) == ["refused"] * 5 + ["won"]


@pytest.mark.s3
def test_of_writers_started_together_on_s3_exactly_one_gets_the_lease(
    s3_root: str, tmp_path: Path
) -> None:
    outcomes = _race(s3_root, tmp_path / "go", 4)
    assert sorted(outcomes) == ["refused"] * 3 + ["won"]
    assert storage.read_bytes(storage.join(s3_root, LEASE_FILE)) is None  # released


def test_status_says_who_runs_a_dir_and_never_takes_its_lease(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from proxytask import cli

    cdir = tmp_path / "Variance_Measurement_x_20260101_000000"
    (cdir / "jobs").mkdir(parents=True)
    assert cli.main(["status", str(cdir)]) == 0
    assert "running:" not in capsys.readouterr().out  # no lease: nothing runs there
    lease = acquire_lease(str(cdir), "proxytask variance --job-name=x")
    before = (cdir / LEASE_FILE).read_text()
    assert cli.main(["status", str(cdir)]) == 0
    out = capsys.readouterr().out
    assert f"running: pid {os.getpid()} on host {socket.gethostname()}" in out
    assert "(proxytask variance --job-name=x)" in out
    assert (cdir / LEASE_FILE).read_text() == before  # read, never taken or renewed
    lease.release()
    _write_lease(cdir, pid=_dead_pid())
    assert cli.main(["status", str(cdir)]) == 0
    out = capsys.readouterr().out
    assert "not running: its last command" in out and "the next resume takes it over" in out
