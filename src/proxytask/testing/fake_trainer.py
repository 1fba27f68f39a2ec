"""A real, runnable fake trainer for tests: the trainer contract without any training.

Run it as ``python -m proxytask.testing.fake_trainer --job-dir=DIR --nas_params_str=JSON
[--behaviour=ok|crash|nan|hang|oom|slow|selfkill|torn|silent] [--cycles=N]
[--cycle_secs=S] [--total_steps=T]``.
It saves the architecture, checks the stop signals before each cycle, sleeps ``cycle_secs``
per cycle, reports an accuracy that depends only on the architecture and the progress
(:func:`accuracy_at`), saves a tiny checkpoint, and reports a latency at the end. Unknown
``--k=v`` flags are ignored, as a real trainer's proxy-task flags would be.

Behaviours (a fault fires in cycle ``--fail_cycle``, 0-based, default 1):

- ``ok``: runs to the end (or until told to stop) and exits 0.
- ``crash``: raises RuntimeError (exit 1).
- ``nan``: reports a NaN accuracy through the trainer API (``TRIAL_FAILURE.json``, exit 1).
- ``oom``: raises MemoryError("CUDA out of memory", exit 1).
- ``hang``: stops reporting and sleeps (ignoring stop signals) until killed.
- ``slow``: waits ``--start_delay_secs`` (default 1) before starting, then as ``ok``.
- ``selfkill``: kills itself with SIGKILL (as the kernel's OOM killer or an operator would).
- ``torn``: dies (SIGKILL) halfway through writing its metrics file in place, as a trainer
  that does not write through proxytask's atomic writes would: the file is left torn.
- ``silent``: exits 0 in that cycle without reporting anything more (and no latency).

Test hooks: ``--pid_file=PATH`` writes ``{"pid", "grandchild"}``; ``--spawn_grandchild=True``
starts a sleeping grandchild process; ``--env_file=PATH`` writes the argv and environment it
saw; ``--ignore_sigterm=True`` ignores SIGTERM (to test SIGKILL escalation);
``--ignore_stop=True`` never reads its stop files (a trainer that must be stopped by force);
``--latency_delay_secs=S`` waits S seconds after training before reporting the latency (as a
real trainer measuring it would: the window in which a controller may die).
Continuations (``--retrain_search_job_dir``/``--retrain_search_job_trials``) take the
architecture from the earlier trial and, with ``--retrain_use_search_job_checkpoint=True``,
resume after its last checkpointed step.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from proxytask.core import layout, storage
from proxytask.trainer import contract as pt

__all__ = ["BEHAVIOURS", "accuracy_at", "final_accuracy", "latency_of", "main"]

BEHAVIOURS = ("ok", "crash", "nan", "hang", "oom", "slow", "selfkill", "torn", "silent")
_FAULTS = ("crash", "nan", "oom", "hang", "selfkill", "torn", "silent")
_CHECKPOINT = layout.FAKE_TRAINER_STATE
_CURVE_RATE = 3.0


def _unit(nas_params: Mapping[str, Any], salt: str) -> float:
    text = json.dumps(dict(nas_params), sort_keys=True, separators=(",", ":")) + salt
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / float(1 << 64)


def final_accuracy(nas_params: Mapping[str, Any]) -> float:
    """The accuracy this fake trainer reaches at 100 % for an architecture, in [0.5, 0.95)."""
    return 0.5 + 0.45 * _unit(nas_params, "accuracy")


def accuracy_at(nas_params: Mapping[str, Any], pct: float) -> float:
    """The accuracy reported at ``pct`` percent: a saturating curve ending at
    :func:`final_accuracy`, so architectures rank the same at every pct."""
    frac = min(max(pct / 100.0, 0.0), 1.0)
    shape = (1.0 - math.exp(-_CURVE_RATE * frac)) / (1.0 - math.exp(-_CURVE_RATE))
    return final_accuracy(nas_params) * shape


def latency_of(nas_params: Mapping[str, Any]) -> float:
    """The latency (ms) reported for an architecture, in [1, 10)."""
    return 1.0 + 9.0 * _unit(nas_params, "latency")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="proxytask.testing.fake_trainer", allow_abbrev=False)
    p.add_argument("--job-dir", "--job_dir", dest="job_dir", required=True)
    p.add_argument("--nas_params_str", default=None)
    p.add_argument("--behaviour", choices=BEHAVIOURS, default="ok")
    p.add_argument("--cycles", type=int, default=3)
    p.add_argument("--cycle_secs", type=float, default=0.05)
    p.add_argument("--total_steps", type=int, default=300)
    p.add_argument("--fail_cycle", type=int, default=1)
    p.add_argument("--start_delay_secs", type=float, default=1.0)
    p.add_argument("--pid_file", default=None)
    p.add_argument("--spawn_grandchild", default="False")
    p.add_argument("--env_file", default=None)
    p.add_argument("--ignore_sigterm", default="False")
    p.add_argument("--report_latency", default="True")
    p.add_argument("--ignore_stop", default="False")  # never reads its stop files
    p.add_argument("--latency_delay_secs", type=float, default=0.0)
    p.add_argument("--retrain_search_job_dir", default=None)
    p.add_argument("--retrain_search_job_trials", default=None)
    p.add_argument("--retrain_use_search_job_checkpoint", default="False")
    return p


def _spawn_grandchild() -> int:
    # bounded, in case a test leaks it: it exits on its own after two minutes
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    return child.pid


def _sleep_forever() -> None:
    deadline = time.monotonic() + 3600.0  # bounded: a leaked hang ends within the hour
    while time.monotonic() < deadline:
        time.sleep(1.0)


def _die_mid_write(job_dir: str) -> None:
    """Rewrite the metrics file in place, stop halfway and die (SIGKILL): a torn file."""
    path = layout.trial_file(job_dir, layout.TRIAL_TRAINING_METRICS)
    text = (storage.read_bytes(path) or b'{"training_accuracy_over_steps": []}').decode()
    half = text[: max(1, len(text) // 2)]
    if not storage.is_local(path):  # one PUT cannot tear: store the half as the whole object
        storage.write_text_atomic(path, half)
        os.kill(os.getpid(), signal.SIGKILL)
    with open(storage.to_local_path(path), "w", encoding="utf-8") as handle:
        handle.write(half)
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def run(argv: Sequence[str]) -> int:
    """Run the fake trainer on ``argv`` (without the program name); return the exit code."""
    args, _unknown = _parser().parse_known_args(list(argv))
    job_dir: str = args.job_dir
    if pt.str_2_bool(args.ignore_sigterm):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = _spawn_grandchild() if pt.str_2_bool(args.spawn_grandchild) else None
    if args.pid_file:
        storage.write_json_atomic(args.pid_file, {"pid": os.getpid(), "grandchild": grandchild})
    if args.env_file:
        storage.write_json_atomic(
            args.env_file, {"argv": list(argv), "env": dict(os.environ), "cwd": os.getcwd()}
        )

    start_step = -1
    if args.retrain_search_job_dir and args.retrain_search_job_trials:
        earlier = pt.get_retrain_search_job_model_dir(
            args.retrain_search_job_trials, args.retrain_search_job_dir
        )
        nas_params = pt.load_nas_params(earlier)
        if pt.str_2_bool(args.retrain_use_search_job_checkpoint):
            state = storage.read_json(layout.trial_file(earlier, _CHECKPOINT)) or {}
            start_step = int(state.get("step", -1))
    elif args.nas_params_str is not None:
        nas_params = pt.load_nas_params(args.nas_params_str)
    else:
        print("fake_trainer: --nas_params_str is required", file=sys.stderr)
        return 2
    pt.save_nas_params(job_dir, nas_params)
    if args.behaviour == "slow":
        time.sleep(max(0.0, args.start_delay_secs))

    total = max(1, args.total_steps)
    cycles = max(1, min(args.cycles, total))
    ends = [(i + 1) * total // cycles - 1 for i in range(cycles)]
    step = start_step
    for index, end in enumerate(ends):
        if end <= step:
            continue
        if not pt.str_2_bool(args.ignore_stop) and pt.get_stop_training(job_dir, step, total):
            break
        if index == args.fail_cycle and args.behaviour in _FAULTS:
            if args.behaviour == "silent":
                return 0
            if args.behaviour == "selfkill":
                os.kill(os.getpid(), signal.SIGKILL)
            if args.behaviour == "torn":
                _die_mid_write(job_dir)
            if args.behaviour == "crash":
                raise RuntimeError(f"fake_trainer: injected crash in cycle {index}")
            if args.behaviour == "oom":
                raise MemoryError(f"CUDA out of memory (fake_trainer, cycle {index})")
            if args.behaviour == "nan":
                pt.update_trial_training_accuracy_metric(
                    job_dir, float("nan"), step + 1, end, args.cycle_secs, total
                )
            _sleep_forever()
        began = time.monotonic()
        time.sleep(max(0.0, args.cycle_secs))
        seconds = time.monotonic() - began
        pct = pt.compute_training_step_pct(end, total)
        pt.update_trial_training_accuracy_metric(
            job_dir, accuracy_at(nas_params, pct), step + 1, end, seconds, total
        )
        step = end
        storage.write_json_atomic(layout.trial_file(job_dir, _CHECKPOINT), {"step": step})
        print(f"fake_trainer: step {end} of {total} ({pct:.1f} %)", flush=True)
    if pt.str_2_bool(args.report_latency):
        time.sleep(max(0.0, args.latency_delay_secs))
        pt.update_trial_training_latency_metric(job_dir, latency_of(nas_params))
    return 0


def main() -> None:
    """Entry point of ``python -m proxytask.testing.fake_trainer``."""
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
