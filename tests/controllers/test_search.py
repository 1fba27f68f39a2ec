"""The proxy-task search controller on the replay executor, with known curves."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from proxytask.controllers.base import ControllerContext
from proxytask.controllers.search import (
    SEARCH_STATE,
    ReferenceModels,
    SearchController,
    SearchSettings,
    SearchState,
    config_of_job,
)
from proxytask.controllers.tracker import TrialSettings
from proxytask.core.clock import SimulatedClock
from proxytask.core.errors import UsageError
from proxytask.core.proxies import load_proxy_task_configs
from proxytask.executors.command import parse_trainer_command
from proxytask.executors.replay import ReplayTable
from proxytask.stats.stopping import StoppingState
from proxytask.trainer import contract as trainer

ARCHS = [{"width": w, "depth": d} for w in (8, 16, 32, 64) for d in (1, 2)]
FULL = [0.60 + 0.04 * i for i in range(len(ARCHS))]  # full-training accuracy grows with i
LATENCY = [1.0 + 0.5 * i for i in range(len(ARCHS))]
TOTAL = 100  # proxy steps; an evaluation every 10 steps, 10 simulated seconds each


def point_settings(**changes: Any) -> SearchSettings:
    """Settings with the reference tools' stopping rule: most tests here check its semantics
    (first crossing, interpolated steps); the confident rule has tests of its own below."""
    return SearchSettings(**{"stopping_rule": "point", **changes})


def _proxy_accuracy(kind: str, i: int, k: int) -> float:
    """Accuracy of model i at evaluation k (1..10) under a proxy kind."""
    frac = k / 10
    if kind == "good":  # right order from the start
        return FULL[i] * frac**0.5
    if kind == "bad":  # a fixed wrong order
        return 0.5 + 0.03 * ((i * 5) % 8) * frac
    # "late": reversed at first, turning right: tau rises through 0.65 between k=6 and k=7
    weight = min(max((k - 4) / 4, 0.0), 1.0)
    return (1 - weight) * (1.0 - FULL[i]) + weight * FULL[i]


def _table() -> ReplayTable:
    curves = []
    for kind in ("good", "bad", "late"):
        for i, arch in enumerate(ARCHS):
            curves.append(
                {
                    "curve_id": f"{kind}-{i}",
                    "match": {"nas_params": arch, "trainer_args": {"proxy": kind}},
                    "total_steps": TOTAL,
                    "latency": LATENCY[i],
                    "points": [
                        [10 * k - 1, _proxy_accuracy(kind, i, k), 10.0] for k in range(1, 11)
                    ],
                }
            )
    return ReplayTable.from_dict(
        {"format": "proxytask-replay-table", "version": 1, "curves": curves}
    )


TABLE = _table()


def _model_selection_dir(root: Path, holdout: int = 0) -> Path:
    """A finished model selection: 8 reference models trained fully in jobs/round3, and
    ``holdout`` held-out models (the first architectures again) after them. Each reference
    model carries two zero-training scores: ``params`` ranks them right, ``synflow`` wrong."""
    msdir = root / "Model_Selection_x_20260101_000000"
    models = []
    held = []
    for number, i in enumerate([*range(len(ARCHS)), *range(holdout)], start=1):
        tdir = str(msdir / "jobs" / "round3" / str(number))
        trainer.save_nas_params(tdir, ARCHS[i])
        for k in range(1, 11):  # full training: an evaluation every 100 of 1000 steps
            accuracy = FULL[i] * (0.5 + 0.05 * k)
            trainer.update_trial_training_accuracy_metric(
                tdir, accuracy, 100 * (k - 1), 100 * k - 1, 36.0, 1000
            )
        trainer.update_trial_training_latency_metric(tdir, LATENCY[i])
        model = {
            "trial_id": str(number),
            "trial_dir": tdir,
            "accuracy": FULL[i],
            "latency": LATENCY[i],
            "training_hours": 0.1,
            "zero_cost_scores": {"params": 100.0 * (i + 1), "synflow": -float(i)},
        }
        (models if number <= len(ARCHS) else held).append(model)
    (msdir / "REFERENCE_MODELS.json").write_text(
        json.dumps({"reference_models": models, "holdout_models": held})
    )
    return msdir


def _ctx(cdir: Path, clock: SimulatedClock) -> ControllerContext:
    from proxytask.executors.replay import ReplayExecutor

    return ControllerContext(
        controller_dir=str(cdir),
        executor=ReplayExecutor(TABLE, clock, max_parallel_trials=8),
        clock=clock,
        trial_settings=TrialSettings(trainer=parse_trainer_command("replay")),
        baseline_args={"lr": "0.1"},
        options={},
        poll_interval_secs=5.0,
    )


def _configs(name: str) -> list[Any]:
    return load_proxy_task_configs(f"tests.fixtures.proxy_generators:{name}", {"lr": "0.1"})


def _run(tmp_path: Path, generator: str, **settings: Any) -> tuple[SearchController, Path]:
    refs = ReferenceModels.load(str(_model_selection_dir(tmp_path)))
    clock = SimulatedClock()
    cdir = tmp_path / "search"
    ctl = SearchController.create(
        _ctx(cdir, clock), refs, _configs(generator), point_settings(**settings)
    )
    ctl.run()
    return ctl, cdir


def _rerun(ctl: SearchController, cdir: Path, generator: str, **settings: Any) -> SearchController:
    """Run the finished search of :func:`_run` again (its dir, clock and reference models)."""
    again = SearchController.resume(
        _ctx(cdir, ctl.ctx.clock),  # type: ignore[arg-type]
        ctl.references,
        _configs(generator),
        point_settings(**settings),
    )
    again.run()
    return again


def _stats(cdir: Path, name: str) -> dict[str, Any]:
    state = json.loads((cdir / SEARCH_STATE).read_text())
    return state["proxy_tasks_map"][name]["proxy_task_stats"]


def test_the_best_proxy_and_its_interpolated_steps(tmp_path: Path) -> None:
    ctl, cdir = _run(tmp_path, "all_three", early_stop_proxy_task_if_not_best=False)
    assert ctl.is_finished()
    good = _stats(cdir, "good")
    assert good["stopping_state"] == "Met desired correlation"
    assert good["final_training_steps"] == 9  # a crossing at the first step: no interpolation
    assert good["accuracy_correlation_over_step"][0] == pytest.approx(1.0)
    late = _stats(cdir, "late")
    assert late["stopping_state"] == "Met desired correlation"
    steps, taus = late["training_steps"], late["accuracy_correlation_over_step"]
    k = next(i for i, t in enumerate(taus) if t is not None and t >= 0.65)
    assert steps[k - 1] < late["final_training_steps"] <= steps[k]  # interpolated in between
    bad = _stats(cdir, "bad")
    assert bad["stopping_state"] == "Ran till completion"
    assert ctl.best_proxy_task_name == "good"
    rec = ctl.recommendation()
    # the evaluation at 0-based step 9 ends the 10th step: a budget of 10
    assert rec["training_steps"] == 10 and rec["cosine_decay_steps"] == 10
    assert rec["final_training_step"] == 9
    assert rec["trainer_args"] == {"lr": "0.1", "proxy": "good"}
    assert good["latency_correlation"] == pytest.approx(1.0)
    state = json.loads((cdir / SEARCH_STATE).read_text())
    assert state["best_proxy_task_name"] == "good"
    entry = state["proxy_tasks_map"]["good"]
    assert set(entry) >= {
        "proxy_task_stats",
        "proxy_task_name",
        "search_job_name",
        "search_job_link",
        "latency_calculator_job_name",
        "latency_calculator_job_link",
    }
    assert set(good) >= {
        "training_steps",
        "accuracy_correlation_over_step",
        "accuracy_correlation_p_value_over_step",
        "median_accuracy_over_step",
        "median_training_time_hrs_over_step",
        "latency_correlation",
        "latency_correlation_p_value",
        "stopping_state",
        "posted_stop_trials_message",
        "final_training_time_in_hours",
        "final_training_steps",
    }
    for name in ("good", "late", "bad"):
        assert (cdir / f"proxy_task_{name}_curves.png").exists()
        assert (cdir / f"proxy_task_{name}_accuracy_correlation.png").exists()
        assert (cdir / f"proxy_task_{name}_latency_correlation.png").exists()


def test_a_config_that_cannot_win_is_stopped_early(tmp_path: Path) -> None:
    ctl, cdir = _run(tmp_path, "all_three", early_stop_proxy_task_if_not_best=True)
    bad = _stats(cdir, "bad")
    assert bad["stopping_state"] == "Exceeded best training time"
    assert bad["posted_stop_trials_message"]
    # its trials really stopped: none reached the end of its step budget
    for record in ctl.tracker.records.values():
        if record.job == "proxy_bad":
            metrics = trainer.read_trial_training_metrics(record.trial_dir)
            assert metrics is not None and metrics.last_pct < 100.0
    assert ctl.best_proxy_task_name == "good"


def test_extending_the_generator_trains_only_the_new_configs(tmp_path: Path) -> None:
    refs = ReferenceModels.load(str(_model_selection_dir(tmp_path)))
    clock = SimulatedClock()
    cdir = tmp_path / "search"
    first = SearchController.create(
        _ctx(cdir, clock), refs, _configs("good_only"), point_settings()
    )
    first.run()
    good_before = _stats(cdir, "good")
    again = SearchController.resume(
        _ctx(cdir, clock), refs, _configs("all_three"), point_settings()
    )
    again.run()
    launched = {k.split("/")[0] for k in again.ctx.executor.known_trials()}
    assert launched == {"proxy_bad", "proxy_late"}
    assert _stats(cdir, "good") == good_before
    assert again.best_proxy_task_name == "good"


def test_a_rerun_keeps_a_stop_by_another_proxys_time(tmp_path: Path) -> None:
    """Re-scoring a finished search keeps 'Exceeded best training time': the rule did not
    stop that proxy, so its cut curves are no reason to call it 'Ran till completion'. The
    case that needs it: the stopped proxy's trials ended before the winner's (a re-score
    judges each proxy by the ones finished before it, so it sees no best time to stop at)."""
    ctl, cdir = _run(tmp_path, "all_three", early_stop_proxy_task_if_not_best=True)
    before = _stats(cdir, "bad")
    assert before["stopping_state"] == "Exceeded best training time"
    state = json.loads((cdir / SEARCH_STATE).read_text())
    order = [n for n in state["finish_order"] if n != "bad"]
    state["finish_order"] = ["bad", *order]  # as when its trials ended first
    (cdir / SEARCH_STATE).write_text(json.dumps(state))
    again = _rerun(ctl, cdir, "all_three", early_stop_proxy_task_if_not_best=True)
    assert again.ctx.executor.known_trials() == []  # nothing trained again
    after = _stats(cdir, "bad")
    assert after["stopping_state"] == "Exceeded best training time"
    assert after["final_training_steps"] == before["final_training_steps"]
    assert not after.get("rescore_note")
    assert again.best_proxy_task_name == "good"


def test_changed_thresholds_rescore_from_recorded_curves(tmp_path: Path) -> None:
    refs = ReferenceModels.load(str(_model_selection_dir(tmp_path)))
    clock = SimulatedClock()
    cdir = tmp_path / "search"
    settings = point_settings(early_stop_proxy_task_if_not_best=False)
    SearchController.create(_ctx(cdir, clock), refs, _configs("late_then_good"), settings).run()
    before = _stats(cdir, "late")["final_training_steps"]
    stricter = point_settings(
        desired_accuracy_correlation=0.95, early_stop_proxy_task_if_not_best=False
    )
    again = SearchController.resume(_ctx(cdir, clock), refs, _configs("late_then_good"), stricter)
    again.run()
    assert again.ctx.executor.known_trials() == []  # nothing trained again
    after = _stats(cdir, "late")["final_training_steps"]
    assert after is not None and before is not None and after > before


def test_a_rerun_draws_the_plots_a_killed_run_had_not_drawn(tmp_path: Path) -> None:
    """Plots are drawn beside the controller (proxytask.report.background): a run killed
    after a proxy finished but before its plots were written draws them when run again."""
    ctl, cdir = _run(tmp_path, "all_three", early_stop_proxy_task_if_not_best=False)
    missing = cdir / "proxy_task_late_curves.png"
    missing.unlink()
    kept = cdir / "proxy_task_good_curves.png"
    kept_at = kept.stat().st_mtime_ns
    _rerun(ctl, cdir, "all_three", early_stop_proxy_task_if_not_best=False)
    assert missing.read_bytes()[:4] == b"\x89PNG"
    assert kept.stat().st_mtime_ns == kept_at  # the plots that exist are not drawn again


def test_kill_and_resume_at_any_step_gives_the_same_final_state(tmp_path: Path) -> None:
    msdir = _model_selection_dir(tmp_path)
    refs = ReferenceModels.load(str(msdir))
    # one config at a time: each config's start, evaluations and stop in steps of their own
    settings = point_settings(max_parallel_proxy_tasks=1)

    def normalised(cdir: Path) -> dict[str, Any]:
        state = json.loads((cdir / SEARCH_STATE).read_text().replace(str(cdir), "<dir>"))
        return {k: state[k] for k in ("proxy_tasks_map", "best_proxy_task_name")}

    clock = SimulatedClock()
    ref_dir = tmp_path / "ref"
    ref = SearchController.create(_ctx(ref_dir, clock), refs, _configs("all_three"), settings)
    steps = 0
    while not ref.is_finished():
        ref.step()
        steps += 1
        clock.sleep(ref.tracker.wait_secs(5.0))
    expected = normalised(ref_dir)
    assert steps > 5
    # the first steps, then every third one and the last: each config's start, evaluation
    # and stop is crashed after (all of them, O(steps²), took 40 s of CI on 2 cores)
    for crash_after in sorted({*range(2), *range(2, steps, 3), steps - 1}):
        cdir = tmp_path / f"crash{crash_after}"
        clock = SimulatedClock()
        first = SearchController.create(_ctx(cdir, clock), refs, _configs("all_three"), settings)
        for _ in range(crash_after):
            first.step()
            clock.sleep(first.tracker.wait_secs(5.0))
        resumed = SearchController.resume(_ctx(cdir, clock), refs, _configs("all_three"), settings)
        resumed.run()
        assert normalised(cdir) == expected, crash_after


def _cli_args(tmp_path: Path, msdir: Path, generator: str) -> list[str]:
    table = tmp_path / "table.json"
    table.write_text(json.dumps(TABLE.to_dict()))
    return [
        "search",
        "--trainer=replay",
        f"--root-output-dir={tmp_path / 'runs'}",
        "--job-name=s",
        "--executor=replay",
        f"--replay-table={table}",
        "--max-parallel-trials=8",
        f"--model-selection-dir={msdir}",
        f"--proxy-task-config-generator=tests.fixtures.proxy_generators:{generator}",
        "--stopping-rule=point",
    ]


def test_cli_search_prints_the_recommendation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from proxytask import cli

    msdir = _model_selection_dir(tmp_path)
    assert cli.main(_cli_args(tmp_path, msdir, "all_three")) == 0
    out = capsys.readouterr().out
    assert "best proxy task: good" in out
    assert "set training steps = 10, cosine-decay steps = 10" in out
    (cdir,) = (tmp_path / "runs").iterdir()
    rec = json.loads((cdir / "PROXY_TASK_RECOMMENDATION.json").read_text())
    assert rec["best_proxy_task_name"] == "good" and rec["training_steps"] == 10


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--model-selection-dir": "/nonexistent"}, "must be a finished model selection"),
        (
            {"--proxy-task-config-generator": "tests.fixtures.generators:empty"},
            "must return a non-empty list",
        ),
        ({"--desired-accuracy-correlation": "1.5"}, "must be a correlation in [-1, 1]"),
    ],
)
def test_cli_search_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, str], message: str
) -> None:
    from proxytask import cli

    msdir = _model_selection_dir(tmp_path)
    args = [a for a in _cli_args(tmp_path, msdir, "all_three") if a.split("=")[0] not in change]
    args += [f"{k}={v}" for k, v in change.items()]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_trials_stopped_before_their_first_report_are_not_failures(tmp_path: Path) -> None:
    from proxytask.executors.replay import ReplayExecutor

    refs = ReferenceModels.load(str(_model_selection_dir(tmp_path)))
    clock = SimulatedClock()
    ctx = _ctx(tmp_path / "search", clock)
    # two slots for eight models: the last ones are still queued when the proxy qualifies
    ctx = dataclasses.replace(ctx, executor=ReplayExecutor(TABLE, clock, max_parallel_trials=2))
    # without stages (a staged search trains them one evaluation at a time)
    settings = point_settings(stage_pct=100.0)
    ctl = SearchController.create(ctx, refs, _configs("good_only"), settings)
    ctl.run()
    states = [r.state for r in ctl.tracker.records.values()]
    assert "failed" not in states
    assert "stopped" in states
    assert _stats(tmp_path / "search", "good")["stopping_state"] == "Met desired correlation"


# ---- the confident rule (the default) --------------------------------------------------------


def _run_confident(tmp_path: Path, generator: str, **settings: Any) -> tuple[Any, Path]:
    refs = ReferenceModels.load(str(_model_selection_dir(tmp_path)))
    clock = SimulatedClock()
    cdir = tmp_path / "search"
    ctl = SearchController.create(
        _ctx(cdir, clock), refs, _configs(generator), SearchSettings(**settings)
    )
    ctl.run()
    return ctl, cdir


def test_the_confident_rule_is_the_default_and_needs_persistent_evidence(tmp_path: Path) -> None:
    assert SearchSettings().stopping_rule == "confident"
    ctl, cdir = _run_confident(tmp_path, "all_three", early_stop_proxy_task_if_not_best=False)
    good = _stats(cdir, "good")
    # tau is 1.0 from the first evaluation: the point rule stops at step 9, the confident rule
    # at the second evaluation in a row that clears 0.65 with 90 % confidence (8 models)
    assert good["stopping_state"] == "Met desired correlation"
    assert good["final_training_steps"] == 19
    assert good["statistic"] == "Kendall tau-b" and good["confidence"] == 0.85
    low, high = good["accuracy_correlation_ci_low"][0], good["accuracy_correlation_ci_high"][0]
    assert 0.6 < low < 1.0 and high == pytest.approx(1.0)
    assert good["accuracy_correlation_prob_above"][0] > 0.9
    # the latency correlation has its interval too
    assert good["latency_correlation"] is not None
    assert good["latency_correlation_ci_low"] <= good["latency_correlation"]
    assert good["latency_correlation"] <= good["latency_correlation_ci_high"]
    assert ctl.best_proxy_task_name == "good"
    # a proxy whose ranking stays wrong is abandoned before the end of its budget
    bad = _stats(cdir, "bad")
    assert bad["stopping_state"] == "Unlikely to meet desired correlation"
    assert bad["decided_at_training_step"] < TOTAL - 1


def test_switching_the_rule_on_resume_rescores_without_training(tmp_path: Path) -> None:
    refs = ReferenceModels.load(str(_model_selection_dir(tmp_path)))
    clock = SimulatedClock()
    cdir = tmp_path / "search"
    confident = SearchSettings(early_stop_proxy_task_if_not_best=False)
    SearchController.create(_ctx(cdir, clock), refs, _configs("good_only"), confident).run()
    assert _stats(cdir, "good")["final_training_steps"] == 19
    point = point_settings(early_stop_proxy_task_if_not_best=False)
    again = SearchController.resume(_ctx(cdir, clock), refs, _configs("good_only"), point)
    again.run()
    assert again.ctx.executor.known_trials() == []  # nothing trained again
    assert _stats(cdir, "good")["final_training_steps"] == 9  # the first crossing
    # the other way round, the curves the point rule recorded are too short to decide
    stricter = SearchSettings(early_stop_proxy_task_if_not_best=False, persistence=3)
    third = SearchController.resume(_ctx(cdir, clock), refs, _configs("good_only"), stricter)
    third.run()
    good = _stats(cdir, "good")
    assert good["stopping_state"] == "Ran till completion"
    assert "the recorded curves end at step 19" in good["rescore_note"]
    assert third.best_proxy_task_name == ""


def test_zero_training_baselines_are_reported_beside_the_trained_proxy(tmp_path: Path) -> None:
    _ctl, cdir = _run_confident(tmp_path, "good_only")
    rec = json.loads((cdir / "PROXY_TASK_RECOMMENDATION.json").read_text())
    baselines = rec["zero_training_baselines"]
    assert baselines["params"]["tau"] == pytest.approx(1.0)
    assert baselines["synflow"]["tau"] == pytest.approx(-1.0)
    assert baselines["params"]["statistic"] == "Kendall tau-b"
    assert baselines["params"]["ci_low"] is not None and baselines["params"]["n"] == 8
    # the trained proxy ranks as well as parameter count, and the report says so plainly
    verdict = rec["zero_training_comparison"]
    assert verdict["best_zero_training_score"] == "params"
    assert verdict["trained_proxy_beats_zero_training"] is False
    assert "a zero-training score is as good: params" in verdict["message"]
    assert rec["accuracy_correlation_interval_at_stop"]["confidence"] == 0.85


def test_the_winner_is_checked_on_held_out_models(tmp_path: Path) -> None:
    refs = ReferenceModels.load(str(_model_selection_dir(tmp_path, holdout=5)))
    assert len(refs.trial_ids) == 8 and refs.holdout_trial_ids == ("9", "10", "11", "12", "13")
    clock = SimulatedClock()
    cdir = tmp_path / "search"
    ctl = SearchController.create(_ctx(cdir, clock), refs, _configs("good_only"), SearchSettings())
    ctl.run()
    rec = json.loads((cdir / "PROXY_TASK_RECOMMENDATION.json").read_text())
    holdout = rec["holdout"]
    assert holdout["proxy_task_name"] == "good" and holdout["n"] == 5
    assert holdout["tau"] == pytest.approx(1.0)
    assert holdout["ci_low"] is not None and holdout["ci_low"] < 1.0
    assert holdout["final_training_step"] == rec["final_training_step"]
    # the held-out trials were stopped once past the recommended step, not run to the end
    state = json.loads((cdir / SEARCH_STATE).read_text())
    held = [t for t in state["trials"] if t["job"] == "holdout_good"]
    assert len(held) == 5 and all(t["stop_requested"] for t in held)
    # the search never chose by them: the reference statistics use 8 models
    assert _stats(cdir, "good")["num_pairs_over_step"][0] == 8


def test_the_search_draws_its_summary_figures_and_the_winner_stability(tmp_path: Path) -> None:
    _ctl, cdir = _run_confident(tmp_path, "all_three", early_stop_proxy_task_if_not_best=False)
    for name in ("proxy_task_comparison.png", "tau_vs_zero_training.png", "winner_stability.png"):
        assert (cdir / name).stat().st_size > 5000, name
    rec = json.loads((cdir / "PROXY_TASK_RECOMMENDATION.json").read_text())
    stability = rec["winner_stability"]
    assert stability["observed_winner"] == "good"
    assert stability["frequencies"]["good"] > 0.8  # its ranking is right at every step
    assert stability["draws"] == 200


def test_the_tau_at_stop_is_the_deciding_evaluations_not_the_interpolated_steps(
    tmp_path: Path,
) -> None:
    _ctl, cdir = _run(tmp_path, "late_only")
    stats = _stats(cdir, "late")
    rec = json.loads((cdir / "PROXY_TASK_RECOMMENDATION.json").read_text())
    decided = stats["decided_at_training_step"]
    assert rec["final_training_step"] < decided  # the point rule interpolated back
    tau_at_decided = stats["accuracy_correlation_over_step"][stats["training_steps"].index(decided)]
    assert tau_at_decided >= 0.65
    assert rec["accuracy_correlation_at_stop"] == pytest.approx(tau_at_decided)


def test_reopening_a_finished_search_with_early_stopping_changes_nothing(tmp_path: Path) -> None:
    refs = ReferenceModels.load(str(_model_selection_dir(tmp_path)))
    clock = SimulatedClock()
    cdir = tmp_path / "search"
    # early stopping against the best so far is on; one config at a time, so the late one
    # finishes first, on its own
    settings = point_settings(max_parallel_proxy_tasks=1)
    SearchController.create(_ctx(cdir, clock), refs, _configs("late_then_good"), settings).run()
    before = json.loads((cdir / SEARCH_STATE).read_text())["proxy_tasks_map"]
    assert before["late"]["proxy_task_stats"]["stopping_state"] == "Met desired correlation"
    # the late proxy finished first: a re-score must not judge it by the good one's time
    again = SearchController.resume(_ctx(cdir, clock), refs, _configs("late_then_good"), settings)
    again.run()
    after = json.loads((cdir / SEARCH_STATE).read_text())["proxy_tasks_map"]
    for name in ("late", "good"):
        for key in ("stopping_state", "final_training_steps", "final_training_time_in_hours"):
            assert after[name]["proxy_task_stats"][key] == before[name]["proxy_task_stats"][key]


def test_the_typed_state_reads_back_what_the_search_wrote(tmp_path: Path) -> None:
    _ctl, cdir = _run(tmp_path, "all_three", early_stop_proxy_task_if_not_best=False)
    written = json.loads((cdir / SEARCH_STATE).read_text())
    state = SearchState.load(str(cdir))
    assert state is not None and SearchState.load(str(tmp_path)) is None
    assert state.to_json() == {k: v for k, v in written.items() if k != "version"}
    good = state.proxy_tasks["good"].stats
    assert good.stopping_state is StoppingState.MET_DESIRED_ACCURACY_CORRELATION
    assert state.best_proxy_task_name == "good" and state.done == {"good", "bad", "late"}
    assert state.settings == point_settings(early_stop_proxy_task_if_not_best=False)


def test_resume_without_settings_keeps_the_saved_ones(tmp_path: Path) -> None:
    refs = ReferenceModels.load(str(_model_selection_dir(tmp_path)))
    clock = SimulatedClock()
    cdir = tmp_path / "search"
    settings = point_settings(early_stop_proxy_task_if_not_best=False)
    SearchController.create(_ctx(cdir, clock), refs, _configs("good_only"), settings).run()
    before = (cdir / SEARCH_STATE).read_text()
    again = SearchController.resume(_ctx(cdir, clock), refs, _configs("good_only"))
    assert again.settings == settings
    again.run()
    after = json.loads((cdir / SEARCH_STATE).read_text())
    assert after["proxy_tasks_map"] == json.loads(before)["proxy_tasks_map"]


# ---- stages: fewer slots than reference models ---------------------------------------------


def _run_with_slots(
    cdir: Path, slots: int, generator: str, crash_after: int | None = None, **settings: Any
) -> SearchController:
    """A search on ``slots`` replay slots; with ``crash_after``, killed after that many steps
    and resumed to the end."""
    from proxytask.executors.replay import ReplayExecutor

    refs = ReferenceModels.load(str(_model_selection_dir(cdir.parent / f"{cdir.name}_ms")))
    clock = SimulatedClock()

    def ctx() -> ControllerContext:
        executor = ReplayExecutor(TABLE, clock, max_parallel_trials=slots)
        return dataclasses.replace(_ctx(cdir, clock), executor=executor)

    chosen = point_settings(**settings)
    ctl = SearchController.create(ctx(), refs, _configs(generator), chosen)
    if crash_after is None:
        ctl.run()
        return ctl
    for _ in range(crash_after):
        if ctl.is_finished():
            break
        ctl.step()
        clock.sleep(ctl.tracker.wait_secs(5.0))
    resumed = SearchController.resume(ctx(), refs, _configs(generator), chosen)
    resumed.run()
    return resumed


def _last_steps(ctl: SearchController, name: str) -> list[int]:
    return [m.training_accuracy_over_steps[-1].training_step for m in ctl._metrics(name) if m]


def _answer(cdir: Path, name: str) -> dict[str, Any]:
    stats = _stats(cdir, name)
    keys = ("stopping_state", "final_training_steps", "training_steps")
    return {k: stats[k] for k in (*keys, "accuracy_correlation_over_step")}


def test_with_fewer_slots_than_models_the_search_trains_in_stages(tmp_path: Path) -> None:
    # 8 slots: every model trains at once, no stages; 2 slots: stages of 25 %
    wide = _run_with_slots(tmp_path / "wide", 8, "late_only", stage_pct=25.0)
    narrow = _run_with_slots(tmp_path / "narrow", 2, "late_only", stage_pct=25.0)
    assert {r.job for r in wide.tracker.records.values()} == {"proxy_late"}
    # tau crosses 0.65 between the 6th and 7th evaluation: stages to 30, 50 and 80 %
    jobs = sorted({r.job for r in narrow.tracker.records.values()})
    assert jobs == ["proxy_late", "proxy_late@stage2", "proxy_late@stage3"]
    assert _answer(tmp_path / "narrow", "late") == _answer(tmp_path / "wide", "late")
    assert _stats(tmp_path / "narrow", "late")["stopping_state"] == "Met desired correlation"
    # no model trained past the stage the decision fell in
    assert max(_last_steps(narrow, "late")) == 79
    # each stage continues the stage before from its checkpoint, with its curve
    record = narrow.tracker.records["proxy_late@stage2/3"]
    assert record.continuation is not None and record.continuation["use_checkpoint"]
    assert record.copy_metrics_from == narrow.tracker.records["proxy_late/3"].trial_dir


def test_stage_pct_100_turns_stages_off_and_a_small_one_adds_stages(tmp_path: Path) -> None:
    off = _run_with_slots(tmp_path / "off", 2, "late_only", stage_pct=100.0)
    small = _run_with_slots(tmp_path / "small", 2, "late_only", stage_pct=10.0)
    assert {r.job for r in off.tracker.records.values()} == {"proxy_late"}
    # without stages, the first models train to the end before the last ones start
    assert max(_last_steps(off, "late")) == 99
    assert len({r.job for r in small.tracker.records.values()}) == 7  # 10 % ... 70 %
    assert _answer(tmp_path / "small", "late") == _answer(tmp_path / "off", "late")
    with pytest.raises(UsageError, match="--stage-pct must be in"):
        SearchSettings(stage_pct=0.0)


def test_a_staged_search_killed_at_any_step_resumes_to_the_same_answer(tmp_path: Path) -> None:
    ref = _run_with_slots(tmp_path / "ref", 2, "late_then_good", stage_pct=25.0)
    expected = {n: _answer(tmp_path / "ref", n) for n in ("late", "good")}
    assert ref.best_proxy_task_name == "good"
    for crash_after in range(1, 40, 3):
        cdir = tmp_path / f"crash{crash_after}"
        ctl = _run_with_slots(cdir, 2, "late_then_good", crash_after=crash_after, stage_pct=25.0)
        assert ctl.best_proxy_task_name == "good", crash_after
        assert {n: _answer(cdir, n) for n in ("late", "good")} == expected, crash_after


def _stage_targets(ctl: SearchController, name: str) -> list[float]:
    """The pct each stage of config ``name`` trained to, in stage order (0: to the end)."""
    records = [r for r in ctl.tracker.records.values() if config_of_job(r.job) == name]
    by_job: dict[str, float] = {r.job: r.target_pct for r in records}
    return [by_job[j] for j in sorted(by_job, key=lambda j: (len(j), j))]


def test_auto_stages_go_breadth_first_one_evaluation_at_a_time(tmp_path: Path) -> None:
    # 2 slots for 8 models: the point rule can decide at the first evaluation (10 %), so the
    # first stage ends there and each later one an evaluation on (replayed trials restart
    # at no cost); tau crosses 0.65 between the 6th and 7th evaluation
    auto = _run_with_slots(tmp_path / "auto", 2, "late_only")
    assert _stage_targets(auto, "late") == pytest.approx([10, 20, 30, 40, 50, 60, 70])
    assert max(_last_steps(auto, "late")) == 69  # no model trained past the deciding stage
    _run_with_slots(tmp_path / "off", 2, "late_only", stage_pct=100.0)
    assert _answer(tmp_path / "auto", "late") == _answer(tmp_path / "off", "late")
    # the confident rule needs --persistence evaluations: its first stage goes that far
    confident = _run_with_slots(
        tmp_path / "confident", 2, "late_only", stopping_rule="confident", persistence=3
    )
    assert _stage_targets(confident, "late")[0] == pytest.approx(30)


def test_configs_train_together_so_none_trains_past_the_winners_time(tmp_path: Path) -> None:
    # the late proxy first in the generator's order: one config at a time (the reference
    # tools) trains it to its own decision before the good one starts; breadth-first (auto)
    # stops it at the good one's time
    serial = _run_with_slots(tmp_path / "serial", 2, "late_then_good", max_parallel_proxy_tasks=1)
    together = _run_with_slots(tmp_path / "together", 2, "late_then_good")
    assert serial.best_proxy_task_name == together.best_proxy_task_name == "good"
    assert max(_last_steps(serial, "late")) == 69
    # at most one evaluation on: its next stage had started when the good one qualified
    assert max(_last_steps(together, "late")) <= max(_last_steps(together, "good")) + 10
    assert _answer(tmp_path / "together", "good") == _answer(tmp_path / "serial", "good")
    spent = {
        name: sum(
            m.training_time.total_training_time_in_secs
            for m in ctl._metrics("late") + ctl._metrics("good")
            if m is not None
        )
        for name, ctl in (("serial", serial), ("together", together))
    }
    assert spent["together"] < 0.6 * spent["serial"]


def test_auto_stages_span_more_evaluations_when_restarts_are_slow(tmp_path: Path) -> None:
    from proxytask.controllers import search

    assert search._pace_pct([]) is None
    ctl = _run_with_slots(tmp_path / "slow", 2, "late_only")
    # every replayed trial started at once: no overhead, one evaluation per stage
    assert ctl._evaluations_per_stage("late") == 1
    # a restart that costs 3 evaluations' training (10 s each): 3 / (1/3) = 9 evaluations
    for key, status in list(ctl.tracker.statuses.items()):  # the executor's start times
        if status.started_at is not None:
            ctl.tracker.statuses[key] = dataclasses.replace(
                status, started_at=status.started_at - 30
            )
    assert ctl._evaluations_per_stage("late") == 9
