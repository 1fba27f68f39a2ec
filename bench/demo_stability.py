"""How stable is `make demo`'s answer? The whole workflow, run fresh under several seeds.

Each run is ``proxytask run`` on a copy of the workflow file (default
``examples/mnist1d/workflow.yaml``) with its own architecture-sampling ``seed`` (so other
reference models, other held-out models), its own job name and its own output dir: a fresh
run in every respect, in a separate process, as a user would start it. The runs go one after
another, so each has the machine to itself (as `make demo` would).

From each run's ``RECOMMENDATION.json`` it records the recommended proxy, its step budget and
its cost (the recommended proxy's training hours per model), the tau and interval at the
deciding evaluation, the held-out check and the wall time. The verdict (from the issue): the
runs recommend the same proxy, or proxies whose costs are within 25 % of each other, in at
least 4 of 5.

Usage::

    .venv/bin/python bench/demo_stability.py                      # seeds 0-4
    .venv/bin/python bench/demo_stability.py --seeds 0 1 --out /tmp/ds

Writes ``demo_stability.json`` and ``demo_stability.md`` under ``--out`` (default
``bench/results/``) after every run, so an interrupted benchmark keeps what it finished;
``--resume`` keeps the runs already in ``--out`` and does only the missing seeds (a seed
whose run was cut short starts over in a fresh dir). The runs' dirs go under ``--work``
(default a temp dir, deleted after).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stopping_rules import machine_info  # noqa: E402
from proxytask.controllers.search import stage_job  # noqa: E402
from proxytask.stats.search import hours_per_step  # noqa: E402
from proxytask.trainer.contract import read_trial_training_metrics  # noqa: E402

RESULTS = REPO / "bench" / "results"
COST_TOLERANCE = 0.25


def run_once(workflow: dict[str, Any], seed: int, work: Path) -> dict[str, Any]:
    """Run the workflow fresh with ``seed``; return what its recommendation says."""
    config = dict(workflow)
    config["seed"] = seed
    config["job-name"] = f"{workflow['job-name']}_s{seed}"
    config["root-output-dir"] = str(work / f"seed{seed}")
    path = work / f"workflow_s{seed}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    start = time.perf_counter()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "proxytask"), "run", "--live", "false", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    (work / f"seed{seed}.log").write_text(proc.stdout + proc.stderr)
    rec_path = (
        Path(config["root-output-dir"]) / f"Workflow_{config['job-name']}" / ("RECOMMENDATION.json")
    )
    out: dict[str, Any] = {"seed": seed, "exit_code": proc.returncode, "wall_secs": round(wall, 1)}
    if not rec_path.is_file():
        out["error"] = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return out
    rec = json.loads(rec_path.read_text())["recommendation"]
    interval = rec.get("accuracy_correlation_interval_at_stop") or {}
    holdout = rec.get("holdout") or {}
    out.update(
        {
            "found": rec.get("found"),
            "proxy": rec.get("best_proxy_task_name"),
            "steps": rec.get("training_steps"),
            "hours_per_model": rec.get("final_training_time_in_hours"),
            "speedup": rec.get("speedup_vs_full_training"),
            "tau_at_stop": rec.get("accuracy_correlation_at_stop"),
            "interval_at_stop": [interval.get("ci_low"), interval.get("ci_high")],
            "holdout_tau": holdout.get("tau"),
            "holdout_interval": [holdout.get("ci_low"), holdout.get("ci_high")],
            "holdout_models": holdout.get("n"),
        }
    )
    if out["found"] and out["proxy"] and out["steps"]:
        out["relative_cost"] = relative_cost(rec_path.parent, out["proxy"], int(out["steps"]))
    return out


def relative_cost(workflow_dir: Path, proxy: str, steps: int) -> float | None:
    """The recommended proxy's cost as a fraction of full training *of the same models*.

    Per reference model: its training hours per step under the proxy (its latest stage's
    trial) times ``steps``, over its own full-training hours (REFERENCE_MODELS.json); the
    median over the models. A run's cost in seconds depends on which architectures its seed
    sampled (in the recorded runs one proxy's median cost at 400 steps was 0.89 s in one run,
    1.43 s in another); this fraction does not: a data-% proxy at 400 of 1000 steps is 0.4 in
    any run. None when the run's files do not hold it.
    """
    selections = sorted(workflow_dir.glob("Model_Selection_*/REFERENCE_MODELS.json"))
    searches = sorted(workflow_dir.glob("Search_controller_*/jobs"))
    if not selections or not searches:
        return None
    models = json.loads(selections[-1].read_text())["reference_models"]
    ratios = []
    for number, model in enumerate(models, start=1):
        latest, stage = searches[-1] / stage_job(proxy, 1) / str(number), 2
        while (later := searches[-1] / stage_job(proxy, stage) / str(number)).is_dir():
            latest, stage = later, stage + 1
        per_step = hours_per_step(read_trial_training_metrics(str(latest)))
        full = model.get("training_hours")
        if per_step is not None and full:
            ratios.append(float(per_step * steps / full))
    return statistics.median(ratios) if ratios else None


def agreement(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The largest group of runs that agree: the same proxy, or costs within 25 %.

    Two found recommendations agree when they name the same proxy, or when the larger of
    their costs is at most 1.25× the smaller: the costs relative to full training of the
    same models (:func:`relative_cost`) where both runs have one, else the training hours
    per model. The group is the most runs that all agree with one run (its anchor).
    """
    found = [r for r in runs if r.get("found") and r.get("hours_per_model")]

    def agree(a: dict[str, Any], b: dict[str, Any]) -> bool:
        if a["proxy"] == b["proxy"]:
            return True
        key = "relative_cost" if a.get("relative_cost") and b.get("relative_cost") else None
        lo, hi = sorted((a[key or "hours_per_model"], b[key or "hours_per_model"]))
        return bool(hi <= (1 + COST_TOLERANCE) * lo)

    best: list[int] = []
    for anchor in found:
        group = [r["seed"] for r in found if agree(anchor, r)]
        if len(group) > len(best):
            best = group
    return {"agreeing_seeds": best, "agreeing": len(best), "runs": len(runs)}


def markdown(runs: Sequence[dict[str, Any]], verdict: dict[str, Any]) -> str:
    """The runs as a Markdown table, with the verdict."""

    def num(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    lines = [
        "| seed | proxy | steps | cost (s per model) | cost / full training (same models) "
        "| speed-up | tau at stop [interval] | held-out tau [interval] (models) | wall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        if "proxy" not in r:
            lines.append(f"| {r['seed']} | failed: {r.get('error')} | | | | | | | |")
            continue
        lo, hi = r["interval_at_stop"]
        hlo, hhi = r["holdout_interval"]
        cost = None if r["hours_per_model"] is None else 3600 * r["hours_per_model"]
        lines.append(
            f"| {r['seed']} | {r['proxy'] if r['found'] else 'none found'} | "
            f"{num(r['steps'], 'd')} | {num(cost, '.2f')} | {num(r.get('relative_cost'), '.2f')} | "
            f"{num(r['speedup'], '.1f')}× | "
            f"{num(r['tau_at_stop'], '.2f')} [{num(lo, '.2f')}, {num(hi, '.2f')}] | "
            f"{num(r['holdout_tau'], '.2f')} [{num(hlo, '.2f')}, {num(hhi, '.2f')}] "
            f"({num(r['holdout_models'], 'd')}) | {r['wall_secs'] / 60:.1f} min |"
        )
    lines.append("")
    lines.append(
        f"{verdict['agreeing']} of {verdict['runs']} runs agree (the same proxy, or costs "
        f"relative to full training within {COST_TOLERANCE:.0%} of each other): seeds "
        f"{verdict['agreeing_seeds']}."
    )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workflow", type=Path, default=REPO / "examples/mnist1d/workflow.yaml")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--work", type=Path, default=None, help="keep the runs' dirs here")
    p.add_argument("--resume", action="store_true", help="keep the runs already in --out")
    args = p.parse_args(argv)
    workflow = yaml.safe_load(args.workflow.read_text())
    work = args.work or Path(tempfile.mkdtemp(prefix="demo-stability-"))
    work.mkdir(parents=True, exist_ok=True)
    done: dict[int, dict[str, Any]] = {}
    saved = args.out / "demo_stability.json"
    if args.resume and saved.is_file():
        done = {int(r["seed"]): r for r in json.loads(saved.read_text())["runs"]}
    for seed, run in done.items():  # runs recorded before relative costs were
        if run.get("found") and "relative_cost" not in run:
            wf = work / f"seed{seed}" / f"Workflow_{workflow['job-name']}_s{seed}"
            if wf.is_dir():
                run["relative_cost"] = relative_cost(wf, run["proxy"], int(run["steps"]))
    runs = [done[seed] for seed in args.seeds if seed in done]
    try:
        for seed in args.seeds:
            if seed in done:
                continue
            shutil.rmtree(work / f"seed{seed}", ignore_errors=True)  # fresh, never resumed
            result = run_once(workflow, seed, work)
            runs.append(result)
            print(json.dumps(result), flush=True)
            table = _save(args, runs)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    table = _save(args, runs)
    print(table)
    return 0 if all(r.get("exit_code") == 0 for r in runs) else 1


def _save(args: argparse.Namespace, runs: list[dict[str, Any]]) -> str:
    """Write the runs so far and their verdict to ``args.out``; return the Markdown."""
    verdict = agreement(runs)
    table = markdown(runs, verdict)
    record = {
        "workflow": str(
            args.workflow.relative_to(REPO) if args.workflow.is_absolute() else args.workflow
        ),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "wall_secs": round(sum(r.get("wall_secs", 0.0) for r in runs), 1),
        "runs": runs,
        "verdict": verdict,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "demo_stability.json").write_text(json.dumps(record, indent=1) + "\n")
    (args.out / "demo_stability.md").write_text(table)
    return table


if __name__ == "__main__":
    sys.exit(main())
