"""Record an example's real learning curves as a replay table, for the orchestration benchmark.

What it runs, with the example's real trainer on this machine (warm workers, the workflow
file's settings):

1. ``proxytask select-models`` with the workflow file's common and ``model-selection``
   settings (its seed): every candidate's curve as far as model selection trained it, the
   reference and held-out models' to the end of the budget;
2. every reference and held-out model under every proxy-task config of the workflow's
   generator, to the end of the budget (``proxytask.controllers.trials.TrialBatch`` on the
   local executor).

The table (``--out``, JSON, :class:`proxytask.executors.replay.ReplayTable`) holds one curve per
(architecture, config): the longest trial of each model in model selection (matching the
architecture alone) and each proxy-task trial (matching the architecture and the config's
flags). Replaying ``select-models`` with the same settings and seed on it gives the same
reference models, and a replayed search can then train any config on any of them, under any
schedule, as far as the budget: the benchmark compares search policies on the same curves.

Usage::

    .venv/bin/python bench/record_curves.py examples/digits/workflow.yaml \
        --out bench/data/digits_curves.json
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stopping_rules import machine_info  # noqa: E402
from proxytask.controllers.search import config_args  # noqa: E402
from proxytask.controllers.trials import TrialBatch  # noqa: E402
from proxytask.core import layout  # noqa: E402
from proxytask.core.clock import SystemClock  # noqa: E402
from proxytask.core.imports import import_callable  # noqa: E402
from proxytask.executors.base import TrialState  # noqa: E402
from proxytask.executors.command import (  # noqa: E402
    build_trial_spec,
    parse_trainer_args,
    parse_trainer_command,
)
from proxytask.executors.local import LocalExecutor  # noqa: E402
from proxytask.executors.replay import ReplayTable  # noqa: E402
from proxytask.trainer import contract as pt  # noqa: E402

COMMON = ("trainer", "trainer-entry", "search-space", "trainer-args", "max-parallel-trials", "seed")


def _selection_config(workflow: dict[str, Any], root: Path) -> dict[str, Any]:
    config = {k: workflow[k] for k in COMMON if k in workflow}
    config.update(workflow.get("model-selection") or {})
    config.update({"root-output-dir": str(root), "job-name": "recorded", "live": False})
    return config


def _longest_trials(selection_dir: Path) -> list[str]:
    """Each architecture's trial with the most points (its whole recorded curve)."""
    best: dict[str, tuple[int, str]] = {}
    for tdir in sorted(p for p in selection_dir.glob("jobs/*/*") if p.is_dir()):
        metrics = pt.read_trial_training_metrics(str(tdir))
        if metrics is None or not metrics.training_accuracy_over_steps:
            continue
        key = json.dumps(pt.load_nas_params(str(tdir)), sort_keys=True)
        points = len(metrics.training_accuracy_over_steps)
        if key not in best or points > best[key][0]:
            best[key] = (points, str(tdir))
    return [tdir for _, tdir in best.values()]


def _finished(trial_dir: str) -> bool:
    metrics = pt.read_trial_training_metrics(trial_dir)
    return metrics is not None and metrics.last_pct >= 100.0 - 1e-6


def record(workflow_path: Path, out: Path, work: Path) -> dict[str, Any]:
    """Run the recording (see the module docstring); return the table's JSON."""
    workflow = yaml.safe_load(workflow_path.read_text())
    started = time.monotonic()
    config_path = work / "select.yaml"
    config_path.write_text(yaml.safe_dump(_selection_config(workflow, work / "runs")))
    proxytask = str(Path(sys.executable).with_name("proxytask"))
    found = sorted((work / "runs").glob(f"{layout.KIND_MODEL_SELECTION}_recorded_*"))
    if not found:  # a rerun with --work reuses a finished selection
        subprocess.run([proxytask, "select-models", "--config", str(config_path)], check=True)
        found = sorted((work / "runs").glob(f"{layout.KIND_MODEL_SELECTION}_recorded_*"))
    selection_dir = found[-1]
    references = json.loads((selection_dir / layout.REFERENCE_MODELS).read_text())
    models = [*references["reference_models"], *references.get("holdout_models", [])]
    archs = [pt.load_nas_params(m["trial_dir"]) for m in models]
    selection_secs = time.monotonic() - started

    trainer = parse_trainer_command(workflow["trainer"], workflow.get("trainer-entry"))
    baseline = parse_trainer_args(
        [f"{k}={v}" for k, v in (workflow.get("trainer-args") or {}).items()]
    )
    generator = import_callable(workflow["search"]["proxy-task-config-generator"], "generator")
    configs = list(generator(dict(baseline)))
    executor = LocalExecutor(max_parallel_trials=int(workflow.get("max-parallel-trials", 2)))
    batch = TrialBatch(executor, SystemClock())
    jobs: dict[str, dict[str, Any]] = {}
    root = work / "proxies"
    specs = []
    for config in configs:
        job = f"proxy_{config.name}"
        jobs[job] = config_args(config)
        for number, arch in enumerate(archs, start=1):
            specs.append(
                build_trial_spec(
                    trainer=trainer,
                    job_name=job,
                    job_dir=layout.job_dir(str(root), job),
                    trial_number=number,
                    controller_dir=str(root),
                    nas_params=arch,
                    trainer_args={**baseline, **config_args(config)},
                )
            )
    try:
        if not all(_finished(spec.trial_dir) for spec in specs):  # else: a rerun
            for spec in specs:
                batch.add(spec)
            failed = [o for o in batch.run() if o.state is not TrialState.SUCCEEDED]
            if failed:
                raise SystemExit(f"{len(failed)} proxy-task trials did not succeed: {failed[:3]}")
    finally:
        executor.close()
    table = ReplayTable.from_trial_dirs(_longest_trials(selection_dir))
    curves = list(table)
    for job, args in jobs.items():
        dirs = sorted(str(p) for p in (root / "jobs" / job).glob("*"))
        curves += list(ReplayTable.from_trial_dirs(dirs, trainer_args=args))
    data = ReplayTable(tuple(curves)).to_dict()
    for curve in data["curves"]:  # ids without this machine's temp paths
        curve["curve_id"] = os.path.relpath(curve["curve_id"], work)
    data["metadata"] = {
        "sources": [
            f"recorded by bench/record_curves.py from {workflow_path} with its real trainer "
            f"on this machine ({machine_info().get('cpu', 'unknown CPU')})"
        ],
        "workflow": str(workflow_path),
        "trainer_args": baseline,
        "configs": {c.name: config_args(c) for c in configs},
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "selection_wall_secs": round(selection_secs, 1),
        "total_wall_secs": round(time.monotonic() - started, 1),
        "command": shlex.join(sys.argv),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workflow", type=Path, help="the example's workflow file")
    parser.add_argument("--out", type=Path, required=True, help="the table to write (JSON)")
    parser.add_argument("--work", type=Path, default=None, help="keep the runs here")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="proxytask-record-"))
    work.mkdir(parents=True, exist_ok=True)
    data = record(args.workflow, args.out, work)
    print(f"{len(data['curves'])} curves in {args.out} ({data['metadata']['total_wall_secs']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
