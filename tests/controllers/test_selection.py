"""The model-selection controller on the replay executor and through the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from proxytask import cli
from proxytask.controllers.base import ControllerContext
from proxytask.controllers.selection import (
    MODEL_SELECTION_STATE,
    REFERENCE_MODELS,
    ModelSelectionController,
    SelectionSettings,
)
from proxytask.controllers.tracker import TrialSettings
from proxytask.core.clock import SimulatedClock
from proxytask.core.errors import UsageError
from proxytask.core.space import load_search_space
from proxytask.executors.command import parse_trainer_command
from proxytask.executors.replay import Fault, ReplayExecutor, ReplayTable

SPACE = load_search_space("tests.fixtures.spaces:tiny")
TOTAL = 600  # steps; one evaluation every 6 steps (1 %)


def _final(width: int, depth: int) -> float:
    return 0.5 + 0.1 * depth + width / 200


def _table(evaluations: int = 100, latency: bool = True) -> ReplayTable:
    """One curve per architecture of the tiny space; ``evaluations`` evenly spaced points;
    without ``latency`` the trials report none."""
    every = TOTAL // evaluations
    curves = []
    for width in (8, 16, 32, 64):
        for depth in (1, 2, 3):
            final = _final(width, depth)
            points = [
                [every * i - 1, final * (1 - 0.9 * (1 - i / evaluations) ** 3), 3.0 + width / 16]
                for i in range(1, evaluations + 1)
            ]
            curves.append(
                {
                    "curve_id": f"w{width}d{depth}",
                    "match": {"nas_params": {"width": width, "depth": depth}},
                    "total_steps": TOTAL,
                    "latency": width * depth / 10 if latency else None,
                    "points": points,
                }
            )
    return ReplayTable.from_dict(
        {"format": "proxytask-replay-table", "version": 1, "curves": curves}
    )


TABLE = _table()
COARSE_TABLE = _table(evaluations=20)


def _ctx(
    cdir: Path,
    clock: SimulatedClock,
    faults: dict[str, Any] | None = None,
    table: ReplayTable = TABLE,
) -> ControllerContext:
    return ControllerContext(
        controller_dir=str(cdir),
        executor=ReplayExecutor(table, clock, max_parallel_trials=8, faults=faults or {}),
        clock=clock,
        trial_settings=TrialSettings(trainer=parse_trainer_command("replay")),
        baseline_args={},
        options={},
        poll_interval_secs=30.0,
    )


def _state(cdir: Path) -> dict[str, Any]:
    return json.loads((cdir / MODEL_SELECTION_STATE).read_text())


def test_30_to_10_with_the_exact_pct_schedule(tmp_path: Path) -> None:
    clock = SimulatedClock()
    cdir = tmp_path / "c"
    ctl = ModelSelectionController.create(_ctx(cdir, clock), SPACE, SelectionSettings())
    ctl.run()
    assert ctl.phase == "done", ctl.error
    state = _state(cdir)
    pcts = [it["desired_training_step_pct"] for it in state["iterations"]]
    assert pcts[:4] == pytest.approx([100 / 30, 100 / 30 + 4, 100 / 30 + 4 + 5, 19.0])
    assert pcts[4] == 101.0
    assert [it["num_trials"] for it in state["iterations"]] == [30, 25, 20, 15, 10]
    assert [len(it["trials_to_retrain"]) for it in state["iterations"]] == [25, 20, 15, 10, 0]
    assert set(state) >= {
        "start_num_models",
        "final_num_models",
        "num_models_to_remove_per_iter",
        "accuracy_metric_id",
        "latency_metric_id",
        "iterations",
    }
    assert set(state["iterations"][0]) == {
        "num_trials",
        "trials_to_retrain",
        "search_job_name",
        "search_job_link",
        "latency_calculator_job_name",
        "latency_calculator_job_link",
        "desired_training_step_pct",
    }
    for round_index in range(1, 5):
        assert (cdir / "jobs" / f"round{round_index}" / "filtered_trial_scores.png").exists()
    # survivors keep a stable order: each round's kept ids are increasing
    for it in state["iterations"][:4]:
        ids = [int(t) for t in it["trials_to_retrain"]]
        assert ids == sorted(ids)
    # true continuation: a final model's curve starts with its round-1 points
    result = json.loads((cdir / REFERENCE_MODELS).read_text())
    assert result["num_reference_models"] == 10
    first = result["reference_models"][0]
    metrics = json.loads((Path(first["trial_dir"]) / "TRIAL_TRAINING_METRICS.json").read_text())
    pcts_seen = [p["training_step_pct"] for p in metrics["training_accuracy_over_steps"]]
    assert pcts_seen == sorted(pcts_seen) and pcts_seen[0] == 1.0 and pcts_seen[-1] == 100.0
    assert len(pcts_seen) == 100  # no point trained twice, none skipped
    # cost: 30 models to 3.33 %, 25 more to 7.33 %, ... ≈ 12 full trainings for the reference
    multiple = result["cost"]["multiple_of_full_training"]
    assert 11.0 < multiple < 13.5, multiple
    assert result["latency_range"][0] < result["latency_range"][1]


def test_first_round_failure_rate_stops_with_causes_then_resume_retries(tmp_path: Path) -> None:
    faults = {f"round1/{i}": Fault.parse("oom@1") for i in (2, 5, 7, 9)}  # 4 of 12 = 33 %
    clock = SimulatedClock()
    cdir = tmp_path / "c"
    settings = SelectionSettings(12, 6, 2)
    ctl = ModelSelectionController.create(_ctx(cdir, clock, faults), SPACE, settings)
    ctl.run()
    assert ctl.phase == "failed"
    assert ctl.error is not None
    assert "4 of 12 trials of the first round failed (33% > 20%)" in ctl.error
    assert "4× oom (lower the batch size" in ctl.error
    # the user fixes the trainer; resuming the failed round needs no hand-editing
    again = ModelSelectionController.resume(_ctx(cdir, clock), SPACE, settings)
    again.run()
    assert again.phase == "done", again.error
    assert [it["num_trials"] for it in _state(cdir)["iterations"]] == [12, 10, 8, 6]


def test_final_round_failures_leave_a_warning_naming_the_shortfall(tmp_path: Path) -> None:
    # rounds of 12, 10, 8 and 6 models: two of the last round's crash
    faults = {f"round4/{i}": Fault.parse("crash@50") for i in (1, 4)}
    ctl = ModelSelectionController.create(
        _ctx(tmp_path / "c", SimulatedClock(), faults), SPACE, SelectionSettings(12, 6, 2)
    )
    ctl.run()
    assert ctl.phase == "done", ctl.error
    warnings = [line for line in ctl.summary() if line.startswith("warning: only 4 of the 6")]
    assert len(warnings) == 1, ctl.summary()
    assert "2× crash" in warnings[0] and "--previous-model-selection-dir" in warnings[0]
    # as the warning says, resuming trains the failed ones again (the fault is fixed)
    resumed = ModelSelectionController.resume(
        _ctx(tmp_path / "c", SimulatedClock()), SPACE, SelectionSettings(12, 6, 2)
    )
    resumed.run()
    assert resumed.phase == "done", resumed.error
    assert len(resumed.result().reference_models) == 6
    assert not [line for line in resumed.summary() if line.startswith("warning: only")]


def test_invalid_trials_count_toward_the_removal(tmp_path: Path) -> None:
    faults = {"round2/3": Fault.parse("crash@9")}
    clock = SimulatedClock()
    cdir = tmp_path / "c"
    ctl = ModelSelectionController.create(
        _ctx(cdir, clock, faults), SPACE, SelectionSettings(12, 6, 2)
    )
    ctl.run()
    assert ctl.phase == "done", ctl.error
    state = _state(cdir)
    round2 = state["rounds"][1]
    assert round2["invalid"][0][0] == "3"
    assert len(round2["removed"]) == 1 and len(round2["kept"]) == 8


def _normalise(path: Path, cdir: Path) -> str:
    return path.read_text().replace(str(cdir), "<dir>")


def test_kill_between_steps_and_resume_gives_the_same_final_state(tmp_path: Path) -> None:
    settings = SelectionSettings(7, 3, 2)  # rounds of 7, 5 and 3 models
    clock = SimulatedClock()
    ref_dir = tmp_path / "ref"
    ref = ModelSelectionController.create(_ctx(ref_dir, clock, table=COARSE_TABLE), SPACE, settings)
    steps = 0
    while not ref.is_finished():
        ref.step()
        steps += 1
        clock.sleep(ref.tracker.wait_secs(30.0))
    assert steps > 10, steps
    expected = _normalise(ref_dir / REFERENCE_MODELS, ref_dir)
    expected_iterations = _state(ref_dir)["iterations"]
    # the first steps, then every other step and the last: each round's launch, wait and
    # decision is crashed after (all of them, O(steps²), took 40 s of CI on 2 cores)
    for crash_after in sorted({*range(4), *range(4, steps, 2), steps - 1}):
        cdir = tmp_path / f"crash{crash_after}"
        clock = SimulatedClock()
        first = ModelSelectionController.create(
            _ctx(cdir, clock, table=COARSE_TABLE), SPACE, settings
        )
        for _ in range(crash_after):
            first.step()
            clock.sleep(first.tracker.wait_secs(30.0))
        resumed = ModelSelectionController.resume(
            _ctx(cdir, clock, table=COARSE_TABLE), SPACE, settings
        )
        resumed.run()
        assert resumed.phase == "done", (crash_after, resumed.error)
        assert _normalise(cdir / REFERENCE_MODELS, cdir) == expected, crash_after
        iterations = json.loads(_normalise(cdir / MODEL_SELECTION_STATE, cdir))["iterations"]
        assert iterations == json.loads(
            json.dumps(expected_iterations).replace(str(ref_dir), "<dir>")
        ), crash_after


def test_cli_select_models_with_the_fake_trainer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        [
            "select-models",
            f"--trainer={sys.executable} -m proxytask.testing.fake_trainer",
            "--search-space=tests.fixtures.spaces:tiny",
            f"--root-output-dir={tmp_path / 'runs'}",
            "--job-name=sel",
            "--start-num-models=6",
            "--final-num-models=3",
            "--num-models-to-remove-per-iter=2",
            "--max-parallel-trials=3",
            "--baseline-architecture",
            '{"width": 64, "depth": 3}',
            "--seed-noise-std=0",
            "--trainer-args",
            "cycles=20",
            "cycle_secs=0.005",
            "start_delay_secs=0",
            "total_steps=200",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "3 reference models:" in out and "× one full training" in out
    assert "baseline model: accuracy" in out
    # 3 reference models: below the 7 the confident rule needs even for a perfect ceiling
    assert "reference set size (for the search's default settings): full-vs-full" in out
    assert "warning: 3 reference models are too few" in out
    assert "Set final-num-models: 7 (--final-num-models 7)" in out
    (cdir,) = (tmp_path / "runs").iterdir()
    assert cdir.name.startswith("Model_Selection_sel_")
    assert cli.main(["status", str(cdir)]) == 0
    # resuming the finished selection from the command line reads its saved options back
    # (the empty defaults included) and gives the same answer without training again
    before = (cdir / "REFERENCE_MODELS.json").read_text()
    code = cli.main(
        [
            "select-models",
            f"--trainer={sys.executable} -m proxytask.testing.fake_trainer",
            f"--previous-model-selection-dir={cdir}",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "3 reference models:" in out
    assert (cdir / "REFERENCE_MODELS.json").read_text() == before


@pytest.mark.parametrize(
    ("noise", "expected", "warning"),
    [
        (None, None, None),
        # one of 20 evaluations spends 1/20 of the error budget: 7 models for a perfect proxy
        (0.001, "needs 7 reference models for a proxy at the ceiling", "6 reference models are"),
        (0.5, "no reference set can pass", "Lower desired-accuracy-correlation"),
    ],
)
def test_the_summary_says_how_many_reference_models_the_search_needs(
    tmp_path: Path, noise: float | None, expected: str | None, warning: str | None
) -> None:
    settings = SelectionSettings(12, 6, 2, seed_noise_std=noise)
    ctl = ModelSelectionController.create(_ctx(tmp_path / "c", SimulatedClock()), SPACE, settings)
    ctl.run()
    lines = [line for line in ctl.summary() if "reference set size" in line]
    warnings = [line for line in ctl.summary() if line.startswith("warning:")]
    if expected is None:
        assert lines == [] and warnings == []
        return
    assert len(lines) == 1
    assert expected in lines[0] and "6 reference models" in lines[0]
    if warning is None:
        assert warnings == []
    else:
        assert any(warning in w for w in warnings), warnings


def test_a_negative_seed_noise_is_refused() -> None:
    with pytest.raises(UsageError, match="--seed-noise-std must be >= 0"):
        SelectionSettings(seed_noise_std=-0.1)


def test_latency_from_a_worker(tmp_path: Path) -> None:
    from proxytask.controllers.latency import LatencyWorker

    clock = SimulatedClock()
    cdir = tmp_path / "c"
    settings = SelectionSettings(6, 3, 2, latency_source="worker", latency_timeout_secs=600)
    ctl = ModelSelectionController.create(_ctx(cdir, clock, table=COARSE_TABLE), SPACE, settings)
    log = tmp_path / "measured.log"
    command = [
        sys.executable,
        str(Path(__file__).parent.parent / "fixtures" / "latency_command.py"),
        f"--log={log}",
        "--sleep=0",
    ]
    worker = LatencyWorker(str(cdir), command, "w1", clock)
    while not ctl.is_finished():
        ctl.step()
        worker.run_once()  # the worker would run beside the controller, on any machine
        clock.sleep(ctl.tracker.wait_secs(30.0))
    assert ctl.phase == "done", ctl.error
    result = json.loads((cdir / REFERENCE_MODELS).read_text())
    for model in result["reference_models"]:
        latency_file = json.loads((Path(model["trial_dir"]) / "LATENCY.json").read_text())
        assert model["latency"] == latency_file["latency"] > 0
    lines = log.read_text().splitlines()
    assert len(lines) == len({line.split("\t")[0] for line in lines})  # each trial once
    state = _state(cdir)
    assert state["iterations"][0]["latency_calculator_job_name"] == "latency-worker"


def test_latency_worker_timeout_makes_trials_invalid(tmp_path: Path) -> None:
    clock = SimulatedClock()
    cdir = tmp_path / "c"
    settings = SelectionSettings(6, 3, 2, latency_source="worker", latency_timeout_secs=60)
    ctl = ModelSelectionController.create(_ctx(cdir, clock, table=COARSE_TABLE), SPACE, settings)
    ctl.run()  # no worker runs: every round's latencies time out, every trial is invalid
    assert ctl.phase == "failed"
    assert ctl.error is not None and "left 0 valid models" in ctl.error


def test_a_trainer_that_reports_no_latency_is_pruned_by_accuracy_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = SimulatedClock()
    cdir = tmp_path / "c"
    table = _table(evaluations=20, latency=False)
    ctl = ModelSelectionController.create(
        _ctx(cdir, clock, table=table), SPACE, SelectionSettings(6, 3, 2)
    )
    ctl.run()  # the default --latency-source trainer
    assert ctl.phase == "done", ctl.error
    out = capsys.readouterr().out
    assert out.count("no trial reported a latency: pruning by accuracy alone") == 1
    refs = json.loads((cdir / "REFERENCE_MODELS.json").read_text())["reference_models"]
    assert len(refs) == 3 and all(m["latency"] is None for m in refs)


def test_the_result_codec_round_trips_the_file(tmp_path: Path) -> None:
    from proxytask.controllers.selection import ModelSelectionResult, read_model_selection_result

    clock = SimulatedClock()
    cdir = tmp_path / "c"
    settings = SelectionSettings(
        8, 3, 2, num_holdout_models=1, baseline_architecture={"width": 64, "depth": 3}
    )
    ctl = ModelSelectionController.create(_ctx(cdir, clock), SPACE, settings)
    ctl.run()
    assert ctl.phase == "done", ctl.error
    loaded = read_model_selection_result(str(cdir))
    assert isinstance(loaded, ModelSelectionResult) and loaded == ctl.result()
    assert loaded.baseline is not None and loaded.baseline.state == "succeeded"
    assert len(loaded.holdout_models) == 1
    assert loaded.to_json() == json.loads((cdir / REFERENCE_MODELS).read_text())
