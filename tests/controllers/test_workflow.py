"""`proxytask run`: the whole workflow on the replay executor, and bad workflow files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxytask import cli
from proxytask.executors.replay import ReplayTable

TOTAL = 200


def _curves() -> ReplayTable:
    curves = []
    for width in (8, 16, 32, 64):
        for depth in (1, 2, 3):
            final = 0.5 + 0.1 * depth + width / 200
            arch = {"width": width, "depth": depth}
            full = [[10 * k - 1, final * (1 - 0.8 * (1 - k / 20) ** 2), 5.0] for k in range(1, 21)]
            # evaluated 4 times: with 6 reference models a perfect ranking passes the confident
            # rule at each look (one look of 20 would need more models: 1/20 of 0.15 each)
            proxy = [[50 * k - 1, final * (k / 4) ** 0.5, 1.0] for k in range(1, 5)]
            curves.append(
                {
                    "curve_id": f"w{width}d{depth}",
                    "match": {"nas_params": arch},
                    "total_steps": TOTAL,
                    "latency": width * depth / 10,
                    "points": full,
                }
            )
            curves.append(
                {
                    "curve_id": f"w{width}d{depth}-good",
                    "match": {"nas_params": arch, "trainer_args": {"proxy": "good"}},
                    "total_steps": TOTAL,
                    "latency": width * depth / 20,
                    "points": proxy,
                }
            )
    for width in (8, 16, 32, 64):  # copies given their own seed: a different final each
        for depth in (1, 2, 3):
            arch = {"width": width, "depth": depth}
            for seed in (1, 2, 3):
                final = 0.5 + 0.1 * depth + width / 200 - 0.05 * seed
                points = [[10 * k - 1, final * k / 20, 5.0] for k in range(1, 21)]
                curves.append(
                    {
                        "curve_id": f"w{width}d{depth}s{seed}",
                        "match": {"nas_params": arch, "trainer_args": {"seed": seed}},
                        "total_steps": TOTAL,
                        "latency": 1.0,
                        "points": points,
                    }
                )
    return ReplayTable.from_dict(
        {"format": "proxytask-replay-table", "version": 1, "curves": curves}
    )


def _config(tmp_path: Path, **changes: Any) -> Path:
    table = tmp_path / "table.json"
    table.write_text(json.dumps(_curves().to_dict()))
    data: dict[str, Any] = {
        "trainer": "replay",
        "search-space": "tests.fixtures.spaces:tiny",
        "root-output-dir": str(tmp_path / "runs"),
        "job-name": "wf",
        "executor": "replay",
        "replay-table": str(table),
        "max-parallel-trials": 8,
        "variance": {"num-copies": 3},
        "model-selection": {
            "start-num-models": 8,
            "final-num-models": 6,
            "num-models-to-remove-per-iter": 2,
        },
        "search": {"proxy-task-config-generator": "tests.fixtures.proxy_generators:good_only"},
    }
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / "workflow.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_workflow_from_an_empty_dir_to_the_recommendation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path)
    assert cli.main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "== variance" in out and "== model selection" in out and "== search" in out
    assert "report (each stage's plots and state files):" in out
    assert re.search(r"  search: .*Search_controller_wf_\S+ \([1-9]\d* plots\)", out), out
    wdir = tmp_path / "runs" / "Workflow_wf"
    rec = json.loads((wdir / "RECOMMENDATION.json").read_text())
    assert rec["recommendation"]["best_proxy_task_name"] == "good"
    assert rec["recommendation"]["training_steps"] == rec["recommendation"]["cosine_decay_steps"]
    assert rec["variance"]["variance_good"] is True
    assert rec["reward_range"]["ok"] is True
    assert rec["failure_rates"]["model_selection"]["failed"] == 0
    state = json.loads((wdir / "WORKFLOW_STATE.json").read_text())
    assert {k: v["status"] for k, v in state["stages"].items()} == {
        "variance": "done",
        "model_selection": "done",
        "search": "done",
    }
    # status understands workflow dirs and each tool's dir
    assert cli.main(["status", str(wdir)]) == 0
    out = capsys.readouterr().out
    assert "(workflow)" in out and "variance: done" in out
    assert "recommended proxy task: good" in out
    assert cli.main(["status", state["stages"]["search"]["dir"]]) == 0
    out = capsys.readouterr().out
    assert "good: Met desired correlation" in out and "best proxy task so far: good" in out
    assert cli.main(["status", state["stages"]["model_selection"]["dir"]]) == 0
    assert "6 reference models; cost" in capsys.readouterr().out
    # running it again skips every finished stage and gives the same recommendation
    assert cli.main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("finished earlier, skipped") == 3
    again = json.loads((wdir / "RECOMMENDATION.json").read_text())
    assert again["recommendation"] == rec["recommendation"]


def test_a_bad_variance_blocks_the_next_stage_until_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(
        tmp_path, variance={"num-copies": 3, "copy-seed-flag": "seed", "max-variance": 0.001}
    )
    assert cli.main(["run", str(path)]) == 0  # an answer, even a negative one
    out = capsys.readouterr().out
    assert "stopped: training is not repeatable or smooth enough" in out
    assert "NOT GOOD" in out
    wdir = tmp_path / "runs" / "Workflow_wf"
    assert not (wdir / "RECOMMENDATION.json").exists()
    assert cli.main(["run", str(path), "--force"]) == 0
    out = capsys.readouterr().out
    assert "variance: finished earlier, skipped" in out
    assert "going on despite the variance verdict (--force)" in out
    rec = json.loads((wdir / "RECOMMENDATION.json").read_text())
    assert rec["variance"]["variance_good"] is False
    assert rec["recommendation"]["best_proxy_task_name"] == "good"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"jobname": "x"}, "config key 'jobname'"),
        (
            {"max-parallel-trials": "many"},
            "config key 'max-parallel-trials' must be a whole number",
        ),
        ({"trainer": None}, "config key 'trainer'"),
        ({"search-space": "no_such_pkg.space:fn"}, "must name an importable module"),
        (
            {"search": {"proxy-task-config-generator": "tests.fixtures.generators:empty"}},
            "must return a non-empty list",
        ),
        (
            {
                "search": {
                    "proxy-task-config-generator": "tests.fixtures.proxy_generators:good_only",
                    "desired-accuracy-correlation": 2,
                }
            },
            "must be a correlation in [-1, 1]",
        ),
        ({"variance": {"num-copies": 0}}, "config key 'num-copies' must be a whole number >= 1"),
        ({"variance": {"numcopies": 3}}, "config key 'variance.numcopies'"),
        ({"search": "fast"}, "config key 'search' in"),
    ],
)
def test_bad_workflow_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any], message: str
) -> None:
    path = _config(tmp_path, **changes)
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("interrupt_at", [2, 12, 25, 40, 47])  # variance, selection, search
def test_a_kill_during_a_stage_then_run_again_gives_the_same_recommendation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupt_at: int
) -> None:
    from proxytask.core.clock import SimulatedClock

    reference = tmp_path / "ref"
    reference.mkdir()
    assert cli.main(["run", str(_config(reference))]) == 0
    expected = json.loads((reference / "runs" / "Workflow_wf" / "RECOMMENDATION.json").read_text())

    calls = {"n": 0}
    original = SimulatedClock.sleep

    def dying_sleep(self: SimulatedClock, seconds: float) -> None:
        calls["n"] += 1
        if calls["n"] == interrupt_at:
            raise KeyboardInterrupt  # the controller is killed here
        original(self, seconds)

    path = _config(tmp_path)
    monkeypatch.setattr(SimulatedClock, "sleep", dying_sleep)
    assert cli.main(["run", str(path)]) == 130
    monkeypatch.setattr(SimulatedClock, "sleep", original)
    wdir = tmp_path / "runs" / "Workflow_wf"
    state = json.loads((wdir / "WORKFLOW_STATE.json").read_text())
    assert "running" in {v["status"] for v in state["stages"].values()}
    assert cli.main(["run", str(path)]) == 0
    rec = json.loads((wdir / "RECOMMENDATION.json").read_text())
    assert rec["recommendation"] == expected["recommendation"]


def _scaled_config(tmp_path: Path, **final_checks: Any) -> Path:
    return _config(
        tmp_path,
        **{
            "model-selection": {
                "start-num-models": 8,
                "final-num-models": 6,
                "num-models-to-remove-per-iter": 2,
                "baseline-architecture": '{"width": 32, "depth": 2}',
            },
            "search": {
                "proxy-task-config-generator": "tests.fixtures.proxy_generators:good_scaled"
            },
            "final-checks": final_checks or None,
        },
    )


def test_a_model_scaling_proxy_measures_the_baseline_and_gives_a_stricter_constraint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _scaled_config(tmp_path, **{"latency-constraint": 8.0})
    assert cli.main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "== final checks" in out
    wdir = tmp_path / "runs" / "Workflow_wf"
    rec = json.loads((wdir / "RECOMMENDATION.json").read_text())
    check = rec["latency_constraint"]
    # the replay table: full w32d2 runs 6.4, under the good proxy 3.2 (the proxy's curve)
    assert check["method"] == "measured"
    assert check["scaled_by"] == ["width_multiplier"]
    assert check["baseline_latency_full"] == pytest.approx(6.4)
    assert check["baseline_latency_scaled"] == pytest.approx(3.2)
    assert check["latency_ratio_scaled_to_full"] == pytest.approx(0.5)
    assert check["proxy_latency_constraint"] == pytest.approx(4.0)
    assert "use the latency constraint 4 in the search instead of 8" in check["advice"]
    # the baseline ran once, with the proxy's flags, in its own controller dir
    state = json.loads((wdir / "WORKFLOW_STATE.json").read_text())
    fdir = Path(state["stages"]["final_checks"]["dir"])
    assert fdir.name.startswith("Final_checks_wf_")
    saved = json.loads((fdir / "FINAL_CHECKS_STATE.json").read_text())
    (trial,) = saved["trials"]
    assert trial["nas_params"] == {"width": 32, "depth": 2}
    assert trial["trainer_args"]["width_multiplier"] == "0.5"
    # only as far as a latency needs: stopped after its first evaluation (of 10)
    assert trial["target_pct"] == pytest.approx(1e-3)
    points = json.loads((Path(trial["trial_dir"]) / "TRIAL_TRAINING_METRICS.json").read_text())
    assert len(points["training_accuracy_over_steps"]) == 1
    assert rec["failure_rates"]["final_checks"]["failed"] == 0
    assert cli.main(["status", str(fdir)]) == 0
    assert "scaled baseline latency: 3.2" in capsys.readouterr().out
    # a second run skips the measurement too and keeps the answer
    assert cli.main(["run", str(path)]) == 0
    assert capsys.readouterr().out.count("finished earlier, skipped") == 4
    again = json.loads((wdir / "RECOMMENDATION.json").read_text())
    assert again["latency_constraint"] == check


def test_without_a_baseline_architecture_the_ratio_is_estimated_and_says_why(
    tmp_path: Path,
) -> None:
    path = _config(
        tmp_path,
        search={"proxy-task-config-generator": "tests.fixtures.proxy_generators:good_scaled"},
    )
    assert cli.main(["run", str(path)]) == 0
    wdir = tmp_path / "runs" / "Workflow_wf"
    check = json.loads((wdir / "RECOMMENDATION.json").read_text())["latency_constraint"]
    assert check["method"] == "estimated_from_reference_models"
    assert check["latency_ratio_scaled_to_full"] == pytest.approx(0.5)
    assert "baseline-architecture" in check["problem"]
    assert check["proxy_latency_constraint"] is None  # no target given
    assert "becomes 0.5·T" in check["advice"]
    state = json.loads((wdir / "WORKFLOW_STATE.json").read_text())
    assert "final_checks" not in state["stages"]


def test_a_proxy_that_does_not_scale_the_model_needs_no_latency_check(tmp_path: Path) -> None:
    path = _config(tmp_path, **{"final-checks": {"latency-constraint": 8.0}})
    assert cli.main(["run", str(path)]) == 0
    rec = json.loads((tmp_path / "runs" / "Workflow_wf" / "RECOMMENDATION.json").read_text())
    assert rec["latency_constraint"] is None


def test_a_kill_while_measuring_the_scaled_baseline_resumes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from proxytask.controllers.final_checks import ScaledBaselineController

    path = _scaled_config(tmp_path, **{"latency-constraint": 8.0})
    original = ScaledBaselineController.step
    calls = {"n": 0}

    def dying_step(self: ScaledBaselineController) -> None:
        calls["n"] += 1
        original(self)
        if calls["n"] == 1:
            raise KeyboardInterrupt  # killed with the baseline launched

    monkeypatch.setattr(ScaledBaselineController, "step", dying_step)
    assert cli.main(["run", str(path)]) == 130
    wdir = tmp_path / "runs" / "Workflow_wf"
    state = json.loads((wdir / "WORKFLOW_STATE.json").read_text())
    assert state["stages"]["final_checks"]["status"] == "running"
    monkeypatch.setattr(ScaledBaselineController, "step", original)
    assert cli.main(["run", str(path)]) == 0
    check = json.loads((wdir / "RECOMMENDATION.json").read_text())["latency_constraint"]
    assert check["method"] == "measured"
    assert check["proxy_latency_constraint"] == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("final_checks", "message"),
    [
        ({"latency-constraint": -1}, "config key 'latency-constraint' must be a finite number > 0"),
        ({"latency-constraint": "fast"}, "config key 'latency-constraint' must be a number"),
        ({"latencyconstraint": 3}, "config key 'final-checks.latencyconstraint'"),
        ({"measure-scaled-baseline": "maybe"}, "must be true or false"),
    ],
)
def test_bad_final_checks_sections(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], final_checks: dict[str, Any], message: str
) -> None:
    path = _config(tmp_path, **{"final-checks": final_checks})
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_held_out_models_check_the_winner_end_to_end(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        **{
            "model-selection": {
                "start-num-models": 12,
                "final-num-models": 6,
                "num-models-to-remove-per-iter": 1,
                "num-holdout-models": 5,
            }
        },
    )
    assert cli.main(["run", str(path)]) == 0
    wdir = tmp_path / "runs" / "Workflow_wf"
    state = json.loads((wdir / "WORKFLOW_STATE.json").read_text())
    refs = json.loads(
        (Path(state["stages"]["model_selection"]["dir"]) / "REFERENCE_MODELS.json").read_text()
    )
    assert refs["num_reference_models"] == 6 and refs["num_holdout_models"] == 5
    ref_ids = {m["trial_id"] for m in refs["reference_models"]}
    held_ids = {m["trial_id"] for m in refs["holdout_models"]}
    assert not ref_ids & held_ids  # disjoint: the search never chooses by a held-out model
    rec = json.loads((wdir / "RECOMMENDATION.json").read_text())["recommendation"]
    assert rec["holdout"]["n"] == 5 and rec["holdout"]["statistic"] == "Kendall tau-b"
    assert rec["holdout"]["tau"] is not None


def test_too_few_start_models_for_the_held_out_ones_is_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(
        tmp_path,
        **{
            "model-selection": {
                "start-num-models": 8,
                "final-num-models": 6,
                "num-holdout-models": 3,
            }
        },
    )
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "--start-num-models must be >= --final-num-models + --num-holdout-models (9)" in err


def test_changed_variance_thresholds_judge_the_finished_measurement_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strict = {"num-copies": 3, "copy-seed-flag": "seed", "max-variance": 0.001}
    assert cli.main(["run", str(_config(tmp_path, variance=strict))]) == 0
    out = capsys.readouterr().out
    assert "stopped: training is not repeatable" in out and "NOT GOOD" in out
    loose = {**strict, "max-variance": 0.4}
    assert cli.main(["run", str(_config(tmp_path, variance=loose))]) == 0
    out = capsys.readouterr().out
    assert "variance: finished earlier, skipped" in out
    assert "(threshold 0.4): good" in out
    rec = json.loads((tmp_path / "runs" / "Workflow_wf" / "RECOMMENDATION.json").read_text())
    assert rec["variance"]["variance_good"] is True  # judged with the thresholds of the file


def test_a_stage_resumed_in_flight_keeps_its_defining_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from proxytask.controllers.selection import ModelSelectionController

    original = ModelSelectionController.step
    calls = {"n": 0}

    def dying_step(self: ModelSelectionController) -> None:
        calls["n"] += 1
        original(self)
        if calls["n"] == 3:  # inside model selection
            raise KeyboardInterrupt

    monkeypatch.setattr(ModelSelectionController, "step", dying_step)
    assert cli.main(["run", str(_config(tmp_path))]) == 130
    monkeypatch.setattr(ModelSelectionController, "step", original)
    changed = {"start-num-models": 10, "final-num-models": 6, "num-models-to-remove-per-iter": 2}
    assert cli.main(["run", str(_config(tmp_path, **{"model-selection": changed}))]) == 0
    err = capsys.readouterr().err
    assert "keeping start-num-models=8 of the run being resumed (given 10)" in err
    state = json.loads((tmp_path / "runs" / "Workflow_wf" / "WORKFLOW_STATE.json").read_text())
    selection = json.loads(
        (Path(state["stages"]["model_selection"]["dir"]) / "MODEL_SELECTION_STATE.json").read_text()
    )
    assert selection["start_num_models"] == 8


def test_the_workflow_controller_steps_one_stage_at_a_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from proxytask.controllers.workflow import (
        StageStatus,
        WorkflowController,
        load_workflow_state,
        resolve_workflow,
    )

    wdir, values = resolve_workflow(str(_config(tmp_path)), live=False)
    ctl = WorkflowController(wdir, values)
    ctl.step()
    state = load_workflow_state(wdir)
    assert list(state.stages) == ["variance"] and not ctl.is_finished()
    assert state.stage("variance").status is StageStatus.DONE
    ctl.step()
    assert load_workflow_state(wdir).stage("model_selection").status is StageStatus.DONE
    assert ctl.run() == 0 and ctl.is_finished()
    assert (Path(wdir) / "RECOMMENDATION.json").exists()
    assert "recommendation:" in capsys.readouterr().out


def test_workflow_state_codec_keeps_the_file_as_it_was(tmp_path: Path) -> None:
    from proxytask.controllers.workflow import (
        StageEntry,
        StageStatus,
        WorkflowState,
        load_workflow_state,
        save_workflow_state,
    )

    state = WorkflowState().with_stage("variance", StageEntry("/v", StageStatus.DONE))
    state = state.with_stage("final_checks", StageEntry("/f", StageStatus.RUNNING, "good"))
    save_workflow_state(str(tmp_path), state)
    raw = (tmp_path / "WORKFLOW_STATE.json").read_text()
    assert json.loads(raw) == {
        "version": 1,
        "stages": {
            "variance": {"dir": "/v", "status": "done"},
            "final_checks": {"proxy_task_name": "good", "dir": "/f", "status": "running"},
        },
    }
    assert list(json.loads(raw)["stages"]["final_checks"]) == ["proxy_task_name", "dir", "status"]
    assert load_workflow_state(str(tmp_path)) == state
    assert load_workflow_state(str(tmp_path / "new")) == WorkflowState()


def test_final_checks_are_frozen_values_with_the_file_keys(tmp_path: Path) -> None:
    from proxytask.controllers.final_checks import (
        LatencyCheck,
        LatencyMethod,
        failure_rate,
        judge_variance,
    )
    from proxytask.core import layout

    judged = judge_variance({"variance_value": 0.1, "smoothness_value": 20.0}, 0.4, 10.0)
    assert not judged.good and judged.result["variance_good"] is True
    assert judged.lines == (
        "  variance 0.1 (threshold 0.4): good",
        "  smoothness 20 (threshold 10): NOT GOOD",
    )
    assert judge_variance({}, 0.4, 10.0).good
    trials = [{"state": "failed", "cause": "oom"}, {"state": "failed"}, {"state": "succeeded"}]
    (tmp_path / layout.SEARCH_STATE).write_text(json.dumps({"trials": trials}))
    rate = failure_rate(str(tmp_path), layout.KIND_SEARCH)
    assert rate.to_dict() == {
        "trials": 3,
        "failed": 2,
        "rate": pytest.approx(2 / 3),
        "causes": {"oom": 1, "crash": 1},
    }
    unavailable = LatencyCheck(("w",), None, LatencyMethod.UNAVAILABLE, None, "a", problem="p")
    assert list(unavailable.to_dict()) == [
        "scaled_by",
        "latency_constraint",
        "method",
        "problem",
        "proxy_latency_constraint",
        "advice",
    ]


def test_a_selection_left_too_short_for_a_search_stops_the_workflow_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # 8 -> 6 models in two rounds; three of the final round's crash: 3 reference models,
    # too few for any rank correlation. The stage counts as failed, the search does not
    # start, and the next run resumes the selection, which trains the failed ones again.
    from proxytask.executors.replay import Fault, ReplayExecutor

    original = ReplayExecutor.__init__
    crash = {f"round2/{n}": Fault.parse("crash@50") for n in (1, 3, 5)}

    def with_faults(self: ReplayExecutor, *args: Any, **kwargs: Any) -> None:
        kwargs["faults"] = crash
        original(self, *args, **kwargs)

    path = _config(tmp_path)
    monkeypatch.setattr(ReplayExecutor, "__init__", with_faults)
    assert cli.main(["run", str(path)]) == 1
    out = capsys.readouterr().out
    assert "model selection finished 3 reference models" in out and "== search" not in out
    wdir = tmp_path / "runs" / "Workflow_wf"
    state = json.loads((wdir / "WORKFLOW_STATE.json").read_text())
    assert state["stages"]["model_selection"]["status"] == "failed"
    monkeypatch.setattr(ReplayExecutor, "__init__", original)  # the cause fixed
    assert cli.main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "retrying 3 failed trials of round2" in out and "== search" in out
    sdir = Path(
        json.loads((wdir / "WORKFLOW_STATE.json").read_text())["stages"]["model_selection"]["dir"]
    )
    refs = json.loads((sdir / "REFERENCE_MODELS.json").read_text())["reference_models"]
    assert len(refs) == 6
