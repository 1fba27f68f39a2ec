"""Tests of proxytask.trainer.torch: LR schedules, EMA/SWA weight averaging and the NaN guard."""

from __future__ import annotations

import io
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from proxytask.core.errors import NonFiniteMetricError, UsageError  # noqa: E402
from proxytask.trainer import torch as ptt  # noqa: E402


def _sgd(lr: float = 1.0) -> Any:
    return torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=lr)


def _lrs(scheduler: Any, steps: int) -> list[float]:
    """The learning rate used at each of ``steps`` steps."""
    optimizer = scheduler.optimizer
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


# --------------------------------------------------------------------------------------------
# Import hygiene
# --------------------------------------------------------------------------------------------


def test_module_imports_the_real_torch_and_proxytask_does_not() -> None:
    assert ptt.__name__ == "proxytask.trainer.torch"
    assert ptt.torch is sys.modules["torch"]
    assert hasattr(ptt.torch, "optim") and ptt.torch.__file__ != ptt.__file__
    code = "import sys, proxytask, proxytask.trainer.contract, proxytask.vertex\n"
    code += "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------------------------


def test_cosine_schedule_start_middle_end() -> None:
    lrs = _lrs(ptt.cosine_decay_schedule(_sgd(0.1), total_steps=1000), 1000)
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[500] == pytest.approx(0.05)
    assert lrs[250] == pytest.approx(0.1 * (0.5 + 0.5 * math.cos(math.pi / 4)))
    assert 0 < lrs[-1] < 1e-6  # ~0 at the last step
    assert all(b <= a for a, b in itertools.pairwise(lrs))


def test_cosine_schedule_final_fraction_and_beyond_the_end() -> None:
    assert ptt.cosine_decay_factor(100, 100, final_lr_fraction=0.1) == pytest.approx(0.1)
    assert ptt.cosine_decay_factor(150, 100) == pytest.approx(0.0)  # stays at the floor
    lrs = _lrs(ptt.cosine_decay_schedule(_sgd(), 10, final_lr_fraction=0.2), 10)
    assert min(lrs) > 0.2 and lrs[0] == 1.0


def test_cosine_schedule_warmup() -> None:
    lrs = _lrs(ptt.cosine_decay_schedule(_sgd(1.0), total_steps=104, warmup_steps=4), 104)
    assert lrs[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert lrs[54] == pytest.approx(0.5)  # the middle of the 100 decay steps
    assert lrs[-1] < 1e-3


def test_step_and_constant_schedules() -> None:
    lrs = _lrs(ptt.step_decay_schedule(_sgd(1.0), total_steps=100), 100)
    assert lrs[49] == 1.0 and lrs[50] == pytest.approx(0.1)
    assert lrs[74] == pytest.approx(0.1) and lrs[75] == pytest.approx(0.01)
    assert _lrs(ptt.constant_schedule(_sgd(0.3)), 5) == [0.3] * 5
    assert _lrs(ptt.constant_schedule(_sgd(1.0), 10, warmup_steps=1), 3) == [0.5, 1.0, 1.0]
    for name in ptt.SCHEDULES:
        assert isinstance(ptt.build_schedule(name, _sgd(), 10), torch.optim.lr_scheduler.LambdaLR)


def test_schedule_state_round_trip_resumes_exactly() -> None:
    first = ptt.cosine_decay_schedule(_sgd(0.1), 50, warmup_steps=5)
    lrs = _lrs(first, 20)
    state = first.state_dict()
    assert all(fn is None for fn in state["lr_lambdas"])  # nothing pickled: weights_only safe
    buffer = io.BytesIO()
    torch.save(state, buffer)
    resumed = ptt.cosine_decay_schedule(_sgd(0.1), 50, warmup_steps=5)
    resumed.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    resumed.optimizer.param_groups[0]["lr"] = first.optimizer.param_groups[0]["lr"]
    whole = _lrs(ptt.cosine_decay_schedule(_sgd(0.1), 50, warmup_steps=5), 50)
    assert lrs + _lrs(resumed, 30) == whole


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda o: ptt.cosine_decay_schedule(o, 0),
            "`total_steps` must be an integer >= 1, got 0.",
        ),
        (lambda o: ptt.cosine_decay_schedule(o, 10.5), "`total_steps` must be an integer"),
        (lambda o: ptt.cosine_decay_schedule(o, True), "`total_steps` must be an integer"),
        (lambda o: ptt.cosine_decay_schedule(o, 10, -1), "`warmup_steps` must be an integer >= 0"),
        (lambda o: ptt.cosine_decay_schedule(o, 10, 10), "`warmup_steps` must be < total_steps"),
        (
            lambda o: ptt.cosine_decay_schedule(o, 10, final_lr_fraction=1.5),
            "`final_lr_fraction` must be a number >= 0 and <= 1, got 1.5.",
        ),
        (lambda o: ptt.step_decay_schedule(o, 10, (0.7, 0.3)), "`milestones` must increase"),
        (lambda o: ptt.step_decay_schedule(o, 10, (1.0,)), "`milestones[]` must be a number > 0"),
        (lambda o: ptt.step_decay_schedule(o, 10, gamma=0), "`gamma` must be a number > 0"),
        (lambda o: ptt.constant_schedule(o, 5, warmup_steps=5), "`warmup_steps` must be <"),
        (lambda o: ptt.build_schedule("linear", o, 10), "`lr_schedule` must be one of cosine"),
    ],
)
def test_schedules_refuse_bad_arguments(call: Any, message: str) -> None:
    with pytest.raises(UsageError) as info:
        call(_sgd())
    assert message in str(info.value)


# --------------------------------------------------------------------------------------------
# Weight averaging
# --------------------------------------------------------------------------------------------


def _tiny_model(seed: int = 0, batch_norm: bool = False) -> Any:
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(3, 4)]
    if batch_norm:
        layers.append(torch.nn.BatchNorm1d(4))
    layers += [torch.nn.ReLU(), torch.nn.Linear(4, 2)]
    return torch.nn.Sequential(*layers)


def _train(model: Any, steps: int, averager: Any | None = None, start: int = 0) -> list[Any]:
    """SGD on random data; returns the weight snapshots after each step (a copy per step)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    snapshots = []
    for step in range(start, start + steps):
        generator = torch.Generator().manual_seed(step)
        x = torch.randn(8, 3, generator=generator)
        y = torch.randint(0, 2, (8,), generator=generator)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if averager is not None:
            averager.update(model, step)
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    return snapshots


def _close(a: Any, b: Any) -> bool:
    return all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


@pytest.mark.parametrize("warmup", [False, True])
def test_ema_matches_a_hand_computed_ema(warmup: bool) -> None:
    model = _tiny_model()
    ema = ptt.WeightAverager(model, "ema", decay=0.9, warmup=warmup)
    snapshots = _train(model, 12, ema)
    expected = dict(snapshots[0])  # the first update copies the weights
    for n, snap in enumerate(snapshots[1:], start=1):
        d = min(0.9, (1 + n) / (10 + n)) if warmup else 0.9
        expected = {k: d * expected[k] + (1 - d) * snap[k] for k in expected}
    averaged = {k: v for k, v in ema.averaged_module.state_dict().items()}
    assert _close({k: averaged[k] for k in expected}, expected)
    assert ema.num_averaged == 12
    assert ema.eval_module(model) is ema.averaged_module
    assert not ema.needs_bn_update


def test_ema_averages_batch_norm_statistics() -> None:
    model = _tiny_model(batch_norm=True)
    ema = ptt.WeightAverager(model, "ema", decay=0.5, warmup=False)
    snapshots = _train(model, 2, ema)
    mean = ema.averaged_module.state_dict()["1.running_mean"]
    expected = 0.5 * snapshots[0]["1.running_mean"] + 0.5 * snapshots[1]["1.running_mean"]
    assert torch.allclose(mean, expected)


def test_swa_is_the_equal_mean_from_the_start_fraction() -> None:
    model = _tiny_model()
    swa = ptt.WeightAverager(model, "swa", total_steps=20, start_fraction=0.75)
    assert swa.start_step == 15
    snapshots = _train(model, 14, swa)
    assert swa.num_averaged == 0 and swa.eval_module(model) is model
    snapshots += _train(model, 6, swa, start=14)
    assert swa.num_averaged == 5
    tail = snapshots[15:]
    expected = {k: sum(s[k] for s in tail) / len(tail) for k in tail[0]}
    assert _close(dict(swa.averaged_module.state_dict()), expected)
    assert swa.eval_module(model) is swa.averaged_module


def test_swa_update_bn_recomputes_the_statistics() -> None:
    model = _tiny_model(batch_norm=True)
    swa = ptt.WeightAverager(model, "swa", total_steps=4, start_fraction=0.5)
    _train(model, 4, swa)
    assert swa.needs_bn_update
    batches = [torch.randn(16, 3, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    swa.update_bn(batches)
    averaged = swa.averaged_module
    with torch.no_grad():
        hidden = averaged[0](torch.cat(batches))  # the input to BatchNorm
    assert torch.allclose(averaged[1].running_mean, hidden.mean(dim=0), atol=1e-5)
    assert averaged[1].momentum == 0.1  # restored after the cumulative pass


def test_state_dict_round_trip_continues_exactly() -> None:
    for mode, kwargs in (("ema", {"decay": 0.8}), ("swa", {"total_steps": 20})):
        whole_model = _tiny_model(batch_norm=True)
        whole = ptt.WeightAverager(whole_model, mode, **kwargs)
        _train(whole_model, 20, whole)

        model = _tiny_model(batch_norm=True)
        first = ptt.WeightAverager(model, mode, **kwargs)
        _train(model, 17, first)
        buffer = io.BytesIO()
        torch.save({"model": model.state_dict(), "avg": first.state_dict()}, buffer)
        saved = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)

        resumed_model = _tiny_model(seed=1, batch_norm=True)
        resumed_model.load_state_dict(saved["model"])
        resumed = ptt.WeightAverager(resumed_model, mode, **kwargs)
        resumed.load_state_dict(saved["avg"])
        assert resumed.num_averaged == first.num_averaged
        # momentum is fresh here, so continue the reference without it too
        for m, avg in ((model, first), (resumed_model, resumed)):
            _train(m, 3, avg, start=17)
        a, b = first.averaged_module.state_dict(), resumed.averaged_module.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), mode
        assert whole.num_averaged == resumed.num_averaged


def test_load_state_dict_refuses_another_mode() -> None:
    model = _tiny_model()
    state = ptt.WeightAverager(model, "ema").state_dict()
    swa = ptt.WeightAverager(model, "swa", total_steps=10)
    with pytest.raises(UsageError, match="mode must match the saved state"):
        swa.load_state_dict(state)
    with pytest.raises(UsageError, match="must be format 1"):
        swa.load_state_dict({"format": 9})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "mean"}, "`mode` must be one of ema, swa, got 'mean'."),
        ({"mode": "ema", "decay": 1.0}, "`decay` must be a number >= 0 and < 1, got 1.0."),
        ({"mode": "swa"}, "`total_steps` must be given for SWA"),
        ({"mode": "swa", "total_steps": 0}, "`total_steps` must be an integer >= 1"),
        ({"mode": "swa", "total_steps": 9, "start_fraction": 1}, "`start_fraction` must be"),
    ],
)
def test_weight_averager_refuses_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as info:
        ptt.WeightAverager(_tiny_model(), **kwargs)
    assert message in str(info.value)


# --------------------------------------------------------------------------------------------
# NaN guard
# --------------------------------------------------------------------------------------------


def _failure(job: Path) -> dict[str, Any]:
    failure: dict[str, Any] = json.loads((job / "TRIAL_FAILURE.json").read_text())
    return failure


def test_check_finite_records_the_failure_and_raises(tmp_path: Path) -> None:
    ptt.check_finite(torch.tensor(1.5), str(tmp_path), 3, 10)
    ptt.check_finite(2.0, str(tmp_path), 3, 10)
    assert not (tmp_path / "TRIAL_FAILURE.json").exists()
    with pytest.raises(NonFiniteMetricError) as info:
        ptt.check_finite(torch.tensor(float("nan")), str(tmp_path), 7, 10)
    message = str(info.value)
    assert message.startswith("`loss` must be finite, got nan at step 7 of 10.")
    assert "Lower the learning rate or clip gradients" in message
    failure = _failure(tmp_path)
    assert failure["cause"] == "nan" and failure["message"] == message
    with pytest.raises(NonFiniteMetricError, match="`accuracy` must be finite, got inf"):
        ptt.check_finite(math.inf, None, 0, 1, what="accuracy")


def test_guard_reports_the_first_bad_step_once_checked(tmp_path: Path) -> None:
    guard = ptt.NonFiniteGuard(str(tmp_path), total_steps=100)
    guard.check()  # nothing observed
    for step, value in enumerate([1.0, 0.5, math.inf, math.nan, 0.2]):
        guard.observe(torch.tensor(value), step)
    assert not (tmp_path / "TRIAL_FAILURE.json").exists()  # nothing synced yet
    with pytest.raises(NonFiniteMetricError, match=r"got inf at step 2 of 100\. Lower"):
        guard.check()
    assert _failure(tmp_path)["cause"] == "nan"
    guard.reset()
    guard.observe(torch.tensor(0.1), 5)
    guard.check()


def test_guard_passes_finite_values_and_survives_unwritable_dirs() -> None:
    guard = ptt.NonFiniteGuard(None, total_steps=3)
    for step in range(3):
        guard.observe(torch.tensor([0.1, 0.2]), step)
    guard.check()
    broken = ptt.NonFiniteGuard("", total_steps=3)  # recording fails: still raises the NaN
    broken.observe(torch.tensor(math.nan), 0)
    with pytest.raises(NonFiniteMetricError):
        broken.check()
