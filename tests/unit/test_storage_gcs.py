"""gs:// through gcsfs against a GCS-compatible server (tests/gcs_server.py), and Vertex AI's
``/gcs/`` paths where no Cloud Storage FUSE mount exists."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from proxytask.controllers import latency
from proxytask.core import layout, storage
from proxytask.trainer import contract as trainer
from tests.gcs_server import GcsServer

pytestmark = pytest.mark.gcs


def test_round_trips_moves_and_removes(gcs_root: str) -> None:
    f = storage.join(gcs_root, "a", "b.json")
    assert storage.read_json(f) is None and not storage.exists(f)
    storage.write_json_atomic(f, {"x": [1, 2.5]})
    assert storage.read_json(f) == {"x": [1, 2.5]}
    assert storage.exists(f) and storage.listdir(gcs_root) == ["a"]
    storage.move(storage.join(gcs_root, "a"), storage.join(gcs_root, "c"))
    assert storage.listdir(gcs_root) == ["c"]
    assert storage.read_json(storage.join(gcs_root, "c", "b.json")) == {"x": [1, 2.5]}
    storage.remove(storage.join(gcs_root, "c", "b.json"))
    assert storage.listdir(gcs_root) == []
    assert storage.is_shared(gcs_root) and not storage.is_local(gcs_root)


def test_racing_creates_have_exactly_one_winner(gcs_root: str) -> None:
    paths = [storage.join(gcs_root, f"t{i}", "CLAIM.json") for i in range(8)]
    wins: list[tuple[str, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def racer(me: int) -> None:
        start.wait()
        for path in paths:
            if storage.create_exclusive(path, str(me).encode()):
                with lock:
                    wins.append((path, me))

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(p for p, _ in wins) == sorted(paths)
    for path, me in wins:
        assert storage.read_bytes(path) == str(me).encode()


def test_the_trainer_contract_and_latency_claims_on_gs(gcs_root: str) -> None:
    trial = storage.join(gcs_root, "jobs", "j", "1")
    trainer.update_trial_training_accuracy_metric(trial, 0.5, 0, 9, 1.0, 10)
    metrics = trainer.read_trial_training_metrics(trial)
    assert metrics is not None and metrics.last_pct == pytest.approx(100.0)
    latency.request_latency(trial, now=100.0)
    assert latency.find_pending(gcs_root) == [trial]
    assert latency.try_claim(trial, "w1", now=100.0, claim_timeout_secs=60)
    assert not latency.try_claim(trial, "w2", now=101.0, claim_timeout_secs=60)


def test_a_gcs_fuse_path_with_no_mount_runs_trials_on_gs(
    gcs_server: GcsServer, tmp_path: Path
) -> None:
    """``--root-output-dir /gcs/<bucket>/...`` on a machine without the mount: every file of
    the run, the trainer's included, goes to ``gs://`` (the CLI runs in a subprocess so that
    this machine's missing ``/gcs`` is what it sees)."""
    if Path("/gcs").exists():
        pytest.skip("this machine has a /gcs folder: /gcs/ paths stay local here")
    prefix = gcs_server.new_prefix().removeprefix("gs://")
    done = subprocess.run(
        [sys.executable, "-m", "proxytask.cli", "trial",
         f"--trainer={sys.executable} -m proxytask.testing.fake_trainer",
         "--search-space=tests.fixtures.spaces:tiny", f"--root-output-dir=/gcs/{prefix}",
         "--job-name=g", "--trainer-args", "cycles=2", "cycle_secs=0.01"],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"controller dir: gs://{prefix}/Trials_g_" in done.stdout, done.stdout
    assert not Path("/gcs").exists()  # nothing was written to a local /gcs
    root = f"gs://{prefix}"
    (cdir,) = [n for n in storage.listdir(root) if n.startswith("Trials_g_")]
    trial = storage.join(root, cdir, layout.JOBS_DIR, "g", "1")
    metrics = trainer.read_trial_training_metrics(trial)  # written by the trainer process
    assert metrics is not None and metrics.last_pct == pytest.approx(100.0)
