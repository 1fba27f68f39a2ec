"""Model selection with every file on s3:// (the moto server of tests/s3_server.py).

The replay executor writes trial files through proxytask.core.storage like a trainer; the digits
trainer is the real example trainer, run as a subprocess that finds the endpoint and the
credentials in its environment (``FSSPEC_S3_ENDPOINT_URL``, ``AWS_*``), exactly as a trial on
another machine would. Each test runs from an empty working directory and checks that nothing
was written to the local disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from proxytask import cli
from proxytask.controllers.selection import MODEL_SELECTION_STATE, REFERENCE_MODELS
from proxytask.core import layout, storage
from proxytask.executors.replay import ReplayTable
from proxytask.trainer import contract as pt
from tests.s3_server import ROOT

pytestmark = pytest.mark.s3

DIGITS_TRAINER = ROOT / "examples" / "digits" / "trainer.py"
TOTAL = 600  # replay steps


def _replay_table() -> dict[str, Any]:
    """One 20-point curve per architecture of tests.fixtures.spaces:tiny."""
    curves = []
    for width in (8, 16, 32, 64):
        for depth in (1, 2, 3):
            final = 0.5 + 0.1 * depth + width / 200
            points = [
                [30 * i - 1, final * (1 - 0.9 * (1 - i / 20) ** 3), 3.0 + width / 16]
                for i in range(1, 21)
            ]
            curves.append(
                {
                    "curve_id": f"w{width}d{depth}",
                    "match": {"nas_params": {"width": width, "depth": depth}},
                    "total_steps": TOTAL,
                    "latency": width * depth / 10,
                    "points": points,
                }
            )
    table = {"format": "proxytask-replay-table", "version": 1, "curves": curves}
    ReplayTable.from_dict(table)  # the fixture is a valid table
    return table


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _one_controller_dir(root: str, kind: str) -> str:
    # beside the controller dir: the shared cache of model latencies (proxytask.trainer.latency)
    (name,) = [n for n in storage.listdir(root) if n != layout.CACHE_DIR]
    assert name.startswith(kind), name
    return storage.join(root, name)


def _check_reference_models(cdir: str, count: int) -> dict[str, Any]:
    result = storage.read_json(storage.join(cdir, REFERENCE_MODELS))
    assert isinstance(result, dict)
    assert result["num_reference_models"] == count
    for model in result["reference_models"]:
        trial_dir = model["trial_dir"]
        assert trial_dir.startswith("s3://"), trial_dir
        names = storage.listdir(trial_dir)
        assert layout.TRIAL_TRAINING_METRICS in names and layout.NAS_PARAMS in names, names
        metrics = pt.read_trial_training_metrics(trial_dir)
        assert metrics is not None and metrics.last_pct == pytest.approx(100.0)
    assert storage.read_json(storage.join(cdir, MODEL_SELECTION_STATE)) is not None
    return result


def test_model_selection_on_the_replay_executor_with_every_file_on_s3(
    s3_root: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    table = inputs / "table.json"
    table.write_text(json.dumps(_replay_table()))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # a URL mistaken for a path would show up here ("s3:/...")
    code = cli.main(
        [
            "select-models",
            "--trainer=replay",
            "--search-space=tests.fixtures.spaces:tiny",
            f"--root-output-dir={s3_root}",
            "--job-name=s3sel",
            "--executor=replay",
            f"--replay-table={table}",
            "--max-parallel-trials=6",
            "--start-num-models=6",
            "--final-num-models=3",
            "--num-models-to-remove-per-iter=3",
            "--baseline-architecture",
            '{"width": 64, "depth": 3}',
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "3 reference models:" in out
    cdir = _one_controller_dir(s3_root, layout.KIND_MODEL_SELECTION)
    result = _check_reference_models(cdir, 3)
    assert result["latency_range"][0] < result["latency_range"][1]
    names = storage.listdir(cdir)
    assert {layout.CONTROLLER_INFO, layout.EVENTS_LOG, layout.JOBS_DIR} <= set(names), names
    log = storage.read_text(storage.join(cdir, layout.EVENTS_LOG)) or ""
    events = [json.loads(line) for line in log.splitlines()]
    assert sum(e["event"] == "trial_launched" for e in events) >= 6
    # each ended trial says when its process really ran (the executor's start and end)
    ended = [e for e in events if e["event"] == "trial_ended"]
    assert ended and all(e["ran_from"] <= e["ran_to"] <= e["time"] for e in ended)
    assert "filtered_trial_scores.png" in storage.listdir(layout.job_dir(cdir, "round1"))
    assert cli.main(["status", cdir]) == 0
    assert "job round1:" in capsys.readouterr().out
    # the report of a run on s3:// is written there, and the dashboard's page reads it there
    assert cli.main(["report", cdir]) == 0
    report = storage.read_text(storage.join(cdir, "REPORT.html")) or ""
    assert "Reference models on the accuracy" in report
    from proxytask.report.dashboard import DashboardServer

    server = DashboardServer(cdir, port=0)
    try:
        page = server.page()
    finally:
        server.server_close()
    assert page["status"]["state"] == "finished" and page["run_dir"] == cdir
    models = next(s for s in page["sections"] if s["id"] == "model_selection")
    assert any(t["id"] == "selection-models" and len(t["rows"]) == 3 for t in models["tables"])
    assert _files_under(work) == []
    assert _files_under(inputs) == ["table.json"]


def test_the_digits_trainer_keeps_its_job_dir_and_checkpoint_on_s3(
    s3_root: str, tmp_path: Path
) -> None:
    job = storage.join(s3_root, "jobs", "round1", "1")
    pt.set_stop_training(job, desired_training_pct=50.0)  # the controller's first round
    argv = [
        sys.executable,
        str(DIGITS_TRAINER),
        f"--job-dir={job}",
        "--baseline",
        "--total_steps=100",
        "--eval_every_steps=50",
        "--num_threads=1",
        "--latency_runs=1",
    ]

    def train() -> None:
        # the environment of this process: FSSPEC_S3_ENDPOINT_URL and AWS_* from the fixture
        done = subprocess.run(
            argv, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]

    train()
    first = pt.read_trial_training_metrics(job)
    assert first is not None and first.last_pct == pytest.approx(50.0)
    checkpoint = storage.join(job, layout.CHECKPOINT_DIR, "checkpoint.pt")
    assert storage.exists(checkpoint)
    size = len(storage.read_bytes(checkpoint) or b"")
    assert size > 1000
    pt.set_stop_training(job, desired_training_pct=101.0)  # the survivors' last round
    train()  # continues from its own checkpoint, read back from s3://
    final = pt.read_trial_training_metrics(job)
    assert final is not None and final.last_pct == pytest.approx(100.0)
    steps = [p.training_step for p in final.training_accuracy_over_steps]
    assert steps == sorted(steps) and len(steps) == 2, steps  # no evaluation repeated
    assert _files_under(tmp_path) == []  # nothing on the local disk


def test_model_selection_with_the_local_executor_and_the_digits_trainer_on_s3(
    s3_root: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    args = [
        "select-models",
        f"--trainer={sys.executable} {DIGITS_TRAINER}",
        "--search-space=examples.digits.search_space:sample",
        f"--root-output-dir={s3_root}",
        "--job-name=digits",
        "--max-parallel-trials=2",
        "--start-num-models=4",
        "--final-num-models=2",
        "--num-models-to-remove-per-iter=2",
        "--latency-source=trainer",
        "--report-timeout-secs=600",
        "--trainer-args",
        "num_threads=1",
        "total_steps=100",
        "eval_every_steps=50",
        "latency_runs=1",
    ]
    code = cli.main(args)
    out, err = capsys.readouterr()
    assert code == 0, out + err
    cdir = _one_controller_dir(s3_root, layout.KIND_MODEL_SELECTION)
    result = _check_reference_models(cdir, 2)
    assert _files_under(work) == []
    assert os.listdir(tmp_path) == ["work"]
    # the trainer's output, gathered locally while it ran, was uploaded with the trial's files
    first = result["reference_models"][0]["trial_dir"]
    log = storage.read_text(layout.trial_file(first, layout.STDOUT_LOG))
    assert log is not None and "done: accuracy=" in log
