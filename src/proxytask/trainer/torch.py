"""PyTorch helpers for proxy-task trainers: LR schedules, EMA/SWA weight averaging, a NaN guard.

PyTorch is an optional dependency: ``import proxytask`` never imports it, only this module does.
The advice proxytask gives for a noisy proxy task (SPEC §2) is, in order: a cosine decay to ~0
over the reduced step budget, then weight averaging (EMA, or SWA over the last part of
training). A trainer adopts both in a few lines::

    from proxytask.torch import NonFiniteGuard, WeightAverager, cosine_decay_schedule

    scheduler = cosine_decay_schedule(optimizer, total_steps)
    averager = WeightAverager(model, "ema", decay=0.99)
    guard = NonFiniteGuard(job_dir, total_steps)
    for step in range(begin, end + 1):
        loss = ...; loss.backward(); optimizer.step(); scheduler.step()
        averager.update(model, step)
        guard.observe(loss, step)
    guard.check()  # one device sync per cycle; records TRIAL_FAILURE.json and raises on NaN
    accuracy = evaluate(averager.eval_module(model))

Every object here saves and restores its state through ``state_dict``/``load_state_dict``
(the schedules are ``LambdaLR``), so a continuation resumes exactly.
"""

# `import torch` below is the real PyTorch, not this module: absolute imports (PEP 328) never
# look inside the package. Only running this file as a script (`python .../trainer/torch.py`) would
# shadow it, and nothing does that.
from __future__ import annotations

import copy
import itertools
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from proxytask.core.errors import NonFiniteMetricError, ProxyTaskError, UsageError
from proxytask.trainer import contract as _trainer
from proxytask.trainer.latency import (
    DEFAULT_QUANTILE,
    cached_latency,
    cpu_name,
    robust_latency,
    training_cycle,
)
from proxytask.trainer.zero_cost import (
    JACOB_COV_K,
    ZERO_COST_NAMES,
    ZERO_COST_PREFIX,
    count_flops,
    count_parameters,
    grad_norm,
    jacob_cov,
    naswot,
    read_zero_cost_scores,
    save_zero_cost_scores,
    synflow,
    zero_cost_scores,
)

__all__ = [
    "AVERAGING_MODES",
    "JACOB_COV_K",
    "SCHEDULES",
    "ZERO_COST_NAMES",
    "ZERO_COST_PREFIX",
    "NonFiniteGuard",
    "WeightAverager",
    "build_schedule",
    "cached_latency",
    "check_finite",
    "constant_schedule",
    "cosine_decay_factor",
    "cosine_decay_schedule",
    "count_flops",
    "count_parameters",
    "cpu_name",
    "grad_norm",
    "jacob_cov",
    "measure_latency_ms",
    "naswot",
    "read_zero_cost_scores",
    "robust_latency",
    "save_zero_cost_scores",
    "step_decay_factor",
    "step_decay_schedule",
    "synflow",
    "training_cycle",
    "zero_cost_scores",
]

logger = logging.getLogger(__name__)

#: The schedule names :func:`build_schedule` accepts.
SCHEDULES = ("cosine", "step", "constant")
#: The averaging modes :class:`WeightAverager` accepts.
AVERAGING_MODES = ("ema", "swa")
AveragingMode = Literal["ema", "swa"]

_ADVICE = (
    "Lower the learning rate or clip gradients (torch.nn.utils.clip_grad_norm_); the trial is "
    "marked failed."
)
_STATE_FORMAT = 1


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


def _int_at_least(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return value


def _fraction(name: str, value: object, *, hi_open: bool = False, lo_open: bool = False) -> float:
    number = math.nan
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    above = number > 0 if lo_open else number >= 0
    below = number < 1 if hi_open else number <= 1
    if not (above and below):
        rule = f"{'>' if lo_open else '>='} 0 and {'<' if hi_open else '<='} 1"
        raise UsageError(f"`{name}` must be a number {rule}, got {value!r}.")
    return number


def _check_steps(total_steps: object, warmup_steps: object) -> tuple[int, int]:
    total = _int_at_least("total_steps", total_steps, 1)
    warmup = _int_at_least("warmup_steps", warmup_steps, 0)
    if warmup >= total:
        raise UsageError(
            f"`warmup_steps` must be < total_steps ({total}), got {warmup}. Warm up over a "
            "small part of the budget (a few percent)."
        )
    return total, warmup


def _warmup_factor(step: int, warmup_steps: int) -> float:
    # linear, never 0: the first step already trains; step `warmup_steps` reaches 1
    return (step + 1) / (warmup_steps + 1)


# --------------------------------------------------------------------------------------------
# Learning-rate schedules
# --------------------------------------------------------------------------------------------


def cosine_decay_factor(
    step: int, total_steps: int, warmup_steps: int = 0, final_lr_fraction: float = 0.0
) -> float:
    """Learning-rate factor at 0-based ``step`` of a cosine decay over ``total_steps``.

    Linear warm-up over the first ``warmup_steps`` steps (``(step + 1) / (warmup_steps + 1)``),
    then a half cosine from 1 at step ``warmup_steps`` down to ``final_lr_fraction`` at step
    ``total_steps`` (the last step, ``total_steps - 1``, is ~2.5e-6 above it for 1000 steps);
    constant at ``final_lr_fraction`` after. Arguments are not checked here (it runs each step);
    :func:`cosine_decay_schedule` checks them.

    Example::

        >>> cosine_decay_factor(0, 100), cosine_decay_factor(50, 100)
        (1.0, 0.5)
        >>> round(cosine_decay_factor(99, 100), 5)
        0.00025
    """
    if step < warmup_steps:
        return _warmup_factor(step, warmup_steps)
    span = total_steps - warmup_steps
    done = min(step - warmup_steps, span)
    # written as `pi * done / span` so the factors equal the digits trainer's earlier ones
    cosine = 0.5 * (1.0 + math.cos(math.pi * done / span))
    return final_lr_fraction + (1.0 - final_lr_fraction) * cosine


def cosine_decay_schedule(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int = 0,
    final_lr_fraction: float = 0.0,
) -> LambdaLR:
    """A per-step cosine decay to ~0 over ``total_steps``, with an optional linear warm-up.

    The schedule proxytask recommends for proxy tasks: decay over the *reduced* budget, so
    every proxy ends its training annealed and its curve is smooth. Call ``scheduler.step()``
    after each ``optimizer.step()``; factors follow :func:`cosine_decay_factor`. The result is
    a plain ``LambdaLR``: its ``state_dict()`` holds only the step counter (no pickled
    function), so it belongs in a checkpoint and a continuation resumes it exactly.

    Raises UsageError when ``total_steps < 1``, ``warmup_steps`` is not in
    ``[0, total_steps)`` or ``final_lr_fraction`` is not in ``[0, 1]``.

    Example::

        >>> net = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
        >>> sched = cosine_decay_schedule(opt, total_steps=100, warmup_steps=4)
        >>> [round(g["lr"], 3) for g in opt.param_groups]  # step 0: warming up
        [0.02]
    """
    total, warmup = _check_steps(total_steps, warmup_steps)
    final = _fraction("final_lr_fraction", final_lr_fraction)

    def factor(step: int) -> float:
        return cosine_decay_factor(step, total, warmup, final)

    return LambdaLR(optimizer, factor)


def step_decay_factor(
    step: int,
    total_steps: int,
    milestones: Sequence[float] = (0.5, 0.75),
    gamma: float = 0.1,
    warmup_steps: int = 0,
) -> float:
    """Learning-rate factor at 0-based ``step`` of a step decay: ``gamma`` per milestone passed.

    ``milestones`` are fractions of ``total_steps``; the factor drops at step
    ``int(fraction * total_steps)``. Linear warm-up as in :func:`cosine_decay_factor`.

    Example::

        >>> [step_decay_factor(s, 100) for s in (0, 49, 50, 75, 99)]
        [1.0, 1.0, 0.1, 0.010000000000000002, 0.010000000000000002]
    """
    if step < warmup_steps:
        return _warmup_factor(step, warmup_steps)
    passed = sum(1 for m in milestones if step >= int(m * total_steps))
    return float(gamma**passed)


def step_decay_schedule(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    milestones: Sequence[float] = (0.5, 0.75),
    gamma: float = 0.1,
    warmup_steps: int = 0,
) -> LambdaLR:
    """A step decay (×``gamma`` at each milestone fraction of ``total_steps``), for comparison.

    The classic recipe; unlike cosine it leaves flat stretches and jumps in the learning
    curve. Raises UsageError for bad arguments (milestones must increase within (0, 1)).

    Example::

        >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=1.0)
        >>> sched = step_decay_schedule(opt, total_steps=10, milestones=(0.5,), gamma=0.5)
        >>> for _ in range(5):
        ...     opt.step(); sched.step()
        >>> opt.param_groups[0]["lr"]
        0.5
    """
    total, warmup = _check_steps(total_steps, warmup_steps)
    marks = tuple(_fraction("milestones[]", m, lo_open=True, hi_open=True) for m in milestones)
    if any(b <= a for a, b in itertools.pairwise(marks)):
        raise UsageError(
            f"`milestones` must increase, got {list(milestones)!r}. Give fractions of "
            "total_steps in order, e.g. (0.5, 0.75)."
        )
    rate = _fraction("gamma", gamma, lo_open=True)

    def factor(step: int) -> float:
        return step_decay_factor(step, total, marks, rate, warmup)

    return LambdaLR(optimizer, factor)


def constant_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int = 1, warmup_steps: int = 0
) -> LambdaLR:
    """A constant learning rate (after an optional linear warm-up), for comparison.

    ``total_steps`` only bounds ``warmup_steps``. Without annealing the final weights are
    noisy: this is the recipe weight averaging helps most.

    Example::

        >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
        >>> constant_schedule(opt).get_last_lr()
        [0.1]
    """
    total = _int_at_least("total_steps", total_steps, 1)
    warmup = _int_at_least("warmup_steps", warmup_steps, 0)
    if warmup >= total:
        _check_steps(total, warmup)  # raises the usual message

    def factor(step: int) -> float:
        return _warmup_factor(step, warmup) if step < warmup else 1.0

    return LambdaLR(optimizer, factor)


def build_schedule(
    name: str, optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0
) -> LambdaLR:
    """The schedule named ``name`` (one of :data:`SCHEDULES`) with its default settings.

    For a trainer flag such as ``--lr_schedule=cosine|step|constant``.

    Example::

        >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
        >>> type(build_schedule("cosine", opt, total_steps=100)).__name__
        'LambdaLR'
    """
    if name == "cosine":
        return cosine_decay_schedule(optimizer, total_steps, warmup_steps)
    if name == "step":
        return step_decay_schedule(optimizer, total_steps, warmup_steps=warmup_steps)
    if name == "constant":
        return constant_schedule(optimizer, total_steps, warmup_steps)
    raise UsageError(
        f"`lr_schedule` must be one of {', '.join(SCHEDULES)}, got {name!r}. cosine is the "
        "recommended schedule for proxy tasks."
    )


# --------------------------------------------------------------------------------------------
# Weight averaging
# --------------------------------------------------------------------------------------------


_Params = tuple[torch.Tensor, ...] | list[torch.Tensor]  # torch.optim.swa_utils.PARAM_LIST


def _device(device: torch.device | str | None) -> torch.device | None:
    return torch.device(device) if isinstance(device, str) else device


def _has_batch_norm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


class WeightAverager:
    """EMA or SWA of a model's weights, built on ``torch.optim.swa_utils.AveragedModel``.

    Modes:

    - ``"ema"``: exponential moving average, updated every step,
      ``avg = d * avg + (1 - d) * weights``. With ``warmup=True`` (default) the decay of the
      n-th update is ``min(decay, (1 + n) / (10 + n))`` (TensorFlow's ``num_updates``), so
      early evaluations are not dragged back to the initial weights; ``warmup=False`` uses
      ``torch.optim.swa_utils.get_ema_multi_avg_fn(decay)`` exactly. BatchNorm running
      statistics are averaged with the weights (``use_buffers=True``).
    - ``"swa"``: the equal average of the weights after every step from step
      ``int(start_fraction * total_steps)`` on (default: the last 25 %). BatchNorm statistics
      are not averaged: call :meth:`update_bn` before evaluating (see :attr:`needs_bn_update`).

    Contract: call :meth:`update` after each ``optimizer.step()`` with the 0-based step just
    completed; evaluate :meth:`eval_module` (the average once there is one, otherwise the
    live model); save :meth:`state_dict` in the checkpoint and restore it with
    :meth:`load_state_dict` so a continuation reproduces the uninterrupted run.

    Example::

        >>> net = torch.nn.Linear(2, 1)
        >>> ema = WeightAverager(net, "ema", decay=0.9, warmup=False)
        >>> ema.update(net, step=0)
        >>> torch.equal(ema.averaged_module.weight, net.weight)  # the first update copies
        True
        >>> swa = WeightAverager(net, "swa", total_steps=100, start_fraction=0.75)
        >>> swa.start_step, swa.eval_module(net) is net  # nothing averaged yet
        (75, True)
    """

    def __init__(
        self,
        model: nn.Module,
        mode: AveragingMode | str,
        *,
        decay: float = 0.999,
        warmup: bool = True,
        total_steps: int | None = None,
        start_fraction: float = 0.75,
        device: torch.device | str | None = None,
    ) -> None:
        if mode not in AVERAGING_MODES:
            raise UsageError(
                f"`mode` must be one of {', '.join(AVERAGING_MODES)}, got {mode!r}. Use ema "
                "(TensorFlow-style) or swa (PyTorch-style)."
            )
        self.mode: AveragingMode = "ema" if mode == "ema" else "swa"
        self.decay = _fraction("decay", decay, hi_open=True)
        self.warmup = bool(warmup)
        self.start_step = 0
        if self.mode == "swa":
            if total_steps is None:
                raise UsageError(
                    "`total_steps` must be given for SWA, got None. SWA averages from "
                    "start_fraction * total_steps on."
                )
            total = _int_at_least("total_steps", total_steps, 1)
            fraction = _fraction("start_fraction", start_fraction, hi_open=True)
            self.start_step = int(fraction * total)
        self.total_steps = total_steps
        self.start_fraction = start_fraction
        self._num_updates = 0  # mirrors AveragedModel.n_averaged without a device sync
        multi_avg_fn: Callable[[_Params, _Params, torch.Tensor | int], None] | None
        if self.mode == "swa":
            multi_avg_fn = None  # AveragedModel's default: the equal (SWA) average
        elif self.warmup:
            multi_avg_fn = self._ema_with_warmup
        else:
            multi_avg_fn = get_ema_multi_avg_fn(self.decay)  # type: ignore[no-untyped-call]
        self._averaged = AveragedModel(
            model,
            device=_device(device),
            multi_avg_fn=multi_avg_fn,
            use_buffers=self.mode == "ema",
        )
        self._has_bn = _has_batch_norm(model)

    def _current_decay(self) -> float:
        n = self._num_updates  # updates already averaged (>= 1 here: the first one copies)
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    def _ema_with_warmup(self, averaged: _Params, current: _Params, _: object) -> None:
        weight = 1.0 - self._current_decay()
        with torch.no_grad():
            if torch.is_floating_point(averaged[0]) or torch.is_complex(averaged[0]):
                torch._foreach_lerp_(averaged, current, weight)
            else:  # integer buffers (BatchNorm's num_batches_tracked): follow the model
                for a, c in zip(averaged, current, strict=True):
                    a.copy_(c)

    @property
    def averaged_module(self) -> nn.Module:
        """The averaged copy of the model (an ``nn.Module`` of the same class), to evaluate."""
        module: nn.Module = self._averaged.module
        return module

    @property
    def num_averaged(self) -> int:
        """How many weight snapshots are in the average (0: none yet)."""
        return self._num_updates

    @property
    def needs_bn_update(self) -> bool:
        """True when :meth:`update_bn` must run before evaluating: SWA of a model with BatchNorm."""
        return self.mode == "swa" and self._has_bn and self._num_updates > 0

    def update(self, model: nn.Module, step: int) -> None:
        """Add ``model``'s weights after 0-based ``step`` to the average (SWA: from start_step)."""
        if step < self.start_step:
            return
        self._averaged.update_parameters(model)
        self._num_updates += 1

    def eval_module(self, model: nn.Module) -> nn.Module:
        """The module to evaluate: the average when it holds any weights, else ``model``."""
        return self.averaged_module if self._num_updates > 0 else model

    def update_bn(self, loader: Iterable[Any], device: torch.device | str | None = None) -> None:
        """Recompute the averaged model's BatchNorm statistics with one pass over ``loader``.

        SWA needs it: the averaged weights need their own statistics. ``loader`` yields input
        batches (tensors, or tuples whose first item is the input), e.g. the training images
        without augmentation. Wraps ``torch.optim.swa_utils.update_bn`` without building
        autograd graphs. Does nothing without BatchNorm layers or before the first update.
        """
        if not self._has_bn or self._num_updates == 0:
            return
        with torch.no_grad():
            update_bn(loader, self.averaged_module, device=_device(device))

    def state_dict(self) -> dict[str, Any]:
        """The average and its counters: plain tensors, numbers and strings (weights_only safe)."""
        return {
            "format": _STATE_FORMAT,
            "mode": self.mode,
            "num_updates": self._num_updates,
            "averaged_model": self._averaged.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; the mode must match.

        The decay and the SWA start step stay those of this averager (the caller's recipe).
        Raises UsageError when the state is of another mode or format.
        """
        if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
            got = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise UsageError(
                f"weight-averager state must be format {_STATE_FORMAT}, got {got!r}. Start "
                "the run fresh."
            )
        if state.get("mode") != self.mode:
            raise UsageError(
                f"weight-averager mode must match the saved state ({state.get('mode')!r}), got "
                f"{self.mode!r}. Continue with the same averaging mode, or start fresh."
            )
        self._averaged.load_state_dict(state["averaged_model"])
        self._num_updates = int(state["num_updates"])


# --------------------------------------------------------------------------------------------
# NaN / inf guard
# --------------------------------------------------------------------------------------------


def _fail(model_dir: str | None, what: str, value: object, step: int, total_steps: int) -> None:
    message = f"`{what}` must be finite, got {value} at step {step} of {total_steps}. {_ADVICE}"
    if model_dir is not None:
        try:
            _trainer.record_trial_failure(model_dir, "nan", message)
        except ProxyTaskError as exc:  # the raised error still fails the trial
            logger.warning("could not record the failure in %s: %s", model_dir, exc)
    raise NonFiniteMetricError(message)


def check_finite(
    value: torch.Tensor | float,
    model_dir: str | None,
    step: int,
    total_steps: int,
    what: str = "loss",
) -> None:
    """Fail the trial cleanly when ``value`` (a loss, a metric) holds NaN or infinity.

    Writes ``TRIAL_FAILURE.json`` with cause ``nan`` in ``model_dir`` (skipped when None)
    through :func:`proxytask.trainer.record_trial_failure`, then raises
    :class:`~proxytask.core.errors.NonFiniteMetricError` with the advice to lower the learning rate
    or clip gradients. A tensor is checked in full; this syncs with the device, so in a hot
    loop prefer :class:`NonFiniteGuard`.

    Example::

        check_finite(loss, job_dir, step, total_steps)  # raises NonFiniteMetricError on NaN
    """
    if isinstance(value, torch.Tensor):
        finite = bool(torch.isfinite(value.detach()).all())
        shown: object = value.detach().float().sum().item() if value.numel() else value
    else:
        finite = math.isfinite(value)
        shown = value
    if not finite:
        _fail(model_dir, what, shown, step, total_steps)


class NonFiniteGuard:
    """A NaN/inf guard that watches every step and syncs with the device once per check.

    :meth:`observe` records, on the value's device, the first step whose value is not finite;
    :meth:`check` (e.g. once per training cycle, before saving a checkpoint) fails the trial
    like :func:`check_finite` when one was seen: ``TRIAL_FAILURE.json`` with cause ``nan``,
    then :class:`~proxytask.core.errors.NonFiniteMetricError` naming the first bad step.

    Example::

        guard = NonFiniteGuard(job_dir, total_steps)
        for step in range(begin, end + 1):
            loss = train_step()
            guard.observe(loss, step)
        guard.check()
    """

    def __init__(self, model_dir: str | None, total_steps: int, what: str = "loss") -> None:
        self.model_dir = model_dir
        self.total_steps = _int_at_least("total_steps", total_steps, 1)
        self.what = what
        self._first_bad: torch.Tensor | None = None  # -1 while all values were finite
        self._bad_value: torch.Tensor | None = None

    def observe(self, value: torch.Tensor, step: int) -> None:
        """Record ``value`` (e.g. the step's loss) after 0-based ``step``; no device sync."""
        v = value.detach()
        if self._first_bad is None or self._bad_value is None:
            self._first_bad = torch.full((), -1, dtype=torch.long, device=v.device)
            self._bad_value = torch.zeros((), dtype=torch.float32, device=v.device)
        first = (self._first_bad < 0) & ~torch.isfinite(v).all()
        self._first_bad = torch.where(first, step, self._first_bad)
        self._bad_value = torch.where(first, v.float().sum(), self._bad_value)

    def check(self) -> None:
        """Raise NonFiniteMetricError (after recording the failure) if a bad value was seen."""
        if self._first_bad is None or self._bad_value is None:
            return
        step = int(self._first_bad.item())
        if step >= 0:
            _fail(self.model_dir, self.what, self._bad_value.item(), step, self.total_steps)

    def reset(self) -> None:
        """Forget what was observed (e.g. after rolling back to a checkpoint)."""
        self._first_bad = self._bad_value = None


# --------------------------------------------------------------------------------------------
# Latency
# --------------------------------------------------------------------------------------------


def measure_latency_ms(
    net: nn.Module,
    example: torch.Tensor,
    runs: int = 50,
    warmup: int = 10,
    quantile: float = DEFAULT_QUANTILE,
    device: torch.device | str = "cpu",
) -> float:
    """Latency of one forward pass of ``net`` on ``example`` in milliseconds, robust to load.

    Times a copy of ``net`` in eval mode on ``device`` (default the CPU, with the current
    ``torch.get_num_threads()``), ``warmup`` untimed runs then ``runs`` timed ones, and returns
    their ``quantile`` (:func:`proxytask.trainer.latency.robust_latency`): the runs other
    processes slowed down drop out. Keep the result per model with
    :func:`proxytask.trainer.latency.cached_latency`.

    Example::

        ms = measure_latency_ms(net, torch.zeros(1, 1, 40))
    """
    runs = _int_at_least("runs", runs, 1)
    warmup = _int_at_least("warmup", warmup, 0)
    target = torch.device(device)
    model = copy.deepcopy(net).to(target).eval()
    x = example.to(target)
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            if target.type == "cuda":
                torch.cuda.synchronize(target)
            start = time.perf_counter()
            model(x)
            if target.type == "cuda":
                torch.cuda.synchronize(target)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000.0)
    return robust_latency(times, quantile)
