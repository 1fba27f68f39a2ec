"""Tests of the digits example: search space, model, data, proxies and the real trainer."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `examples` is a top-level package of the repo, not installed
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from examples.digits import data, model, proxies, search_space  # noqa: E402
from examples.digits import trainer as digits_trainer  # noqa: E402

from proxytask import ProxyTaskConfig  # noqa: E402
from proxytask.core.errors import UsageError  # noqa: E402
from proxytask.core.proxies import load_proxy_task_configs  # noqa: E402
from proxytask.core.space import load_search_space  # noqa: E402
from proxytask.trainer import contract as pt  # noqa: E402

TRAINER = REPO / "examples" / "digits" / "trainer.py"
# Small budgets keep the mechanics tests to a few seconds each.
SMALL = ["--total_steps=200", "--eval_every_steps=20", "--num_threads=1"]


def _samples(count: int, seed: int = 0) -> list[dict[str, Any]]:
    return [search_space.sample(np.random.default_rng([seed, i])) for i in range(count)]


def _run(
    job_dir: Path, *args: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, str(TRAINER), f"--job-dir={job_dir}", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _metrics(job_dir: Path) -> dict[str, Any]:
    metrics: dict[str, Any] = json.loads((job_dir / "TRIAL_TRAINING_METRICS.json").read_text())
    return metrics


def _points(job_dir: Path) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = _metrics(job_dir)["training_accuracy_over_steps"]
    return points


# --------------------------------------------------------------------------------------------
# Search space
# --------------------------------------------------------------------------------------------


def test_sample_is_deterministic_per_seed_and_json() -> None:
    first, again, other = _samples(10), _samples(10), _samples(10, seed=1)
    assert first == again
    assert first != other
    for arch in first:
        assert json.loads(json.dumps(arch, allow_nan=False)) == arch
        assert search_space.validate(arch) == arch


def test_sample_loads_through_proxytask() -> None:
    space = load_search_space("examples.digits.search_space:sample")
    assert space.sample_many(seed=3, count=4) == space.sample_many(seed=3, count=4)


def test_space_spans_weak_to_strong_models() -> None:
    params = [model.count_params(model.build_model(a)) for a in _samples(50)]
    assert max(params) >= 10 * min(params)
    baseline = model.count_params(model.build_model(search_space.baseline()))
    assert min(params) < baseline < max(params)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: a["stages"][1].update(kernel=7), "`stages[1].kernel` must be 3 or 5, got 7."),
        (lambda a: a["stages"][0].update(expand=2), "`stages[0].expand` must be 1, 3 or 6"),
        (lambda a: a["stages"][2].update(width=0), "`stages[2].width` must be an integer"),
        (lambda a: a["stages"][2].update(repeats=True), "`stages[2].repeats` must be an integer"),
        (lambda a: a["stages"][0].update(se="yes"), "`stages[0].se` must be true or false"),
        (lambda a: a["stages"][0].pop("se"), "`stages[0]` must have exactly the keys"),
        (lambda a: a["stages"].pop(), "`stages` must be a list of 3 stages"),
        (lambda a: a.update(stem=2.5), "`stem` must be an integer"),
        (lambda a: a.update(depth=3), "extra keys ['depth']"),
    ],
)
def test_validate_rejects_malformed_architectures(mutate: Any, message: str) -> None:
    arch = search_space.baseline()
    mutate(arch)
    with pytest.raises(UsageError) as info:
        search_space.validate(arch)
    assert message in str(info.value)


def test_validate_rejects_non_objects() -> None:
    with pytest.raises(UsageError, match="JSON object"):
        search_space.validate([1, 2])


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


def test_scaling_rules() -> None:
    assert [model.scale_width(c, 0.5) for c in (8, 12, 16, 24, 48)] == [4, 8, 8, 12, 24]
    assert model.scale_width(8, 0.25) == 4  # never below 4
    assert [model.scale_depth(r, 0.5) for r in (1, 2, 3)] == [1, 1, 2]
    assert model.scale_depth(3, 2.0) == 6


@pytest.mark.parametrize("size", [8, 12, 16])
def test_model_forward_and_scaled_down_versions(size: int) -> None:
    arch = search_space.baseline()
    net = model.build_model(arch).eval()
    with torch.no_grad():
        assert net(torch.zeros(3, 1, size, size)).shape == (3, model.NUM_CLASSES)
    small = model.build_model(arch, width_multiplier=0.5, depth_multiplier=0.5)
    assert model.count_params(small) < model.count_params(net) / 2
    assert model.estimate_macs(arch, image_size=8) < model.estimate_macs(arch, image_size=16)


def test_mbconv_residual_only_when_shapes_match() -> None:
    assert model.MBConv(16, 16, 3, 6, 1, True).residual
    assert not model.MBConv(16, 24, 3, 6, 1, True).residual
    assert not model.MBConv(16, 16, 3, 6, 2, False).residual


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def test_validation_split_is_fixed_stratified_and_disjoint() -> None:
    a, b = data.load_split(), data.load_split()
    assert len(a.val_y) == data.NUM_VALIDATION == 360
    assert len(a.train_y) + len(a.val_y) == 1797
    np.testing.assert_array_equal(a.val_x, b.val_x)
    np.testing.assert_array_equal(a.val_y, b.val_y)
    counts = np.bincount(a.val_y, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    assert a.train_x.min() >= 0 and a.train_x.max() <= 1
    train_rows = {row.tobytes() for row in a.train_x}
    assert sum(row.tobytes() in train_rows for row in a.val_x) < 5  # digits has a few duplicates


def test_downsampling_is_class_balanced_seeded_and_shuffled() -> None:
    y = data.load_split().train_y
    keep = data.subsample_indices(y, 25, seed=0)
    assert abs(len(keep) - 0.25 * len(y)) <= 10
    full, kept = np.bincount(y, minlength=10), np.bincount(y[keep], minlength=10)
    np.testing.assert_allclose(kept, 0.25 * full, atol=1)
    np.testing.assert_array_equal(keep, data.subsample_indices(y, 25, seed=0))
    assert not np.array_equal(keep, data.subsample_indices(y, 25, seed=1))
    assert not np.array_equal(keep, np.arange(len(keep)))  # never the first N rows
    assert len(np.unique(keep)) == len(keep)
    np.testing.assert_array_equal(data.subsample_indices(y, 100, seed=5), np.arange(len(y)))
    with pytest.raises(ValueError, match="train_data_pct"):
        data.subsample_indices(y, 0, seed=0)


def test_images_resize_and_batches_are_pure_functions_of_the_step() -> None:
    images = data.load_split().val_x[:4]
    for size in (8, 12, 16):
        x = data.to_tensor(images, size)
        assert x.shape == (4, 1, size, size)
        assert float(x.min()) >= 0 and float(x.max()) <= 1
    n, bs = 359, 64
    assert data.batches_per_epoch(n, bs) == 5
    np.testing.assert_array_equal(
        data.batch_indices(n, bs, seed=0, step=7), data.batch_indices(n, bs, seed=0, step=7)
    )
    epoch = np.concatenate([data.batch_indices(n, bs, 0, s) for s in range(5)])
    assert len(np.unique(epoch)) == 5 * bs  # no repeats within an epoch


def test_shift_images_translates_and_fills_with_zero() -> None:
    x = torch.zeros(2, 1, 8, 8)
    x[:, 0, 3, 3] = 1.0
    out = data.shift_images(x, torch.tensor([[1, 0], [0, -1]]))
    assert out[0, 0, 4, 3] == 1 and out[1, 0, 3, 2] == 1
    assert float(out.sum()) == 2.0
    shifts = data.batch_shifts(64, 16, seed=0, step=3)
    assert np.abs(shifts).max() <= data.max_shift(16) == 2
    np.testing.assert_array_equal(shifts, data.batch_shifts(64, 16, seed=0, step=3))


# --------------------------------------------------------------------------------------------
# Proxy-task generator
# --------------------------------------------------------------------------------------------


def test_proxy_generator_names_and_reductions() -> None:
    configs = proxies.generate({"total_steps": 1000, "learning_rate": 0.1})
    names = [c.name for c in configs]
    assert {"data25", "data50", "data75", "img8", "img12", "width0.5", "data50_img12"} <= set(names)
    assert len(names) == len(set(names))
    for config in configs:
        assert isinstance(config, ProxyTaskConfig)
        assert config.trainer_args["total_steps"] == 1000  # baseline args carried over
        assert float(config.trainer_args.get("train_data_pct", 99)) < 100
    loaded = load_proxy_task_configs("examples.digits.proxies:generate", {"image_size": "12"})
    assert all(int(c.trainer_args.get("image_size", 0)) < 12 or "img" not in c.name for c in loaded)
    assert "img12" not in [c.name for c in loaded]


# --------------------------------------------------------------------------------------------
# Trainer, in process
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--baseline", "--total_steps=0"],
        ["--baseline", "--no_such_flag=1"],
        ["--baseline", "--retrain_use_search_job_checkpoint=ture"],
        ["--baseline", "--retrain_use_search_job_checkpoint=true"],  # without trials to continue
        ['--nas_params_str={"stem": 16}'],
        [],
    ],
)
def test_bad_flags_exit_2_with_one_line(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert digits_trainer.main([f"--job-dir={tmp_path}", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


def test_cosine_schedule_decays_to_zero() -> None:
    assert digits_trainer.cosine_lr_factor(0, 100) == 1.0
    assert digits_trainer.cosine_lr_factor(50, 100) == pytest.approx(0.5)
    assert digits_trainer.cosine_lr_factor(99, 100) < 1e-3


def test_trainer_writes_to_an_fsspec_url() -> None:
    job = f"memory://digits-test/{time.time_ns()}/1"
    argv = [f"--job-dir={job}", "--baseline", "--total_steps=6", "--eval_every_steps=3"]
    assert digits_trainer.main([*argv, "--latency_runs=2"]) == 0
    metrics = pt.read_trial_training_metrics(job)
    assert metrics is not None
    assert [p.training_step for p in metrics.training_accuracy_over_steps] == [2, 5]
    assert metrics.has_latency
    assert pt.load_nas_params(job) == search_space.baseline()
    assert pt.read_final_metrics(job)["params"] > 0
    from proxytask.core import storage

    assert storage.exists(digits_trainer.checkpoint_path(job))


def _tiny(job: Path | str, *extra: str) -> list[str]:
    return [f"--job-dir={job}", "--total_steps=8", "--eval_every_steps=2", "--latency_runs=2",
            *extra]  # fmt: skip


def test_architecture_from_a_json_file(tmp_path: Path) -> None:
    arch = _samples(2)[1]
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(arch))
    cfg = digits_trainer.parse_args(_tiny(tmp_path / "t", f"--nas_params_str={path}"))
    assert cfg.arch == arch
    assert cfg.eval_every_steps == 2 and cfg.resume_from is None


def test_continuation_flags_take_the_earlier_architecture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arch = _samples(3)[2]
    pt.save_nas_params(str(tmp_path / "search" / "7"), arch)
    monkeypatch.setenv("CLOUD_ML_TRIAL_ID", "2")
    flags = [f"--retrain_search_job_dir={tmp_path / 'search'}", "--retrain_search_job_trials=3,7"]
    cfg = digits_trainer.parse_args(_tiny(tmp_path / "t", *flags))
    assert cfg.arch == arch and cfg.resume_from is None
    cfg = digits_trainer.parse_args(
        _tiny(tmp_path / "t", *flags, "--retrain_use_search_job_checkpoint=True")
    )
    assert cfg.resume_from == str(tmp_path / "search" / "7" / "checkpoint" / "checkpoint.pt")


def test_restarted_trial_resumes_from_its_own_checkpoint(tmp_path: Path) -> None:
    job = tmp_path / "t"
    job.mkdir()
    stop = job / "DESIRED_TRAINING_PCT.json"
    stop.write_text(json.dumps({"desired_training_pct": 50}))
    assert digits_trainer.main(_tiny(job, "--baseline")) == 0
    assert [p["training_step"] for p in _points(job)] == [1, 3]
    stop.unlink()
    assert digits_trainer.main(_tiny(job, "--baseline")) == 0
    assert [p["training_step"] for p in _points(job)] == [1, 3, 5, 7]
    assert _metrics(job)["training_time"]["total_training_steps"] == 8
    # a finished trial started again only re-measures latency
    assert digits_trainer.main(_tiny(job, "--baseline")) == 0
    assert len(_points(job)) == 4


def test_continuing_a_different_recipe_is_refused(tmp_path: Path) -> None:
    job = tmp_path / "t"
    assert digits_trainer.main(_tiny(job, "--baseline")) == 0
    assert digits_trainer.main([*_tiny(job, "--baseline"), "--total_steps=16"]) == 2
    assert digits_trainer.main([*_tiny(job, "--baseline"), "--width_multiplier=0.5"]) == 2


# --------------------------------------------------------------------------------------------
# Trainer, as the subprocess proxytask starts
# --------------------------------------------------------------------------------------------


def test_trainer_subprocess_writes_the_spec_files(tmp_path: Path) -> None:
    arch = _samples(1)[0]
    job = tmp_path / "trial"
    # from another folder, with the architecture as JSON: as a controller starts it
    result = _run(job, f"--nas_params_str={json.dumps(arch)}", *SMALL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = _metrics(job)
    assert metrics["training_time"]["total_training_steps"] == 200
    assert metrics["training_time"]["total_training_time_in_secs"] > 0
    assert metrics["latency"] >= 0
    points = metrics["training_accuracy_over_steps"]
    assert [p["training_step"] for p in points] == list(range(19, 200, 20))
    assert [p["training_step_pct"] for p in points] == pytest.approx(list(range(10, 101, 10)))
    assert all(0 <= p["accuracy"] <= 1 for p in points)
    assert json.loads((job / "nas_params_str.json").read_text()) == arch
    final = json.loads((job / "FINAL_METRICS.json").read_text())
    assert {k for k in final if not k.startswith("zero_cost.")} == {
        "accuracy",
        "latency_ms",
        "params",
        "macs",
    }
    assert {k for k in final if k.startswith("zero_cost.")} == {
        f"zero_cost.{name}"
        for name in ("params", "flops", "synflow", "grad_norm", "naswot", "jacob_cov")
    }
    assert final["accuracy"] == points[-1]["accuracy"]
    assert (job / "checkpoint" / digits_trainer.CHECKPOINT_FILE).exists()
    assert result.stdout.count("accuracy=") == 11  # ten evaluations and the summary


def test_trainer_told_to_stop_before_the_first_cycle_exits_cleanly(tmp_path: Path) -> None:
    job = tmp_path / "trial"
    job.mkdir()
    (job / "DESIRED_TRAINING_PCT.json").write_text(json.dumps({"desired_training_pct": 0.0}))
    result = _run(job, "--baseline", *SMALL)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    metrics = _metrics(job)
    assert metrics["training_accuracy_over_steps"] == []
    assert metrics["latency"] >= 0
    assert "accuracy" not in json.loads((job / "FINAL_METRICS.json").read_text())
    assert not (job / "checkpoint").exists()


def test_non_finite_loss_is_reported_and_fails_with_one_line(tmp_path: Path) -> None:
    job = tmp_path / "trial"
    result = _run(job, "--baseline", "--learning_rate=1e6", "--total_steps=20")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "NonFiniteMetricError" in result.stderr
    assert json.loads((job / "TRIAL_FAILURE.json").read_text())["cause"] == "nan"


@pytest.mark.slow
def test_continuation_resumes_the_full_training_state(tmp_path: Path) -> None:
    run_a, run_b, run_c = tmp_path / "jobA" / "1", tmp_path / "jobB" / "1", tmp_path / "jobC" / "1"
    for d in (run_a, run_b, run_c):
        d.mkdir(parents=True)
    arch = json.dumps(_samples(1)[0])
    (run_b / "DESIRED_TRAINING_PCT.json").write_text(json.dumps({"desired_training_pct": 30}))
    env = {**os.environ}
    cmd = [sys.executable, str(TRAINER), f"--nas_params_str={arch}", *SMALL]
    proc_a = subprocess.Popen([*cmd, f"--job-dir={run_a}"], cwd=REPO, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    result_b = _run(run_b, f"--nas_params_str={arch}", *SMALL)
    _, err_a = proc_a.communicate(timeout=600)
    assert proc_a.returncode == 0, err_a
    assert result_b.returncode == 0, result_b.stderr
    points_b = _points(run_b)
    assert [p["training_step_pct"] for p in points_b] == pytest.approx([10, 20, 30])

    # B's checkpoint holds the schedule's position, not only the weights
    saved = torch.load(run_b / "checkpoint" / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 59
    assert saved["scheduler"]["last_epoch"] == 60
    assert saved["optimizer"]["state"]  # momentum buffers

    # the controller copies the metrics, then starts C without --nas_params_str
    (run_c / "TRIAL_TRAINING_METRICS.json").write_bytes(
        (run_b / "TRIAL_TRAINING_METRICS.json").read_bytes()
    )
    result_c = _run(
        run_c,
        *SMALL,
        f"--retrain_search_job_dir={run_b.parent}",
        "--retrain_search_job_trials=1",
        "--retrain_use_search_job_checkpoint=True",
        env={"CLOUD_ML_TRIAL_ID": "1"},
    )
    assert result_c.returncode == 0, result_c.stderr
    assert json.loads((run_c / "nas_params_str.json").read_text()) == json.loads(arch)

    points_a, points_c = _points(run_a), _points(run_c)
    pcts = [p["training_step_pct"] for p in points_c]
    assert points_c[:3] == points_b
    assert all(b > a for a, b in itertools.pairwise(pcts))
    assert pcts[3] > 30 and pcts[-1] == pytest.approx(100)
    assert _metrics(run_c)["training_time"]["total_training_steps"] == 200
    # a real continuation ends where the uninterrupted run ends (to within noise)
    assert abs(points_c[-1]["accuracy"] - points_a[-1]["accuracy"]) <= 0.02
    assert math.isclose(points_c[3]["accuracy"], points_a[3]["accuracy"], abs_tol=0.02)


@pytest.mark.slow
def test_baseline_full_recipe_reaches_97_percent(tmp_path: Path) -> None:
    job = tmp_path / "baseline"
    result = _run(job, "--baseline", "--num_threads=1")
    assert result.returncode == 0, result.stderr
    points = _points(job)
    assert len(points) == 10
    assert points[-1]["accuracy"] >= 0.97, result.stdout


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_out_of_memory_is_reported(tmp_path: Path) -> None:
    job = tmp_path / "trial"
    # ~1 TB of activations: no GPU holds this
    result = _run(
        job, "--baseline", "--device=cuda", "--image_size=256", "--width_multiplier=64",
        "--batch_size=1437", "--total_steps=2",
    )  # fmt: skip
    assert result.returncode == 1
    assert "CUDA out of memory" in result.stderr
    assert json.loads((job / "TRIAL_FAILURE.json").read_text())["cause"] == "oom"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trainer_runs_on_cuda(tmp_path: Path) -> None:
    job = tmp_path / "trial"
    result = _run(job, "--baseline", "--device=auto", *SMALL)
    assert result.returncode == 0, result.stderr
    assert "device=cuda" in result.stdout
    assert _metrics(job)["latency"] >= 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_warm_trials_forked_after_the_warm_up_train_on_cuda(tmp_path: Path) -> None:
    # the warm-up once ran a backward pass: on a CUDA build that leaves autograd's device
    # threads and CUDA itself in the fork server, and every forked trial failed (H200)
    from proxytask import cli

    code = cli.main(
        [
            "trial",
            f"--trainer={sys.executable} examples/digits/trainer.py",
            "--trainer-entry=examples.digits.trainer:main",
            "--search-space=examples.digits.search_space:sample",
            f"--root-output-dir={tmp_path}",
            "--job-name=warm",
            "--num-trials=2",
            "--max-parallel-trials=2",
            "--gpus-per-trial=0.5",
            "--trainer-args",
            "total_steps=20",
            "eval_every_steps=10",
        ]
    )
    assert code == 0
    trial_dirs = sorted(tmp_path.glob("*/jobs/warm/*"))
    assert len(trial_dirs) == 2
    for tdir in trial_dirs:
        logs = (tdir / "stdout.log").read_text() + (tdir / "stderr.log").read_text()
        assert "device=cuda" in logs


# --------------------------------------------------------------------------------------------
# Trainer: learning-rate schedule and weight averaging flags
# --------------------------------------------------------------------------------------------


def _checkpoint(job: Path) -> dict[str, Any]:
    state: dict[str, Any] = torch.load(
        job / "checkpoint" / digits_trainer.CHECKPOINT_FILE, weights_only=True
    )
    return state


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--lr_schedule=linear", "must be one of cosine, step, constant, got 'linear'."),
        ("--weight_averaging=mean", "must be one of none, ema, swa, got 'mean'."),
        ("--ema_decay=1", "must be >= 0 and < 1, got '1'."),
        ("--swa_start_fraction=1.5", "must be >= 0 and < 1, got '1.5'."),
    ],
)
def test_smoothing_flags_refuse_bad_values(
    tmp_path: Path, flag: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert digits_trainer.main([*_tiny(tmp_path, "--baseline"), flag]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert message in err


def test_smoothing_flags_defaults_and_parsing(tmp_path: Path) -> None:
    cfg = digits_trainer.parse_args(_tiny(tmp_path, "--baseline"))
    assert (cfg.lr_schedule, cfg.weight_averaging) == ("cosine", "none")
    assert cfg.ema_decay == digits_trainer.DEFAULT_EMA_DECAY
    assert cfg.swa_start_fraction == 0.75
    flags = ["--lr_schedule=constant", "--weight_averaging=swa", "--ema_decay=0.9"]
    cfg = digits_trainer.parse_args([*_tiny(tmp_path, "--baseline"), *flags,
                                     "--swa_start_fraction=0.5"])  # fmt: skip
    assert (cfg.lr_schedule, cfg.weight_averaging) == ("constant", "swa")
    assert (cfg.ema_decay, cfg.swa_start_fraction) == (0.9, 0.5)


@pytest.mark.parametrize(
    ("schedule", "final_lr"),
    [("constant", 0.1), ("step", pytest.approx(0.001)), ("cosine", pytest.approx(0, abs=0.01))],
)
def test_lr_schedule_flag_sets_the_schedule(tmp_path: Path, schedule: str, final_lr: Any) -> None:
    job = tmp_path / schedule
    assert digits_trainer.main([*_tiny(job, "--baseline"), f"--lr_schedule={schedule}"]) == 0
    saved = _checkpoint(job)
    assert saved["recipe"]["lr_schedule"] == schedule
    assert saved["averager"] is None
    assert saved["optimizer"]["param_groups"][0]["lr"] == final_lr


def _evaluate_averaged(job: Path, cfg: Any) -> float:
    """The validation accuracy of the averaged weights saved in ``job``'s checkpoint."""
    from proxytask.trainer.torch import WeightAverager

    saved = _checkpoint(job)
    net = model.build_model(cfg.arch).to(memory_format=torch.channels_last)
    averager = WeightAverager(
        net, cfg.weight_averaging, total_steps=cfg.total_steps,
        start_fraction=cfg.swa_start_fraction,
    )  # fmt: skip
    averager.load_state_dict(saved["averager"])
    split = data.load_split()
    train_x = data.to_tensor(split.train_x, cfg.image_size).to(memory_format=torch.channels_last)
    if averager.needs_bn_update:
        averager.update_bn(train_x[i : i + 64] for i in range(0, len(train_x), 64))
    val_x = data.to_tensor(split.val_x, cfg.image_size).to(memory_format=torch.channels_last)
    return digits_trainer._evaluate(averager.eval_module(net), val_x, torch.from_numpy(split.val_y))


@pytest.mark.parametrize("mode", ["ema", "swa"])
def test_weight_averaging_evaluates_and_saves_the_averaged_weights(
    tmp_path: Path, mode: str
) -> None:
    job = tmp_path / mode
    argv = [*_tiny(job, "--baseline"), f"--weight_averaging={mode}", "--lr_schedule=constant",
            "--device=cpu"]  # fmt: skip
    assert digits_trainer.main(argv) == 0
    saved = _checkpoint(job)
    assert saved["recipe"]["weight_averaging"] == mode
    # EMA: every step; SWA: steps 6 and 7 of 8 (from 0.75 of the budget)
    assert saved["averager"]["num_updates"] == (8 if mode == "ema" else 2)
    averaged = saved["averager"]["averaged_model"]
    live = saved["model"]
    assert any(not torch.equal(averaged[f"module.{k}"], v) for k, v in live.items())
    accuracy = _evaluate_averaged(job, digits_trainer.parse_args(argv))
    assert _points(job)[-1]["accuracy"] == accuracy
    assert json.loads((job / "FINAL_METRICS.json").read_text())["accuracy"] == accuracy


@pytest.mark.parametrize("mode", ["ema", "swa"])
def test_weight_averaging_continuation_is_exact(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # on the CPU, where a continuation reproduces the uninterrupted run bit for bit
    flags = ["--baseline", f"--weight_averaging={mode}", "--total_steps=12",
             "--eval_every_steps=3", "--latency_runs=2", "--swa_start_fraction=0.4",
             "--device=cpu"]  # fmt: skip
    whole, first, second = tmp_path / "A" / "1", tmp_path / "B" / "1", tmp_path / "C" / "1"
    assert digits_trainer.main([f"--job-dir={whole}", *flags]) == 0
    first.mkdir(parents=True)
    (first / "DESIRED_TRAINING_PCT.json").write_text(json.dumps({"desired_training_pct": 50}))
    assert digits_trainer.main([f"--job-dir={first}", *flags]) == 0
    assert _checkpoint(first)["step"] == 5
    # as the controller continues it: metrics copied, then the checkpoint resumed
    second.mkdir(parents=True)
    (second / "TRIAL_TRAINING_METRICS.json").write_bytes(
        (first / "TRIAL_TRAINING_METRICS.json").read_bytes()
    )
    monkeypatch.setenv("CLOUD_ML_TRIAL_ID", "1")
    continuation = [f"--retrain_search_job_dir={first.parent}", "--retrain_search_job_trials=1",
                    "--retrain_use_search_job_checkpoint=True"]  # fmt: skip
    assert digits_trainer.main([f"--job-dir={second}", *flags, *continuation]) == 0
    assert _points(second) == _points(whole)  # accuracies bit for bit
    a, c = _checkpoint(whole)["averager"], _checkpoint(second)["averager"]
    assert a["num_updates"] == c["num_updates"] > 0
    assert all(torch.equal(v, c["averaged_model"][k]) for k, v in a["averaged_model"].items())


@pytest.mark.parametrize(
    ("flag", "key"),
    [
        ("--lr_schedule=constant", "`lr_schedule`"),
        ("--weight_averaging=ema", "`weight_averaging`"),
    ],
)
def test_continuing_with_another_schedule_or_averaging_is_refused(
    tmp_path: Path, flag: str, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "t"
    job.mkdir()
    (job / "DESIRED_TRAINING_PCT.json").write_text(json.dumps({"desired_training_pct": 50}))
    assert digits_trainer.main(_tiny(job, "--baseline")) == 0
    capsys.readouterr()
    assert digits_trainer.main([*_tiny(job, "--baseline"), flag]) == 2
    err = capsys.readouterr().err
    assert f"{key} must match the checkpoint being continued" in err
    assert "--lr_schedule and --weight_averaging, or start fresh" in err


def test_checkpoints_without_the_new_recipe_keys_continue_as_cosine_without_averaging(
    tmp_path: Path,
) -> None:
    job = tmp_path / "t"
    job.mkdir()
    (job / "DESIRED_TRAINING_PCT.json").write_text(json.dumps({"desired_training_pct": 50}))
    assert digits_trainer.main(_tiny(job, "--baseline")) == 0
    url = job / "checkpoint" / digits_trainer.CHECKPOINT_FILE
    state = _checkpoint(job)
    for key in ("lr_schedule", "weight_averaging", "ema_decay", "swa_start_fraction"):
        del state["recipe"][key]
    del state["averager"]
    torch.save(state, url)  # as the trainer wrote it before these flags existed
    (job / "DESIRED_TRAINING_PCT.json").unlink()
    assert digits_trainer.main(_tiny(job, "--baseline")) == 0
    assert [p["training_step"] for p in _points(job)] == [1, 3, 5, 7]
    assert digits_trainer.main([*_tiny(job, "--baseline"), "--weight_averaging=swa"]) == 2


def test_non_finite_loss_with_averaging_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "t"
    argv = [f"--job-dir={job}", "--baseline", "--weight_averaging=ema", "--learning_rate=1e6",
            "--total_steps=20", "--eval_every_steps=20", "--latency_runs=2"]  # fmt: skip
    assert digits_trainer.main(argv) == 1
    err = capsys.readouterr().err
    # the guard names the first step whose loss was not finite
    assert re.search(
        r"NonFiniteMetricError: `loss` must be finite, got \S+ at step \d+ of 20\.", err
    )
    assert "Lower the learning rate or clip gradients" in err
    assert json.loads((job / "TRIAL_FAILURE.json").read_text())["cause"] == "nan"
    assert not (job / "checkpoint").exists()  # nothing non-finite saved
