"""`proxytask status`: the notes it prints for each kind of dir, from the files it writes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from proxytask.controllers.final_checks import (
    FailureRate,
    FinalChecks,
    ScaledBaselineResult,
    read_final_checks,
)
from proxytask.controllers.search_state import (
    HoldoutCheck,
    ProxyTaskEntry,
    ProxyTaskStats,
    Recommendation,
    SearchState,
    TauSummary,
)
from proxytask.controllers.selection import (
    ModelSelectionResult,
    ReferenceModel,
    SelectionCost,
)
from proxytask.controllers.state import TrialRecordState, save_state
from proxytask.controllers.variance import VarianceResult
from proxytask.core import layout
from proxytask.report.status import inspect_dir, render_status
from proxytask.stats.stopping import StoppingState


def _controller_dir(tmp_path: Path, kind: str) -> Path:
    cdir = tmp_path / f"{kind}_job_20260101_000000"
    (cdir / layout.JOBS_DIR).mkdir(parents=True)
    return cdir


def _write(path: Path, data: object) -> None:
    path.write_text(json.dumps(data))


def _notes(path: Path) -> tuple[str, ...]:
    return inspect_dir(str(path)).notes


def _variance_result() -> VarianceResult:
    return VarianceResult(
        variance_value=0.0125,
        variance_info="Model variance is good.",
        smoothness_value=12.5,
        smoothness_info="Model smoothness is not good, measured:12.5 > threshold:10.0.",
        variance_good=True,
        smoothness_good=False,
        max_variance=0.4,
        max_smoothness=10.0,
        final_accuracies=(0.8, 0.82),
        mean_accuracy=0.81,
        std=0.01,
        sample_std=0.014,
        std_confidence_interval=(0.005, 0.2),
        confidence=0.95,
        smoothness_per_copy=(12.0, 13.0),
        per_step_spread=(),
        max_per_step_std=0.02,
        num_copies=2,
        num_copies_finished=2,
        finished_model_dirs=("a", "b"),
        failed_copies=(),
        workable_model_dir="w",
        architecture={"w": 1},
        advice=(),
    )


def test_variance_notes(tmp_path: Path) -> None:
    cdir = _controller_dir(tmp_path, layout.KIND_VARIANCE)
    save_state(str(cdir / layout.MEASUREMENT_STATE), {"phase": "copies", "error": None})
    assert _notes(cdir) == ("phase: copies",)
    save_state(str(cdir / layout.MEASUREMENT_STATE), {"phase": "done", "error": None})
    _write(cdir / layout.VARIANCE_RESULT, _variance_result().to_json())
    assert _notes(cdir) == (
        "phase: done",
        "variance 0.0125 (Model variance is good.)",
        "smoothness 12.5 (Model smoothness is not good, measured:12.5 > threshold:10.0.)",
    )
    (cdir / layout.VARIANCE_RESULT).unlink()
    save_state(str(cdir / layout.MEASUREMENT_STATE), {"phase": "failed", "error": "no model"})
    assert _notes(cdir) == ("phase: failed", "error: no model")


def _iteration(num_trials: int, pct: float) -> dict[str, object]:
    return {
        "num_trials": num_trials,
        "trials_to_retrain": [],
        "search_job_name": "round1",
        "search_job_link": "jobs/round1",
        "latency_calculator_job_name": "",
        "latency_calculator_job_link": "",
        "desired_training_step_pct": pct,
    }


def test_selection_notes(tmp_path: Path) -> None:
    cdir = _controller_dir(tmp_path, layout.KIND_MODEL_SELECTION)
    state = str(cdir / layout.MODEL_SELECTION_STATE)
    save_state(state, {"phase": "running", "iterations": [], "error": None})
    assert _notes(cdir) == ("phase: running, round 0",)
    its = [_iteration(6, 100 / 6), _iteration(4, 101.0)]
    save_state(state, {"phase": "failed", "iterations": its, "error": "too many failed"})
    assert _notes(cdir) == (
        "phase: failed, round 2",
        "current round: 4 models to 101.00 %",
        "error: too many failed",
    )
    model = ReferenceModel("7", "jobs/final/7", "round1/7", {"w": 7}, 0.9, 1.5, 0.25, {})
    result = ModelSelectionResult(
        reference_models=(model, model),
        holdout_models=(),
        accuracy_range=(0.9, 0.9),
        latency_range=(1.5, 1.5),
        baseline=None,
        cost=SelectionCost(0.75, None, 0.25, 3.0),
        warnings=(),
        accuracy_metric_id="",
        latency_metric_id="",
    )
    _write(cdir / layout.REFERENCE_MODELS, result.to_json())
    save_state(state, {"phase": "done", "iterations": its[:1], "error": None})
    assert _notes(cdir) == (
        "phase: done, round 1",
        "current round: 6 models to 16.67 %",
        "2 reference models; cost 0.7500 training hours (3.00 × full training)",
    )
    no_full = dataclasses.replace(result, cost=SelectionCost(0.5, None, None, None))
    _write(cdir / layout.REFERENCE_MODELS, no_full.to_json())
    last = "2 reference models; cost 0.5000 training hours (0.00 × full training)"
    assert _notes(cdir)[-1] == last


def _entry(name: str, state: StoppingState, steps: int | None) -> ProxyTaskEntry:
    stats = ProxyTaskStats(stopping_state=state, final_training_steps=steps)
    return ProxyTaskEntry(name, stats, f"proxy_{name}", f"jobs/proxy_{name}")


def test_search_notes(tmp_path: Path) -> None:
    cdir = _controller_dir(tmp_path, layout.KIND_SEARCH)
    tau = TauSummary(0.8, 0.01, 6, 0.5, 0.95, 0.9)
    state = SearchState(
        proxy_tasks={
            "good": _entry("good", StoppingState.MET_DESIRED_ACCURACY_CORRELATION, 0),
            "slow": _entry("slow", StoppingState.EXCEEDED_BEST_TRAIN_TIME, None),
            "new": _entry("new", StoppingState.INVALID_STOPPING_STATE, None),
        },
        best_proxy_task_name="good",
        holdout={"good": HoldoutCheck(tau, "good", 0, (0.5,), (0.9,), ("3",))},
        zero_training_baselines={
            "params": TauSummary(0.25, None, 6, None, None, None),
            "synflow": TauSummary(0.5, None, 6, None, None, None),
            "flops": TauSummary(None, None, 6, None, None, None, "constant"),
        },
    )
    save_state(str(cdir / layout.SEARCH_STATE), state.to_json())
    assert _notes(cdir) == (
        "good: Met desired correlation at step 0",
        "slow: Exceeded best training time",
        "new: running",
        "best proxy task so far: good",
        "held-out check of good: Kendall tau-b 0.8 on 6 held-out models",
        "best zero-training score: synflow (Kendall tau-b 0.500, no training)",
    )
    save_state(str(cdir / layout.SEARCH_STATE), SearchState(proxy_tasks={}).to_json())
    assert _notes(cdir) == ()


def test_final_checks_notes(tmp_path: Path) -> None:
    cdir = _controller_dir(tmp_path, layout.KIND_FINAL_CHECKS)
    state: dict[str, Any] = {"phase": "train", "proxy_task_name": "good", "result": None}
    save_state(str(cdir / layout.FINAL_CHECKS_STATE), state)
    assert _notes(cdir) == ("phase: train: the baseline under good",)
    result = ScaledBaselineResult(
        "jobs/scaled/1", TrialRecordState.SUCCEEDED, "good", {"w": "0.5"}, 0.8, None, "no worker"
    )
    state |= {"phase": "done", "result": result.to_json()}
    save_state(str(cdir / layout.FINAL_CHECKS_STATE), state)
    assert _notes(cdir) == (
        "phase: done: the baseline under good",
        "scaled baseline latency: None",
        "problem: no worker",
    )


def test_workflow_notes(tmp_path: Path) -> None:
    wdir = tmp_path / "Workflow_wf"
    wdir.mkdir()
    _write(wdir / layout.WORKFLOW_STATE, {"version": 1, "stages": {}})
    assert _notes(wdir) == ("no stage started yet",)
    stages = {
        "variance": {"dir": "/v", "status": "done"},
        "model_selection": {"dir": "/m", "status": "failed"},
        "final_checks": {"proxy_task_name": "good"},
    }
    _write(wdir / layout.WORKFLOW_STATE, {"version": 1, "stages": stages})
    assert _notes(wdir) == (
        "variance: done  /v",
        "model selection: failed  /m",
        "final checks: None  ",
    )
    rec = Recommendation("good", {"slow": "Exceeded best training time"}, {"lr": "0.1"}, 4)
    checks = FinalChecks(rec, None, {"search": FailureRate(3, 1, {"oom": 1})}, None, None, {})
    _write(wdir / layout.WORKFLOW_RECOMMENDATION, checks.to_dict())
    assert _notes(wdir)[-1] == "recommended proxy task: good {'lr': '0.1'}, 5 steps"
    assert read_final_checks(str(wdir)) == checks
    none_found = dataclasses.replace(checks, recommendation=Recommendation("", {}))
    _write(wdir / layout.WORKFLOW_RECOMMENDATION, none_found.to_dict())
    assert _notes(wdir)[-1] == "final checks: None  "


@pytest.mark.parametrize("kind", [layout.KIND_VARIANCE, layout.KIND_SEARCH])
def test_a_dir_without_state_has_no_notes(tmp_path: Path, kind: str) -> None:
    cdir = _controller_dir(tmp_path, kind)
    status = inspect_dir(str(cdir))
    assert status.kind == kind
    expected = ("phase: ?",) if kind == layout.KIND_VARIANCE else ()
    assert status.notes == expected
    assert render_status(status).splitlines()[1:] == [f"  {n}" for n in expected] + ["no jobs yet"]


def test_a_recommendation_reads_back_as_written() -> None:
    from proxytask.controllers.search_state import IntervalAtStop, ZeroTrainingComparison
    from proxytask.stats.stability import StabilityResult

    tau = TauSummary(0.8, 0.01, 6, 0.5, 0.95, 0.9)
    rec = Recommendation(
        "good",
        {"slow": "Exceeded best training time"},
        {"lr": "0.1"},
        4,
        0.01,
        0.8,
        0.5,
        "confident",
        0.9,
        IntervalAtStop(4, 0.5, 0.95, 0.92, 0.9),
        HoldoutCheck(tau, "good", 4, (0.5, None), (0.9, 0.8), ("3", "4")),
        {"params": tau},
        ZeroTrainingComparison("params", 0.8, 0.8, False, False, "as good"),
        StabilityResult(200, 0, 6, "confident", {"good": 0.75, "none": 0.25}, "good", 0.75),
    )
    assert Recommendation.from_json(rec.to_json()) == rec
    assert Recommendation.from_json(Recommendation("", {"a": "not finished"}).to_json()) == (
        Recommendation("", {"a": "not finished"})
    )
