"""Does watching a run slow it? The NAS-Bench-201 workflow with and without a dashboard open.

Runs ``proxytask run examples/nasbench201/workflow.yaml`` (recorded curves replayed, so the
controller is the whole cost) ``--repeats`` times alone and ``--repeats`` times with
``proxytask dashboard`` serving its dir and a poller asking for ``api/page`` every
``--poll-secs`` (an open browser tab asks every 2 s; the default 0.5 s is four tabs), in
alternating order. For each run it records the controller process's wall time and CPU time
(``os.wait4``), and for the watched runs the dashboard's CPU time and the page latency.

    .venv/bin/python bench/dashboard_overhead.py                 # 3 + 3 runs
    .venv/bin/python bench/dashboard_overhead.py --repeats 1 --out /tmp/do

Writes ``dashboard_overhead.json`` and ``.md`` under ``--out`` (default ``bench/results/``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from bench.stopping_rules import machine_info

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "nasbench201" / "workflow.yaml"


def _proxytask() -> list[str]:
    script = Path(sys.executable).with_name("proxytask")
    return [str(script)] if script.exists() else [sys.executable, "-m", "proxytask.cli"]


def _config(workdir: Path, job: str) -> Path:
    data = yaml.safe_load(WORKFLOW.read_text())
    data["root-output-dir"] = str(workdir / "runs")
    data["job-name"] = job
    path = workdir / f"{job}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _wait_cpu(proc: subprocess.Popen[bytes]) -> tuple[int, float]:
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def _poll(url: str, every: float, stop: threading.Event, latencies: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                response.read()
            latencies.append(time.perf_counter() - started)
        except OSError:
            pass
        stop.wait(every)


def one_run(workdir: Path, job: str, watched: bool, poll_secs: float, port: int) -> dict[str, Any]:
    """One workflow run, watched or not: its wall and CPU seconds (and the dashboard's)."""
    config = _config(workdir, job)
    started = time.perf_counter()
    run = subprocess.Popen(
        [*_proxytask(), "run", str(config)], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    result: dict[str, Any] = {"job": job, "watched": watched}
    dash = None
    stop = threading.Event()
    latencies: list[float] = []
    poller = None
    if watched:
        wdir = workdir / "runs" / f"Workflow_{job}"
        while not (wdir / "WORKFLOW_STATE.json").exists() and run.poll() is None:
            time.sleep(0.02)
        dash = subprocess.Popen(
            [*_proxytask(), "dashboard", str(wdir), "--port", str(port)], cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}/api/page"
        poller = threading.Thread(target=_poll, args=(url, poll_secs, stop, latencies))
        poller.start()
    code, cpu = _wait_cpu(run)
    result.update(exit_code=code, wall_secs=time.perf_counter() - started, cpu_secs=cpu)
    if dash is not None and poller is not None:
        stop.set()
        poller.join()
        dash.terminate()
        _, dash_cpu = _wait_cpu(dash)
        result.update(
            dashboard_cpu_secs=dash_cpu,
            page_requests=len(latencies),
            page_p50_secs=statistics.median(latencies) if latencies else None,
            page_p95_secs=(
                sorted(latencies)[int(0.95 * (len(latencies) - 1))] if latencies else None
            ),
        )
    return result


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def markdown(result: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    alone = [r for r in result["runs"] if not r["watched"]]
    watched = [r for r in result["runs"] if r["watched"]]
    lines = [
        f"Machine: {result['machine'].get('cpu', '?')}, {result['machine'].get('cores', '?')} "
        f"cores; {len(alone)} + {len(watched)} runs of the NAS-Bench-201 workflow (replayed), "
        f"alternating; the poller asked for the page every {result['poll_secs']} s.",
        "",
        "| | workflow wall (s), median | controller CPU (s), median | dashboard CPU (s) "
        "| page p50 / p95 (s) |",
        "|---|---|---|---|---|",
        f"| alone | {_median(alone, 'wall_secs'):.1f} | {_median(alone, 'cpu_secs'):.1f} | — | — |",
        f"| dashboard open | {_median(watched, 'wall_secs'):.1f} | "
        f"{_median(watched, 'cpu_secs'):.1f} | {_median(watched, 'dashboard_cpu_secs'):.1f} | "
        f"{_median(watched, 'page_p50_secs'):.2f} / {_median(watched, 'page_p95_secs'):.2f} |",
    ]
    slower = _median(watched, "wall_secs") / _median(alone, "wall_secs") - 1
    lines += ["", f"With the dashboard open the workflow took {slower * 100:+.0f} % wall time."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--poll-secs", type=float, default=0.5)
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args(argv)
    started = time.time()
    runs = []
    with tempfile.TemporaryDirectory(prefix="dashboard-overhead-") as tmp:
        for i in range(args.repeats):
            for watched in (False, True) if i % 2 == 0 else (True, False):
                job = f"r{i}{'w' if watched else 'a'}"
                runs.append(one_run(Path(tmp), job, watched, args.poll_secs, args.port))
                print(json.dumps(runs[-1]), flush=True)
    result = {
        "benchmark": "dashboard_overhead",
        "machine": machine_info(),
        "date": time.strftime("%Y-%m-%d", time.gmtime(started)),
        "wall_secs": round(time.time() - started, 1),
        "repeats": args.repeats,
        "poll_secs": args.poll_secs,
        "runs": runs,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "dashboard_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (out / "dashboard_overhead.md").write_text(text)
    print(text)
    return 0 if all(r["exit_code"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
