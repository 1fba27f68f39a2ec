"""End to end: a trainer written only from docs/guide.md runs through ``proxytask run``.

The trainer, its search space and its proxy generator live in ``tests/guide_trainer/`` (a numpy
MLP on scikit-learn's bundled breast-cancer data, not the digits example). The test runs the
whole workflow from an empty output dir to ``RECOMMENDATION.json`` with the local executor,
then runs it again and checks that the finished stages are skipped and the answer is unchanged.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("sklearn", reason="the guide trainer reads scikit-learn's bundled data")

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
GUIDE_TRAINER = REPO / "tests" / "guide_trainer"
JOB_NAME = "guide-trainer"
PROXIES = {"data25": {"train_data_pct": "25"}, "data50": {"train_data_pct": "50"}}
NUM_REFERENCE_MODELS = 8
STATE_FILES = {
    "variance": "measurement_state.json",
    "model_selection": "MODEL_SELECTION_STATE.json",
    "search": "SEARCH_CONTROLLER_STATE.json",
}
TOTAL_STEPS = 600


def _read_json(path: Path) -> Any:
    """The parsed content of a JSON file."""
    return json.loads(path.read_text())


def _write_config(tmp_path: Path) -> Path:
    """The committed workflow file, with an absolute trainer and the output under tmp_path."""
    config = yaml.safe_load((GUIDE_TRAINER / "workflow.yaml").read_text())
    config["trainer"] = shlex.join([sys.executable, str(GUIDE_TRAINER / "trainer.py")])
    config["root-output-dir"] = str(tmp_path / "runs")
    path = tmp_path / "workflow.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _proxytask_command() -> list[str]:
    """The ``proxytask`` console script beside this interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("proxytask")
    return [str(script)] if script.exists() else [sys.executable, "-m", "proxytask.cli"]


def _run_workflow(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``proxytask run CONFIG`` from ``cwd``, with the repository on PYTHONPATH (guide §3)."""
    pythonpath = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    result = subprocess.run(
        [*_proxytask_command(), "run", str(config), "--live", "false"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (
        f"proxytask run exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result


def _check_stage_dirs(workflow_dir: Path) -> dict[str, Path]:
    """Every stage is done and its controller dir, inside the workflow dir, holds its files."""
    state = _read_json(workflow_dir / "WORKFLOW_STATE.json")
    stages = state["stages"]
    assert set(STATE_FILES) <= set(stages), stages
    dirs: dict[str, Path] = {}
    for name, entry in stages.items():
        assert entry["status"] == "done", (name, entry)
        stage_dir = Path(entry["dir"])
        assert stage_dir.parent == workflow_dir, (name, stage_dir)
        assert (stage_dir / "CONTROLLER_INFO.json").is_file(), name
        if name in STATE_FILES:
            assert (stage_dir / STATE_FILES[name]).is_file(), name
        dirs[name] = stage_dir
    return dirs


def _check_reference_models(selection_dir: Path) -> None:
    """The reference models, spread wide, each a full curve continued from its round-1 trial."""
    refs = _read_json(selection_dir / "REFERENCE_MODELS.json")
    models = refs["reference_models"]
    assert len(models) == NUM_REFERENCE_MODELS
    accuracies = [m["accuracy"] for m in models]
    assert max(accuracies) - min(accuracies) > 0.1, accuracies  # weak to strong
    for model in models:
        trial_dir = Path(model["trial_dir"])
        # the continuation saved the architecture it loaded, and its own checkpoint
        assert _read_json(trial_dir / "nas_params_str.json") == model["architecture"]
        assert (trial_dir / "checkpoint" / "checkpoint.npz").is_file()
        metrics = _read_json(trial_dir / "TRIAL_TRAINING_METRICS.json")
        steps = [p["training_step"] for p in metrics["training_accuracy_over_steps"]]
        assert steps == sorted(set(steps)), steps  # round 2 continued round 1's curve
        assert steps[-1] == TOTAL_STEPS - 1
        assert metrics["latency"] > 0


def test_guide_trainer_runs_the_whole_workflow(tmp_path: Path) -> None:
    """From an empty dir to RECOMMENDATION.json, then again: finished stages are skipped."""
    config = _write_config(tmp_path)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    workflow_dir = tmp_path / "runs" / f"Workflow_{JOB_NAME}"

    first = _run_workflow(config, workdir)

    dirs = _check_stage_dirs(workflow_dir)
    recommendation = _read_json(workflow_dir / "RECOMMENDATION.json")
    assert recommendation["version"] == 1

    rec = recommendation["recommendation"]
    assert rec["found"] is True, rec
    best = rec["best_proxy_task_name"]
    assert best in PROXIES, rec
    for flag, value in PROXIES[best].items():
        assert rec["trainer_args"][flag] == value
    assert rec["trainer_args"]["total_steps"] == str(TOTAL_STEPS)  # proxies keep the budget
    assert 0 < rec["training_steps"] < TOTAL_STEPS
    assert rec["cosine_decay_steps"] == rec["training_steps"]
    assert rec["accuracy_correlation_at_stop"] >= 0.65
    assert rec["speedup_vs_full_training"] > 1
    assert rec == _read_json(dirs["search"] / "PROXY_TASK_RECOMMENDATION.json")

    variance = recommendation["variance"]
    assert variance["variance_good"] is True, variance
    assert variance["smoothness_good"] is True, variance
    assert 0 <= variance["variance_value"] <= 0.4

    rates = recommendation["failure_rates"]
    assert rates["variance"]["trials"] == 1 + 3  # the workable model, then 3 copies
    assert rates["model_selection"]["trials"] == 10 + NUM_REFERENCE_MODELS  # 2 rounds
    assert rates["search"]["trials"] >= NUM_REFERENCE_MODELS  # a config per reference model
    for stage, rate in rates.items():
        assert rate["failed"] == 0 and rate["rate"] == 0.0, (stage, rate)

    assert recommendation["reward_range"]["ok"] is True
    assert recommendation["latency_constraint"] is None  # no proxy scales the model
    assert {k: Path(v) for k, v in recommendation["stage_dirs"].items()} == dirs
    _check_reference_models(dirs["model_selection"])
    assert f"recommendation: {workflow_dir / 'RECOMMENDATION.json'}" in first.stdout

    entries = sorted(p.name for p in workflow_dir.iterdir())
    second = _run_workflow(config, workdir)

    for stage in ("variance", "model selection", "search"):
        assert f"== {stage}: finished earlier, skipped" in second.stdout, second.stdout
    assert "controller dir:" not in second.stdout  # no controller was started
    assert "proxy task " not in second.stdout  # and no proxy config trained again
    assert sorted(p.name for p in workflow_dir.iterdir()) == entries
    assert _check_stage_dirs(workflow_dir) == dirs
    assert _read_json(workflow_dir / "RECOMMENDATION.json") == recommendation
