"""Kill `proxytask run` at random moments and check that nothing is lost or run twice.

A small workflow (variance, model selection, search, final checks) with the shipped fake
trainer as real trial processes runs once uninterrupted, for its answer. Then, for each
round, a fresh copy runs and is SIGKILLed at a random moment (uniform over the
uninterrupted run's duration), at most ``--kills-per-run`` times, and is resumed by running
the same command again until it ends. After every kill and at the end it checks:

- **no orphan**: within 2 s of the kill no process is left whose command line names the
  run's dir (trainers die with their controller);
- **the same answer**: the recommendation (proxy, steps) and the reference models
  (architectures, accuracies) equal the uninterrupted run's;
- **nothing trained twice**: in every stage's event log no trial is launched again after
  it succeeded, and none trains to its end twice (a trial accepted from its files after a
  kill, ``trial_recovered``, may have logged its end already: that is no second run).

::

    .venv/bin/python bench/chaos.py --rounds 20 --kills-per-run 3     # the long run (~50 kills)
    .venv/bin/python bench/chaos.py --rounds 2 --out /tmp/chaos       # a short one

Writes ``chaos.json`` and ``chaos.md`` under ``--out`` (default ``bench/results``); exit 1
when any check failed. The short form runs in CI (``tests/chaos/test_random_kills.py``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def workflow_file(root: Path) -> Path:
    """The chaos workflow, with its runs under ``root``."""
    data = {
        "trainer": f"{sys.executable} -m proxytask.testing.fake_trainer",
        "search-space": "tests.fixtures.spaces:tiny",
        "root-output-dir": str(root / "runs"),
        "job-name": "chaos",
        "max-parallel-trials": 4,
        "heartbeat-threshold-secs": 30,
        "trainer-args": {"cycles": "8", "cycle_secs": "0.05", "total_steps": "200"},
        "variance": {"num-copies": 3},
        "model-selection": {
            "start-num-models": 8,
            "final-num-models": 6,
            "num-models-to-remove-per-iter": 2,
        },
        "search": {"proxy-task-config-generator": "tests.fixtures.proxy_generators:good_only"},
    }
    root.mkdir(parents=True, exist_ok=True)
    path = root / "workflow.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO), env.get("PYTHONPATH", "")])
    return env


def _start(path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "proxytask.cli", "run", str(path)],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a kill here reaches the controller alone, as a crash would
    )


def orphans(root: Path) -> list[int]:
    """Pids of processes whose command line names ``root`` (other than this one)."""
    found = []
    needle = str(root).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            found.append(int(entry.name))
    return found


def answer(root: Path) -> dict[str, Any]:
    """What the run concluded: the recommendation and the reference models."""
    wdir = root / "runs" / "Workflow_chaos"
    rec = json.loads((wdir / "RECOMMENDATION.json").read_text())["recommendation"]
    state = json.loads((wdir / "WORKFLOW_STATE.json").read_text())
    sdir = Path(state["stages"]["model_selection"]["dir"])
    refs = json.loads((sdir / "REFERENCE_MODELS.json").read_text())
    return {
        "proxy": rec.get("best_proxy_task_name"),
        "steps": rec.get("training_steps"),
        "reference_models": sorted(
            (json.dumps(m.get("architecture"), sort_keys=True), round(m["accuracy"], 6))
            for m in refs["reference_models"]
        ),
    }


def retrained(root: Path) -> list[str]:
    """Trials launched again after they succeeded, or that succeeded twice (all stages)."""
    bad = []
    for log in (root / "runs").rglob("events.jsonl"):
        succeeded: set[str] = set()
        for line in log.read_text().splitlines():
            event = json.loads(line)
            trial = event.get("trial")
            if trial is None:
                continue
            kind = event.get("event") or event.get("kind")
            if kind == "trial_launched" and trial in succeeded:
                bad.append(f"{log.parent.name}:{trial} launched after it succeeded")
            if kind == "trial_ended" and event.get("state") == "succeeded":
                if trial in succeeded:
                    bad.append(f"{log.parent.name}:{trial} trained to the end twice")
                succeeded.add(trial)
            elif kind == "trial_recovered" and event.get("state") == "succeeded":
                # accepted from its files after a kill (its end may be logged already): no run
                succeeded.add(trial)
    return bad


def run_once(root: Path) -> tuple[float, dict[str, Any]]:
    """The uninterrupted run: its duration and answer."""
    path = workflow_file(root)
    started = time.perf_counter()
    proc = _start(path)
    _, err = proc.communicate(timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"the uninterrupted run failed: {err.decode()[-2000:]}")
    return time.perf_counter() - started, answer(root)


def chaos_round(
    root: Path, duration: float, kills_per_run: int, rng: random.Random
) -> dict[str, Any]:
    """One workflow killed up to ``kills_per_run`` times at random moments, then finished."""
    path = workflow_file(root)
    kills, orphaned, attempts = [], [], 0
    while True:
        attempts += 1
        proc = _start(path)
        if len(kills) < kills_per_run:
            at = rng.uniform(0.05, 0.7) * duration
            try:
                proc.wait(timeout=at)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                kills.append(round(at, 2))
                time.sleep(2.0)
                left = orphans(root)
                if left:
                    orphaned.append(left)
                    for pid in left:
                        os.kill(pid, signal.SIGKILL)
                continue
        _, err = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            return {"kills": kills, "error": err.decode()[-2000:], "attempts": attempts}
        break
    return {
        "kills": kills,
        "attempts": attempts,
        "orphans": orphaned,
        "retrained": retrained(root),
        "answer": answer(root),
    }


def markdown(results: dict[str, Any]) -> str:
    s = results["summary"]
    return (
        f"Machine: {results['machine']}; {results['date']}.\n\n"
        f"{s['rounds']} workflows, {s['kills']} SIGKILLs of `proxytask run` at random moments "
        f"(the uninterrupted run took {results['uninterrupted_secs']} s): "
        f"{s['same_answer']} of {s['rounds']} ended with the uninterrupted answer, "
        f"{s['retrained']} trials trained twice, {s['orphans']} orphan processes after a kill, "
        f"{s['errors']} runs that did not finish.\n"
    )


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--kills-per-run", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="proxytask-chaos-"))
    try:
        duration, expected = run_once(work / "uninterrupted")
        rounds = []
        for n in range(args.rounds):
            row = chaos_round(work / f"round{n}", duration, args.kills_per_run, rng)
            row["same_answer"] = row.get("answer") == expected
            print(json.dumps({k: v for k, v in row.items() if k != "answer"}), flush=True)
            rounds.append(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {
        "rounds": len(rounds),
        "kills": sum(len(r["kills"]) for r in rounds),
        "same_answer": sum(1 for r in rounds if r["same_answer"]),
        "retrained": sum(len(r.get("retrained", [])) for r in rounds),
        "orphans": sum(len(o) for r in rounds for o in r.get("orphans", [])),
        "errors": sum(1 for r in rounds if "error" in r),
    }
    results = {
        "machine": _cpu(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "uninterrupted_secs": round(duration, 1),
        "expected": expected,
        "summary": summary,
        "rounds": rounds,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "chaos.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "chaos.md").write_text(markdown(results))
    print(markdown(results))
    ok = (
        summary["same_answer"] == summary["rounds"]
        and summary["retrained"] == 0
        and summary["orphans"] == 0
        and summary["errors"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
