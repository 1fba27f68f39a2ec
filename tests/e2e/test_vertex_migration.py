"""A trainer written for the Vertex AI NAS tools runs under proxytask with only its imports changed.

``tests/vertex_trainer/`` is such a trainer, written in this project: ``main()``, flags and
training loop shaped call for call like the Vertex ``tf_vision`` trainer
(``cloud_search_main.py``, ``train_lib.py``), a PyGlove search space, a Vertex-style proxy-task
config generator (``proxy_task_utils.ProxyTaskConfig(name=..., docker_args_map=...)``) and a
latency calculator for exported models. Each test copies it, rewrites its two kinds of import
line to ``proxytask.vertex`` (checking that nothing else differs), and runs the CLI on the copy:
``trial``, ``variance``, ``select-models`` (rounds continued from checkpoints), ``search``, and
the whole workflow with ``proxytask run`` while ``proxytask latency-worker --protocol vertex``
answers the trainer's ``wait_and_retrieve_latency``.
"""

from __future__ import annotations

import difflib
import glob
import json
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyglove", reason="the Vertex-style search space is a PyGlove one")

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tests" / "vertex_trainer"
#: The only lines a migrating user changes: the reference modules' imports.
IMPORTS = {
    "import cloud_nas_utils": "from proxytask.vertex import cloud_nas_utils",
    "from proxy_task import proxy_task_utils": "from proxytask.vertex import proxy_task_utils",
}
SPACE = "vertex_trainer.search_spaces:tiny_mlp_search_space"
GENERATOR = "vertex_trainer.proxy_task_search_spaces:tiny_mlp_proxy_task_config_generator"
TRAINER = [sys.executable, "vertex_trainer/cloud_search_main.py"]
LATENCY_COMMAND = [sys.executable, "vertex_trainer/latency_computation.py"]
STEPS = 240
TRAINER_ARGS = [
    "training_data_path=data/train-*-of-00100",
    f"params_override=train_steps={STEPS},validation_interval=60",
    "multiple_eval_during_search=true",
]


def _migrate(workdir: Path) -> list[tuple[str, str]]:
    """Copy the trainer into ``workdir/vertex_trainer`` with its imports rewritten.

    Returns every (old, new) line pair that differs between the copy and the original.
    """
    target = workdir / "vertex_trainer"
    shutil.copytree(SOURCE, target, ignore=shutil.ignore_patterns("__pycache__"))
    changed: list[tuple[str, str]] = []
    for path in sorted(target.glob("*.py")):
        old = path.read_text().splitlines()
        new = [IMPORTS.get(line, line) for line in old]
        path.write_text("\n".join(new) + "\n")
        diff = list(difflib.ndiff(old, new))
        removed = [line[2:] for line in diff if line.startswith("- ")]
        added = [line[2:] for line in diff if line.startswith("+ ")]
        changed.extend(zip(removed, added, strict=True))
    return changed


def _cli(workdir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``proxytask ARGS`` run in ``workdir`` (where the migrated trainer lives)."""
    script = Path(sys.executable).with_name("proxytask")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "proxytask.cli"]
    return subprocess.run(
        [*command, *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _common(job: str) -> list[str]:
    return [
        "--trainer", shlex.join(TRAINER), "--search-space", SPACE,
        "--root-output-dir", "runs", "--job-name", job,
        "--report-timeout-secs", "120",
    ]  # fmt: skip


def _json(path: Path | str) -> Any:
    return json.loads(Path(path).read_text())


@contextmanager
def _latency_worker(workdir: Path, pattern: str) -> Iterator[list[str]]:
    """``proxytask latency-worker --protocol vertex`` on the run dir matching ``pattern``,
    started as soon as that dir appears; yields the worker's output lines once it is stopped."""
    lines: list[str] = []
    stop = threading.Event()
    procs: list[subprocess.Popen[str]] = []

    def serve() -> None:
        while not stop.is_set():
            found = glob.glob(str(workdir / pattern))
            if found:
                break
            stop.wait(0.1)
        else:
            return
        script = Path(sys.executable).with_name("proxytask")
        proc = subprocess.Popen(
            [str(script), "latency-worker", "--protocol", "vertex", "--controller-dir", found[0],
             "--latency-command", shlex.join(LATENCY_COMMAND), "--poll-secs", "0.2",
             "--max-idle-secs", "120"],
            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        procs.append(proc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield lines
    finally:
        stop.set()
        thread.join(timeout=10)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
            out, _ = proc.communicate(timeout=30)
            lines.extend(out.splitlines())


def test_only_the_import_lines_change(tmp_path: Path) -> None:
    changed = _migrate(tmp_path)
    assert changed and set(changed) <= set(IMPORTS.items()), changed
    # every module that uses a reference module imports it on a line the migration rewrote
    for path in (tmp_path / "vertex_trainer").glob("*.py"):
        text = path.read_text()
        for module in ("cloud_nas_utils", "proxy_task_utils"):
            if f"{module}." in text:
                assert f"from proxytask.vertex import {module}" in text, (path.name, module)
    for path in SOURCE.glob("*.py"):  # and the original knows nothing of proxytask
        assert "import proxytask" not in path.read_text()
        assert "from proxytask" not in path.read_text()


def test_a_trial_waits_for_its_latency_and_reports_the_reward(tmp_path: Path) -> None:
    _migrate(tmp_path)
    with _latency_worker(tmp_path, "runs/Trials_one_*") as worker:
        out = _ok(
            _cli(
                tmp_path,
                "trial",
                *_common("one"),
                "--trainer-args",
                *TRAINER_ARGS,
                "target_device_latency_ms=0.05",
            )
        )
    assert "succeeded" in out
    (trial,) = glob.glob(str(tmp_path / "runs" / "Trials_one_*" / "jobs" / "one" / "1"))
    model_latency = _json(Path(trial, "saved_model", "model_latency.json"))
    assert model_latency["latency_in_milliseconds"] > 0 and model_latency["device_type"] == "CPU"
    metrics = _json(Path(trial, "TRIAL_TRAINING_METRICS.json"))
    assert metrics["latency"] == model_latency["latency_in_milliseconds"]
    assert metrics["training_accuracy_over_steps"][-1]["training_step"] == STEPS - 1
    final = _json(Path(trial, "FINAL_METRICS.json"))  # CloudSession.report: the reward
    assert (
        final["accuracy"] < final["accuracy_without_latency"]
        or final["accuracy"] == (final["accuracy_without_latency"])
    )
    assert final["latency_milli_seconds"] == model_latency["latency_in_milliseconds"]
    decisions = _json(Path(trial, "nas_params_str.json"))
    assert set(decisions) == {"hidden_units", "num_layers", "activation", "learning_rate"}
    assert Path(trial, "tiny_mlp_serialized_tunable_object.json").is_file()
    assert _json(Path(trial, "job_status.json")) == {"job_status": "success"}
    assert any("latency" in line for line in worker), worker


def test_the_three_tools_run_one_after_another(tmp_path: Path) -> None:
    _migrate(tmp_path)
    args = ["--trainer-args", *TRAINER_ARGS]
    _ok(_cli(tmp_path, "variance", *_common("var"), *args, "--num-copies", "2"))
    (variance,) = glob.glob(str(tmp_path / "runs" / "Variance_Measurement_var_*"))
    assert _json(Path(variance, "variance_and_smoothness.json"))["num_copies_finished"] == 2

    out = _ok(
        _cli(
            tmp_path,
            "select-models",
            *_common("sel"),
            *args,
            "--start-num-models",
            "6",
            "--final-num-models",
            "5",  # the fewest a search can rank
            "--num-models-to-remove-per-iter",
            "1",
        )
    )
    assert "round1:" in out and "round2:" in out, out
    (selection,) = glob.glob(str(tmp_path / "runs" / "Model_Selection_sel_*"))
    models = _json(Path(selection, "REFERENCE_MODELS.json"))["reference_models"]
    assert len(models) == 5
    for model in models:  # continuations got --nas_params_str, as under Vertex, and went on
        trial = tmp_path / model["trial_dir"]  # relative to where proxytask ran
        assert _json(trial / "nas_params_str.json") == model["architecture"]
        steps = _json(trial / "TRIAL_TRAINING_METRICS.json")["training_accuracy_over_steps"]
        assert steps[-1]["training_step"] == STEPS - 1

    out = _ok(
        _cli(
            tmp_path,
            "search",
            *_common("search"),
            *args,
            "--model-selection-dir",
            selection,
            "--proxy-task-config-generator",
            GENERATOR,
            "--stopping-rule",
            "point",
            "--desired-accuracy-correlation",
            "0.3",
        )
    )
    (search,) = glob.glob(str(tmp_path / "runs" / "Search_controller_search_*"))
    assert "best proxy task:" in out or "no proxy task met" in out, out
    state = _json(Path(search, "SEARCH_CONTROLLER_STATE.json"))
    names = set(state["proxy_tasks_map"])
    assert names == {
        "tiny_mlp_proxy_training_data_pct_20",
        "tiny_mlp_proxy_training_data_pct_50",
    }
    args_20 = state["config_args"]["tiny_mlp_proxy_training_data_pct_20"]
    assert args_20["training_data_path"] == "data/train-000[0-1]?-of-00100"  # the generator's

    # bad input stays one clean line: a generator that returns the wrong type
    result = _cli(
        tmp_path, "search", *_common("bad"), *args, "--model-selection-dir", selection,
        "--proxy-task-config-generator",
        "vertex_trainer.proxy_task_search_spaces:wrong_type_generator",
    )  # fmt: skip
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "ProxyTaskConfig" in result.stderr, result.stderr
    assert not glob.glob(str(tmp_path / "runs" / "Search_controller_bad_*"))  # nothing written


def test_the_whole_workflow_runs_with_the_latency_calculator(tmp_path: Path) -> None:
    _migrate(tmp_path)
    shutil.copy(SOURCE / "workflow.yaml", tmp_path / "workflow.yaml")
    config = (tmp_path / "workflow.yaml").read_text()
    config = config.replace("trainer: python ", f"trainer: {shlex.quote(sys.executable)} ")
    (tmp_path / "workflow.yaml").write_text(config)
    with _latency_worker(tmp_path, "runs/Workflow_vertex-trainer") as worker:
        out = _ok(_cli(tmp_path, "run", "workflow.yaml", timeout=600))
    wdir = tmp_path / "runs" / "Workflow_vertex-trainer"
    stages = _json(wdir / "WORKFLOW_STATE.json")["stages"]
    assert {name for name, entry in stages.items() if entry["status"] == "done"} >= {
        "variance",
        "model_selection",
        "search",
    }, stages
    recommendation = _json(wdir / "RECOMMENDATION.json")
    assert "recommendation" in recommendation, recommendation
    selection = tmp_path / stages["model_selection"]["dir"]
    for model in _json(selection / "REFERENCE_MODELS.json")["reference_models"]:
        assert model["latency"] > 0  # the trainer's own, from the latency calculator
        saved = tmp_path / model["trial_dir"] / "saved_model" / "model_latency.json"
        assert _json(saved)["latency_in_milliseconds"] == model["latency"]
    measured = [line for line in worker if ": latency " in line]
    assert len(measured) >= 12, worker  # every stage's trials were answered
    assert "failed" not in "\n".join(worker)
    assert "recommendation:" in out
