"""Orchestration benchmark: where proxytask spends time that is not training, and what a search
spends against what its decision needs.

Usage::

    .venv/bin/python bench/orchestration.py                      # every part
    .venv/bin/python bench/orchestration.py --parts search,replay --out /tmp/orch

Writes ``orchestration.json`` (every number, the machine, versions, date) and
``orchestration.md`` (the tables) under ``--out`` (default ``bench/results/``), after each part.

**Parts**

- ``search``: the proxy-task search on recorded curves (``bench/data/digits_curves.json``,
  recorded by ``bench/record_curves.py`` with the digits example's real trainer; and
  NAS-Bench-201's, ``examples/nasbench201/curves.json``). Model selection is replayed with the
  workflow file's settings, then the search under three policies, on the replay executor with
  the workflow's slots: *reference* (the reference tools: point rule, one config at a time,
  no stages), *point, breadth-first* (the point rule with proxytask's schedule), and
  *default* (proxytask's defaults: the confident rule, every config at once, stages of
  evaluations). Spent: every search trial's training seconds (the last stage of each model
  holds its cumulative time; the winner's held-out check apart). Oracle: training only the
  policy's winner on the reference models up to its deciding step (the recorded curves'
  seconds to that step). Evidence: every config's reference models trained only to the step
  its end was decided at (its whole curves when it ran to completion): what the answer rests
  on, and the oracle of an answer without a winner (every proxy must be shown to fail).
  Spent / evidence is the schedule's waste: training past a decision, restarts. Goal: the
  default's spend ≤ 1.5× its oracle and ≤ 0.5× the reference's.
- ``trials``: ``proxytask trial --num-trials N`` of a trainer that trains (CPU busy loop) for
  ``--trial-secs`` and reports once, on 2 slots, with and without warm workers, against the
  ideal (N × secs / 2) and bare processes (``xargs -P 2``) of the same trainer. Goal: overhead
  ≤ 10 % with warm workers.
- ``start``: launch to first report of the MNIST-1D trainer (torch), with and without warm
  workers, minus the first cycle's training: the start-up a trial pays. Goal < 0.5 s warm.
- ``replay``: wall time of ``proxytask run`` of the digits workflow replayed on the recorded
  curves, and of the NAS-Bench-201 workflow: the median of 3 runs on disk (the temp dir) and
  3 in memory (``/dev/shm``, where there is one), with the filesystems named (a replay
  creates thousands of small files; ext4 without a journal makes that slow). Goal < 10 s.
- ``steps``: controller step times (p50, p95, max, CPU per step) of a replayed model
  selection with 100, 300 and 1,000 trials (NAS-Bench-201 curves). Goal p95 < 0.25 s at
  1,000, linear growth.
- ``stops``: report → the trainer sees the stop. Trainers (``bench/stop_probe.py``) report
  once and then check their stop signals every 2 ms; the controller loop (a
  :class:`TrialTracker` on the local executor, paced as the controllers pace it) asks each to
  stop as soon as it reads its report. Measured for 16 trials reporting together and 16
  reporting 1.7 s apart (the controller backed off to its idle poll in between), with the
  executor's file watch (it wakes the loop when a trial writes) and without it. Goal p95
  ≤ 0.5 s.
- ``demo``: given ``--demo-dir`` (a finished ``make demo`` workflow dir) and its wall time
  ``--demo-secs``: the share of its trial slot-time (wall × slots) not spent training.
  Goal < 5 %.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stopping_rules import machine_info  # noqa: E402
from proxytask.controllers.search import config_of_job  # noqa: E402
from proxytask.core import layout  # noqa: E402
from proxytask.executors.replay import ReplayTable  # noqa: E402
from proxytask.trainer import contract as pt  # noqa: E402

RESULTS = REPO / "bench" / "results"
DIGITS_TABLE = REPO / "bench" / "data" / "digits_curves.json"
NB201_WORKFLOW = REPO / "examples" / "nasbench201" / "workflow.yaml"
DIGITS_WORKFLOW = REPO / "examples" / "digits" / "workflow.yaml"
PROXYTASK = str(Path(sys.executable).with_name("proxytask"))
PARTS = ("search", "trials", "start", "replay", "steps", "stops", "demo")
STOP_PROBE = REPO / "bench" / "stop_probe.py"

#: The policies the search part compares: name -> search flags.
POLICIES: dict[str, list[str]] = {
    "reference": [
        "--stopping-rule=point",
        "--max-parallel-proxy-tasks=1",
        "--stage-pct=100",
    ],
    "point, breadth-first": ["--stopping-rule=point"],
    "default": [],
}


def _run(args: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{args[:3]} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc


# ---- search: spend vs oracle -------------------------------------------------------------------


def _replay_config(workflow: Path, table: Path, root: Path, slots: int | None) -> dict[str, Any]:
    data = yaml.safe_load(workflow.read_text())
    config = {
        "trainer": "replay",
        "executor": "replay",
        "replay-table": str(table),
        "search-space": data["search-space"],
        "trainer-args": data.get("trainer-args") or {},
        "max-parallel-trials": slots or data.get("max-parallel-trials", 2),
        "seed": data.get("seed", 0),
        "root-output-dir": str(root),
        "live": False,
    }
    return config


def _selection(workflow: Path, table: Path, root: Path, slots: int | None) -> Path:
    data = yaml.safe_load(workflow.read_text())
    config = _replay_config(workflow, table, root, slots)
    config.update(data.get("model-selection") or {})
    config["job-name"] = "bench"
    path = root / "select.yaml"
    path.write_text(yaml.safe_dump(config))
    _run([PROXYTASK, "select-models", "--config", str(path)])
    return sorted(root.glob(f"{layout.KIND_MODEL_SELECTION}_bench_*"))[-1]


def _search(
    workflow: Path, table: Path, root: Path, selection: Path, policy: str, slots: int | None
) -> Path:
    data = yaml.safe_load(workflow.read_text())
    config = _replay_config(
        workflow, table, root / policy.replace(" ", "_").replace(",", ""), slots
    )
    search = dict(data.get("search") or {})
    for key in ("stopping-rule", "max-parallel-proxy-tasks", "stage-pct"):
        search.pop(key, None)  # the policy decides
    config.update(search)
    config["job-name"] = "bench"
    config["model-selection-dir"] = str(selection)
    Path(config["root-output-dir"]).mkdir(parents=True, exist_ok=True)
    path = Path(config["root-output-dir"]) / "search.yaml"
    path.write_text(yaml.safe_dump(config))
    _run([PROXYTASK, "search", "--config", str(path), *POLICIES[policy]])
    return sorted(Path(config["root-output-dir"]).glob("Search_*"))[-1]


def _spent(search_dir: Path) -> dict[str, float]:
    """Training seconds per config (cumulative over each model's stages)."""
    per_model: dict[tuple[str, str], float] = {}
    for tdir in search_dir.glob("jobs/proxy_*/*"):
        metrics = pt.read_trial_training_metrics(str(tdir))
        if metrics is None:
            continue
        key = (config_of_job(tdir.parent.name), tdir.name)
        secs = metrics.training_time.total_training_time_in_secs
        per_model[key] = max(per_model.get(key, 0.0), secs)
    out: dict[str, float] = {}
    for (config, _), secs in per_model.items():
        out[config] = out.get(config, 0.0) + secs
    return out


def _reference_archs(selection: Path) -> list[dict[str, Any]]:
    refs = json.loads((selection / layout.REFERENCE_MODELS).read_text())["reference_models"]
    return [pt.load_nas_params(model["trial_dir"]) for model in refs]


def _trained_secs(
    table: ReplayTable, archs: list[dict[str, Any]], args: Any, step: int | None
) -> float:
    """The recorded seconds of training ``archs`` under trainer ``args`` up to 0-based
    ``step`` (to the end of their curves when None)."""
    args = {str(k): str(v) for k, v in (args or {}).items()}
    total = 0.0
    for arch in archs:
        (curve, *_) = table.candidates(arch, args)
        total += sum(p.cycle_secs for p in curve.points if step is None or p.step <= step)
    return total


def _oracle(table: ReplayTable, search_dir: Path, selection: Path) -> float | None:
    """The winner's reference models trained to its deciding step, from the recorded curves."""
    state = json.loads((search_dir / "SEARCH_CONTROLLER_STATE.json").read_text())
    best = state.get("best_proxy_task_name")
    if not best:
        return None
    step = state["proxy_tasks_map"][best]["proxy_task_stats"].get("decided_at_training_step")
    recommendation = json.loads((search_dir / "PROXY_TASK_RECOMMENDATION.json").read_text())
    args = recommendation.get("trainer_args")
    return _trained_secs(table, _reference_archs(selection), args, step)


def _evidence(table: ReplayTable, search_dir: Path, selection: Path) -> float:
    """The training the answer rests on: every config's reference models trained only to the
    step its end was decided at (to the end of its curves when it ran to completion), from
    the recorded curves. A search that knew where each config's end falls spends this."""
    state = json.loads((search_dir / "SEARCH_CONTROLLER_STATE.json").read_text())
    archs = _reference_archs(selection)
    return sum(
        _trained_secs(
            table,
            archs,
            state["config_args"].get(name),
            entry["proxy_task_stats"].get("decided_at_training_step"),
        )
        for name, entry in state["proxy_tasks_map"].items()
    )


def _search_rows(name: str, workflow: Path, table_path: Path, work: Path) -> list[dict[str, Any]]:
    table = ReplayTable.load(str(table_path))
    root = work / name
    root.mkdir(parents=True, exist_ok=True)
    selection = _selection(workflow, table_path, root, None)
    rows = []
    for policy in POLICIES:
        started = time.perf_counter()
        sdir = _search(workflow, table_path, root, selection, policy, None)
        wall = time.perf_counter() - started
        state = json.loads((sdir / "SEARCH_CONTROLLER_STATE.json").read_text())
        spent = _spent(sdir)
        best = state.get("best_proxy_task_name") or ""
        stats = state["proxy_tasks_map"][best]["proxy_task_stats"] if best else {}
        rows.append(
            {
                "curves": name,
                "policy": policy,
                "winner": best or None,
                "deciding_step": stats.get("decided_at_training_step"),
                "tau_at_stop": _tau_at(stats),
                "spent_secs": round(sum(spent.values()), 1),
                "spent_by_config": {k: round(v, 1) for k, v in sorted(spent.items())},
                "oracle_secs": _round(_oracle(table, sdir, selection)),
                "evidence_secs": _round(_evidence(table, sdir, selection)),
                "states": {
                    n: c["proxy_task_stats"]["stopping_state"]
                    for n, c in state["proxy_tasks_map"].items()
                },
                "wall_secs": round(wall, 1),
            }
        )
    reference = rows[0]
    for row in rows:
        row["vs_oracle"] = _ratio(row["spent_secs"], row["oracle_secs"])
        row["vs_evidence"] = _ratio(row["spent_secs"], row["evidence_secs"])
        row["vs_reference"] = _ratio(row["spent_secs"], reference["spent_secs"])
        row["vs_reference_oracle"] = _ratio(row["spent_secs"], reference["oracle_secs"])
    return rows


def _tau_at(stats: dict[str, Any]) -> float | None:
    step = stats.get("decided_at_training_step")
    steps = stats.get("training_steps") or []
    taus = stats.get("accuracy_correlation_over_step") or []
    if step in steps:
        value = taus[steps.index(step)]
        return None if value is None else round(value, 3)
    return None


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 2)


def part_search(work: Path) -> dict[str, Any]:
    rows = _search_rows("digits", DIGITS_WORKFLOW, DIGITS_TABLE, work)
    rows += _search_rows(
        "nasbench201", NB201_WORKFLOW, REPO / "examples" / "nasbench201" / "curves.json", work
    )
    return {"rows": rows}


# ---- trials: N short trials ----------------------------------------------------------------------

BUSY_TRAINER = textwrap.dedent(
    '''
    """A trainer that trains (a CPU busy loop) for --secs and reports once."""
    import sys
    import time

    from proxytask import trainer as pt


    def main(argv=None):
        argv = argv if argv is not None else sys.argv[1:]
        args = dict(a.lstrip("-").split("=", 1) for a in argv)
        job_dir = args["job-dir"]
        pt.save_nas_params(job_dir, args.get("nas_params_str", "{}"))
        if pt.get_stop_training(job_dir, 0, 100):
            return 0
        began = time.process_time()
        x = 0
        while time.process_time() - began < float(args.get("secs", "2")):
            for i in range(10000):
                x += i
        secs = time.process_time() - began
        pt.update_trial_training_accuracy_metric(job_dir, 0.5, 0, 99, secs, 100)
        pt.update_trial_training_latency_metric(job_dir, 1.0)
        return 0


    if __name__ == "__main__":
        sys.exit(main())
    '''
)


def _trial_run(work: Path, label: str, count: int, secs: float, warm: bool) -> float:
    trainer = work / "busy_trainer.py"
    args = [
        PROXYTASK,
        "trial",
        "--trainer",
        f"{sys.executable} {trainer}",
        "--search-space",
        "examples.digits.search_space:sample",
        "--root-output-dir",
        str(work / label),
        "--job-name",
        label,
        "--num-trials",
        str(count),
        "--max-parallel-trials",
        "2",
        "--trainer-args",
        f"secs={secs}",
    ]
    if warm:
        args += ["--trainer-entry", f"{trainer}:main"]
    started = time.perf_counter()
    proc = _run(args)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    return wall


def _bare_run(work: Path, count: int, secs: float) -> float:
    trainer = work / "busy_trainer.py"
    dirs = "\n".join(str(work / "bare" / str(n)) for n in range(1, count + 1))
    started = time.perf_counter()
    subprocess.run(
        [
            "xargs",
            "-P",
            "2",
            "-I",
            "{}",
            sys.executable,
            str(trainer),
            "--job-dir={}",
            f"--secs={secs}",
        ],
        input=dirs,
        text=True,
        check=True,
        cwd=REPO,
    )
    return time.perf_counter() - started


def part_trials(work: Path, count: int, secs: float) -> dict[str, Any]:
    (work / "busy_trainer.py").write_text(BUSY_TRAINER)
    ideal = count * secs / 2
    bare = _bare_run(work, count, secs)
    plain = _trial_run(work, "plain", count, secs, warm=False)
    warm = _trial_run(work, "warm", count, secs, warm=True)
    return {
        "trials": count,
        "trial_secs": secs,
        "ideal_secs": ideal,
        "bare_processes_secs": round(bare, 1),
        "proxytask_trial_secs": round(plain, 1),
        "proxytask_trial_warm_secs": round(warm, 1),
        "overhead_bare": round(bare / ideal - 1, 3),
        "overhead_plain": round(plain / ideal - 1, 3),
        "overhead_warm": round(warm / ideal - 1, 3),
    }


# ---- start: launch to first report ---------------------------------------------------------------


def _first_reports(work: Path, warm: bool, count: int) -> list[float]:
    """Launch MNIST-1D trials one at a time; per trial: seconds from launch to the first
    report, less the first cycle's training seconds."""
    from examples.mnist1d.search_space import baseline

    from proxytask.executors.base import TrialState
    from proxytask.executors.command import build_trial_spec, parse_trainer_command
    from proxytask.executors.local import LocalExecutor

    trainer = parse_trainer_command(
        f"{sys.executable} examples/mnist1d/trainer.py",
        "examples.mnist1d.trainer:main" if warm else None,
    )
    executor = LocalExecutor(max_parallel_trials=1, gpus=[])
    out = []
    root = work / ("warm" if warm else "plain")
    try:
        for number in range(1, count + 1):
            spec = build_trial_spec(
                trainer=trainer,
                job_name="start",
                job_dir=str(root / "jobs" / "start"),
                trial_number=number,
                controller_dir=str(root),
                nas_params=baseline(),
                trainer_args={"num_threads": "1", "eval_every_steps": "200"},
            )
            began = time.perf_counter()
            executor.launch(spec)
            metrics = None
            while metrics is None or not metrics.training_accuracy_over_steps:
                time.sleep(0.005)
                metrics = pt.read_trial_training_metrics(spec.trial_dir)
                status = executor.status(spec.trial_id)
                if status.state.is_terminal and metrics is None:
                    raise RuntimeError(f"the start trial ended without a report: {status}")
            seen = time.perf_counter() - began
            first_cycle = metrics.training_time.total_training_time_in_secs
            out.append(seen - first_cycle)
            executor.stop(spec.trial_id, grace_secs=5)
            while not executor.status(spec.trial_id).state.is_terminal:
                time.sleep(0.01)
            assert executor.status(spec.trial_id).state is not TrialState.FAILED
    finally:
        executor.close()
    return out


def part_start(work: Path, count: int) -> dict[str, Any]:
    plain = _first_reports(work, warm=False, count=count)
    warm = _first_reports(work, warm=True, count=count)
    return {
        "trials": count,
        "plain_secs": [round(x, 3) for x in plain],
        "warm_secs": [round(x, 3) for x in warm],
        "plain_median_secs": round(statistics.median(plain), 3),
        "warm_median_secs": round(statistics.median(warm), 3),
        "warm_after_first_median_secs": round(statistics.median(warm[1:]), 3),
    }


# ---- replay: whole workflows ---------------------------------------------------------------------


def _replay_workflow(work: Path, workflow: Path, table: Path | None) -> float:
    data = yaml.safe_load(workflow.read_text())
    if table is not None:
        data["trainer"] = "replay"
        data.pop("trainer-entry", None)
        data["executor"] = "replay"
        data["replay-table"] = str(table)
    data["root-output-dir"] = str(work / workflow.parent.name)
    path = work / f"{workflow.parent.name}.yaml"
    path.write_text(yaml.safe_dump(data))
    started = time.perf_counter()
    proc = _run([PROXYTASK, "run", str(path), "--live", "false"])
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    return time.perf_counter() - started


#: Where the replay part also runs its workflows: in memory, where file creation is cheap.
RAM_DIR = Path("/dev/shm")


def filesystem_note(path: Path) -> str:
    """The filesystem holding ``path`` (from /proc/mounts), and for ext4 whether it has a
    journal: without one, ext4 skips the inodes freed in the last minutes when it creates a
    file, so a run of atomic replaces slows down as it goes."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown"
    target = str(path.resolve())
    best = max(
        (m for m in mounts if len(m) > 2 and (target + "/").startswith(m[1].rstrip("/") + "/")),
        key=lambda m: len(m[1]),
        default=None,
    )
    if best is None:
        return "unknown"
    device, fstype = best[0], best[2]
    if fstype != "ext4":
        return fstype
    journals = Path("/proc/fs/jbd2")
    name = Path(device).name
    journaled = journals.is_dir() and any(p.name.startswith(name) for p in journals.iterdir())
    return "ext4" if journaled else "ext4 without a journal"


def _replays(work: Path, workflow: Path, table: Path | None, runs: int) -> list[float]:
    times = []
    for n in range(runs):
        (work / f"run{n}").mkdir(parents=True, exist_ok=True)
        times.append(round(_replay_workflow(work / f"run{n}", workflow, table), 1))
        shutil.rmtree(work / f"run{n}", ignore_errors=True)
    return times


def part_replay(work: Path, runs: int = 3) -> dict[str, Any]:
    """Each workflow replayed ``runs`` times on disk (``work``) and, where there is one, in
    memory (:data:`RAM_DIR`): the median of each, and every time."""
    places = {"disk": work}
    if RAM_DIR.is_dir() and os.access(RAM_DIR, os.W_OK):
        places["ram"] = Path(tempfile.mkdtemp(prefix="proxytask-orch-", dir=RAM_DIR))
    out: dict[str, Any] = {"filesystems": {k: filesystem_note(v) for k, v in places.items()}}
    try:
        for place, root in places.items():
            suffix = "" if place == "disk" else "_ram"
            for name, workflow, table in (
                ("digits", DIGITS_WORKFLOW, DIGITS_TABLE),
                ("nasbench201", NB201_WORKFLOW, None),
            ):
                times = _replays(root / name, workflow, table, runs)
                out[f"{name}_workflow{suffix}_secs"] = statistics.median(times)
                out[f"{name}_workflow{suffix}_all_secs"] = times
    finally:
        if "ram" in places:
            shutil.rmtree(places["ram"], ignore_errors=True)
    return out


# ---- steps: controller step time -----------------------------------------------------------------


@contextlib.contextmanager
def _timed_steps(samples: list[tuple[float, float]]) -> Iterator[None]:
    """Time every step of the model-selection controller (wall and CPU seconds)."""
    from proxytask.controllers.selection import ModelSelectionController as Selection

    original: Callable[[Selection], None] = Selection.step

    def timed(self: Selection) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        original(self)
        samples.append((time.perf_counter() - wall, time.process_time() - cpu))

    Selection.step = timed  # type: ignore[method-assign]
    try:
        yield
    finally:
        Selection.step = original  # type: ignore[method-assign]


def _steps_at(work: Path, trials: int) -> dict[str, Any]:
    from proxytask import cli

    root = work / f"steps{trials}"
    args = [
        "select-models",
        "--trainer=replay",
        "--executor=replay",
        f"--replay-table={REPO / 'examples' / 'nasbench201' / 'curves.json'}",
        "--search-space=examples.nasbench201.search_space:sample",
        f"--root-output-dir={root}",
        "--job-name=steps",
        "--trainer-args",
        "eval_every_epochs=10",
        "eval_split=valid",
        f"--max-parallel-trials={trials}",
        f"--start-num-models={trials}",
        "--final-num-models=10",
        f"--num-models-to-remove-per-iter={max(1, (trials - 10) // 4)}",
        "--live=false",
    ]
    samples: list[tuple[float, float]] = []
    started = time.perf_counter()
    with _timed_steps(samples):
        code = cli.main(args)
    wall = time.perf_counter() - started
    walls = sorted(s[0] for s in samples)
    return {
        "trials": trials,
        "exit_code": code,
        "steps": len(samples),
        "p50_secs": round(walls[len(walls) // 2], 4),
        "p95_secs": round(walls[int(0.95 * (len(walls) - 1))], 4),
        "max_secs": round(walls[-1], 4),
        "cpu_per_step_secs": round(sum(s[1] for s in samples) / len(samples), 4),
        "wall_secs": round(wall, 1),
    }


def part_steps(work: Path, sizes: list[int]) -> dict[str, Any]:
    return {"rows": [_steps_at(work, n) for n in sizes]}


# ---- demo: non-training share --------------------------------------------------------------------


def _stop_latencies(work: Path, trials: int, apart_secs: float, watch: bool) -> list[float]:
    """Seconds from each probe's report to its seeing the stop the loop posted at once."""
    from proxytask.controllers.state import EventLog
    from proxytask.controllers.tracker import TrialSettings, TrialTracker
    from proxytask.core.clock import SystemClock
    from proxytask.executors.command import parse_trainer_command
    from proxytask.executors.local import LocalExecutor

    clock = SystemClock()
    executor = LocalExecutor(max_parallel_trials=trials, gpus=[], clock=clock, grace_secs=2.0)
    if not watch:
        executor._watch.close()  # the loop as it was: woken by exits and its polls only
    trainer = parse_trainer_command(f"{sys.executable} {STOP_PROBE}")
    tracker = TrialTracker(
        executor, clock, str(work), TrialSettings(trainer=trainer), EventLog(None)
    )
    try:
        for n in range(trials):
            delay = 2.0 + n * apart_secs
            tracker.plan("probe", n + 1, {"n": n}, {"delay_secs": f"{delay:.3f}"})
        tracker.launch_planned()
        idle, seen = 0, -1
        while not tracker.all_terminal():
            tracker.poll()
            for key, record in list(tracker.records.items()):
                metrics = tracker.progress(key).metrics
                reported = metrics is not None and bool(metrics.training_accuracy_over_steps)
                if reported and not record.stop_requested:
                    tracker.request_stop(key)
            idle = 0 if tracker.activity != seen else idle + 1
            seen = tracker.activity
            executor.wait(clock, tracker.wait_secs(executor.poll_interval_secs, idle))
    finally:
        executor.close()
    out = []
    for record in tracker.records.values():
        path = Path(record.trial_dir) / "stop_probe.json"
        if path.is_file():
            data = json.loads(path.read_text())
            out.append(data["seen"] - data["reported"])
    return out


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def part_stops(work: Path, trials: int = 16) -> dict[str, Any]:
    rows = []
    for label, apart in (("together", 0.0), ("apart", 1.7)):
        for watch in (True, False):
            lat = _stop_latencies(work / f"{label}-{watch}", trials, apart, watch)
            rows.append(
                {
                    "reports": label,
                    "watch": watch,
                    "trials": len(lat),
                    "p50_secs": _round(statistics.median(lat), 3) if lat else None,
                    "p95_secs": _round(_p95(lat), 3),
                    "max_secs": _round(max(lat), 3) if lat else None,
                }
            )
    return {"rows": rows}


def _total_secs(trial_dir: str | None) -> float:
    metrics = pt.read_trial_training_metrics(trial_dir) if trial_dir else None
    return metrics.training_time.total_training_time_in_secs if metrics is not None else 0.0


def _located(demo_dir: Path, trial_dir: str | None) -> str | None:
    """A trial dir as recorded (relative to where the run started, e.g. ``runs/...``)."""
    if not trial_dir or Path(trial_dir).is_absolute():
        return trial_dir
    for base in (*demo_dir.resolve().parents, Path.cwd()):
        if (base / trial_dir).is_dir():
            return str(base / trial_dir)
    return trial_dir


def _run_times(controller_dir: Path) -> dict[str, float]:
    """Each trial's process time (the executor's start to end), from the controller's events."""
    out: dict[str, float] = {}
    events = controller_dir / "events.jsonl"
    if not events.is_file():
        return out
    for line in events.read_text().splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        began, ended = event.get("ran_from"), event.get("ran_to")
        if event.get("event") == "trial_ended" and began is not None and ended is not None:
            out[event["trial"]] = out.get(event["trial"], 0.0) + float(ended) - float(began)
    return out


def part_demo(demo_dir: Path, demo_secs: float, slots: int = 2) -> dict[str, Any]:
    """What share of the demo's time its trials did not spend training.

    Each trial's own training: its recorded time less the time of the curve it continued
    (``copy_metrics_from`` in its controller's state: a later round or stage). Two shares: of
    the trials' process time (the executor's start to end of each, from the events), and of
    the slot-time (wall × slots, which adds slots left idle)."""
    training = 0.0
    timed_training = 0.0
    process_secs = 0.0
    trials = 0
    for state_path in demo_dir.glob("*/*_STATE.json"):
        state = json.loads(state_path.read_text())
        ran = _run_times(state_path.parent)
        for record in state.get("trials") or []:
            own = _total_secs(_located(demo_dir, record.get("trial_dir")))
            own -= _total_secs(_located(demo_dir, record.get("copy_metrics_from")))
            trials += 1
            training += max(0.0, own)
            key = f"{record.get('job')}/{record.get('number')}"
            if key in ran:
                process_secs += ran[key]
                timed_training += max(0.0, own)
    slot_secs = demo_secs * slots
    return {
        "dir": str(demo_dir),
        "wall_secs": demo_secs,
        "trials": trials,
        "training_secs": round(training, 1),
        "slot_secs": round(slot_secs, 1),
        "non_training_share": round(1 - training / slot_secs, 3),
        "trial_process_secs": round(process_secs, 1),
        "non_training_share_of_trial_time": (
            round(1 - timed_training / process_secs, 3) if process_secs else None
        ),
    }


# ---- the report ----------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Machine: {results['machine'].get('cpu')}, {results['machine'].get('cores')} cores; "
        f"{results['date']}.",
        "",
    ]
    measured = results.get("measured_on") or {}
    if measured:  # parts run at other times, maybe on other machines
        lines += [
            "Each part: "
            + "; ".join(
                f"{part} on {m['machine'].get('cpu')}, {m['machine'].get('cores')} cores, "
                f"{m['date']}"
                for part, m in measured.items()
            )
            + ".",
            "",
        ]
    if "search" in results:
        lines += [
            "### Search spend on recorded curves",
            "",
            "| curves | policy | winner (step, tau) | spent (s) | oracle (s) | spent / oracle "
            "| evidence (s) | spent / evidence | spent / reference | configs' ends |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in results["search"]["rows"]:
            winner = (
                f"{row['winner']} ({row['deciding_step']}, {row['tau_at_stop']})"
                if row["winner"]
                else "none"
            )
            ends = "; ".join(f"{k}: {v}" for k, v in row["states"].items())
            lines.append(
                f"| {row['curves']} | {row['policy']} | {winner} | {row['spent_secs']} | "
                f"{row['oracle_secs']} | {row['vs_oracle']} | {row.get('evidence_secs')} | "
                f"{row.get('vs_evidence')} | {row['vs_reference']} | {ends} |"
            )
        lines.append("")
    if "trials" in results:
        t = results["trials"]
        lines += [
            f"### {t['trials']} trials of {t['trial_secs']} s on 2 slots",
            "",
            "| how | wall (s) | vs ideal |",
            "|---|---|---|",
            f"| ideal | {t['ideal_secs']} | 0 % |",
            f"| bare processes (`xargs -P 2`) | {t['bare_processes_secs']} | "
            f"{100 * t['overhead_bare']:+.0f} % |",
            f"| `proxytask trial` | {t['proxytask_trial_secs']} | "
            f"{100 * t['overhead_plain']:+.0f} % |",
            f"| `proxytask trial --trainer-entry` (warm) | {t['proxytask_trial_warm_secs']} | "
            f"{100 * t['overhead_warm']:+.0f} % |",
            "",
        ]
    if "start" in results:
        s = results["start"]
        lines += [
            "### MNIST-1D trainer: launch to first report, less the first cycle's training",
            "",
            f"- plain process: median {s['plain_median_secs']} s over {s['trials']} trials",
            f"- warm worker: median {s['warm_median_secs']} s (after the first, which pays the "
            f"import: {s['warm_after_first_median_secs']} s)",
            "",
        ]
    if "replay" in results:
        r = results["replay"]
        lines += [
            "### Whole workflows replayed",
            "",
            f"- digits (recorded curves): {r['digits_workflow_secs']} s",
            f"- NAS-Bench-201: {r['nasbench201_workflow_secs']} s",
        ]
        if "digits_workflow_ram_secs" in r:
            lines += [
                f"- in memory (tmpfs): digits {r['digits_workflow_ram_secs']} s, NAS-Bench-201 "
                f"{r['nasbench201_workflow_ram_secs']} s",
            ]
        for place, note in (r.get("filesystems") or {}).items():
            key = "digits_workflow_all_secs" if place == "disk" else "digits_workflow_ram_all_secs"
            runs = r.get(key)
            lines.append(f"- {place}: {note}; the digits runs: {runs} (the median above)")
        lines.append("")
    if "steps" in results:
        lines += [
            "### Controller steps (replayed model selection, NAS-Bench-201 curves)",
            "",
            "| trials | steps | p50 (s) | p95 (s) | max (s) | CPU per step (s) | wall (s) |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in results["steps"]["rows"]:
            lines.append(
                f"| {row['trials']} | {row['steps']} | {row['p50_secs']} | {row['p95_secs']} | "
                f"{row['max_secs']} | {row['cpu_per_step_secs']} | {row['wall_secs']} |"
            )
        lines.append("")
    if "stops" in results:
        lines += [
            "### Stop decisions: a report → the trainer sees the stop",
            "",
            "| reports | file watch | trials | p50 (s) | p95 (s) | max (s) |",
            "|---|---|---|---|---|---|",
        ]
        for row in results["stops"]["rows"]:
            lines.append(
                f"| {row['reports']} | {'yes' if row['watch'] else 'no'} | {row['trials']} | "
                f"{row['p50_secs']} | {row['p95_secs']} | {row['max_secs']} |"
            )
        lines.append("")
    if "demo" in results:
        d = results["demo"]
        lines += [
            "### make demo (slot-time: wall × 2 slots, idle slots at barriers included)",
            "",
            f"- wall {d['wall_secs']} s, {d['trials']} trials, training {d['training_secs']} s "
            f"of {d['slot_secs']} slot-seconds: non-training share "
            f"{100 * d['non_training_share']:.0f} %",
        ]
        if d.get("non_training_share_of_trial_time") is not None:
            lines.append(
                f"- the trials' own process time: {d['trial_process_secs']} s, of which "
                f"{100 * d['non_training_share_of_trial_time']:.0f} % not training"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(p for p in PARTS if p != "demo"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--trial-secs", type=float, default=2.0)
    parser.add_argument("--start-trials", type=int, default=6)
    parser.add_argument("--step-sizes", default="100,300,1000")
    parser.add_argument("--demo-dir", type=Path, default=None)
    parser.add_argument("--demo-secs", type=float, default=None)
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts must be among {', '.join(PARTS)}, got {', '.join(unknown)}")
    out_json = args.out / "orchestration.json"
    results: dict[str, Any] = json.loads(out_json.read_text()) if out_json.is_file() else {}
    results["machine"] = machine_info()
    results["date"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    work = Path(tempfile.mkdtemp(prefix="proxytask-orch-"))
    try:
        for part in parts:
            started = time.perf_counter()
            (work / part).mkdir(parents=True, exist_ok=True)
            if part == "search":
                results["search"] = part_search(work / "search")
            elif part == "trials":
                results["trials"] = part_trials(work / "trials", args.trials, args.trial_secs)
            elif part == "start":
                results["start"] = part_start(work / "start", args.start_trials)
            elif part == "replay":
                results["replay"] = part_replay(work / "replay")
            elif part == "steps":
                sizes = [int(x) for x in args.step_sizes.split(",")]
                results["steps"] = part_steps(work / "steps", sizes)
            elif part == "stops":
                results["stops"] = part_stops(work / "stops")
            elif part == "demo":
                if args.demo_dir is None or args.demo_secs is None:
                    parser.error("--parts demo needs --demo-dir and --demo-secs")
                results["demo"] = part_demo(args.demo_dir, args.demo_secs)
            results.setdefault("part_secs", {})[part] = round(time.perf_counter() - started, 1)
            results.setdefault("measured_on", {})[part] = {
                "machine": results["machine"],
                "date": results["date"],
            }
            args.out.mkdir(parents=True, exist_ok=True)
            out_json.write_text(json.dumps(results, indent=1) + "\n")
            (args.out / "orchestration.md").write_text(markdown(results) + "\n")
            print(markdown({k: v for k, v in results.items() if k in (part, "machine", "date")}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
