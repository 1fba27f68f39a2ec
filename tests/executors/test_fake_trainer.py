"""The fake trainer used by the local-executor tests: a real trainer of the contract."""

from __future__ import annotations

import json
import pathlib

import pytest

from proxytask.core import layout, storage
from proxytask.core.errors import NonFiniteMetricError
from proxytask.testing import fake_trainer as ft
from proxytask.trainer import contract as trainer

ARCHS = [{"width": w, "depth": d} for w in (8, 16, 32) for d in (1, 2)]


def test_accuracy_depends_only_on_the_architecture_and_ranks_stay_put() -> None:
    finals = [ft.final_accuracy(a) for a in ARCHS]
    assert all(0.5 <= f < 0.95 for f in finals)
    assert finals == [ft.final_accuracy(dict(reversed(list(a.items())))) for a in ARCHS]
    assert len(set(finals)) == len(finals)
    ranking = sorted(range(len(ARCHS)), key=lambda i: finals[i])
    for pct in (5.0, 33.0, 80.0):
        at = [ft.accuracy_at(a, pct) for a in ARCHS]
        assert sorted(range(len(ARCHS)), key=lambda i: at[i]) == ranking
    assert ft.accuracy_at(ARCHS[0], 100.0) == pytest.approx(finals[0])
    assert 1.0 <= ft.latency_of(ARCHS[0]) < 10.0


def _args(job_dir: pathlib.Path, *extra: str) -> list[str]:
    return [f"--job-dir={job_dir}", "--cycles=4", "--cycle_secs=0", "--total_steps=400", *extra]


def test_an_ok_run_reports_the_curve_and_latency(tmp_path: pathlib.Path) -> None:
    arch = ARCHS[3]
    nas = json.dumps(arch)
    assert ft.run([*_args(tmp_path, f"--nas_params_str={nas}"), "--unknown_flag=x"]) == 0
    metrics = trainer.read_trial_training_metrics(str(tmp_path))
    assert metrics is not None
    assert [p.training_step for p in metrics.training_accuracy_over_steps] == [99, 199, 299, 399]
    assert metrics.training_accuracy_over_steps[-1].accuracy == pytest.approx(
        ft.final_accuracy(arch)
    )
    assert metrics.latency == pytest.approx(ft.latency_of(arch))
    assert trainer.load_nas_params(str(tmp_path)) == arch


def test_nan_goes_through_the_trainer_api(tmp_path: pathlib.Path) -> None:
    with pytest.raises(NonFiniteMetricError):
        ft.run(_args(tmp_path, '--nas_params_str={"a": 1}', "--behaviour=nan"))
    failure = storage.read_json(layout.trial_file(str(tmp_path), layout.TRIAL_FAILURE))
    assert failure is not None and failure["cause"] == "nan"


def test_a_continuation_resumes_from_the_earlier_checkpoint(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arch = ARCHS[1]
    first = tmp_path / "round1" / "3"
    trainer.set_stop_training(str(first), desired_training_pct=50.0)
    assert ft.run(_args(first, f"--nas_params_str={json.dumps(arch)}")) == 0
    second = tmp_path / "round2" / "1"
    storage.copy_file(
        layout.trial_file(str(first), layout.TRIAL_TRAINING_METRICS),
        layout.trial_file(str(second), layout.TRIAL_TRAINING_METRICS),
    )
    monkeypatch.setenv(layout.ENV_TRIAL_ID, "1")
    assert (
        ft.run(
            _args(
                second,
                f"--retrain_search_job_dir={tmp_path / 'round1'}",
                "--retrain_search_job_trials=3",
                "--retrain_use_search_job_checkpoint=True",
            )
        )
        == 0
    )
    metrics = trainer.read_trial_training_metrics(str(second))
    assert metrics is not None
    assert [p.training_step for p in metrics.training_accuracy_over_steps] == [99, 199, 299, 399]
    assert metrics.training_time.total_training_steps == 400
    assert trainer.load_nas_params(str(second)) == arch
