"""End to end: the MNIST-1D example (`make demo`'s) through ``proxytask run``, scaled down.

The committed workflow file with a small step budget and few models, from an empty output dir
to ``RECOMMENDATION.json`` on the local executor with two parallel trials: the real trainer, the
real data, the shared latency cache and the training-cycle lock between parallel trials.
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

pytest.importorskip("torch")
pytest.importorskip("mnist1d")

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "mnist1d"


def _config(tmp_path: Path) -> Path:
    config: dict[str, Any] = yaml.safe_load((EXAMPLE / "workflow.yaml").read_text())
    config["trainer"] = shlex.join([sys.executable, str(EXAMPLE / "trainer.py")])
    config["root-output-dir"] = str(tmp_path / "runs")
    config["trainer-args"].update(total_steps=60, eval_every_steps=20)
    config["variance"]["num-copies"] = 2
    config["model-selection"].update(
        {
            "start-num-models": 7,
            "final-num-models": 5,  # the fewest a search can rank
            "num-models-to-remove-per-iter": 2,
            "num-holdout-models": 2,
        }
    )
    path = tmp_path / "workflow.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_the_example_workflow_runs_end_to_end(tmp_path: Path) -> None:
    proxytask = str(Path(sys.executable).with_name("proxytask"))
    proc = subprocess.run(
        [proxytask, "run", str(_config(tmp_path)), "--live", "false"],
        cwd=REPO,
        env={**os.environ, "PROXYTASK_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    workflow = tmp_path / "runs" / "Workflow_mnist1d"
    rec = json.loads((workflow / "RECOMMENDATION.json").read_text())
    assert isinstance(rec["recommendation"]["found"], bool)  # 5 models, 60 steps: either way
    state = json.loads(
        next(workflow.glob("Search_controller_*/SEARCH_CONTROLLER_STATE.json")).read_text()
    )
    assert state["settings"]["stopping_rule"] == "confident"  # the default rule
    stats = {n: c["proxy_task_stats"] for n, c in state["proxy_tasks_map"].items()}
    assert set(stats) == {"data25", "data50", "len20", "width0.5", "data25_len20"}
    for name in ("data25", "data50"):  # the same models as full training: the same latencies
        if stats[name]["latency_correlation"] is not None:
            assert stats[name]["latency_correlation"] == pytest.approx(1.0)
    cached = list((workflow / "cache" / "latency").glob("*.json"))
    assert cached  # measured once per model, shared by every stage
    keys = [json.loads(p.read_text())["key"] for p in cached]
    full = [k for k in keys if (k["seq_length"], k["width_multiplier"]) == (40, 1.0)]
    assert len({json.dumps(k["arch"], sort_keys=True) for k in full}) == len(full)
