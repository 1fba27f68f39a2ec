"""Storage: atomic writes on local disk and fsspec memory://, URLs, errors."""

from __future__ import annotations

import json
import multiprocessing as mp
import threading
import uuid
from pathlib import Path

import pytest

from proxytask.core import layout, storage
from proxytask.core.errors import StorageError, UsageError
from proxytask.trainer import contract as trainer

N_WRITES = 10_000


def _writer(model_dir: str, count: int) -> None:
    """Real trainer API writes: 100-cycle trials, the file reset every 100 reports."""
    path = layout.trial_file(model_dir, layout.TRIAL_TRAINING_METRICS)
    for i in range(count):
        if i % 100 == 0:
            storage.remove(path)
        step = i % 100
        trainer.update_trial_training_accuracy_metric(model_dir, step / 100, step, step, 0.01, 100)


def _check_consistent(data: dict) -> int:
    points = data["training_accuracy_over_steps"]
    assert data["training_time"]["total_training_steps"] == len(points)
    assert [p["training_step"] for p in points] == list(range(len(points)))
    return len(points)


def _reader(model_dir: str, stop: threading.Event | None, count: int) -> tuple[int, int]:
    path = layout.trial_file(model_dir, layout.TRIAL_TRAINING_METRICS)
    parsed = missing = 0
    for _ in range(count):
        raw = storage.read_bytes(path)
        if raw is None:
            missing += 1
            continue
        _check_consistent(json.loads(raw))  # raises on any torn or partial file
        parsed += 1
        if stop is not None and stop.is_set():
            break
    return parsed, missing


def _reader_process(model_dir: str, count: int, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        queue.put(("ok", _reader(model_dir, None, count)))
    except Exception as exc:  # reported to the test
        queue.put(("error", repr(exc)))


@pytest.mark.slow
def test_two_processes_interleaving_writes_and_reads_locally(tmp_path: Path) -> None:
    model_dir = str(tmp_path / "trial")
    _writer(model_dir, 100)  # the file exists before the reader starts
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    reader = ctx.Process(target=_reader_process, args=(model_dir, N_WRITES, queue))
    reader.start()
    _writer(model_dir, N_WRITES)
    reader.join(timeout=300)
    kind, result = queue.get(timeout=10)
    assert kind == "ok", result
    parsed, _missing = result
    assert parsed > 0
    assert not [p for p in (tmp_path / "trial").iterdir() if p.name.startswith(".tmp-")]


def test_writes_and_reads_interleave_on_memory_fs() -> None:
    # memory:// lives inside one process, so the two sides are threads here.
    model_dir = f"memory://proxytask-test-{uuid.uuid4().hex}/trial"
    _writer(model_dir, 100)
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            _reader(model_dir, stop, N_WRITES)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    _writer(model_dir, N_WRITES)
    stop.set()
    thread.join()
    assert not errors, errors


def test_trainer_api_on_memory_urls() -> None:
    d = f"memory://proxytask-test-{uuid.uuid4().hex}/job/1"
    trainer.save_nas_params(d, {"w": 8})
    trainer.update_trial_training_accuracy_metric(d, 0.3, 0, 4, 0.2, 10)
    trainer.set_stop_training(d, desired_training_pct=50.0)
    assert trainer.get_stop_training(d, 4, 10)
    assert storage.listdir(storage.join(d, "..")) == ["1"] or storage.exists(d)
    assert storage.read_json(storage.join(d, layout.NAS_PARAMS)) == {"w": 8}


def test_join_and_locality(tmp_path: Path) -> None:
    assert storage.join("s3://bucket/a", "b", "c.json") == "s3://bucket/a/b/c.json"
    assert storage.join(str(tmp_path), "x") == str(tmp_path / "x")
    assert storage.is_local(str(tmp_path))
    assert storage.is_local(f"file://{tmp_path}")
    assert not storage.is_local("memory://x/y")


def test_unknown_protocol_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="must use an installed fsspec filesystem"):
        storage.read_json("nosuchproto://bucket/file.json")


def test_corrupt_json_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{half")
    with pytest.raises(StorageError, match="must hold valid JSON"):
        storage.read_json(str(bad))
    assert storage.read_json(str(tmp_path / "missing.json")) is None


def test_nan_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="finite numbers"):
        storage.write_json_atomic(str(tmp_path / "x.json"), {"a": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_file_signature_changes_on_write(tmp_path: Path) -> None:
    p = str(tmp_path / "f.json")
    assert storage.file_signature(p) is None
    storage.write_json_atomic(p, {"a": 1})
    first = storage.file_signature(p)
    storage.write_json_atomic(p, {"a": 2})
    assert storage.file_signature(p) != first
    m = f"memory://sig-{uuid.uuid4().hex}/f.json"
    storage.write_json_atomic(m, {"a": 1})
    s1 = storage.file_signature(m)
    storage.write_json_atomic(m, {"a": 22})
    assert storage.file_signature(m) != s1


def test_copy_file(tmp_path: Path) -> None:
    src = str(tmp_path / "a.json")
    storage.write_json_atomic(src, {"a": 1})
    storage.copy_file(src, f"memory://copy-{uuid.uuid4().hex}/b.json")
    with pytest.raises(StorageError, match="must exist to be copied"):
        storage.copy_file(str(tmp_path / "none.json"), str(tmp_path / "b.json"))


def test_atomic_files_get_normal_permissions(tmp_path: Path) -> None:
    import os

    path = tmp_path / "x.json"
    storage.write_json_atomic(str(path), {"a": 1})
    current = os.umask(0o022)
    os.umask(current)
    assert path.stat().st_mode & 0o777 == 0o666 & ~current


# ---- Vertex AI's Cloud Storage FUSE paths ----------------------------------------------------


@pytest.mark.parametrize(
    ("mounted", "url", "expected"),
    [
        (False, "/gcs/my-bucket/runs/x", "gs://my-bucket/runs/x"),
        (True, "/gcs/my-bucket/runs/x", "/gcs/my-bucket/runs/x"),  # the mount is used as is
        (False, "/gcs/", "/gcs/"),
        (False, "/gcsx/runs", "/gcsx/runs"),
        (False, "runs/gcs/x", "runs/gcs/x"),
        (False, "s3://b/gcs/x", "s3://b/gcs/x"),
    ],
)
def test_gcs_fuse_paths_map_to_gs_urls_where_no_mount_exists(
    monkeypatch: pytest.MonkeyPatch, mounted: bool, url: str, expected: str
) -> None:
    monkeypatch.setattr(storage, "_gcs_fuse_mounted", lambda: mounted)
    assert storage.resolve_url(url) == expected
    protocol = expected.split("://", 1)[0] if "://" in expected else "file"
    assert storage.url_protocol(url) == protocol


def test_a_gcs_fuse_root_output_dir_reaches_the_trials_as_a_gs_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from proxytask.controllers.command_options import TRIAL_OPTIONS

    monkeypatch.setattr(storage, "_gcs_fuse_mounted", lambda: False)
    option = {o.name: o for o in TRIAL_OPTIONS}["root-output-dir"]
    assert option.parse("/gcs/my-bucket/runs") == "gs://my-bucket/runs"
    assert storage.is_shared("/gcs/my-bucket/runs")
