"""Chaos: kill controllers at random moments and in the known crash windows, inject trial
faults, race two writers and feed bad input; check that nothing is lost or run twice.

Every part drives the real command line (``python -m proxytask.cli``) with the shipped fake
trainer as real trial processes. Parts (``--parts``, default all):

- ``kills``: for each tool (``--tools``: ``variance``, ``select-models``, ``search``, ``run``)
  an uninterrupted run gives the answer; then ``--rounds`` fresh runs are SIGKILLed at random
  moments (uniform over 5-70 % of the uninterrupted run's duration, up to
  ``--kills-per-run`` times each) and resumed as a user would (``run``: the same command; a
  tool: its ``--previous-...-dir`` flag, or the same command when it died before its dir
  could be resumed) until they end.
- ``windows``: the targeted windows: a kill while a trial measures its latency (model
  selection, the trainer waits 1 s before reporting it), a kill the moment each workflow
  stage's dir appears (``run``), a controller frozen (SIGSTOP) for twice the trials'
  heartbeat threshold (model selection).
- ``faults``: each injected trial fault through ``proxytask trial`` (crash, OOM, NaN, hang
  past the report timeout, hang past the time limit, self-kill, death halfway through
  writing the metrics file, exit 0 short of the steps) must be named with its cause, exit 1;
  and a model selection whose trainer ignores its stop files must end, its trials stopped
  through the executor.
- ``writers``: a second resume of a running model selection and a second ``run`` of a
  running workflow, on local disk and on S3 (moto on 127.0.0.1): refused with one line
  naming the holder, exit 2, while the first ends with the uninterrupted answer; two fresh
  runs with one job name started together both run, in dirs of their own.
- ``bad-input``: the corpus of ``tests/chaos/test_bad_input.py`` (every option's refused
  values on the command line and in config files, every file format's damage, bad paths,
  a read-only and a full disk when this process may mount a tmpfs): one line on stderr,
  exit 2, no traceback, nothing written or changed.

After every kill and at every end: **no orphan** (within 2 s of a kill no process is left
whose command line names the run's dir), **the same answer** as the uninterrupted run (the
variance figures; the reference models' architectures, accuracies and latencies; the
recommendation), **nothing trained twice** (in every event log no trial is launched again
after it succeeded, and none trains to its end twice; a trial accepted from its files after
a kill, ``trial_recovered``, may have logged its end already: that is no second run).

::

    .venv/bin/python bench/chaos.py                                  # the long run (~15 min)
    .venv/bin/python bench/chaos.py --rounds 1 --tools run --parts kills --out /tmp/chaos

Writes ``chaos.json`` and ``chaos.md`` under ``--out`` (default ``bench/results``); exit 1
when any check failed. The short form runs in CI (``tests/chaos/test_random_kills.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: `bench.` imports need the repository root
    sys.path.insert(0, str(REPO))

from bench.moto import moto_s3, python_env  # noqa: E402
from bench.stopping_rules import machine_info  # noqa: E402

FAKE = f"{sys.executable} -m proxytask.testing.fake_trainer"
SPACE = "tests.fixtures.spaces:tiny"
GENERATOR = "tests.fixtures.proxy_generators:good_only"
TRAINER_ARGS = {"cycles": "8", "cycle_secs": "0.05", "total_steps": "200"}
SELECTION = {"start-num-models": 12, "final-num-models": 10, "num-models-to-remove-per-iter": 2}
TOOLS = ("variance", "select-models", "search", "run")
PARTS = ("kills", "windows", "faults", "writers", "bad-input")
RESUME_FLAGS = {
    "variance": "--previous-variance-dir",
    "select-models": "--previous-model-selection-dir",
    "search": "--previous-proxy-task-search-dir",
}
BUCKET = "proxytask-chaos"


# ---- commands -----------------------------------------------------------------------------------


def _flags(options: dict[str, Any]) -> list[str]:
    return [f"--{k}={v}" for k, v in options.items()]


def _trainer_args(extra: dict[str, str] | None = None) -> list[str]:
    return ["--trainer-args", *(f"{k}={v}" for k, v in {**TRAINER_ARGS, **(extra or {})}.items())]


def tool_argv(
    tool: str, root: str, selection_dir: str = "", trainer: dict[str, str] | None = None
) -> list[str]:
    """The fresh command line of ``tool`` with its runs under ``root`` (a path or URL)."""
    common = [
        f"--trainer={FAKE}",
        f"--root-output-dir={root}/runs",
        "--job-name=chaos",
        "--max-parallel-trials=4",
        "--heartbeat-threshold-secs=30",
    ]
    if tool == "variance":
        return [
            "variance",
            *common,
            f"--search-space={SPACE}",
            "--num-copies=3",
            *_trainer_args(trainer),
        ]
    if tool == "select-models":
        return [
            "select-models",
            *common,
            f"--search-space={SPACE}",
            *_flags(SELECTION),
            *_trainer_args(trainer),
        ]
    if tool == "search":
        return [
            "search",
            *common,
            f"--model-selection-dir={selection_dir}",
            f"--proxy-task-config-generator={GENERATOR}",
            *_trainer_args(trainer),
        ]
    raise ValueError(f"no fresh command line for {tool!r}")


def workflow_file(root: Path, trainer: dict[str, str] | None = None, where: str = "") -> Path:
    """The chaos workflow file in ``root``, with its runs under ``where`` (default
    ``root/runs``)."""
    data = {
        "trainer": FAKE,
        "search-space": SPACE,
        "root-output-dir": where or str(root / "runs"),
        "job-name": "chaos",
        "max-parallel-trials": 4,
        "heartbeat-threshold-secs": 30,
        "trainer-args": {**TRAINER_ARGS, **(trainer or {})},
        "variance": {"num-copies": 3},
        "model-selection": dict(SELECTION),
        "search": {"proxy-task-config-generator": GENERATOR},
    }
    root.mkdir(parents=True, exist_ok=True)
    path = root / "workflow.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@dataclasses.dataclass
class Job:
    """One run to drive: a tool or the workflow, its dir, and how to resume it."""

    tool: str
    root: Path  # the run's own folder (local); its runs are under root/runs
    argv: list[str]  # the fresh command line
    env: dict[str, str]
    url: str = ""  # its runs folder when not local (S3)

    @property
    def runs(self) -> str:
        return self.url or str(self.root / "runs")

    def resume_argv(self) -> list[str] | None:
        """The tool's resume of its dir, once the dir can be resumed (None before)."""
        found = controller_dir(self.runs)
        return None if found is None else [self.tool, f"{RESUME_FLAGS[self.tool]}={found}"]

    def command(self) -> list[str]:
        """The command a user runs now: the same for ``run``; else resume the dir with a
        state, or start afresh when the last run died before it had one."""
        if self.tool == "run":
            return self.argv
        return self.resume_argv() or self.argv


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "proxytask.cli", *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a kill here reaches the controller alone, as a crash would
    )


# ---- what a run left ----------------------------------------------------------------------------


def _ls(url: str) -> list[str]:
    """The entries directly under ``url``, as full paths or URLs."""
    from proxytask.core import storage

    try:
        return [storage.join(url, name) for name in storage.listdir(url)]
    except OSError:
        return []


def _read_json(url: str) -> Any:
    """The JSON at ``url``, a file the finished run must have written."""
    from proxytask.core import storage

    data = storage.read_json(url)
    if data is None:
        raise FileNotFoundError(f"{url} must exist once the run ended")
    return data


def controller_dir(runs: str) -> str | None:
    """The controller dir under ``runs`` that can be resumed (it has CONTROLLER_INFO.json)."""
    from proxytask.core import storage

    found = [d for d in _ls(runs) if storage.exists(storage.join(d, "CONTROLLER_INFO.json"))]
    return found[-1] if found else None


def answer(job: Job) -> dict[str, Any]:
    """What the run concluded, for comparison with the uninterrupted one."""
    from proxytask.core import storage

    if job.tool == "run":
        wdir = storage.join(job.runs, "Workflow_chaos")
        rec = _read_json(storage.join(wdir, "RECOMMENDATION.json"))["recommendation"]
        state = _read_json(storage.join(wdir, "WORKFLOW_STATE.json"))
        sdir = state["stages"]["model_selection"]["dir"]
        return {
            "proxy": rec.get("best_proxy_task_name"),
            "steps": rec.get("training_steps"),
            "reference_models": _reference_models(sdir),
        }
    cdir = controller_dir(job.runs)
    assert cdir is not None, f"no controller dir under {job.runs}"
    if job.tool == "variance":
        result = _read_json(storage.join(cdir, "variance_and_smoothness.json"))
        return {
            "final_accuracies": [round(a, 6) for a in result["final_accuracies"]],
            "variance": round(result["variance_value"], 6),
            "smoothness": round(result["smoothness_value"], 6),
        }
    if job.tool == "select-models":
        return {"reference_models": _reference_models(cdir)}
    rec = _read_json(storage.join(cdir, "PROXY_TASK_RECOMMENDATION.json"))
    return {
        "proxy": rec.get("best_proxy_task_name"),
        "steps": rec.get("training_steps"),
        "tau": round(rec.get("accuracy_correlation_at_stop") or 0.0, 6),
    }


def _reference_models(sdir: str) -> list[Any]:
    from proxytask.core import storage

    refs = _read_json(storage.join(sdir, "REFERENCE_MODELS.json"))
    return sorted(
        (
            json.dumps(m.get("architecture"), sort_keys=True),
            round(m["accuracy"], 6),
            round(m.get("latency") or 0.0, 6),
        )
        for m in refs["reference_models"]
    )


def _event_logs(runs: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(runs)
    for log in sorted(fs.glob(f"{path.rstrip('/')}/**/events.jsonl")):
        text = fs.cat_file(log).decode()
        yield log, [json.loads(line) for line in text.splitlines() if line.strip()]


def retrained(runs: str) -> list[str]:
    """Trials launched again after they succeeded, or that succeeded twice (all stages)."""
    bad = []
    for log, events in _event_logs(runs):
        succeeded: set[str] = set()
        name = Path(log).parent.name
        for event in events:
            trial = event.get("trial")
            if trial is None:
                continue
            kind = event.get("event") or event.get("kind")
            if kind == "trial_launched" and trial in succeeded:
                bad.append(f"{name}:{trial} launched after it succeeded")
            if kind == "trial_ended" and event.get("state") == "succeeded":
                if trial in succeeded:
                    bad.append(f"{name}:{trial} trained to the end twice")
                succeeded.add(trial)
            elif kind == "trial_recovered" and event.get("state") == "succeeded":
                # accepted from its files after a kill (its end may be logged already): no run
                succeeded.add(trial)
    return bad


def event_counts(runs: str, kind: str, **match: Any) -> int:
    """How many events of ``kind`` (with the ``match``ing fields) all event logs hold."""
    return sum(
        1
        for _, events in _event_logs(runs)
        for e in events
        if (e.get("event") or e.get("kind")) == kind
        and all(e.get(k) == v for k, v in match.items())
    )


def orphans(needle: str) -> list[int]:
    """Pids of processes whose command line holds ``needle`` (other than this one)."""
    found = []
    raw = needle.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if raw in cmdline:
            found.append(int(entry.name))
    return found


# ---- driving a run through kills ----------------------------------------------------------------

# A moment to kill at: given the running process and its job, wait for the moment and
# return True (kill now) or False (the process ended first).
Moment = Callable[[subprocess.Popen[bytes], Job], bool]


def random_moment(duration: float, rng: random.Random) -> Moment:
    """A uniform moment in 5-70 % of ``duration`` after the start."""

    def wait(proc: subprocess.Popen[bytes], job: Job) -> bool:
        try:
            proc.wait(timeout=rng.uniform(0.05, 0.7) * duration)
        except subprocess.TimeoutExpired:
            return True
        return False

    return wait


def when(predicate: Callable[[Job], bool], poll_secs: float = 0.005) -> Moment:
    """The first moment ``predicate(job)`` holds while the process runs."""

    def wait(proc: subprocess.Popen[bytes], job: Job) -> bool:
        while proc.poll() is None:
            if predicate(job):
                return True
            time.sleep(poll_secs)
        return False

    return wait


def drive(job: Job, moment: Moment | None, max_kills: int) -> dict[str, Any]:
    """Run ``job``, SIGKILLing it at ``moment`` up to ``max_kills`` times and resuming it,
    until it ends; what happened and the checks' findings."""
    kills: list[float] = []
    orphaned: list[list[int]] = []
    attempts = 0
    began = time.perf_counter()
    while True:
        attempts += 1
        proc = _start(job.command(), job.env)
        started = time.perf_counter()
        if moment is not None and len(kills) < max_kills and moment(proc, job):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills.append(round(time.perf_counter() - started, 2))
            time.sleep(2.0)
            left = orphans(str(job.root))
            if left:
                orphaned.append(left)
                for pid in left:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            continue
        _, err = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            return {
                "kills": kills,
                "attempts": attempts,
                "orphans": orphaned,
                "error": err.decode()[-2000:],
            }
        break
    return {
        "kills": kills,
        "attempts": attempts,
        "orphans": orphaned,
        "retrained": retrained(job.runs),
        "answer": answer(job),
        "secs": round(time.perf_counter() - began, 1),
    }


def _job(
    tool: str,
    root: Path,
    env: dict[str, str],
    selection_dir: str = "",
    trainer: dict[str, str] | None = None,
) -> Job:
    root.mkdir(parents=True, exist_ok=True)
    if tool == "run":
        return Job(tool, root, ["run", str(workflow_file(root, trainer))], env)
    return Job(tool, root, tool_argv(tool, str(root), selection_dir, trainer), env)


def _checked(row: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    row["same_answer"] = row.get("answer") == expected
    row["ok"] = (
        row["same_answer"]
        and "error" not in row
        and not row.get("retrained")
        and not row.get("orphans")
        and row.get("window_hit", True)
    )
    return row


def _print_row(part: str, name: str, row: dict[str, Any]) -> None:
    shown = {k: v for k, v in row.items() if k != "answer"}
    print(json.dumps({"part": part, "name": name, **shown}), flush=True)


# ---- the parts ----------------------------------------------------------------------------------


def part_kills(
    work: Path,
    tools: list[str],
    rounds: int,
    kills_per_run: int,
    rng: random.Random,
    env: dict[str, str],
) -> dict[str, Any]:
    """Random kills of each tool and the workflow."""
    out: dict[str, Any] = {}
    selection_dir = _selection_dir(work, env) if "search" in tools else ""
    for tool in tools:
        base = drive(_job(tool, work / tool / "uninterrupted", env, selection_dir), None, 0)
        if "error" in base:
            raise RuntimeError(f"the uninterrupted {tool} run failed: {base['error']}")
        rows = []
        for n in range(rounds):
            job = _job(tool, work / tool / f"round{n}", env, selection_dir)
            row = _checked(
                drive(job, random_moment(base["secs"], rng), kills_per_run), base["answer"]
            )
            _print_row("kills", tool, row)
            rows.append(row)
        out[tool] = {"uninterrupted_secs": base["secs"], "expected": base["answer"], "rounds": rows}
    return out


def _selection_dir(work: Path, env: dict[str, str]) -> str:
    """A finished model selection for the search to use (made once)."""
    root = work / "selection-for-search"
    if controller_dir(str(root / "runs")) is None:
        row = drive(_job("select-models", root, env), None, 0)
        if "error" in row:
            raise RuntimeError(f"the model selection for the search failed: {row['error']}")
    found = controller_dir(str(root / "runs"))
    assert found is not None
    return found


def _latency_pending(job: Job) -> bool:
    """A trial has made its last accuracy report (none for 0.3 s, six cycles) but has not
    reported its latency yet: the fake trainer measures it for 1 s after training (a file
    quiet for longer is a trial killed before)."""
    for path in Path(job.runs).rglob("TRIAL_TRAINING_METRICS.json"):
        try:
            quiet = time.time() - path.stat().st_mtime
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if (
            data.get("training_accuracy_over_steps")
            and 0.3 < quiet < 0.9
            and not _has_latency(data)
        ):
            return True
    return False


def _has_latency(data: dict[str, Any]) -> bool:
    from proxytask.trainer.contract import TrialTrainingMetrics

    return TrialTrainingMetrics.from_dict(data).has_latency


def _new_stage_dir(killed: set[str]) -> Callable[[Job], bool]:
    """A controller dir of a stage not killed yet appeared in the workflow dir (once per
    stage: its kind, the dir name up to the job name)."""

    def predicate(job: Job) -> bool:
        wdir = Path(job.runs) / "Workflow_chaos"
        kinds = (
            {p.name.split("_chaos")[0] for p in wdir.iterdir() if p.is_dir()}
            if (wdir.exists())
            else set()
        )
        new = kinds - killed
        killed.update(new)
        return bool(new)

    return predicate


def part_windows(work: Path, env: dict[str, str]) -> dict[str, Any]:
    """The targeted crash windows."""
    out: dict[str, Any] = {}
    # a kill while a trial measures its latency (the trainer takes 1 s to report it)
    slow_latency = {"latency_delay_secs": "1.0"}
    base = drive(
        _job("select-models", work / "latency" / "base", env, trainer=slow_latency), None, 0
    )
    job = _job("select-models", work / "latency" / "killed", env, trainer=slow_latency)
    row = drive(job, when(_latency_pending), 3)
    row["window_hit"] = len(row["kills"]) >= 1
    out["latency"] = _checked(row, base.get("answer", {}))
    _print_row("windows", "latency", out["latency"])
    # a kill the moment each workflow stage's dir appears (before its state exists)
    base = drive(_job("run", work / "stages" / "base", env), None, 0)
    job = _job("run", work / "stages" / "killed", env)
    row = drive(job, when(_new_stage_dir(set())), 4)
    row["window_hit"] = len(row["kills"]) >= 3
    out["between_stages"] = _checked(row, base.get("answer", {}))
    _print_row("windows", "between_stages", out["between_stages"])
    # the controller frozen for twice the trials' heartbeat threshold
    out["frozen"] = _frozen(work / "frozen", env)
    _print_row("windows", "frozen", out["frozen"])
    return out


def _frozen(root: Path, env: dict[str, str]) -> dict[str, Any]:
    """Freeze the controller (SIGSTOP) while the last round trains, for three times the
    trials' heartbeat threshold: they stop themselves; resumed (SIGCONT), it must train them
    again, not count them failed."""
    threshold = 2.0
    trainer = {"cycles": "40", "cycle_secs": "0.15"}  # 6 s per trial
    base = drive(_job("select-models", root / "base", env, trainer=trainer), None, 0)
    job = _job("select-models", root / "frozen", env, trainer=trainer)
    job.argv = [
        a.replace("--heartbeat-threshold-secs=30", f"--heartbeat-threshold-secs={threshold:g}")
        for a in job.argv
    ]
    proc = _start(job.command(), job.env)
    training = when(lambda j: any(Path(j.runs).glob("*/jobs/round2/*/TRIAL_TRAINING_METRICS.json")))
    row: dict[str, Any] = {"frozen_secs": 3 * threshold, "kills": [], "orphans": []}
    if training(proc, job):
        os.kill(proc.pid, signal.SIGSTOP)
        time.sleep(3 * threshold)
        os.kill(proc.pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=1800)
    if proc.returncode != 0:
        row["error"] = err.decode()[-2000:]
    else:
        row["retrained"] = retrained(job.runs)
        row["answer"] = answer(job)
        row["failed_trials"] = event_counts(job.runs, "trial_ended", state="failed")
        row["restarted_trials"] = event_counts(job.runs, "trial_restarted")
        row["window_hit"] = row["restarted_trials"] >= 1 and row["failed_trials"] == 0
    return _checked(row, base.get("answer", {}))


FAULTS: list[tuple[str, str, list[str], str]] = [
    # name, behaviour, extra flags, what `proxytask trial` must print
    ("crash", "crash", [], "failed (crash)"),
    ("oom", "oom", [], "failed (oom)"),
    ("nan", "nan", [], "failed (nan)"),
    ("hang past the report timeout", "hang", ["--report-timeout-secs=3"], "failed (no_report)"),
    ("hang past the time limit", "hang", ["--trial-timeout-secs=3"], "failed (timeout)"),
    ("killed by a signal", "selfkill", [], "failed (killed)"),
    ("dies mid-write", "torn", [], "failed (killed)"),
    ("exit 0 short of its steps", "silent", [], "failed (incomplete)"),
]


def part_faults(work: Path, env: dict[str, str]) -> dict[str, Any]:
    """Each injected trial fault, named with its cause; a trainer deaf to stop files."""
    out: dict[str, Any] = {}
    for name, behaviour, extra, expected in FAULTS:
        root = work / "faults" / behaviour / name.replace(" ", "_")
        argv = [
            "trial",
            f"--trainer={FAKE}",
            f"--search-space={SPACE}",
            f"--root-output-dir={root}/runs",
            "--job-name=f",
            *extra,
            "--trainer-args",
            f"behaviour={behaviour}",
            "cycles=4",
            "cycle_secs=0.05",
        ]
        done = subprocess.run(
            [sys.executable, "-m", "proxytask.cli", *argv],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        left = orphans(str(root))
        row = {
            "exit_code": done.returncode,
            "expected": expected,
            "orphans": left,
            "ok": done.returncode == 1
            and f"f/1: {expected}" in done.stdout
            and not left
            and "Traceback" not in done.stderr,
        }
        if not row["ok"]:
            row["output"] = (done.stdout + done.stderr)[-1500:]
        out[name] = row
        _print_row("faults", name, row)
    # model selection with a trainer that never reads its stop files
    job = _job(
        "select-models",
        work / "faults" / "ignore_stop",
        env,
        trainer={"ignore_stop": "True", "cycles": "40", "cycle_secs": "0.02"},
    )
    row = drive(job, None, 0)
    row.pop("answer", None)
    stopped = sum(
        1
        for _, events in _event_logs(job.runs)
        for e in events
        if "stopped through the executor" in str(e.get("message", ""))
    )
    row["stopped_through_the_executor"] = stopped
    row["ok"] = "error" not in row and stopped >= 1 and not row.get("retrained")
    out["ignores its stop files"] = row
    _print_row("faults", "ignores its stop files", row)
    return out


def _second_writer(
    first: Job, second_argv: Callable[[], list[str] | None], expected: dict[str, Any]
) -> dict[str, Any]:
    """Start ``first``; once it holds its dir, start the second writer: it must be refused."""
    proc = _start(first.command(), first.env)
    deadline = time.monotonic() + 120
    argv = None
    while argv is None and proc.poll() is None and time.monotonic() < deadline:
        argv = second_argv()
        time.sleep(0.05)
    row: dict[str, Any] = {}
    if argv is None:
        row["error"] = "the first writer ended before it held its dir"
    else:
        time.sleep(0.5)  # past its lease and first state
        second = subprocess.run(
            [sys.executable, "-m", "proxytask.cli", *argv],
            cwd=REPO,
            env=first.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        lines = second.stderr.strip().splitlines()
        row["second_exit_code"] = second.returncode
        row["second_said"] = lines[-1] if lines else ""
        row["refused"] = (
            second.returncode == 2
            and len(lines) == 1
            and "Traceback" not in second.stderr
            and "pid" in row["second_said"]
        )
    _, err = proc.communicate(timeout=1800)
    if proc.returncode != 0:
        row["error"] = err.decode()[-2000:]
    else:
        row["answer"] = answer(first)
        row["retrained"] = retrained(first.runs)
    row["orphans"] = []
    row = _checked(row, expected)
    row["ok"] = row["ok"] and row.get("refused", False)
    return row


def part_writers(
    work: Path, env: dict[str, str], expected: dict[str, dict[str, Any]], s3: bool
) -> dict[str, Any]:
    """Second writers refused, locally and on S3; two fresh runs of one name apart."""
    out: dict[str, Any] = {}
    slow = {"cycle_secs": "0.2"}  # the same answer (accuracy depends on progress only)

    def record(name: str, row: dict[str, Any]) -> None:
        out[name] = row
        _print_row("writers", name, row)

    job = _job("select-models", work / "writers" / "selection", env, trainer=slow)
    record(
        "local: a second resume of a running model selection",
        _second_writer(job, job.resume_argv, expected["select-models"]),
    )
    job = _job("run", work / "writers" / "run", env, trainer=slow)
    wdir = Path(job.runs) / "Workflow_chaos"
    record(
        "local: a second run of a running workflow",
        _second_writer(
            job, lambda: job.argv if (wdir / "LEASE.json").exists() else None, expected["run"]
        ),
    )
    record("local: two fresh runs of one job name at once", _same_name(work, env, expected))
    if s3:
        with moto_s3(BUCKET) as s3_env:
            url = f"s3://{BUCKET}/chaos-{int(time.time())}"
            job = Job(
                "select-models",
                work / "writers" / "s3",
                tool_argv("select-models", url, trainer=slow),
                s3_env,
                url=f"{url}/runs",  # the runs folder, as root/runs locally
            )

            with _s3_env(s3_env):
                record(
                    "S3: a second resume of a running model selection",
                    _second_writer(job, job.resume_argv, expected["select-models"]),
                )
    return out


@contextlib.contextmanager
def _s3_env(env: dict[str, str]) -> Iterator[None]:
    """This process reads the S3 server too (its answers, its event logs)."""
    import fsspec.config

    names = ("FSSPEC_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    previous = {n: os.environ.get(n) for n in names}
    conf = fsspec.config.conf.setdefault("s3", {})
    before = dict(conf)
    os.environ.update({n: env[n] for n in names})
    conf["endpoint_url"] = env["FSSPEC_S3_ENDPOINT_URL"]
    try:
        yield
    finally:
        for n, v in previous.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v
        conf.clear()
        conf.update(before)


def _same_name(
    work: Path, env: dict[str, str], expected: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    root = work / "writers" / "same-name"
    root.mkdir(parents=True, exist_ok=True)
    argv = tool_argv("select-models", str(root))
    procs = [_start(argv, env) for _ in range(2)]
    codes = [p.wait(timeout=1800) for p in procs]
    dirs = _ls(str(root / "runs"))
    answers = [_reference_models(d) for d in dirs if codes == [0, 0]]
    want = expected["select-models"]["reference_models"]
    ok = codes == [0, 0] and len(dirs) == 2 and all(a == want for a in answers)
    return {
        "exit_codes": codes,
        "dirs": [Path(d).name for d in dirs],
        "ok": ok,
        "retrained": retrained(str(root / "runs")),
        "orphans": [],
    }


BAD_INPUT_COUNTS = (
    "cases",
    "refused",
    "tracebacks",
    "writes",
    "accepted",
    "not_one_line",
    "wrong_exit",
)


def bad_input_tally() -> dict[str, Any]:
    """Empty counts for :func:`_one_bad_input` (and the cases that failed, with why)."""
    return {**dict.fromkeys(BAD_INPUT_COUNTS, 0), "failures": []}


def part_bad_input(work: Path) -> dict[str, Any]:
    """The bad-input corpus of tests/chaos/test_bad_input.py, run here case by case."""
    from tests.chaos import test_bad_input as corpus

    results = bad_input_tally()
    cases: list[tuple[str, Callable[[Path], list[str]]]] = []
    for command, option, value, where in corpus.OPTION_CASES:
        cases.append(
            (
                f"{command} --{option}={value!r} ({where})",
                _option_case(corpus, command, option, value, where),
            )
        )
    for name, make in sorted(corpus.FILE_CASES.items()):
        cases.append((name, make))
    with corpus.mounted_small_disks(work / "disks") as disks:
        for command, disk in corpus.DISK_CASES if disks else []:
            cases.append((f"{command} on a {disk} disk", _disk_case(corpus, command, disks[disk])))
        for name, make in cases:
            tmp = Path(tempfile.mkdtemp(dir=work))
            _one_bad_input(name, make, tmp, results, corpus)
            shutil.rmtree(tmp, ignore_errors=True)
    results["disk_cases"] = bool(disks)
    return results


def _option_case(
    corpus: Any, command: str, option: str, value: str, where: str
) -> Callable[[Path], list[str]]:
    def make(t: Path) -> list[str]:
        root = t / "runs"
        root.mkdir()
        argv = corpus._base(command, root)
        if where == "flag":
            return [*argv, f"--{option}={value}"]
        config = t / "config.yaml"
        config.write_text(yaml.safe_dump({option: value}))
        return [*argv, f"--config={config}"]

    return make


def _disk_case(corpus: Any, command: str, disk: Path) -> Callable[[Path], list[str]]:
    return lambda t: corpus._disk_case(command, disk / "runs", t)


def _one_bad_input(
    name: str, make: Callable[[Path], list[str]], tmp: Path, results: dict[str, Any], corpus: Any
) -> None:
    from proxytask import cli

    argv = make(tmp)
    before = corpus._snapshot(tmp)
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code: Any = cli.main(argv)
        except SystemExit as exc:  # argparse's own refusals
            code = exc.code
        except Exception as exc:  # a traceback is what this counts
            import traceback

            traceback.print_exception(exc, file=err)
            code = "exception"
    text = err.getvalue()
    lines = text.strip().splitlines()
    results["cases"] += 1
    problems = []
    if "Traceback" in text:
        results["tracebacks"] += 1
        problems.append("traceback")
    if code == 0:
        results["accepted"] += 1
        problems.append("accepted")
    elif code != 2:
        results["wrong_exit"] += 1
        problems.append(f"exit {code}")
    if len(lines) != 1:
        results["not_one_line"] += 1
        problems.append(f"{len(lines)} lines")
    if corpus._snapshot(tmp) != before:
        results["writes"] += 1
        problems.append("wrote files")
    if problems:
        results["failures"].append({"case": name, "problems": problems, "stderr": text[-500:]})
    else:
        results["refused"] += 1


# ---- the report ---------------------------------------------------------------------------------


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """The figures the acceptance asks for, over all parts run."""
    s: dict[str, Any] = {}
    kills = results.get("kills", {})
    rows = [r for tool in kills.values() for r in tool["rounds"]]
    windows = list(results.get("windows", {}).values())
    every = rows + windows
    s["random_kills"] = sum(len(r["kills"]) for r in rows)
    s["random_kill_runs"] = len(rows)
    s["random_kills_per_tool"] = {
        t: sum(len(r["kills"]) for r in v["rounds"]) for t, v in kills.items()
    }
    s["window_kills"] = sum(len(r["kills"]) for r in windows)
    s["windows_hit"] = sum(1 for r in windows if r.get("window_hit"))
    s["windows"] = len(windows)
    s["same_answer"] = sum(1 for r in every if r.get("same_answer"))
    s["runs"] = len(every)
    s["retrained"] = sum(len(r.get("retrained", [])) for r in every)
    s["orphans"] = sum(len(o) for r in every for o in r.get("orphans", []))
    s["errors"] = sum(1 for r in every if "error" in r)
    faults = results.get("faults", {})
    s["faults"] = len(faults)
    s["faults_classified"] = sum(1 for r in faults.values() if r["ok"])
    writers = results.get("writers", {})
    s["writer_checks"] = len(writers)
    s["writer_checks_ok"] = sum(1 for r in writers.values() if r["ok"])
    bad = results.get("bad-input")
    if bad:
        for key in BAD_INPUT_COUNTS:
            s[f"bad_input_{key}"] = bad[key]
    s["ok"] = (
        s["same_answer"] == s["runs"]
        and s["retrained"] == 0
        and s["orphans"] == 0
        and s["errors"] == 0
        and s["windows_hit"] == s["windows"]
        and s["faults_classified"] == s["faults"]
        and s["writer_checks_ok"] == s["writer_checks"]
        and (not bad or bad["refused"] == bad["cases"])
    )
    return s


def markdown(results: dict[str, Any]) -> str:
    s = results["summary"]
    m = results["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores; {results['date']}; parts: "
        f"{', '.join(results['parts'])}.",
        "",
    ]
    if "kills" in results:
        per_tool = ", ".join(f"{t} {n}" for t, n in s["random_kills_per_tool"].items())
        lines.append(
            f"- **Random kills**: {s['random_kills']} SIGKILLs of a controller at "
            f"random moments over {s['random_kill_runs']} runs ({per_tool})."
        )
    if "windows" in results:
        lines.append(
            f"- **Targeted windows**: {s['windows_hit']} of {s['windows']} hit "
            f"({', '.join(results['windows'])}; {s['window_kills']} kills and one "
            "freeze)."
        )
    if "kills" in results or "windows" in results:
        lines.append(
            f"- Of {s['runs']} interrupted runs, {s['same_answer']} ended with the "
            f"uninterrupted answer; {s['retrained']} trials trained twice; "
            f"{s['orphans']} orphan processes after a kill; {s['errors']} runs that "
            "did not finish."
        )
    if "faults" in results:
        lines.append(
            f"- **Trial faults**: {s['faults_classified']} of {s['faults']} named "
            f"with their cause ({', '.join(results['faults'])})."
        )
    if "writers" in results:
        lines.append(
            f"- **Two writers**: {s['writer_checks_ok']} of {s['writer_checks']} "
            f"checks held ({'; '.join(results['writers'])})."
        )
    if "bad-input" in results:
        disks = "" if results["bad-input"]["disk_cases"] else " (no disk cases: not root)"
        lines.append(
            f"- **Bad input**: {s['bad_input_cases']} cases{disks}, "
            f"{s['bad_input_refused']} refused cleanly; {s['bad_input_tracebacks']} "
            f"tracebacks, {s['bad_input_writes']} that wrote files, "
            f"{s['bad_input_accepted']} accepted, {s['bad_input_not_one_line']} not one "
            f"line, {s['bad_input_wrong_exit']} with another exit code."
        )
    lines.append("")
    lines.append("All checks held." if s["ok"] else "**Some checks failed**: see chaos.json.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="killed runs per tool")
    parser.add_argument("--kills-per-run", type=int, default=3)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--no-s3", action="store_true", help="writers: local disk only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(tools) - set(TOOLS)) + sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown tools or parts {unknown}: tools are {TOOLS}, parts {PARTS}")
    rng = random.Random(args.seed)
    env = python_env()
    work = Path(tempfile.mkdtemp(prefix="proxytask-chaos-"))
    results: dict[str, Any] = {"machine": machine_info(), "parts": parts}
    started = time.perf_counter()
    try:
        if "kills" in parts:
            results["kills"] = part_kills(
                work / "kills", tools, args.rounds, args.kills_per_run, rng, env
            )
        if "windows" in parts:
            results["windows"] = part_windows(work / "windows", env)
        if "faults" in parts:
            results["faults"] = part_faults(work, env)
        if "writers" in parts:
            expected = {t: v["expected"] for t, v in results.get("kills", {}).items()}
            for tool in ("select-models", "run"):
                if tool not in expected:
                    base = drive(_job(tool, work / "writers" / f"base-{tool}", env), None, 0)
                    expected[tool] = base["answer"]
            results["writers"] = part_writers(work, env, expected, s3=not args.no_s3)
        if "bad-input" in parts:
            results["bad-input"] = part_bad_input(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    results["wall_secs"] = round(time.perf_counter() - started, 1)
    results["summary"] = summarise(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "chaos.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "chaos.md").write_text(markdown(results))
    print(markdown(results))
    return 0 if results["summary"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
