"""Storage on s3:// (the moto server of tests/s3_server.py), and the shared-path check.

Readers here are long-lived processes (the controller's monitor, latency workers) and the
writers other processes (trainers), so every test that matters writes through one client
or process and reads through another.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from proxytask.controllers import latency
from proxytask.core import layout, storage
from proxytask.core.errors import StorageError
from proxytask.executors.monitor import TrialMonitor
from proxytask.trainer import contract as trainer
from tests.s3_server import ROOT, S3Server

s3 = pytest.mark.s3


def _python(code: str, *args: str, timeout: float = 60.0) -> str:
    """Run ``code`` in a fresh interpreter (the environment of this one: the S3 endpoint)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# ---- round trips ------------------------------------------------------------------------------


@s3
def test_round_trips_and_missing_files(s3_root: str, tmp_path: Path) -> None:
    f = storage.join(s3_root, "a", "b.json")
    assert storage.read_json(f) is None and not storage.exists(f)
    assert storage.file_signature(f) is None
    storage.write_json_atomic(f, {"x": [1, 2.5]})
    assert storage.read_json(f) == {"x": [1, 2.5]}
    assert storage.exists(f) and storage.exists(storage.join(s3_root, "a"))
    storage.write_text_atomic(storage.join(s3_root, "t.txt"), "héllo\n")
    assert storage.read_text(storage.join(s3_root, "t.txt")) == "héllo\n"
    assert storage.listdir(s3_root) == ["a", "t.txt"]
    assert storage.listdir(storage.join(s3_root, "nothing")) == []
    # copies across filesystems and within the bucket
    local = tmp_path / "l.json"
    local.write_text('{"l": 1}')
    storage.copy_file(str(local), storage.join(s3_root, "l.json"))
    storage.copy_file(storage.join(s3_root, "l.json"), str(tmp_path / "back.json"))
    assert json.loads((tmp_path / "back.json").read_text()) == {"l": 1}
    storage.remove(f)
    storage.remove(f)  # a missing file is fine
    assert not storage.exists(f)
    storage.makedirs(storage.join(s3_root, "empty"))  # no folders on S3: a no-op
    assert not storage.is_local(s3_root)


@s3
def test_a_missing_bucket_is_a_teaching_error_and_is_not_created(s3_server: S3Server) -> None:
    url = "s3://proxytask-no-such-bucket/runs/x.json"
    with pytest.raises(StorageError, match=r"bucket of .* must exist.*never creates buckets"):
        storage.write_json_atomic(url, {"a": 1})
    with pytest.raises(StorageError, match="must exist"):
        storage.create_exclusive(url, b"{}")
    storage.makedirs("s3://proxytask-no-such-bucket/runs")
    assert not s3_server.client().exists("proxytask-no-such-bucket")


@s3
def test_missing_credentials_are_a_teaching_error(
    s3_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s3fs

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no wait for an instance role
    s3fs.S3FileSystem.clear_instance_cache()  # clients read credentials when created
    try:
        with pytest.raises(StorageError, match="must be writable with the credentials"):
            storage.write_json_atomic(storage.join(s3_root, "x.json"), {})
    finally:
        s3fs.S3FileSystem.clear_instance_cache()


# ---- freshness: what another process wrote is seen ---------------------------------------------


@s3
def test_reads_see_what_another_process_wrote_after_a_listing(s3_root: str) -> None:
    trial = storage.join(s3_root, "jobs", "round1", "1")
    old = storage.join(trial, "old.json")
    storage.write_json_atomic(old, {"v": 1})
    # fill this process's listing cache, as a long-running monitor or worker does
    assert storage.listdir(trial) == ["old.json"]
    assert storage.listdir(storage.join(s3_root, "jobs", "round1")) == ["1"]
    before = storage.file_signature(old)
    assert not storage.exists(storage.join(trial, "new.json"))
    _python(
        """
        import sys
        from proxytask.core import storage
        trial = sys.argv[1]
        storage.write_json_atomic(storage.join(trial, "new.json"), {"v": 2})
        storage.write_json_atomic(storage.join(trial, "old.json"), {"v": 22, "longer": True})
        storage.write_json_atomic(storage.join(sys.argv[2], "2", "x.json"), {})
        """,
        trial,
        storage.join(s3_root, "jobs", "round1"),
    )
    assert storage.listdir(trial) == ["new.json", "old.json"]
    assert storage.listdir(storage.join(s3_root, "jobs", "round1")) == ["1", "2"]
    assert storage.exists(storage.join(trial, "new.json"))
    assert storage.file_signature(old) != before
    assert storage.read_json(old) == {"v": 22, "longer": True}


@s3
def test_the_monitor_and_the_latency_scan_follow_another_client(
    s3_server: S3Server, s3_root: str
) -> None:
    other = s3_server.client()  # its own connection and cache: a trainer elsewhere
    trial = storage.join(s3_root, "jobs", "round1", "3")
    metrics = layout.trial_file(trial, layout.TRIAL_TRAINING_METRICS)
    monitor = TrialMonitor()
    monitor.watch("round1/3", trial)
    assert monitor.poll()["round1/3"].metrics is None
    assert latency.find_pending(s3_root) == []  # lists jobs/, caching "nothing there"
    for step in range(3):
        trainer.update_trial_training_accuracy_metric(trial, 0.5 + step / 10, step, step, 1.0, 10)
        raw = storage.read_bytes(metrics)
        assert raw is not None
        storage.remove(metrics)  # the next version comes from the other client
        other.pipe_file(metrics.removeprefix("s3://"), raw)
        changed = monitor.poll()
        assert changed["round1/3"].last_accuracy == pytest.approx(0.5 + step / 10)
        assert monitor.poll() == {}  # unchanged: nothing re-read
    request = layout.trial_file(trial, layout.LATENCY_REQUEST)
    other.pipe_file(request.removeprefix("s3://"), b'{"requested_at": 1.0}')
    assert latency.find_pending(s3_root) == [trial]
    other.pipe_file(layout.trial_file(trial, layout.LATENCY_RESULT).removeprefix("s3://"), b"{}")
    assert latency.find_pending(s3_root) == []


# ---- atomic writes ---------------------------------------------------------------------------


@s3
def test_a_reader_sees_only_whole_objects(s3_server: S3Server, s3_root: str) -> None:
    url = storage.join(s3_root, "big.bin")
    versions = [bytes([i]) * (2 * 2**20 + i) for i in range(6)]  # 2 MiB, told apart by size
    storage.write_bytes_atomic(url, versions[0])
    reader = s3_server.client()
    seen: list[int] = []
    torn: list[int] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            data = reader.cat_file(url.removeprefix("s3://"))
            i = data[0]
            (seen if data == versions[i] else torn).append(len(data))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for round_ in range(3):
            for version in versions[1:] if round_ % 2 == 0 else versions[::-1]:
                storage.write_bytes_atomic(url, version)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not torn, f"partial objects read: sizes {torn[:5]}"
    assert len(seen) > 1


# ---- exclusive create ------------------------------------------------------------------------

_CLAIMANT = """
import json, os, sys, time
from proxytask.core import storage
prefix, name, go, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
storage.exists(prefix)  # the client is set up before the start
open(f"{go}.{name}", "w").close()  # ready
deadline = time.monotonic() + 30
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.002)
# A goes up, B down: each wins about half, and they collide where they meet
order = range(count) if name == "A" else range(count - 1, -1, -1)
won = [k for k in order
       if storage.create_exclusive(storage.join(prefix, f"claim-{k}.json"), name.encode())]
print(json.dumps(won))
"""


@s3
def test_two_processes_racing_for_claims_have_exactly_one_winner_each(
    s3_root: str, tmp_path: Path
) -> None:
    count = 25
    go = tmp_path / "go"
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", _CLAIMANT, s3_root, name, str(go), str(count)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("A", "B")
    }
    deadline = time.monotonic() + 60
    while not all(Path(f"{go}.{n}").exists() for n in procs) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # both are ready: they start together
    wins: dict[str, set[int]] = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        wins[name] = set(json.loads(out))
    assert wins["A"].isdisjoint(wins["B"])
    assert wins["A"] | wins["B"] == set(range(count))
    for name, keys in wins.items():
        for k in keys:
            assert storage.read_bytes(storage.join(s3_root, f"claim-{k}.json")) == name.encode()
    # no probe objects are left behind
    assert all(n.startswith("claim-") for n in storage.listdir(s3_root))


@s3
def test_latency_claims_on_s3(s3_root: str) -> None:
    trial = storage.join(s3_root, "jobs", "round1", "1")
    assert latency.try_claim(trial, "w1", now=100.0, claim_timeout_secs=60)
    assert not latency.try_claim(trial, "w2", now=110.0, claim_timeout_secs=60)
    assert latency.try_claim(trial, "w2", now=500.0, claim_timeout_secs=60)  # stale: taken over
    claim = storage.read_json(layout.trial_file(trial, layout.LATENCY_CLAIM))
    assert isinstance(claim, dict) and claim["worker_id"] == "w2"


@s3
def test_a_server_that_ignores_if_none_match_is_refused(
    s3_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s3fs

    original = s3fs.S3FileSystem._call_s3

    async def unconditional(self: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        kwargs.pop("IfNoneMatch", None)  # what a server ignoring the header amounts to
        return await original(self, method, *args, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "_call_s3", unconditional)
    monkeypatch.setattr(storage, "_VERIFIED_CONDITIONAL_PUT", set())
    with pytest.raises(StorageError, match="must refuse a second create"):
        storage.create_exclusive(storage.join(s3_root, "claim.json"), b"x")
    assert storage.listdir(s3_root) == []  # neither the claim nor the probe


class _ConflictingStore:
    """A fake object store answering 409 ConditionalRequestConflict ``conflicts`` times."""

    def __init__(self, conflicts: int, then: BaseException | None) -> None:
        self.conflicts, self.then, self.calls = conflicts, then, 0

    def pipe_file(self, path: str, data: bytes, mode: str = "overwrite") -> None:
        assert mode == "create"
        self.calls += 1
        if self.calls <= self.conflicts:
            cause = Exception("conflict")
            cause.response = {"Error": {"Code": "ConditionalRequestConflict"}}  # type: ignore[attr-defined]
            raise OSError(errno.EBUSY, "A conflicting operation is in progress") from cause
        if self.then is not None:
            raise self.then


def test_a_409_conflict_is_retried_until_the_server_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(storage, "_CONFLICT_BACKOFF_SECS", 0.0)
    lost = _ConflictingStore(2, FileExistsError("exists"))
    assert storage._conditional_put(lost, "b/k", b"x") is False
    assert lost.calls == 3
    won = _ConflictingStore(1, None)
    assert storage._conditional_put(won, "b/k", b"x") is True
    stuck = _ConflictingStore(99, None)
    with pytest.raises(OSError, match="conflicting operation"):
        storage._conditional_put(stuck, "b/k", b"x")
    assert stuck.calls == storage._CONFLICT_RETRIES


# ---- move ------------------------------------------------------------------------------------


@s3
def test_move_a_trial_dir_and_a_file(s3_root: str) -> None:
    jobs = storage.join(s3_root, "jobs", "round1")
    for trial in ("1", "10"):
        storage.write_json_atomic(storage.join(jobs, trial, "a.json"), {"t": trial})
        storage.write_json_atomic(storage.join(jobs, trial, "checkpoint", "c.json"), {})
    assert storage.listdir(storage.join(jobs, "1")) == ["a.json", "checkpoint"]
    aside = storage.join(jobs, ".interrupted", "1-attempt0-5")
    storage.move(storage.join(jobs, "1"), aside)
    assert storage.listdir(jobs) == [".interrupted", "10"]  # "10" is not under "1"
    assert storage.listdir(aside) == ["a.json", "checkpoint"]
    assert storage.read_json(storage.join(aside, "checkpoint", "c.json")) == {}
    assert storage.read_json(storage.join(jobs, "10", "a.json")) == {"t": "10"}
    storage.move(storage.join(aside, "a.json"), storage.join(s3_root, "moved.json"))
    assert storage.read_json(storage.join(s3_root, "moved.json")) == {"t": "1"}
    assert storage.listdir(aside) == ["checkpoint"]
    with pytest.raises(StorageError, match="must exist to be moved"):
        storage.move(storage.join(jobs, "nope"), storage.join(jobs, "x"))


# ---- the shared-path check (pure: no server) -------------------------------------------------


def test_url_protocol_and_is_shared() -> None:
    assert storage.url_protocol("/runs/x") == "file"
    assert storage.url_protocol("runs") == "file"
    assert storage.url_protocol("file:///runs") == "file"
    assert storage.url_protocol("s3://b/x") == "s3"
    assert storage.url_protocol("simplecache::s3://b/x") == "s3"
    assert storage.is_shared("s3://b/x") and storage.is_shared("gs://b/x")
    assert storage.is_shared("abfs://c/x")
    assert not storage.is_shared("/runs") and not storage.is_shared("file:///runs")
    assert not storage.is_shared("memory://x")
