"""The digits trainer saves the initial model's zero-cost scores as zero_cost.* final metrics."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `examples` is a top-level package of the repo, not installed
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from examples.digits import data, model, search_space  # noqa: E402
from examples.digits import trainer as digits_trainer  # noqa: E402
from torch import nn  # noqa: E402

from proxytask.trainer import contract as pt  # noqa: E402
from proxytask.trainer import zero_cost as zc  # noqa: E402
from proxytask.trainer.zero_cost_metrics import ZERO_COST_NAMES, read_zero_cost_scores  # noqa: E402


def _tiny(job: Path, *extra: str) -> list[str]:
    return [f"--job-dir={job}", "--baseline", "--total_steps=8", "--eval_every_steps=4",
            "--latency_runs=2", *extra]  # fmt: skip


def _initial_model_and_batch(image_size: int = 16, seed: int = 0) -> tuple[Any, Any, Any]:
    """The model and batch the trainer scores, rebuilt as run_trial builds them."""
    split = data.load_split()
    batch = digits_trainer.zero_cost_batch_indices(len(split.train_y))
    fmt = torch.channels_last
    images = data.to_tensor(split.train_x[batch], image_size).to(memory_format=fmt)
    labels = torch.from_numpy(split.train_y[batch])
    torch.manual_seed(seed)
    net = model.build_model(search_space.baseline()).to(memory_format=fmt)
    return net, images, labels


def test_a_short_trial_writes_the_zero_cost_metrics(tmp_path: Path) -> None:
    job = tmp_path / "trial"
    assert digits_trainer.main(_tiny(job)) == 0
    scores = read_zero_cost_scores(str(job))
    assert tuple(scores) == ZERO_COST_NAMES
    assert all(math.isfinite(v) for v in scores.values())
    final = pt.read_final_metrics(str(job))
    assert scores["params"] == final["params"]
    # the scores are those of the initial model, on the fixed batch
    net, images, labels = _initial_model_and_batch()
    assert scores == pytest.approx(zc.zero_cost_scores(net, images, labels), rel=1e-9)


def test_counted_flops_agree_with_the_analytic_macs() -> None:
    net, images, _ = _initial_model_and_batch()
    # count_flops also counts BatchNorm (one MAC per output) and the final average pool (one
    # per input); estimate_macs counts only the convs and the head
    extra = 0

    def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        nonlocal extra
        extra += out.numel() if isinstance(module, nn.BatchNorm2d) else args[0].numel()

    counted = (nn.BatchNorm2d, nn.AdaptiveAvgPool2d)
    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, counted)]
    with torch.no_grad():
        net.eval()(images[:1])
    for handle in handles:
        handle.remove()
    macs = model.estimate_macs(search_space.baseline(), image_size=16)
    assert extra > 0
    assert zc.count_flops(net, images[:1]) == 2 * (macs + extra)


def test_the_flag_skips_them_and_training_is_the_same_either_way(tmp_path: Path) -> None:
    with_scores, without = tmp_path / "with", tmp_path / "without"
    assert digits_trainer.main(_tiny(with_scores)) == 0
    assert digits_trainer.main(_tiny(without, "--zero_cost_scores=false")) == 0
    assert read_zero_cost_scores(str(without)) == {}
    final = json.loads((without / "FINAL_METRICS.json").read_text())
    assert set(final) == {"accuracy", "latency_ms", "params", "macs"}
    # the scores leave the model and the random stream alone: training is bit-identical
    metrics = [pt.read_trial_training_metrics(str(j)) for j in (with_scores, without)]
    assert metrics[0] is not None and metrics[1] is not None
    accuracies = [[p.accuracy for p in m.training_accuracy_over_steps] for m in metrics]
    assert accuracies[0] == accuracies[1] and len(accuracies[0]) == 2
    states = [
        torch.load(digits_trainer.checkpoint_path(str(j)), weights_only=True)
        for j in (with_scores, without)
    ]
    for key, value in states[0]["model"].items():
        assert torch.equal(value, states[1]["model"][key]), key
    assert torch.equal(states[0]["rng"]["torch"], states[1]["rng"]["torch"])


def test_a_resumed_trial_does_not_score_its_trained_model(tmp_path: Path) -> None:
    job = tmp_path / "trial"
    job.mkdir()
    stop = job / "DESIRED_TRAINING_PCT.json"
    stop.write_text(json.dumps({"desired_training_pct": 50}))
    assert digits_trainer.main(_tiny(job, "--zero_cost_scores=false")) == 0
    stop.unlink()
    assert digits_trainer.main(_tiny(job)) == 0  # resumes its checkpoint after step 3
    assert read_zero_cost_scores(str(job)) == {}
    assert pt.read_final_metrics(str(job))["accuracy"] >= 0


def test_the_flag_parses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert digits_trainer.parse_args(_tiny(tmp_path)).zero_cost_scores is True
    for text in ("false", "0", "no"):
        flag = f"--zero_cost_scores={text}"
        assert digits_trainer.parse_args(_tiny(tmp_path, flag)).zero_cost_scores is False
    assert digits_trainer.main(_tiny(tmp_path, "--zero_cost_scores=maybe")) == 2
    assert "must be true or false, got 'maybe'" in capsys.readouterr().err


def test_the_batch_is_fixed_distinct_and_sorted() -> None:
    batch = digits_trainer.zero_cost_batch_indices(1437)
    assert len(batch) == digits_trainer.ZERO_COST_BATCH_SIZE == 64
    assert np.array_equal(batch, digits_trainer.zero_cost_batch_indices(1437))
    assert np.array_equal(batch, np.unique(batch)) and batch.max() < 1437
    assert list(digits_trainer.zero_cost_batch_indices(10)) == list(range(10))


@pytest.mark.parametrize("image_size", [8, 16])
def test_every_score_is_finite_across_the_search_space(image_size: int) -> None:
    split = data.load_split()
    batch = digits_trainer.zero_cost_batch_indices(len(split.train_y))
    images = data.to_tensor(split.train_x[batch], image_size)
    labels = torch.from_numpy(split.train_y[batch])
    for i in range(6):
        arch = search_space.sample(np.random.default_rng([0, i]))
        torch.manual_seed(i)
        net = model.build_model(arch, width_multiplier=0.5)
        scores = zc.zero_cost_scores(net, images, labels)
        assert all(math.isfinite(v) for v in scores.values()), (arch, scores)
        assert scores["params"] == model.count_params(net)
