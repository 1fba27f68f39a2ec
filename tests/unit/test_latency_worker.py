"""Latency worker: exclusive claims, measurement, results, stale claims, and two workers racing."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.spec import AbstractFileSystem

from proxytask.controllers import latency
from proxytask.controllers.latency import (
    LatencyOutcome,
    LatencyOutputError,
    LatencyWorker,
    find_pending,
    measure,
    parse_latency_output,
    read_latency,
    request_latency,
    run_latency_worker,
    try_claim,
)
from proxytask.core import layout, storage
from proxytask.core.clock import SimulatedClock
from proxytask.core.errors import StorageError, UsageError

FIXTURE = str(Path(__file__).resolve().parent.parent / "fixtures" / "latency_command.py")
REPO_ROOT = str(Path(__file__).resolve().parents[2])
NOW = 1_700_000_000.0


def _command(*extra: str) -> list[str]:
    return [sys.executable, FIXTURE, "--sleep", "0", *extra]


def _make_controller(
    root: str, jobs: dict[str, int], request: bool = True, now: float = NOW
) -> tuple[str, list[str]]:
    """A controller dir with ``jobs[name]`` trial dirs per job, each with width = 10 * k."""
    cdir = storage.join(root, "Model_Selection_x_20240101_000000")
    trials = []
    for job, count in jobs.items():
        for number in range(1, count + 1):
            tdir = layout.trial_dir(layout.job_dir(cdir, job), number)
            storage.write_json_atomic(
                layout.trial_file(tdir, layout.NAS_PARAMS), {"width": 10 * number}
            )
            if request:
                request_latency(tdir, now)
            trials.append(tdir)
    return cdir, trials


def _json(url: str) -> Any:
    return storage.read_json(url)


def _worker(cdir: str, command: list[str], clock: SimulatedClock | None = None, **kw: Any) -> Any:
    kw.setdefault("command_timeout_secs", 20.0)
    return LatencyWorker(cdir, command, "w1", clock or SimulatedClock(NOW), **kw)


# ---- storage.create_exclusive ---------------------------------------------------------------


def test_create_exclusive_locally_creates_once_and_leaves_no_temporary_files(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "sub" / "CLAIM.json")
    assert storage.create_exclusive(path, b"first") is True
    assert storage.create_exclusive(path, b"second") is False
    assert storage.read_bytes(path) == b"first"
    assert os.listdir(tmp_path / "sub") == ["CLAIM.json"]
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)  # readable by other workers


def test_create_exclusive_has_exactly_one_winner_among_racing_threads(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"t{i}" / "CLAIM.json") for i in range(40)]
    wins: list[tuple[str, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def racer(me: int) -> None:
        start.wait()
        for path in paths:
            if storage.create_exclusive(path, f"{me}".encode()):
                with lock:
                    wins.append((path, me))

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(p for p, _ in wins) == sorted(paths)  # exactly one winner per file
    for path, me in wins:
        assert storage.read_bytes(path) == f"{me}".encode()  # the winner's bytes, whole


def test_create_exclusive_on_memory_fs() -> None:
    url = f"memory://latency-{uuid.uuid4().hex}/a/CLAIM.json"
    assert storage.create_exclusive(url, b"one") is True
    assert storage.create_exclusive(url, b"two") is False
    assert storage.read_bytes(url) == b"one"


class _CheckThenWriteFS(MemoryFileSystem):  # type: ignore[misc]
    """A filesystem whose create mode is fsspec's non-exclusive exists-then-write."""

    protocol = "checkthenwrite"

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kw: Any) -> None:
        AbstractFileSystem.pipe_file(self, path, value, mode=mode, **kw)


def test_create_exclusive_refuses_a_filesystem_that_cannot_create_exclusively() -> None:
    fsspec.register_implementation("checkthenwrite", _CheckThenWriteFS, clobber=True)
    with pytest.raises(StorageError, match="must support exclusive create"):
        storage.create_exclusive("checkthenwrite://x/CLAIM.json", b"{}")


# ---- parsing and measuring ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [("12.5\n", 12.5), ("warming up\n3\n\n  \n", 3.0), ("  7e-1  ", 0.7), ("0", 0.0)],
)
def test_parse_latency_output_reads_the_last_non_empty_line(stdout: str, expected: float) -> None:
    assert parse_latency_output(stdout) == expected


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("", "got no output"),
        ("\n  \n", "got no output"),
        ("12\nlatency: 12 ms\n", "must be a number, got 'latency: 12 ms'"),
        ("nan", "finite number >= 0"),
        ("inf\n", "finite number >= 0"),
        ("-1.5", "finite number >= 0"),
    ],
)
def test_parse_latency_output_rejects_bad_output_clearly(stdout: str, message: str) -> None:
    with pytest.raises(LatencyOutputError, match=message) as info:
        parse_latency_output(stdout)
    assert isinstance(info.value, ValueError)


def test_measure_runs_the_command_with_the_trial_dir_and_reads_its_latency(
    tmp_path: Path,
) -> None:
    _, trials = _make_controller(str(tmp_path), {"job": 3})
    log = tmp_path / "log.txt"
    outcome = measure(trials[2], _command("--log", str(log)), timeout_secs=20)
    assert outcome == LatencyOutcome(3.0, None, 0, outcome.duration_secs)
    assert outcome.ok
    assert log.read_text().split("\t")[0] == trials[2]


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (("--fail", "3"), "exited with code 3; last stderr line: RuntimeError: CUDA out of memory"),
        (("--print", "oops"), "must be a number, got 'oops'"),
    ],
)
def test_measure_turns_a_failing_command_into_an_error_line(
    tmp_path: Path, extra: tuple[str, ...], error: str
) -> None:
    outcome = measure(str(tmp_path), _command(*extra), timeout_secs=20)
    assert not outcome.ok
    assert outcome.latency is None
    assert outcome.error is not None and error in outcome.error
    assert "\n" not in outcome.error


def test_measure_stops_a_command_past_its_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome = measure(str(tmp_path), [sys.executable, FIXTURE, "--sleep", "30"], timeout_secs=0.5)
    assert time.monotonic() - started < 10
    assert outcome.error is not None and "timed out after 0.5 s" in outcome.error
    assert outcome.exit_code is None


def test_measure_reports_a_program_that_cannot_start(tmp_path: Path) -> None:
    outcome = measure(str(tmp_path), [str(tmp_path / "no-such-program")], timeout_secs=5)
    assert outcome.error is not None and "could not start" in outcome.error


# ---- the controller side --------------------------------------------------------------------


def test_request_latency_is_idempotent_and_read_latency_waits_for_a_result(
    tmp_path: Path,
) -> None:
    tdir = str(tmp_path / "trial")
    request_latency(tdir, NOW)
    request_latency(tdir, NOW + 50)
    request = _json(layout.trial_file(tdir, layout.LATENCY_REQUEST))
    assert request == {"requested_at": NOW, "trial_dir": tdir}
    assert read_latency(tdir) is None


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("not json", "is not JSON"),
        ("[1]", "must hold an object"),
        ('{"latency": -3}', "finite number >= 0, got -3"),
        ('{"latency": null}', "no latency and no error"),
        ('{"latency": null, "error": "boom"}', "boom"),
    ],
)
def test_read_latency_turns_bad_results_into_error_results(
    tmp_path: Path, content: str, error: str
) -> None:
    (tmp_path / layout.LATENCY_RESULT).write_text(content)
    result = read_latency(str(tmp_path))
    assert result is not None and result.latency is None and not result.ok
    assert result.error is not None and error in result.error


# ---- the worker -----------------------------------------------------------------------------


def test_find_pending_lists_requested_unanswered_trials_in_natural_order(tmp_path: Path) -> None:
    cdir, trials = _make_controller(str(tmp_path), {"round_2": 11, "round_10": 1})
    storage.write_json_atomic(layout.trial_file(trials[0], layout.LATENCY_RESULT), {"latency": 1})
    storage.remove(layout.trial_file(trials[1], layout.LATENCY_REQUEST))
    pending = find_pending(cdir)
    assert pending == trials[2:]  # round_2/3 .. round_2/11 (3 before 10), then round_10/1
    assert pending[-2].endswith("round_2/11") and pending[-1].endswith("round_10/1")


def test_worker_measures_each_pending_trial_once_and_writes_the_result(tmp_path: Path) -> None:
    cdir, trials = _make_controller(str(tmp_path), {"job_a": 2, "job_b": 1})
    idle = layout.trial_dir(layout.job_dir(cdir, "job_b"), 9)  # no request: left alone
    storage.write_json_atomic(layout.trial_file(idle, layout.NAS_PARAMS), {"width": 1})
    log = tmp_path / "log.txt"
    seen: list[str] = []
    worker = _worker(cdir, _command("--log", str(log)), on_result=lambda t, _o: seen.append(t))
    assert worker.run_once() == 3
    assert worker.run_once() == 0
    assert seen == trials
    assert len(log.read_text().splitlines()) == 3
    data = _json(layout.trial_file(trials[1], layout.LATENCY_RESULT))
    assert data["latency"] == pytest.approx(2.0)
    assert data["error"] is None and data["exit_code"] == 0
    assert data["worker_id"] == "w1" and data["measured_at"] == NOW
    assert data["command"] == shlex.join(_command("--log", str(log)))
    claim = _json(layout.trial_file(trials[1], layout.LATENCY_CLAIM))
    assert claim["worker_id"] == "w1" and claim["claimed_at"] == NOW
    assert claim["pid"] == os.getpid() and claim["host"]
    result = read_latency(trials[0])
    assert result is not None and result.latency == pytest.approx(1.0) and result.worker_id == "w1"
    assert not storage.exists(layout.trial_file(idle, layout.LATENCY_RESULT))


def test_a_failing_command_gives_the_trial_an_error_result(tmp_path: Path) -> None:
    cdir, trials = _make_controller(str(tmp_path), {"job": 1})
    assert _worker(cdir, _command("--fail", "2")).run(once=True) == 1
    result = read_latency(trials[0])
    assert result is not None and result.latency is None
    assert result.error is not None
    assert "exited with code 2" in result.error and "CUDA out of memory" in result.error
    assert find_pending(cdir) == []  # answered: the controller stops waiting


def test_a_fresh_claim_is_respected_until_it_goes_stale(tmp_path: Path) -> None:
    cdir, trials = _make_controller(str(tmp_path), {"job": 1})
    claim = layout.trial_file(trials[0], layout.LATENCY_CLAIM)
    other = {"worker_id": "other", "claimed_at": NOW - 10, "host": "h", "pid": 1}
    storage.write_json_atomic(claim, other)
    clock = SimulatedClock(NOW)
    worker = _worker(cdir, _command(), clock, poll_secs=60, claim_timeout_secs=300)
    assert worker.run_once() == 0
    assert try_claim(trials[0], "w2", NOW, 300) is False
    assert _json(claim) == other
    # On the simulated clock the worker polls until the claim is older than 300 s, then takes it.
    assert worker.run(max_idle_secs=3600) == 1
    assert NOW + 290 <= _json(claim)["claimed_at"] <= NOW + 360
    assert _json(claim)["worker_id"] == "w1"
    assert read_latency(trials[0]) is not None


def test_a_stale_claim_is_taken_over(tmp_path: Path) -> None:
    cdir, trials = _make_controller(str(tmp_path), {"job": 2})
    stale = {"worker_id": "dead", "claimed_at": NOW - 4000, "host": "h", "pid": 1}
    storage.write_json_atomic(layout.trial_file(trials[0], layout.LATENCY_CLAIM), stale)
    log = tmp_path / "log.txt"
    assert _worker(cdir, _command("--log", str(log))).run(once=True) == 2
    assert _json(layout.trial_file(trials[0], layout.LATENCY_CLAIM))["worker_id"] == ("w1")
    result = read_latency(trials[0])
    assert result is not None and result.latency == pytest.approx(1.0)
    assert len(log.read_text().splitlines()) == 2


def test_a_take_over_backs_off_when_the_claim_changed_or_the_result_arrived(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, trials = _make_controller(str(tmp_path), {"job": 1})
    claim = layout.trial_file(trials[0], layout.LATENCY_CLAIM)
    stale = {"worker_id": "dead", "claimed_at": NOW - 4000}
    storage.write_json_atomic(claim, stale)
    real_read = storage.read_bytes
    calls = {"n": 0}

    def read_with_rival(url: str) -> bytes | None:
        calls["n"] += 1
        if url == claim and calls["n"] == 2:  # a rival takes over between our two reads
            storage.write_json_atomic(claim, {"worker_id": "rival", "claimed_at": NOW})
        return real_read(url)

    monkeypatch.setattr(storage, "read_bytes", read_with_rival)
    assert try_claim(trials[0], "w1", NOW, 3600) is False
    monkeypatch.setattr(storage, "read_bytes", real_read)
    assert _json(claim)["worker_id"] == "rival"
    storage.write_json_atomic(claim, stale)
    storage.write_json_atomic(layout.trial_file(trials[0], layout.LATENCY_RESULT), {"latency": 1})
    assert try_claim(trials[0], "w1", NOW, 3600) is False


def test_an_unreadable_claim_is_respected_for_one_claim_timeout_then_taken(
    tmp_path: Path,
) -> None:
    cdir, trials = _make_controller(str(tmp_path), {"job": 1})
    claim = layout.trial_file(trials[0], layout.LATENCY_CLAIM)
    storage.write_bytes_atomic(claim, b"")  # e.g. an O_EXCL claim seen before its bytes
    clock = SimulatedClock(NOW)
    worker = _worker(cdir, _command(), clock, poll_secs=100, claim_timeout_secs=300)
    assert worker.run_once() == 0
    clock.sleep(200)
    assert worker.run_once() == 0
    clock.sleep(200)
    assert worker.run_once() == 1
    assert _json(claim)["worker_id"] == "w1"


def test_a_failure_never_replaces_a_success_after_a_double_measurement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cdir, trials = _make_controller(str(tmp_path), {"job": 1})
    result = layout.trial_file(trials[0], layout.LATENCY_RESULT)
    real_measure = latency.measure

    def measure_while_a_rival_answers(*args: Any, **kw: Any) -> LatencyOutcome:
        storage.write_json_atomic(result, {"latency": 5.0, "error": None, "worker_id": "old"})
        return real_measure(*args, **kw)

    monkeypatch.setattr(latency, "measure", measure_while_a_rival_answers)
    assert _worker(cdir, _command("--fail", "1")).run_once() == 1
    kept = read_latency(trials[0])
    assert kept is not None and kept.latency == 5.0 and kept.worker_id == "old"


def test_the_worker_stops_when_the_controller_is_finished(tmp_path: Path) -> None:
    cdir, _ = _make_controller(str(tmp_path), {"job": 2})
    storage.write_json_atomic(storage.join(cdir, latency.MODEL_SELECTION_STATE), {"phase": "done"})
    assert _worker(cdir, _command()).run() == 0
    storage.write_json_atomic(
        storage.join(cdir, latency.MODEL_SELECTION_STATE), {"phase": "running"}
    )
    clock = SimulatedClock(NOW)
    assert _worker(cdir, _command(), clock).run(max_idle_secs=50) == 2
    assert clock.now() >= NOW + 50  # it waited, on the injected clock, for more work


def test_the_worker_serves_a_controller_dir_on_memory_fs() -> None:
    root = f"memory://latency-{uuid.uuid4().hex}"
    cdir, trials = _make_controller(root, {"job": 2})
    # The command cannot read memory:// from its own process, so it prints a constant.
    assert _worker(cdir, _command("--constant", "4.5")).run(once=True) == 2
    for tdir in trials:
        result = read_latency(tdir)
        assert result is not None and result.latency == 4.5
    assert find_pending(cdir) == []


# ---- the command-line body ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"controller_dir": "MISSING"}, "must be an existing controller dir"),
        ({"controller_dir": "PLAIN"}, "must be a proxytask controller dir"),
        ({"latency_command": ""}, "--latency-command must name a command"),
        ({"latency_command": "   "}, "--latency-command must name a command"),
        ({"latency_command": "python 'unbalanced"}, "balanced quotes"),
        ({"latency_command": "no-such-program-xyz --x"}, "must start with a program that exists"),
        ({"command_timeout_secs": 7200.0}, "--claim-timeout-secs must be greater than"),
    ],
)
def test_run_latency_worker_rejects_bad_input(
    tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    cdir, _ = _make_controller(str(tmp_path), {"job": 1})
    (tmp_path / "plain").mkdir()
    given: dict[str, Any] = {
        "controller_dir": cdir,
        "latency_command": shlex.join(_command()),
        "once": True,
    }
    given.update(values)
    given["controller_dir"] = {
        "MISSING": str(tmp_path / "missing"),
        "PLAIN": str(tmp_path / "plain"),
    }.get(given["controller_dir"], given["controller_dir"])
    with pytest.raises(UsageError, match=message):
        run_latency_worker(given)


def test_the_module_entry_point_reads_a_config_file_and_flags(tmp_path: Path) -> None:
    cdir, trials = _make_controller(str(tmp_path), {"job": 2})
    config = tmp_path / "worker.yaml"
    config.write_text(
        f"controller-dir: {cdir}\nlatency_command: {shlex.join(_command())}\nworker-id: 7\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "proxytask.controllers.latency", "--config", str(config), "--once"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "measured 2 trial(s)" in proc.stdout
    result = read_latency(trials[1])
    assert result is not None and result.latency == pytest.approx(2.0) and result.worker_id == "7"
    bad = subprocess.run(
        [
            *(sys.executable, "-m", "proxytask.controllers.latency"),
            *("--config", str(config), "--poll-secs", "-1"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert bad.returncode == 2
    assert "--poll-secs must be a finite number > 0, got '-1'" in bad.stderr


# ---- two workers, one controller dir --------------------------------------------------------

_WORKER_SCRIPT = """
import sys
from proxytask.controllers.latency import run_latency_worker
sys.exit(run_latency_worker({
    "controller_dir": sys.argv[1], "latency_command": sys.argv[2], "worker_id": sys.argv[3],
    "once": True, "poll_secs": 0.05,
}))
"""


def test_two_workers_on_one_controller_dir_measure_every_trial_exactly_once(
    tmp_path: Path,
) -> None:
    cdir, trials = _make_controller(str(tmp_path), {"job_a": 6, "job_b": 6})
    log = tmp_path / "measurements.log"
    command = shlex.join([sys.executable, FIXTURE, "--sleep", "0.05", "--log", str(log)])
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER_SCRIPT, cdir, command, f"worker-{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        for i in (1, 2)
    ]
    outputs = [w.communicate(timeout=60) for w in workers]
    for worker, (_out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    counts = [int(out.rsplit("measured ", 1)[1].split()[0]) for out, _ in outputs]
    assert sum(counts) == len(trials) == 12

    logged = [line.split("\t")[0] for line in log.read_text().splitlines()]
    assert sorted(logged) == sorted(trials)  # one measurement per trial, no more, no less
    assert find_pending(cdir) == []
    for number, tdir in enumerate(trials[:6], start=1):
        result = read_latency(tdir)
        assert result is not None and result.latency == pytest.approx(number)
        assert result.worker_id in ("worker-1", "worker-2")
        assert (
            json.loads(Path(layout.trial_file(tdir, layout.LATENCY_CLAIM)).read_text())["worker_id"]
            == result.worker_id
        )
    for number, tdir in enumerate(trials[6:], start=1):
        result = read_latency(tdir)
        assert result is not None and result.latency == pytest.approx(number)


# ---- the reference tools' protocol (--protocol vertex) --------------------------------------


def _export(trial_dir: str, ready: str = layout.SAVED_MODEL_READY) -> str:
    """What a reference-style trainer does before it waits: export its model."""
    saved = storage.join(trial_dir, layout.SAVED_MODEL_DIR)
    storage.write_bytes_atomic(storage.join(saved, "variables.data"), b"weights")
    storage.write_bytes_atomic(storage.join(saved, ready), b"graph")
    return saved


def _workflow(root: str) -> tuple[str, list[str]]:
    """A workflow dir with two stage dirs, two trials each, none of them requesting."""
    wdir = storage.join(root, "Workflow_x")
    storage.write_json_atomic(storage.join(wdir, layout.WORKFLOW_STATE), {"stages": {}})
    trials = []
    for stage in ("Variance_Measurement_x_1", "Model_Selection_x_2"):
        for number in (1, 2):
            tdir = layout.trial_dir(layout.job_dir(storage.join(wdir, stage), "job"), number)
            storage.write_json_atomic(
                layout.trial_file(tdir, layout.NAS_PARAMS), {"width": 10 * number}
            )
            trials.append(tdir)
    return wdir, trials


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ("12.5\n", {"latency_in_milliseconds": 12.5, "model_memory": 0}),
        (
            'loading\n{"latency_in_milliseconds": 3, "model_memory": 12, "device_type": "GPU"}',
            {"latency_in_milliseconds": 3, "model_memory": 12, "device_type": "GPU"},
        ),
        ('{"latency_in_milliseconds": 0.5}', {"latency_in_milliseconds": 0.5, "model_memory": 0}),
    ],
)
def test_parse_vertex_latency_output_reads_a_number_or_the_model_metrics(
    stdout: str, expected: dict[str, Any]
) -> None:
    assert latency.parse_vertex_latency_output(stdout) == expected


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("", "got no output"),
        ('{"latency_in_milliseconds": 3', "must be a JSON object or a number"),
        ('{"latency": 3}', "must hold 'latency_in_milliseconds'"),
        ('{"latency_in_milliseconds": -1}', "must hold 'latency_in_milliseconds'"),
        ('{"latency_in_milliseconds": 1, "model_memory": "big"}', "'model_memory' must be"),
    ],
)
def test_parse_vertex_latency_output_rejects_bad_output_clearly(stdout: str, message: str) -> None:
    with pytest.raises(LatencyOutputError, match=message):
        latency.parse_vertex_latency_output(stdout)


def test_find_pending_saved_models_lists_complete_exports_of_every_stage(tmp_path: Path) -> None:
    wdir, trials = _workflow(str(tmp_path))
    assert latency.find_pending_saved_models(wdir) == []
    _export(trials[0])
    _export(trials[3])
    storage.write_bytes_atomic(  # an export still being written: no ready file yet
        storage.join(trials[1], layout.SAVED_MODEL_DIR, "variables.data"), b"w"
    )
    assert latency.find_pending_saved_models(wdir) == [trials[3], trials[0]]  # stages by name
    stage = str(Path(trials[0]).parents[2])
    assert latency.find_pending_saved_models(stage) == [trials[0]]  # one stage dir alone
    _export(trials[2], ready="model.pt")
    assert latency.find_pending_saved_models(wdir, "model.pt") == [trials[2]]


def test_the_vertex_protocol_answers_a_waiting_trainer_with_model_latency_json(
    tmp_path: Path,
) -> None:
    from proxytask.vertex import cloud_nas_utils

    wdir, trials = _workflow(str(tmp_path))
    saved = _export(trials[1])
    log = tmp_path / "log.txt"
    worker = _worker(wdir, _command("--json", "--log", str(log)), protocol="vertex")
    assert worker.run(once=True) == 1
    assert log.read_text().split("\t")[0] == saved  # the command got the saved model's dir
    expected = {"latency_in_milliseconds": 2.0, "model_memory": 7}
    assert _json(storage.join(saved, layout.MODEL_LATENCY)) == expected
    record = read_latency(saved)
    assert record is not None and record.latency == 2.0 and record.worker_id == "w1"
    assert cloud_nas_utils.wait_and_retrieve_latency(saved, sleep_time=0) == expected
    assert latency.find_pending_saved_models(wdir) == []  # answered once
    assert not storage.exists(layout.trial_file(trials[1], layout.LATENCY_RESULT))


def test_a_failed_vertex_measurement_fails_the_waiting_trainer_at_once(tmp_path: Path) -> None:
    from proxytask.vertex import cloud_nas_utils

    cdir, trials = _make_controller(str(tmp_path), {"job": 1}, request=False)
    saved = _export(trials[0])
    assert _worker(cdir, _command("--fail", "3"), protocol="vertex").run(once=True) == 1
    assert not storage.exists(storage.join(saved, layout.MODEL_LATENCY))
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="exited with code 3; last stderr line: RuntimeError"):
        cloud_nas_utils.wait_and_retrieve_latency(saved, sleep_time=0.1, timeout_secs=30)
    assert time.monotonic() - started < 5


def test_run_finished_knows_each_kind_of_run(tmp_path: Path) -> None:
    wdir, _ = _workflow(str(tmp_path))
    assert not latency.run_finished(wdir)
    storage.write_json_atomic(
        storage.join(wdir, layout.WORKFLOW_STATE),
        {"stages": {"variance": {"dir": "d", "status": "failed"}}},
    )
    assert latency.run_finished(wdir)
    storage.write_json_atomic(storage.join(wdir, layout.WORKFLOW_STATE), {"stages": {}})
    storage.write_json_atomic(storage.join(wdir, layout.WORKFLOW_RECOMMENDATION), {})
    assert latency.run_finished(wdir)
    vdir = str(tmp_path / "v")
    storage.write_json_atomic(storage.join(vdir, layout.MEASUREMENT_STATE), {"phase": "copies"})
    assert not latency.run_finished(vdir)
    storage.write_json_atomic(storage.join(vdir, layout.MEASUREMENT_STATE), {"phase": "failed"})
    assert latency.run_finished(vdir)
    assert not latency.run_finished(str(tmp_path / "search-alone"))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"protocol": "tfx"}, "--protocol must be one of proxytask, vertex"),
        ({"protocol": "vertex", "saved_model_file": "sub/model.pt"}, "a file name inside"),
        ({"protocol": "vertex", "saved_model_file": " "}, "a file name inside"),
        ({"protocol": "vertex", "saved_model_dir": "../x"}, "a relative path inside"),
        ({"protocol": "vertex", "saved_model_dir": "/abs"}, "a relative path inside"),
    ],
)
def test_the_vertex_protocol_options_reject_bad_input(
    tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    wdir, _ = _workflow(str(tmp_path))
    given = {"controller_dir": wdir, "latency_command": shlex.join(_command()), "once": True}
    with pytest.raises(UsageError, match=message):
        run_latency_worker({**given, **values})


def test_the_protocol_flag_offers_exactly_the_protocols_served(tmp_path: Path) -> None:
    option = {o.name: o for o in latency.LATENCY_WORKER_OPTIONS}["protocol"]
    assert option.choices == latency.PROTOCOLS
    wdir, _ = _workflow(str(tmp_path))
    run = subprocess.run(
        [sys.executable, "-m", "proxytask.controllers.latency", "--controller-dir", wdir,
         "--latency-command", "python x.py", "--protocol", "tfx"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2
    assert "Traceback" not in run.stderr and "tfx" in run.stderr


def test_the_vertex_protocol_serves_a_saved_model_where_the_trainer_puts_it(
    tmp_path: Path,
) -> None:
    """The reference's tutorial trainers save to ``<trial dir>/model`` with ``model.save``."""
    cdir, trials = _make_controller(str(tmp_path), {"job": 1}, request=False)
    model = storage.join(trials[0], "model")
    storage.write_bytes_atomic(storage.join(model, "saved_model.pb"), b"graph")
    assert latency.find_pending_saved_models(cdir) == []
    worker = _worker(cdir, _command(), protocol="vertex", saved_model_dir="model")
    assert worker.run(once=True) == 1
    assert _json(storage.join(model, layout.MODEL_LATENCY)) == {
        "latency_in_milliseconds": 1.0,
        "model_memory": 0,
    }
