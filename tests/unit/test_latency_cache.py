"""Latency measured once per model and robust to load (proxytask.trainer.latency)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from proxytask.core import layout
from proxytask.core.errors import UsageError
from proxytask.executors.command import build_trial_spec, parse_trainer_command
from proxytask.trainer.latency import (
    LATENCY_CACHE_DIR,
    cache_dir_from_env,
    cached_latency,
    cpu_name,
    latency_key,
    robust_latency,
)

KEY = {"trainer": "t", "arch": {"stem": 8, "stages": [1, 2]}, "width_multiplier": 0.5}


def test_robust_latency_ignores_the_slow_tail() -> None:
    # nine runs near 1 ms and a few disturbed by other work
    times = [1.0, 1.02, 1.01, 1.03, 1.0, 1.05, 1.02, 1.01, 1.04, 7.0, 9.0, 12.0]
    assert robust_latency(times) == pytest.approx(1.0, abs=0.011)
    assert robust_latency(times, quantile=0.0) == 1.0
    assert robust_latency(times, quantile=1.0) == 12.0
    assert robust_latency([2.0, 4.0], quantile=0.5) == 3.0
    assert robust_latency([5.0]) == 5.0


@pytest.mark.parametrize(
    ("times", "quantile", "message"),
    [
        ([], 0.1, "at least one timing"),
        ([1.0, float("nan")], 0.1, "finite numbers >= 0"),
        ([1.0, -1.0], 0.1, "finite numbers >= 0"),
        ([1.0], 1.5, r"quantile must be in \[0, 1\]"),
    ],
)
def test_robust_latency_refuses_bad_input(
    times: list[float], quantile: float, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        robust_latency(times, quantile)


def test_key_is_stable_and_order_free() -> None:
    same = {"width_multiplier": 0.5, "arch": {"stages": [1, 2], "stem": 8}, "trainer": "t"}
    assert latency_key(KEY) == latency_key(same)
    assert latency_key(KEY) != latency_key({**KEY, "width_multiplier": 1.0})
    with pytest.raises(UsageError, match="JSON-serialisable"):
        latency_key({"arch": object()})
    assert "(" in cpu_name()


def test_the_first_measurement_is_reused(tmp_path: Path) -> None:
    calls: list[float] = []

    def measure(value: float) -> float:
        calls.append(value)
        return value

    cache = str(tmp_path / "cache")
    assert cached_latency(KEY, lambda: measure(1.5), cache) == 1.5
    assert cached_latency(KEY, lambda: measure(9.0), cache) == 1.5  # not measured again
    assert cached_latency({**KEY, "width_multiplier": 1.0}, lambda: measure(3.0), cache) == 3.0
    assert calls == [1.5, 3.0]
    files = sorted((tmp_path / "cache" / LATENCY_CACHE_DIR).glob("*.json"))
    assert len(files) == 2
    entry = json.loads(
        (tmp_path / "cache" / LATENCY_CACHE_DIR / f"{latency_key(KEY)}.json").read_text()
    )
    assert entry["latency"] == 1.5 and entry["key"] == KEY and entry["format"] == 1


def test_without_a_cache_dir_every_call_measures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(layout.ENV_CACHE_DIR, raising=False)
    assert cache_dir_from_env() is None
    values = iter([1.0, 2.0])
    assert cached_latency(KEY, lambda: next(values)) == 1.0
    assert cached_latency(KEY, lambda: next(values)) == 2.0


def test_the_environment_names_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(layout.ENV_CACHE_DIR, str(tmp_path))
    assert cached_latency(KEY, lambda: 4.0) == 4.0
    assert cached_latency(KEY, lambda: 5.0) == 4.0


def test_a_damaged_or_foreign_entry_is_measured_over(tmp_path: Path) -> None:
    folder = tmp_path / LATENCY_CACHE_DIR
    folder.mkdir()
    path = folder / f"{latency_key(KEY)}.json"
    path.write_text("{not json")
    assert cached_latency(KEY, lambda: 2.0, str(tmp_path)) == 2.0  # not stored: the file exists
    path.write_text(json.dumps({"format": 1, "latency": 7.0, "key": {"other": 1}}))
    assert cached_latency(KEY, lambda: 3.0, str(tmp_path)) == 3.0
    path.unlink()
    assert cached_latency(KEY, lambda: 6.0, str(tmp_path)) == 6.0
    assert cached_latency(KEY, lambda: 8.0, str(tmp_path)) == 6.0


@pytest.mark.parametrize("bad", [float("nan"), -1.0, float("inf"), True])
def test_a_bad_measurement_is_refused(tmp_path: Path, bad: float) -> None:
    with pytest.raises(UsageError, match="finite number >= 0"):
        cached_latency(KEY, lambda: bad, str(tmp_path))
    assert not list(tmp_path.rglob("*.json"))  # nothing half-written


def _measure_in_process(args: tuple[str, float]) -> float:
    cache, value = args
    return cached_latency(KEY, lambda: value, cache)


def test_concurrent_trials_of_one_model_all_report_one_value(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn" if os.name != "posix" else "fork")
    with ctx.Pool(4) as pool:
        got = pool.map(_measure_in_process, [(str(tmp_path), float(v)) for v in range(1, 9)])
    assert len(set(got)) == 1 and got[0] in range(1, 9)


def test_trials_are_told_the_shared_cache_dir(tmp_path: Path) -> None:
    controller = str(tmp_path / "Workflow_x" / "Search_controller_x_20260101_000000")
    spec = build_trial_spec(
        trainer=parse_trainer_command("python train.py"),
        job_name="x",
        job_dir=layout.job_dir(controller, "x"),
        trial_number=1,
        controller_dir=controller,
        nas_params={"a": 1},
    )
    assert spec.env[layout.ENV_CACHE_DIR] == str(tmp_path / "Workflow_x" / "cache")
    assert layout.cache_dir("s3://bucket/runs/Search_a") == "s3://bucket/runs/cache"
    assert layout.cache_dir("memory://Search_a") == "memory://cache"


def _hold_cycle(cache: str, entered: Any, release: Any, log: Any) -> None:
    from proxytask.trainer.latency import training_cycle

    with training_cycle(cache):
        entered.set()
        release.wait(30)
        log.put(("cycle ends", time.monotonic()))


def test_a_measurement_waits_for_the_training_cycles_in_flight(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    entered, release, log = ctx.Event(), ctx.Event(), ctx.Queue()
    trainer = ctx.Process(target=_hold_cycle, args=(str(tmp_path), entered, release, log))
    trainer.start()
    assert entered.wait(30)
    started: list[float] = []

    def measure() -> float:
        started.append(time.monotonic())
        return 1.0

    threading.Timer(0.3, release.set).start()  # the cycle ends a little later
    assert cached_latency(KEY, measure, str(tmp_path)) == 1.0
    trainer.join(30)
    what, ended = log.get(timeout=5)
    assert what == "cycle ends" and started and started[0] >= ended


_CYCLE_SCRIPT = """
import sys, time
from proxytask.trainer.latency import training_cycle
print("asking", flush=True)
with training_cycle(sys.argv[1]):
    print(time.monotonic(), flush=True)
"""


def test_no_training_cycle_starts_while_a_measurement_runs(tmp_path: Path) -> None:
    trainer: subprocess.Popen[str] | None = None
    finished: list[float] = []

    def measure() -> float:
        nonlocal trainer
        trainer = subprocess.Popen(  # a separate trial process (no inherited locks)
            [sys.executable, "-c", _CYCLE_SCRIPT, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert trainer.stdout is not None
        assert trainer.stdout.readline().strip() == "asking"  # it asks during the measurement
        time.sleep(0.3)
        finished.append(time.monotonic())
        return 2.0

    assert cached_latency(KEY, measure, str(tmp_path)) == 2.0
    assert trainer is not None
    out, _ = trainer.communicate(timeout=60)
    assert trainer.returncode == 0 and float(out.strip()) >= finished[0]


def test_cycles_of_parallel_trials_overlap(tmp_path: Path) -> None:
    from proxytask.trainer.latency import training_cycle

    ctx = multiprocessing.get_context("fork")
    entered, release, log = ctx.Event(), ctx.Event(), ctx.Queue()
    other = ctx.Process(target=_hold_cycle, args=(str(tmp_path), entered, release, log))
    other.start()
    assert entered.wait(30)
    with training_cycle(str(tmp_path)):  # shared: entered while the other cycle runs
        release.set()
    other.join(30)
    assert other.exitcode == 0
    with training_cycle(None):  # no cache dir (and none in the environment): a no-op
        pass


def test_an_unusable_cache_still_measures(tmp_path: Path) -> None:
    from proxytask.trainer.latency import training_cycle

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    with training_cycle(str(blocked)):  # no lock to take: the cycle runs
        pass
    assert cached_latency(KEY, lambda: 3.5, str(blocked)) == 3.5
    assert cached_latency(KEY, lambda: 4.5, str(blocked)) == 4.5  # nothing could be kept


def test_measuring_inside_ones_own_cycle_is_refused(tmp_path: Path) -> None:
    from proxytask.trainer.latency import training_cycle

    with training_cycle(str(tmp_path)), pytest.raises(UsageError, match="inside a training_cycle"):
        cached_latency(KEY, lambda: 1.0, str(tmp_path))
    assert cached_latency(KEY, lambda: 1.0, str(tmp_path)) == 1.0  # after the block: fine
