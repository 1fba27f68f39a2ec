"""The replay executor beyond the contract: tables, lookup, timing, stop signals,
continuations, faults and determinism."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from proxytask.core import layout, storage
from proxytask.core.clock import SimulatedClock
from proxytask.core.errors import ExecutorError, UsageError
from proxytask.executors.base import FailureCause, TrainerSpec, TrialSpec, TrialState
from proxytask.executors.command import Continuation, build_trial_spec
from proxytask.executors.replay import (
    Curve,
    CurvePoint,
    Fault,
    FaultKind,
    ReplayExecutor,
    ReplayTable,
)
from proxytask.trainer import contract as trainer

T0 = 1_700_000_000.0
ARCH_A = {"width": 8, "depth": 2}
ARCH_B = {"width": 16, "depth": 3}


def curve(
    curve_id: str,
    nas: Mapping[str, Any] | None,
    accs: Sequence[float],
    secs: float = 10.0,
    args: Mapping[str, Any] | None = None,
    latency: float | None = 2.0,
) -> Curve:
    n = len(accs)
    total = 100 * n
    return Curve(
        curve_id=curve_id,
        total_steps=total,
        points=tuple(CurvePoint((i + 1) * 100 - 1, a, secs) for i, a in enumerate(accs)),
        nas_params=nas,
        trainer_args=args or {},
        latency=latency,
    )


TABLE = ReplayTable(
    [
        curve("a", ARCH_A, [0.1, 0.2, 0.3, 0.4, 0.5]),
        curve(
            "a-data50", ARCH_A, [0.05, 0.1, 0.15, 0.2, 0.25], secs=5.0, args={"train_data_pct": 50}
        ),
        curve("b", ARCH_B, [0.2, 0.4, 0.6, 0.7, 0.8], latency=None),
    ]
)


def spec_for(
    root: pathlib.Path | str,
    job: str,
    n: int,
    nas: Mapping[str, Any] | None,
    args: Mapping[str, Any] | None = None,
    continuation: Continuation | None = None,
    timeout_secs: float | None = None,
) -> TrialSpec:
    return build_trial_spec(
        trainer=TrainerSpec(("replay",)),
        job_name=job,
        job_dir=storage.join(str(root), job),
        trial_number=n,
        controller_dir=str(root),
        nas_params=nas,
        trainer_args=args,
        continuation=continuation,
        timeout_secs=timeout_secs,
    )


def run_all(executor: ReplayExecutor, clock: SimulatedClock, limit: float = 1e6) -> None:
    """Jump from event to event until nothing is scheduled."""
    end = clock.now() + limit
    while (when := executor.next_event_at()) is not None and when <= end:
        clock.advance_to(when)
        executor.statuses()


def points(trial_dir: str) -> list[tuple[int, float]]:
    metrics = trainer.read_trial_training_metrics(trial_dir)
    assert metrics is not None
    return [(p.training_step, p.accuracy) for p in metrics.training_accuracy_over_steps]


# ---- tables ---------------------------------------------------------------------------------


def test_json_tables_round_trip(tmp_path: pathlib.Path) -> None:
    path = str(tmp_path / "table.json")
    TABLE.save(path)
    loaded = ReplayTable.load(path)
    assert loaded.to_dict() == TABLE.to_dict()
    data = json.loads(pathlib.Path(path).read_text())
    assert data["format"] == "proxytask-replay-table"
    assert data["curves"][1]["match"] == {
        "nas_params": ARCH_A,
        "trainer_args": {"train_data_pct": 50},
    }


def test_csv_tables_load_with_match_columns(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text(
        "curve_id,step,accuracy,cycle_secs,total_steps,latency,nas.width,nas.depth,"
        "arg.train_data_pct\n"
        "c1,199,0.5,20,200,3.5,8,2,\n"
        "c1,99,0.3,10,200,3.5,8,2,\n"
        "c2,99,0.2,5,100,,8,2,50\n"
    )
    table = ReplayTable.load(str(path))
    c1, c2 = table.get("c1"), table.get("c2")
    assert c1 is not None and c2 is not None
    assert c1.points == (CurvePoint(99, 0.3, 10.0), CurvePoint(199, 0.5, 20.0))
    assert (c1.total_steps, c1.latency, c1.nas_params) == (200, 3.5, ARCH_A)
    assert c2.latency is None and c2.trainer_args == {"train_data_pct": "50"}
    assert [c.curve_id for c in table.candidates(ARCH_A, {"train_data_pct": "50"})] == ["c2"]
    assert [c.curve_id for c in table.candidates(ARCH_A, {"train_data_pct": "25"})] == ["c1"]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (
            {
                "curves": [
                    {"curve_id": "x", "total_steps": 10, "points": [[5, 0.1, 1], [3, 0.2, 1]]}
                ]
            },
            "must increase",
        ),
        (
            {"curves": [{"curve_id": "x", "total_steps": 10, "points": [[10, 0.1, 1]]}]},
            "below total_steps",
        ),
        (
            {
                "curves": [
                    {"curve_id": "x", "total_steps": 10, "points": [[1, 0.1, 1]]},
                    {"curve_id": "x", "total_steps": 10, "points": [[1, 0.1, 1]]},
                ]
            },
            "unique",
        ),
        ({"curves": [{"curve_id": "x", "total_steps": 10, "points": [[1, "NaN", 1]]}]}, "finite"),
        (
            {"curves": [{"curve_id": "x", "total_steps": 10, "points": [[1, 0.5]]}]},
            "step, accuracy, cycle_secs",
        ),
        ({"rows": []}, "'curves' list"),
    ],
)
def test_bad_tables_are_refused_with_the_rule(data: Any, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        ReplayTable.from_dict(data)


def test_missing_csv_columns_are_named(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("curve_id,step,accuracy\nx,1,0.5\n")
    with pytest.raises(UsageError, match="missing cycle_secs, total_steps"):
        ReplayTable.load(str(path))


# ---- lookup -----------------------------------------------------------------------------------


def test_trainer_args_select_a_different_curve_for_the_same_architecture(
    tmp_path: pathlib.Path,
) -> None:
    clock = SimulatedClock(T0)
    executor = ReplayExecutor(TABLE, clock)
    base = spec_for(tmp_path, "base", 1, ARCH_A)
    proxy = spec_for(tmp_path, "proxy", 1, ARCH_A, {"train_data_pct": 50})
    other = spec_for(tmp_path, "proxy", 2, ARCH_A, {"train_data_pct": 25})
    for spec in (base, proxy, other):
        executor.launch(spec)
    run_all(executor, clock)
    assert points(base.trial_dir)[-1] == (499, 0.5)
    assert points(proxy.trial_dir)[-1] == (499, 0.25)
    assert points(other.trial_dir)[-1] == (499, 0.5)  # no curve for 25 %: the plain one


def test_no_matching_curve_raises_naming_the_architecture(tmp_path: pathlib.Path) -> None:
    executor = ReplayExecutor(TABLE, SimulatedClock(T0))
    with pytest.raises(UsageError, match=r'architecture \{"depth": 9, "width": 1\}'):
        executor.launch(spec_for(tmp_path, "j", 1, {"width": 1, "depth": 9}))
    assert executor.known_trials() == []


def test_copies_of_one_architecture_are_dealt_different_recorded_curves(
    tmp_path: pathlib.Path,
) -> None:
    table = ReplayTable([curve(f"copy{i}", ARCH_A, [0.1 * (i + 1)]) for i in range(3)])
    clock = SimulatedClock(T0)
    executor = ReplayExecutor(table, clock, max_parallel_trials=5)
    specs = [spec_for(tmp_path, "var", n, ARCH_A) for n in range(1, 5)]
    for spec in specs:
        executor.launch(spec)
    run_all(executor, clock)
    finals = [points(s.trial_dir)[-1][1] for s in specs]
    assert finals == pytest.approx([0.1, 0.2, 0.3, 0.1])


def test_from_trial_dirs_rebuilds_the_curves(tmp_path: pathlib.Path) -> None:
    uneven = Curve(
        "u",
        1000,
        (CurvePoint(99, 0.3, 10.0), CurvePoint(399, 0.5, 30.0), CurvePoint(999, 0.7, 60.0)),
        ARCH_B,
        latency=4.0,
    )
    clock = SimulatedClock(T0)
    executor = ReplayExecutor(ReplayTable([uneven]), clock)
    spec = spec_for(tmp_path, "rec", 1, ARCH_B)
    executor.launch(spec)
    run_all(executor, clock)
    rebuilt = ReplayTable.from_trial_dirs([spec.trial_dir], trainer_args={"data": 50})
    (only,) = list(rebuilt)
    assert only.curve_id == spec.trial_dir
    assert only.total_steps == 1000 and only.latency == 4.0
    assert only.nas_params == ARCH_B and only.trainer_args == {"data": 50}
    assert [(p.step, p.accuracy) for p in only.points] == [(99, 0.3), (399, 0.5), (999, 0.7)]
    assert [p.cycle_secs for p in only.points] == pytest.approx([10.0, 30.0, 60.0])
    with pytest.raises(UsageError, match="TRIAL_TRAINING_METRICS"):
        ReplayTable.from_trial_dirs([str(tmp_path / "nothing")])


# ---- simulated time -----------------------------------------------------------------------------


def test_cycles_take_their_recorded_seconds_and_queued_trials_start_when_a_slot_frees(
    tmp_path: pathlib.Path,
) -> None:
    clock = SimulatedClock(T0)
    executor = ReplayExecutor(
        TABLE, clock, max_parallel_trials=1, start_delay_secs=2.0, eval_secs=1.0
    )
    first = spec_for(tmp_path, "j", 1, ARCH_A)
    second = spec_for(tmp_path, "j", 2, ARCH_B)
    executor.launch(first)
    executor.launch(second)
    assert executor.free_slots() == 0
    clock.sleep(2 + 11 + 1)  # start-up, one cycle plus evaluation, and a bit
    executor.statuses()  # events play lazily, at the next call
    assert points(first.trial_dir) == [(99, 0.1)]
    clock.sleep(10_000)  # a single big jump still plays every event at its own time
    s1, s2 = executor.status(first.trial_id), executor.status(second.trial_id)
    assert s1.state is TrialState.SUCCEEDED and s2.state is TrialState.SUCCEEDED
    assert s1.ended_at == T0 + 2 + 5 * 11
    assert s2.started_at == s1.ended_at
    assert s2.ended_at == s1.ended_at + 2 + 5 * 11
    metrics = trainer.read_trial_training_metrics(first.trial_dir)
    assert metrics is not None
    assert metrics.training_time.total_training_time_in_secs == 50.0  # training only
    assert metrics.latency == 2.0
    second_metrics = trainer.read_trial_training_metrics(second.trial_dir)
    assert second_metrics is not None and not second_metrics.has_latency
    assert executor.next_event_at() is None


def test_memory_trial_dirs_work() -> None:
    clock = SimulatedClock(T0)
    executor = ReplayExecutor(TABLE, clock)
    spec = spec_for("memory://replay-test", "j", 1, ARCH_A)
    executor.launch(spec)
    run_all(executor, clock)
    assert executor.status(spec.trial_id).state is TrialState.SUCCEEDED
    assert points(spec.trial_dir)[-1] == (499, 0.5)
    assert storage.read_text(layout.trial_file(spec.trial_dir, layout.STDOUT_LOG))


# ---- stop signals -------------------------------------------------------------------------------


def test_desired_pct_set_mid_run_stops_at_the_next_check(tmp_path: pathlib.Path) -> None:
    clock = SimulatedClock(T0)
    executor = ReplayExecutor(TABLE, clock)
    spec = spec_for(tmp_path, "j", 1, ARCH_A)
    executor.launch(spec)
    clock.sleep(15)
    assert executor.status(spec.trial_id).state is TrialState.RUNNING
    trainer.set_stop_training(spec.trial_dir, desired_training_pct=40.0)
    run_all(executor, clock)
    status = executor.status(spec.trial_id)
    assert (status.state, status.exit_code) == (TrialState.SUCCEEDED, 0)
    assert [s for s, _ in points(spec.trial_dir)] == [99, 199]  # 40 % of 500 steps
    assert status.ended_at == T0 + 20


def test_max_training_time_stops_the_trial(tmp_path: pathlib.Path) -> None:
    clock = SimulatedClock(T0)
    executor = ReplayExecutor(TABLE, clock)
    spec = spec_for(tmp_path, "j", 1, ARCH_A)
    trainer.set_stop_training(spec.trial_dir, max_training_time_in_hrs=25 / 3600)
    executor.launch(spec)
    run_all(executor, clock)
    assert executor.status(spec.trial_id).state is TrialState.SUCCEEDED
    assert len(points(spec.trial_dir)) == 3  # 30 s > 25 s after the third cycle


def test_a_stale_controller_heartbeat_stops_the_trial(tmp_path: pathlib.Path) -> None:
    clock = SimulatedClock(T0)
    executor = ReplayExecutor(TABLE, clock)
    spec = spec_for(tmp_path, "j", 1, ARCH_A)
    trainer.write_controller_heartbeat(spec.trial_dir, T0, threshold_secs=15)
    executor.launch(spec)
    run_all(executor, clock)
    assert executor.status(spec.trial_id).state is TrialState.SUCCEEDED
    assert len(points(spec.trial_dir)) == 2  # checked at +10 s (fresh) and +20 s (stale)


# ---- continuations ------------------------------------------------------------------------------


def _copy_metrics(src: str, dst: str) -> None:
    storage.copy_file(
        layout.trial_file(src, layout.TRIAL_TRAINING_METRICS),
        layout.trial_file(dst, layout.TRIAL_TRAINING_METRICS),
    )


def test_a_continuation_resumes_the_earlier_curve(tmp_path: pathlib.Path) -> None:
    clock = SimulatedClock(T0)
    executor = ReplayExecutor(TABLE, clock, max_parallel_trials=2)
    r1 = [spec_for(tmp_path, "round1", n, arch) for n, arch in ((1, ARCH_A), (2, ARCH_B))]
    for spec in r1:
        trainer.set_stop_training(spec.trial_dir, desired_training_pct=40.0)
        executor.launch(spec)
    run_all(executor, clock)
    assert [len(points(s.trial_dir)) for s in r1] == [2, 2]

    # round 2 keeps only the second model: trial 1 of round2 continues trial 2 of round1
    cont = Continuation(job_dir=str(tmp_path / "round1"), trial_ids=("2",))
    r2 = spec_for(tmp_path, "round2", 1, None, continuation=cont)
    _copy_metrics(r1[1].trial_dir, r2.trial_dir)
    executor.launch(r2)
    run_all(executor, clock)
    assert executor.status(r2.trial_id).state is TrialState.SUCCEEDED
    assert points(r2.trial_dir) == [(99, 0.2), (199, 0.4), (299, 0.6), (399, 0.7), (499, 0.8)]
    metrics = trainer.read_trial_training_metrics(r2.trial_dir)
    assert metrics is not None
    assert metrics.training_time.total_training_time_in_secs == 50.0
    assert metrics.training_time.total_training_steps == 500
    assert trainer.load_nas_params(r2.trial_dir) == ARCH_B

    # without the checkpoint the same architecture trains again from scratch
    fresh = spec_for(
        tmp_path,
        "again",
        1,
        None,
        continuation=Continuation(str(tmp_path / "round1"), ("1",), False),
    )
    executor.launch(fresh)
    run_all(executor, clock)
    assert [s for s, _ in points(fresh.trial_dir)] == [99, 199, 299, 399, 499]
    assert trainer.load_nas_params(fresh.trial_dir) == ARCH_A


def test_final_metrics_are_saved_by_fresh_trials_and_metadata_is_kept(
    tmp_path: pathlib.Path,
) -> None:
    scored = Curve(
        curve_id="scored",
        total_steps=200,
        points=(CurvePoint(99, 0.3, 1.0), CurvePoint(199, 0.6, 1.0)),
        nas_params=ARCH_A,
        final_metrics={"zero_cost.synflow": 12.5, "zero_cost.snip": -1.0},
    )
    table = ReplayTable([scored], metadata={"sources": ["a paper"], "licence": "MIT"})
    path = str(tmp_path / "table.json")
    table.save(path)
    loaded = ReplayTable.load(path)
    assert loaded.metadata == {"sources": ["a paper"], "licence": "MIT"}
    assert loaded.to_dict() == table.to_dict()
    clock = SimulatedClock(T0)
    executor = ReplayExecutor(loaded, clock)
    first = spec_for(tmp_path, "round1", 1, ARCH_A)
    trainer.set_stop_training(first.trial_dir, desired_training_pct=50.0)
    executor.launch(first)
    run_all(executor, clock)
    assert trainer.read_final_metrics(first.trial_dir) == scored.final_metrics
    # a continuation from the checkpoint is not a fresh model: it saves nothing again
    cont = spec_for(
        tmp_path, "round2", 1, None, continuation=Continuation(str(tmp_path / "round1"), ("1",))
    )
    executor.launch(cont)
    run_all(executor, clock)
    assert points(cont.trial_dir)[-1] == (199, 0.6)
    assert trainer.read_final_metrics(cont.trial_dir) == {}
    csv_path = tmp_path / "table.csv"
    csv_path.write_text(
        "curve_id,step,accuracy,cycle_secs,total_steps,final.zero_cost.plain\n"
        "c,0,0.5,1.0,2,3.5\nc,1,0.6,1.0,2,3.5\n"
    )
    only = ReplayTable.load(str(csv_path)).get("c")
    assert only is not None and only.final_metrics == {"zero_cost.plain": 3.5}
    with pytest.raises(UsageError, match="final_metrics must map"):
        Curve("bad", 2, (CurvePoint(0, 0.1, 1.0),), final_metrics={"x": float("nan")})


# ---- faults -------------------------------------------------------------------------------------


def test_faults_by_trial_id_pattern(tmp_path: pathlib.Path) -> None:
    clock = SimulatedClock(T0)
    faults: dict[str, Fault | Sequence[Fault]] = {
        "j/1": Fault(FaultKind.OOM, at_pct=50),
        "j/2": [Fault(FaultKind.SLOW_START, delay_secs=100), Fault(FaultKind.CRASH, 30)],
        "j/3": Fault.parse("nan@20"),
        "hang/*": Fault(FaultKind.HANG, at_pct=40),
    }
    executor = ReplayExecutor(TABLE, clock, max_parallel_trials=5, faults=faults)
    specs = [spec_for(tmp_path, "j", n, ARCH_A) for n in (1, 2, 3)]
    specs.append(spec_for(tmp_path, "hang", 1, ARCH_A, timeout_secs=500))
    for spec in specs:
        executor.launch(spec)
    clock.sleep(400)
    oom, crash, nan, hang = (executor.status(s.trial_id) for s in specs)
    assert (oom.state, oom.cause, oom.exit_code) == (TrialState.FAILED, FailureCause.OOM, 1)
    assert len(points(specs[0].trial_dir)) == 2
    assert "CUDA out of memory" in pathlib.Path(specs[0].trial_dir, "stderr.log").read_text()
    assert (crash.state, crash.cause, crash.exit_code) == (TrialState.FAILED, FailureCause.CRASH, 1)
    assert crash.ended_at == T0 + 100 + 20  # slow start, then crashes in the 2nd cycle (40 %)
    assert (nan.state, nan.cause) == (TrialState.FAILED, FailureCause.NAN)
    failure = storage.read_json(layout.trial_file(specs[2].trial_dir, layout.TRIAL_FAILURE))
    assert failure is not None
    assert failure["cause"] == "nan" and failure["timestamp"] == T0 + 10
    assert hang.state is TrialState.RUNNING and len(points(specs[3].trial_dir)) == 1
    assert executor.next_event_at() == T0 + 500  # only the hang's timeout is left
    clock.sleep(100)
    timed_out = executor.status(specs[3].trial_id)
    assert (timed_out.state, timed_out.cause, timed_out.exit_code) == (
        TrialState.FAILED,
        FailureCause.TIMEOUT,
        -15,
    )


def test_faults_from_a_trainer_flag_and_bad_fault_specs(tmp_path: pathlib.Path) -> None:
    clock = SimulatedClock(T0)
    executor = ReplayExecutor(TABLE, clock)
    spec = spec_for(tmp_path, "j", 1, ARCH_A, {"replay_fault": "crash@50"})
    executor.launch(spec)
    run_all(executor, clock)
    assert executor.status(spec.trial_id).cause is FailureCause.CRASH
    assert Fault.parse("oom, slow_start+5") == (
        Fault(FaultKind.OOM, 0.0),
        Fault(FaultKind.SLOW_START, delay_secs=5.0),
    )
    with pytest.raises(UsageError, match="KIND@PCT"):
        Fault.parse("explode@5")


def test_stop_and_close_end_trials_like_sigterm(tmp_path: pathlib.Path) -> None:
    clock = SimulatedClock(T0)
    executor = ReplayExecutor(TABLE, clock, max_parallel_trials=1)
    a, b = spec_for(tmp_path, "j", 1, ARCH_A), spec_for(tmp_path, "j", 2, ARCH_B)
    executor.launch(a)
    executor.launch(b)
    clock.sleep(25)
    executor.stop(a.trial_id)
    stopped = executor.status(a.trial_id)
    assert (stopped.state, stopped.exit_code, stopped.ended_at) == (
        TrialState.STOPPED,
        -15,
        T0 + 25,
    )
    assert executor.status(b.trial_id).started_at == T0 + 25
    state = storage.read_json(
        layout.trial_file(
            layout.trial_file(a.trial_dir, layout.CHECKPOINT_DIR), "replay_state.json"
        )
    )
    assert state == {"curve_id": "a", "step": 199}
    executor.close()
    assert executor.status(b.trial_id).state is TrialState.STOPPED
    with pytest.raises(ExecutorError):
        executor.launch(spec_for(tmp_path, "j", 3, ARCH_A))


# ---- determinism --------------------------------------------------------------------------------


def _scenario(root: pathlib.Path) -> dict[str, bytes]:
    clock = SimulatedClock(T0)
    executor = ReplayExecutor(
        TABLE,
        clock,
        max_parallel_trials=2,
        faults={"j/3": Fault(FaultKind.NAN, 50)},
        start_delay_secs=3,
    )
    specs = [
        spec_for(root, "j", n, arch)
        for n, arch in enumerate([ARCH_A, ARCH_B, ARCH_A, ARCH_B, ARCH_A], start=1)
    ]
    trainer.set_stop_training(specs[1].trial_dir, desired_training_pct=60)
    for spec in specs:
        executor.launch(spec)
    for _ in range(12):
        clock.sleep(7)
        executor.statuses()
    executor.stop(specs[3].trial_id)
    run_all(executor, clock)
    cont = spec_for(
        root, "k", 1, None, continuation=Continuation(job_dir=str(root / "j"), trial_ids=("2",))
    )
    _copy_metrics(specs[1].trial_dir, cont.trial_dir)
    executor.launch(cont)
    run_all(executor, clock)
    statuses = {k: repr(v) for k, v in executor.statuses().items()}
    files = {"statuses": json.dumps(statuses).encode()}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            files[str(path.relative_to(root))] = path.read_bytes()
    return files


def test_replays_are_deterministic(tmp_path: pathlib.Path) -> None:
    first = _scenario(tmp_path / "one")
    second = _scenario(tmp_path / "two")
    assert first.keys() == second.keys()
    assert len(first) > 20
    for name in first:
        assert first[name] == second[name], name
