"""Trials per minute on one GPU: digits-size trials, 1, 4 or 16 sharing the GPU, plain or warm.

Each mode runs ``proxytask trial`` on the digits example's baseline (the full 1,000-step
recipe, ``--device auto``: the GPU the local executor hands the trial through
``CUDA_VISIBLE_DEVICES``) and times the whole command, controller start and exit included::

    mode       --gpus-per-trial  --max-parallel-trials  --trainer-entry
    plain-1    1                 1                      -
    plain-4    0.25              4                      -
    plain-16   0.0625            16                     -
    warm-1     1                 1                      examples.digits.trainer:main
    warm-4     0.25              4                      examples.digits.trainer:main
    warm-16    0.0625            16                     examples.digits.trainer:main

Throughput is finished trials per minute of the command's wall time; the speed-up is against
``plain-1`` (one trial at a time, a fresh process each: what a plain loop over trials gets).
Goals (issue 17): warm-16 at least 10x plain-1, and at least 200 trials/min on one H100/H200.

Run from the repository root on a machine with a GPU (it needs torch and scikit-learn, and
finds proxytask in ``src/`` when it is not installed)::

    python3 bench/gpu_trials.py --out bench/results

``--allow-cpu`` runs the same modes with ``--gpus-per-trial 0`` on a machine without a GPU,
to try the script itself (its figures then say nothing about GPUs); ``--modes`` and
``--trials`` pick fewer or smaller runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ENTRY = "examples.digits.trainer:main"
GOAL_SPEEDUP = 10.0
GOAL_TRIALS_PER_MIN = 200.0
# `proxytask trial` prints one line per trial: "<id>: <state>; final accuracy X; training Y s; ..."
TRIAL_LINE = re.compile(
    r"^(?P<id>\S+/\d+): (?P<note>.*); final \w+ (?P<final>\S+); training (?P<secs>[\d.]+) s;"
)


@dataclasses.dataclass(frozen=True)
class Mode:
    """One way of running the trials."""

    name: str
    gpus_per_trial: float
    parallel: int
    warm: bool
    trials: int


# sized for one call of about 6 minutes on an H200 (a trial there took 17-20 s end to end)
MODES = (
    Mode("plain-1", 1.0, 1, False, 3),
    Mode("plain-4", 0.25, 4, False, 8),
    Mode("plain-16", 0.0625, 16, False, 32),
    Mode("warm-1", 1.0, 1, True, 3),
    Mode("warm-4", 0.25, 4, True, 8),
    Mode("warm-16", 0.0625, 16, True, 32),
)
PROGRESS_DONE = re.compile(r"^\s+(?P<id>\S+/\d+)\s+100\.0%")


def _env() -> dict[str, str]:
    """The environment for proxytask and its trials: the repository root (for ``examples``)
    and ``src`` (for an uninstalled proxytask) on the path."""
    env = dict(os.environ)
    paths = [str(REPO), str(REPO / "src")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _gpu_names() -> list[str]:
    """The GPUs ``nvidia-smi -L`` lists (none without it)."""
    if shutil.which("nvidia-smi") is None:
        return []
    proc = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    return [line.strip() for line in proc.stdout.splitlines() if line.startswith("GPU ")]


def _machine() -> dict[str, Any]:
    """What the figures were measured on."""
    probe = (
        "import json, torch; print(json.dumps({'torch': torch.__version__, "
        "'cuda': torch.version.cuda, 'cuda_available': torch.cuda.is_available()}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=_env()
    )
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "gpus": _gpu_names(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        **json.loads(proc.stdout),
    }


def _command(mode: Mode, root: Path, gpus: bool, timeout_secs: float) -> list[str]:
    args = [
        sys.executable,
        "-c",
        "import sys; from proxytask.cli import main; sys.exit(main())",
        "trial",
        "--trainer",
        f"{sys.executable} examples/digits/trainer.py",
        "--search-space",
        "examples.digits.search_space:sample",
        "--architecture",
        "examples.digits.search_space:baseline",
        "--root-output-dir",
        str(root),
        "--job-name",
        mode.name,
        "--num-trials",
        str(mode.trials),
        "--max-parallel-trials",
        str(mode.parallel),
        "--gpus-per-trial",
        f"{mode.gpus_per_trial:g}" if gpus else "0",
        "--trial-timeout-secs",
        f"{timeout_secs:g}",
        "--trainer-args",
        "num_threads=1",
    ]
    if mode.warm:
        args += ["--trainer-entry", ENTRY]
    return args


def run_mode(
    mode: Mode, work: Path, gpus: bool, timeout_secs: float, logs: Path | None = None
) -> dict[str, Any]:
    """Run one mode through ``proxytask trial``; its wall time, throughput and trial lines
    (the command's output goes to ``logs/<mode>.log`` when ``logs`` is given)."""
    root = work / mode.name
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            _command(mode, root, gpus, timeout_secs),
            capture_output=True,
            text=True,
            cwd=REPO,
            env=_env(),
            timeout=timeout_secs,
            check=False,
        )
        out, err, code = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        code = None
    wall = time.perf_counter() - started
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"{mode.name}.log").write_text(f"exit {code}\n{out}\n--- stderr\n{err}")
    lines = [m for m in map(TRIAL_LINE.match, out.splitlines()) if m]
    done = [m for m in lines if m["note"] == "succeeded"]
    training = [float(m["secs"]) for m in done]
    finished = len(done)
    if code is None:  # cut off: count the trials whose progress reached 100 %
        finished = len({m["id"] for m in map(PROGRESS_DONE.match, out.splitlines()) if m})
    return {
        "mode": mode.name,
        "gpus_per_trial": mode.gpus_per_trial if gpus else 0.0,
        "parallel": mode.parallel,
        "warm": mode.warm,
        "trials": mode.trials,
        "succeeded": finished,
        "exit_code": code,
        "cut_off": code is None,
        "wall_secs": round(wall, 2),
        "trials_per_min": round(finished / wall * 60, 1),
        "median_training_secs": round(statistics.median(training), 2) if training else None,
        "median_final_accuracy": (
            round(statistics.median(float(m["final"]) for m in done), 4) if done else None
        ),
        "failures": [line for line in out.splitlines() if ": failed (" in line][:3],
        "stderr_tail": err[-1500:] if code != 0 else "",
    }


def markdown(results: dict[str, Any]) -> str:
    """The results as the Markdown table recorded beside the JSON."""
    machine = results["machine"]
    gpu = ", ".join(machine["gpus"]) or "no GPU (--allow-cpu: the figures say nothing about GPUs)"
    out = [
        f"Machine: {gpu}; {machine['cpu']}, {machine['cpu_count']} CPUs; torch "
        f"{machine['torch']} (CUDA {machine['cuda']}); Python {machine['python']}; "
        f"{machine['date']}.",
        "",
        "Digits baseline, full recipe (1,000 steps), `proxytask trial` timed end to end.",
        "",
        "| mode | GPUs per trial | at once | warm | trials (ok) | wall (s) | trials/min "
        "| vs plain-1 | median training (s) | median accuracy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["modes"]:
        speedup = row.get("speedup")
        out.append(
            f"| {row['mode']} | {row['gpus_per_trial']:g} | {row['parallel']} | "
            f"{'yes' if row['warm'] else 'no'} | {row['trials']} ({row['succeeded']}) | "
            f"{row['wall_secs']} | {row['trials_per_min']} | "
            f"{'-' if speedup is None else f'{speedup}x'} | "
            f"{row['median_training_secs']} | {row['median_final_accuracy']} |"
        )
    goals = results.get("goals")
    if goals:
        out += [
            "",
            f"Goals: best warm mode {goals['best_warm_speedup']}x plain-1 (goal "
            f"{GOAL_SPEEDUP:g}x: {'met' if goals['speedup_met'] else 'missed'}); "
            f"{goals['best_warm_trials_per_min']} trials/min (goal {GOAL_TRIALS_PER_MIN:g}: "
            f"{'met' if goals['throughput_met'] else 'missed'}).",
        ]
    return "\n".join(out) + "\n"


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Add each mode's speed-up against plain-1 and judge the goals (None without plain-1)."""
    base = next((r for r in rows if r["mode"] == "plain-1" and r["trials_per_min"]), None)
    if base is None:
        return None
    for row in rows:
        row["speedup"] = round(row["trials_per_min"] / base["trials_per_min"], 1)
    warm = [r for r in rows if r["warm"]]
    if not warm:
        return None
    best = max(warm, key=lambda r: r["trials_per_min"])
    return {
        "best_warm_mode": best["mode"],
        "best_warm_speedup": best["speedup"],
        "best_warm_trials_per_min": best["trials_per_min"],
        "speedup_met": best["speedup"] >= GOAL_SPEEDUP,
        "throughput_met": best["trials_per_min"] >= GOAL_TRIALS_PER_MIN,
    }


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument(
        "--modes",
        default=",".join(m.name for m in MODES),
        help="comma-separated modes (default: all)",
    )
    parser.add_argument("--trials", type=_positive, help="trials per mode (default: per mode)")
    parser.add_argument("--mode-timeout-secs", type=float, default=240.0)
    parser.add_argument("--allow-cpu", action="store_true", help="run without a GPU")
    args = parser.parse_args(argv)
    known = {m.name: m for m in MODES}
    names = [n.strip() for n in args.modes.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"--modes: unknown {unknown}; choose from {sorted(known)}")
    gpus = bool(_gpu_names())
    if not gpus and not args.allow_cpu:
        print(
            "no GPU found (nvidia-smi -L lists none); run on a GPU machine, or pass --allow-cpu "
            "to try the script on the CPU",
            file=sys.stderr,
        )
        return 2
    machine = _machine()
    print(json.dumps(machine), flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu-trials-") as tmp:
        work = Path(tmp)
        # one trial first, uncounted: the disk cache and the bytecode, as a later run would find
        logs = args.out / "gpu_trials_logs"
        first = run_mode(
            dataclasses.replace(MODES[0], name="first", trials=1), work, gpus, 300.0, logs
        )
        if first["succeeded"] != 1:
            print(f"the first trial failed: {json.dumps(first)}", file=sys.stderr)
            return 1
        for name in names:
            mode = known[name]
            if args.trials:
                mode = dataclasses.replace(mode, trials=args.trials)
            row = run_mode(mode, work, gpus, args.mode_timeout_secs, logs)
            print(json.dumps(row), flush=True)
            rows.append(row)
    results = {"machine": machine, "modes": rows, "goals": summarise(rows)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_trials.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "gpu_trials.md").write_text(markdown(results))
    print(markdown(results))
    return 0 if all(r["succeeded"] == r["trials"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
