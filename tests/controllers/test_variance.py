"""The variance-measurement controller on the replay executor and on real subprocesses."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from proxytask import cli
from proxytask.controllers.base import ControllerContext
from proxytask.controllers.tracker import TrialSettings
from proxytask.controllers.variance import (
    MEASUREMENT_STATE,
    RESULT_FILE,
    VarianceController,
    VarianceSettings,
)
from proxytask.core import storage
from proxytask.core.clock import SimulatedClock
from proxytask.core.space import load_search_space
from proxytask.executors.command import parse_trainer_command
from proxytask.executors.replay import Fault, ReplayExecutor, ReplayTable

SPACE = load_search_space("tests.fixtures.spaces:tiny")
FINALS = [0.90, 0.92, 0.94, 0.91, 0.93]


def _table() -> ReplayTable:
    """Five recorded copies for every width of the tiny space (dealt by trial number)."""
    curves = []
    for width in (8, 16, 32, 64):
        for k, final in enumerate(FINALS):
            points = [
                [9, 0.3 * final, 10.0],
                [29, 0.6 * final, 20.0],
                [59, (0.85 + 0.01 * k) * final, 30.0],
                [79, 0.95 * final, 20.0],
                [99, final, 20.0],
            ]
            curves.append(
                {
                    "curve_id": f"w{width}-c{k}",
                    "match": {"nas_params": {"width": width}},
                    "total_steps": 100,
                    "latency": 1.0,
                    "points": points,
                }
            )
    return ReplayTable.from_dict(
        {"format": "proxytask-replay-table", "version": 1, "curves": curves}
    )


def _ctx(
    cdir: Path, clock: SimulatedClock, faults: dict[str, Any] | None = None
) -> ControllerContext:
    executor = ReplayExecutor(_table(), clock, max_parallel_trials=2, faults=faults or {})
    return ControllerContext(
        controller_dir=str(cdir),
        executor=executor,
        clock=clock,
        trial_settings=TrialSettings(
            trainer=parse_trainer_command("replay"), report_timeout_secs=600
        ),
        baseline_args={"lr": "0.1"},
        options={},
        poll_interval_secs=5.0,
    )


def _run(cdir: Path, faults: dict[str, Any] | None = None, **settings: Any) -> VarianceController:
    clock = SimulatedClock()
    ctl = VarianceController.create(_ctx(cdir, clock, faults), SPACE, VarianceSettings(**settings))
    ctl.run()
    return ctl


def _result(cdir: Path) -> dict[str, Any]:
    return json.loads((cdir / RESULT_FILE).read_text())


def test_clean_measurement(tmp_path: Path) -> None:
    ctl = _run(tmp_path / "c")
    assert ctl.phase == "done"
    result = _result(tmp_path / "c")
    assert result["final_accuracies"] == FINALS
    mean = sum(FINALS) / 5
    std = (sum((a - mean) ** 2 for a in FINALS) / 5) ** 0.5
    assert result["variance_value"] == pytest.approx(std / mean)
    assert result["variance_good"] and result["smoothness_good"]
    assert result["smoothness_value"] == pytest.approx(0.0)
    lo, hi = result["std_confidence_interval"]
    assert lo < result["sample_std"] < hi
    assert result["num_copies_finished"] == 5 and result["failed_copies"] == []
    assert len(result["per_step_spread"]["pct"]) >= 5
    state = json.loads((tmp_path / "c" / MEASUREMENT_STATE).read_text())
    assert state["workable_model_dir"].endswith("jobs/workable/1")
    assert state["training_job_name"] == "copies"
    assert len(state["finished_model_dirs"]) == 5
    assert (tmp_path / "c" / "variance_curves.png").read_bytes()[:4] == b"\x89PNG"
    # copies continue the workable trial's architecture, from scratch, as the reference
    args = (tmp_path / "c" / "jobs" / "copies" / "3" / "stdout.log").exists()
    assert args or (tmp_path / "c" / "jobs" / "copies" / "3").exists()


def test_workable_model_found_after_injected_failures(tmp_path: Path) -> None:
    faults = {
        "workable/1": Fault.parse("crash"),
        "workable/2": Fault.parse("nan"),
        "workable/3": Fault.parse("oom"),
    }
    ctl = _run(tmp_path / "c", faults)
    assert ctl.phase == "done"
    records = ctl.tracker.records
    assert [records[f"workable/{i}"].cause for i in (1, 2, 3)] == ["crash", "nan", "oom"]
    assert records["workable/4"].state == "succeeded"
    assert ctl.workable_key == "workable/4"
    assert records["workable/4"].nas_params == SPACE.sample(0, 3)


def test_no_workable_model_names_the_causes(tmp_path: Path) -> None:
    faults = {f"workable/{i}": Fault.parse("oom" if i % 2 else "nan") for i in range(1, 11)}
    ctl = _run(tmp_path / "c", faults)
    assert ctl.phase == "failed"
    assert ctl.error is not None
    assert "no workable model after 10 tries" in ctl.error
    assert "5× oom (lower the batch size" in ctl.error
    assert "5× nan (lower the learning rate" in ctl.error
    assert not (tmp_path / "c" / RESULT_FILE).exists()


def test_a_given_architecture_is_measured_instead_of_a_sampled_one(tmp_path: Path) -> None:
    arch = {"width": 64, "depth": 3}
    assert all(SPACE.sample(0, k) != arch for k in range(2))
    ctl = _run(tmp_path / "c", architecture=arch)
    assert ctl.phase == "done"
    assert ctl.workable_key == "workable/1"
    assert ctl.tracker.records["workable/1"].nas_params == arch
    assert _result(tmp_path / "c")["architecture"] == arch


def test_a_given_architecture_that_fails_is_not_replaced_by_a_sampled_one(tmp_path: Path) -> None:
    ctl = _run(tmp_path / "c", {"workable/1": Fault.parse("nan")}, architecture={"width": 8})
    assert ctl.phase == "failed"
    assert ctl.error is not None
    assert "the given architecture did not train to 1 %" in ctl.error
    assert "1× nan (lower the learning rate" in ctl.error
    assert [r.key for r in ctl.tracker.records.values()] == ["workable/1"]


def test_a_failed_copy_is_tolerated_while_three_finish(tmp_path: Path) -> None:
    faults = {"copies/2": Fault.parse("crash@50"), "copies/4": Fault.parse("nan@70")}
    ctl = _run(tmp_path / "c", faults)
    assert ctl.phase == "done"
    result = _result(tmp_path / "c")
    assert result["num_copies_finished"] == 3
    assert [f["cause"] for f in result["failed_copies"]] == ["crash", "nan"]
    assert result["final_accuracies"] == [FINALS[0], FINALS[2], FINALS[4]]
    assert any("nan:" in a for a in result["advice"])


def test_too_few_copies_fail_the_measurement(tmp_path: Path) -> None:
    faults = {f"copies/{i}": Fault.parse("crash@50") for i in (1, 2, 3)}
    ctl = _run(tmp_path / "c", faults)
    assert ctl.phase == "failed"
    assert ctl.error is not None and "only 2 of 5 copies finished" in ctl.error


def test_bad_variance_gets_the_advice(tmp_path: Path) -> None:
    ctl = _run(tmp_path / "c", max_variance=0.001)
    assert ctl.phase == "done"
    result = _result(tmp_path / "c")
    assert not result["variance_good"]
    assert result["variance_info"].startswith("Model variance is not good, measured:")
    assert any("cosine" in a for a in result["advice"])
    assert any("EMA" in a for a in result["advice"])
    assert any("augmentation" in a for a in result["advice"])
    assert any("NOT GOOD" in line for line in ctl.summary())


def _normalise(result: dict[str, Any], cdir: Path) -> str:
    return json.dumps(result, sort_keys=True).replace(str(cdir), "<dir>")


def test_crash_between_any_two_steps_then_resume_gives_the_same_result(tmp_path: Path) -> None:
    faults = {"workable/1": Fault.parse("crash@5"), "copies/5": Fault.parse("crash@50")}
    # uninterrupted: count its steps
    clock = SimulatedClock()
    ref_dir = tmp_path / "ref"
    ref = VarianceController.create(_ctx(ref_dir, clock, faults), SPACE, VarianceSettings())
    steps = 0
    while not ref.is_finished():
        ref.step()
        steps += 1
        clock.sleep(ref.tracker.wait_secs(5.0))
    expected = _normalise(_result(ref_dir), ref_dir)
    assert steps > 5
    for crash_after in range(0, steps):
        cdir = tmp_path / f"crash{crash_after}"
        clock = SimulatedClock()
        first = VarianceController.create(_ctx(cdir, clock, faults), SPACE, VarianceSettings())
        for _ in range(crash_after):
            first.step()
            clock.sleep(first.tracker.wait_secs(5.0))
        # the controller dies: its executor (and every trial it ran) is gone with it
        resumed = VarianceController.resume(_ctx(cdir, clock, faults), SPACE, VarianceSettings())
        resumed.run()
        assert resumed.phase == "done", (crash_after, resumed.error)
        assert _normalise(_result(cdir), cdir) == expected, crash_after
        state = json.loads((cdir / MEASUREMENT_STATE).read_text())
        assert all(t["state"] in ("succeeded", "failed") for t in state["trials"])


def test_resume_of_a_finished_measurement_does_no_work(tmp_path: Path) -> None:
    cdir = tmp_path / "c"
    _run(cdir)
    before = (cdir / RESULT_FILE).read_text()
    clock = SimulatedClock(start=2_000_000_000.0)
    ctl = VarianceController.resume(_ctx(cdir, clock), SPACE, VarianceSettings())
    ctl.run()
    assert ctl.phase == "done" and (cdir / RESULT_FILE).read_text() == before
    assert ctl.ctx.executor.known_trials() == []


# ---- real subprocesses through the CLI --------------------------------------------------------


def _cli(tmp_path: Path, trainer: str, *extra: str) -> list[str]:
    return [
        "variance",
        f"--trainer={trainer}",
        "--search-space=tests.fixtures.spaces:tiny",
        f"--root-output-dir={tmp_path / 'runs'}",
        "--job-name=v",
        "--max-parallel-trials=2",
        *extra,
    ]


FAKE = f"{sys.executable} -m proxytask.testing.fake_trainer"


@pytest.mark.parametrize(
    ("trainer", "args", "cause"),
    [
        (FAKE, ["--trainer-args", "behaviour=nan", "fail_cycle=0", "cycle_secs=0.01"], "10× nan"),
        (
            FAKE,
            ["--trainer-args", "behaviour=crash", "fail_cycle=0", "cycle_secs=0.01"],
            "10× crash",
        ),
        (f"{sys.executable} -c pass", [], "10× no_report"),
        (
            FAKE,
            ["--trainer-args", "behaviour=hang", "fail_cycle=0", "--report-timeout-secs=0.5"],
            "10× no_report",
        ),
    ],
)
def test_failing_trainers_end_with_the_right_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trainer: str, args: list[str], cause: str
) -> None:
    code = cli.main(_cli(tmp_path, trainer, *args))
    out = capsys.readouterr().out
    assert code == 1
    assert "variance measurement failed: no workable model after 10 tries" in out
    assert cause in out


def test_cli_measurement_with_the_fake_trainer_and_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--trainer-args", "cycles=4", "cycle_secs=0.01", "--copy-seed-flag=seed"]
    assert cli.main(_cli(tmp_path, FAKE, *args)) == 0
    out = capsys.readouterr().out
    assert "variance (CV of final accuracy):" in out and "results:" in out
    (cdir,) = (tmp_path / "runs").iterdir()
    assert cdir.name.startswith("Variance_Measurement_v_")
    result = json.loads((cdir / RESULT_FILE).read_text())
    assert result["num_copies_finished"] == 5
    copy_args = [
        storage.read_json(str(cdir / "jobs" / "copies" / str(k) / "nas_params_str.json"))
        for k in (1, 5)
    ]
    assert copy_args[0] == copy_args[1]
    # resuming a finished measurement needs only the dir and does no work
    assert cli.main(["variance", f"--previous-variance-dir={cdir}"]) == 0
    assert json.loads((cdir / RESULT_FILE).read_text()) == result


def test_cli_measures_the_architecture_it_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--trainer-args", "cycles=3", "cycle_secs=0.01", "--num-copies=3"]
    arch = '{"width": 32, "depth": 2}'
    assert cli.main(_cli(tmp_path, FAKE, *args, f"--architecture={arch}")) == 0
    assert "training the given architecture" in capsys.readouterr().out
    (cdir,) = (tmp_path / "runs").iterdir()
    assert json.loads((cdir / RESULT_FILE).read_text())["architecture"] == json.loads(arch)


def test_cli_resume_of_a_dir_that_is_not_a_measurement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["variance", f"--previous-variance-dir={tmp_path}"]) == 2
    assert "holds no CONTROLLER_INFO.json" in capsys.readouterr().err


def test_the_result_codec_round_trips_the_file(tmp_path: Path) -> None:
    from proxytask.controllers.variance import VarianceResult, read_variance_result

    faults = {"copies/2": Fault.parse("crash@50")}
    ctl = _run(tmp_path / "c", faults, max_variance=0.001)
    loaded = read_variance_result(str(tmp_path / "c"))
    assert loaded is not None and loaded == ctl.result()
    assert isinstance(loaded, VarianceResult) and loaded.failed_copies[0].cause == "crash"
    assert loaded.to_json() == _result(tmp_path / "c")
