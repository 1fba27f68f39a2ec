"""The digits trainer: a real PyTorch trainer that follows the proxytask trainer contract.

Run it as a script (proxytask starts one process per trial)::

    python examples/digits/trainer.py --job-dir=/tmp/trial1 --baseline
    python examples/digits/trainer.py --job-dir=/tmp/trial1 \\
        --nas_params_str='{"stem": 16, "stages": [...]}' --train_data_pct=50 --image_size=12

or import it and call :func:`main` (argv list, returns the exit code) or :func:`run_trial`.

What it does: saves the architecture, then trains in cycles of
``--eval_every_steps`` steps; before each cycle it asks :func:`get_stop_training`, after each
it evaluates on the fixed validation split, saves a checkpoint (full training state) and
reports the accuracy with the training-only time. At the end, or when told to stop, it
reports the model's CPU latency (batch 1, milliseconds; measured once per model and kept in
``$PROXYTASK_CACHE_DIR``: :func:`latency_ms`) and saves final metrics. A
continuation (``--retrain_search_job_trials``) takes the architecture from the earlier trial
and, with ``--retrain_use_search_job_checkpoint=True``, resumes its full training state, so
the cosine schedule carries on where it stopped.

Smoothing (proxytask's advice for noisy proxy tasks, from :mod:`proxytask.torch`):
``--lr_schedule=cosine|step|constant`` (default cosine: per-step decay to ~0 over
``--total_steps``) and ``--weight_averaging=none|ema|swa`` (default none). With averaging on,
every evaluation, the final accuracy and the checkpoint use the averaged weights too (EMA of
decay ``--ema_decay``; SWA over the steps from ``--swa_start_fraction`` of the budget, with
BatchNorm statistics recomputed on the training images before each evaluation).

Zero-training baselines: on a fresh start (no checkpoint resumed), with
``--zero_cost_scores=true`` (the default), the freshly initialised model is scored before
training with :func:`proxytask.torch.zero_cost_scores` (parameter count, FLOPs, synflow,
grad_norm, NASWOT, jacob_cov) on one fixed batch of ``ZERO_COST_BATCH_SIZE`` training images,
the same for every trial, and the scores are saved as ``zero_cost.<name>`` final metrics, so
the search can show their Kendall tau beside the trained proxies'. A score that cannot be
computed for a model is skipped with a warning; the trial trains as it would without them.

Exit codes: 0 done or stopped on request; 1 the run failed (NaN/inf loss, out of memory,
unreadable storage); 2 bad flags or input.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make `examples.digits` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch
import torch.nn.functional as F
from torch import nn

from examples.common import checkpoints
from examples.common.checkpoints import CHECKPOINT_FILE, checkpoint_path
from examples.common.cli import Parser as _Parser
from examples.common.cli import boolean as _bool
from examples.common.cli import choice as _choice
from examples.common.cli import number as _number
from examples.common.cli import run_main
from examples.common.torch_utils import evaluate as _evaluate
from examples.common.torch_utils import resolve_device as _resolve_device
from examples.common.torch_utils import warm_up as _warm_up
from examples.digits import data, search_space
from examples.digits.model import build_model, count_params, estimate_macs
from proxytask import UsageError
from proxytask import trainer as pt
from proxytask.core import layout, storage
from proxytask.torch import (
    AVERAGING_MODES,
    SCHEDULES,
    ZERO_COST_NAMES,
    NonFiniteGuard,
    WeightAverager,
    build_schedule,
    cached_latency,
    cosine_decay_factor,
    cpu_name,
    measure_latency_ms,
    save_zero_cost_scores,
    training_cycle,
    zero_cost_scores,
)

__all__ = [
    "CHECKPOINT_FILE",
    "DEFAULT_EMA_DECAY",
    "DEFAULT_SWA_START_FRACTION",
    "DEFAULT_TOTAL_STEPS",
    "WEIGHT_AVERAGING",
    "ZERO_COST_BATCH_SIZE",
    "TrainConfig",
    "TrialResult",
    "checkpoint_path",
    "cosine_lr_factor",
    "latency_ms",
    "main",
    "parse_args",
    "run_trial",
    "zero_cost_batch_indices",
]

logger = logging.getLogger("examples.digits.trainer")

#: The full recipe's step budget (batch 64: about 45 epochs of the 1437 training images).
DEFAULT_TOTAL_STEPS = 1000
#: The weight-averaging choices: none, or a proxytask.torch.WeightAverager mode.
WEIGHT_AVERAGING = ("none", *AVERAGING_MODES)
DEFAULT_EMA_DECAY = 0.99
DEFAULT_SWA_START_FRACTION = 0.75
#: How many training images the zero-cost scores see (the papers use 64-128).
ZERO_COST_BATCH_SIZE = 64
_ZERO_COST_SEED = 0  # fixed: every trial scores the same images with the same seed
# A checkpoint only continues a run of the same model and schedule; these must match.
_MUST_MATCH = (
    "arch",
    "width_multiplier",
    "depth_multiplier",
    "total_steps",
    "lr_schedule",
    "weight_averaging",
)
# What checkpoints written before a recipe key existed used.
_RECIPE_DEFAULTS = {"lr_schedule": "cosine", "weight_averaging": "none"}
# These may differ on purpose, but usually mean a mistake: warn.
_SHOULD_MATCH = ("train_data_pct", "image_size", "batch_size", "seed", "learning_rate", "augment")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one trial needs; the command-line flags map onto these fields."""

    job_dir: str
    arch: dict[str, Any]
    train_data_pct: float = 100.0
    width_multiplier: float = 1.0
    depth_multiplier: float = 1.0
    image_size: int = 16
    batch_size: int = 64
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    total_steps: int = DEFAULT_TOTAL_STEPS
    eval_every_steps: int = DEFAULT_TOTAL_STEPS // 10
    seed: int = 0
    num_threads: int = 1
    device: str = "auto"
    #: The checkpoint file of an earlier trial to continue (None: start fresh).
    resume_from: str | None = None
    #: Resume from this trial's own checkpoint when one exists (a restarted trial).
    auto_resume: bool = True
    latency_runs: int = 50
    #: Random translations of up to one original pixel (a pure function of seed and step).
    augment: bool = True
    #: Per-step learning-rate schedule: cosine (to ~0), step (x0.1 at 50 % and 75 %), constant.
    lr_schedule: str = "cosine"
    #: Evaluate averaged weights: none, ema or swa.
    weight_averaging: str = "none"
    ema_decay: float = DEFAULT_EMA_DECAY
    #: SWA averages the weights after every step from this fraction of total_steps on.
    swa_start_fraction: float = DEFAULT_SWA_START_FRACTION
    #: Save the initial model's zero-cost scores (zero_cost.* final metrics) on a fresh start.
    zero_cost_scores: bool = True


@dataclasses.dataclass(frozen=True)
class TrialResult:
    """How a trial ended: the last completed step, its accuracy, latency and size."""

    last_step: int
    accuracy: float | None
    latency_ms: float
    params: int
    macs: int
    stopped_early: bool


# --------------------------------------------------------------------------------------------
# Small pure pieces
# --------------------------------------------------------------------------------------------


def cosine_lr_factor(step: int, total_steps: int) -> float:
    """Learning-rate factor at 0-based ``step``: cosine from 1 down to ~0 at the last step."""
    return cosine_decay_factor(step, total_steps)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def latency_ms(net: nn.Module, cfg: TrainConfig) -> float:
    """The model's CPU latency (batch 1, ms): the shared cache's value, or measured once.

    The 10 % quantile of ``cfg.latency_runs`` timings after a warm-up, kept per (architecture,
    model scale, image size, CPU, threads) in ``$PROXYTASK_CACHE_DIR``
    (:func:`proxytask.torch.cached_latency`): every trial of one model reports one latency.
    """
    key = {
        "trainer": "examples.digits",
        "arch": cfg.arch,
        "width_multiplier": cfg.width_multiplier,
        "depth_multiplier": cfg.depth_multiplier,
        "image_size": cfg.image_size,
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "runs": cfg.latency_runs,
    }
    fmt = torch.channels_last
    example = torch.zeros(1, 1, cfg.image_size, cfg.image_size).contiguous(memory_format=fmt)

    def measure() -> float:
        cpu_net = copy.deepcopy(net).to("cpu").to(memory_format=fmt)  # type: ignore[call-overload]
        return measure_latency_ms(cpu_net, example, runs=cfg.latency_runs)

    return cached_latency(key, measure)


def zero_cost_batch_indices(num_examples: int, size: int = ZERO_COST_BATCH_SIZE) -> np.ndarray:
    """The zero-cost scores' batch: ``min(size, num_examples)`` distinct indices, sorted.

    Drawn with a fixed seed from all ``num_examples`` training images, so it does not depend
    on the trial's seed or ``train_data_pct``: every trial's model sees the same images.
    """
    rng = np.random.default_rng(_ZERO_COST_SEED)
    return np.sort(rng.choice(num_examples, size=min(size, num_examples), replace=False))


def _zero_cost(
    net: nn.Module, images: torch.Tensor, labels: torch.Tensor, out: Callable[[str], None]
) -> dict[str, float]:
    """Each zero-cost score of ``net`` that can be computed; the others are logged and skipped.

    Leaves the model, its gradients and torch's random state as they were, so training
    goes on exactly as without the scores.
    """
    start = time.perf_counter()
    scores: dict[str, float] = {}
    for name in ZERO_COST_NAMES:
        try:
            scores.update(
                zero_cost_scores(net, images, labels, names=(name,), seed=_ZERO_COST_SEED)
            )
        except UsageError as exc:
            logger.warning("zero-cost score %s skipped: %s", name, exc)
    secs = time.perf_counter() - start
    shown = " ".join(f"{name}={value:.6g}" for name, value in scores.items())
    out(f"zero-cost scores ({secs:.3f} s): {shown}")
    return scores


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def _recipe(cfg: TrainConfig) -> dict[str, Any]:
    return {
        "arch": cfg.arch,
        "width_multiplier": cfg.width_multiplier,
        "depth_multiplier": cfg.depth_multiplier,
        "total_steps": cfg.total_steps,
        "train_data_pct": cfg.train_data_pct,
        "image_size": cfg.image_size,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "learning_rate": cfg.learning_rate,
        "augment": cfg.augment,
        "lr_schedule": cfg.lr_schedule,
        "weight_averaging": cfg.weight_averaging,
        "ema_decay": cfg.ema_decay,
        "swa_start_fraction": cfg.swa_start_fraction,
    }


def _check_resumable(url: str, saved: dict[str, Any], cfg: TrainConfig) -> None:
    relevant = {"ema": ("ema_decay",), "swa": ("swa_start_fraction",)}
    checkpoints.check_resumable(
        url,
        {**_RECIPE_DEFAULTS, **saved},
        _recipe(cfg),
        _MUST_MATCH,
        (*_SHOULD_MATCH, *relevant.get(cfg.weight_averaging, ())),
    )


# --------------------------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------------------------


def run_trial(cfg: TrainConfig, out: Callable[[str], None] = print) -> TrialResult:
    """Train one trial in ``cfg.job_dir`` under the proxytask contract; see the module doc.

    Raises UsageError for bad input, NonFiniteMetricError when the loss or the network's
    output becomes NaN/inf (the trial is then recorded as failed), and lets
    ``torch.OutOfMemoryError`` through.
    """
    if cfg.weight_averaging not in WEIGHT_AVERAGING:
        raise UsageError(
            f"`weight_averaging` must be one of {', '.join(WEIGHT_AVERAGING)}, got "
            f"{cfg.weight_averaging!r}."
        )
    torch.set_num_threads(cfg.num_threads)
    device = _resolve_device(cfg.device)
    arch = search_space.validate(cfg.arch)
    pt.save_nas_params(cfg.job_dir, arch)

    split = data.load_split()
    keep = data.subsample_indices(split.train_y, cfg.train_data_pct, cfg.seed)
    fmt = torch.channels_last  # several times faster for depthwise convs on CPU
    train_x = data.to_tensor(split.train_x[keep], cfg.image_size).to(device, memory_format=fmt)
    train_y = torch.from_numpy(split.train_y[keep]).to(device)
    val_x = data.to_tensor(split.val_x, cfg.image_size).to(device, memory_format=fmt)
    val_y = torch.from_numpy(split.val_y).to(device)
    num_train = len(train_y)

    torch.manual_seed(cfg.seed)
    net = build_model(arch, cfg.width_multiplier, cfg.depth_multiplier)
    net = net.to(device).to(memory_format=fmt)  # type: ignore[call-overload]
    params = count_params(net)
    macs = estimate_macs(arch, cfg.image_size, cfg.width_multiplier, cfg.depth_multiplier)
    optimizer = torch.optim.SGD(
        net.parameters(),
        lr=cfg.learning_rate,
        momentum=cfg.momentum,
        nesterov=cfg.momentum > 0,
        weight_decay=cfg.weight_decay,
    )
    total = cfg.total_steps
    scheduler = build_schedule(cfg.lr_schedule, optimizer, total)
    averager = None
    if cfg.weight_averaging != "none":
        averager = WeightAverager(
            net,
            cfg.weight_averaging,
            decay=cfg.ema_decay,
            total_steps=total,
            start_fraction=cfg.swa_start_fraction,
        )
    guard = NonFiniteGuard(cfg.job_dir, total)

    last_step, accuracy = -1, None
    own = checkpoint_path(cfg.job_dir)
    source = own if cfg.auto_resume and storage.exists(own) else cfg.resume_from
    if source is not None:
        state = checkpoints.load(source, device)
        if state is None:
            raise UsageError(
                f"the checkpoint to continue must exist at {source!r}, got nothing there. Did "
                "the earlier trial run a cycle? Drop --retrain_use_search_job_checkpoint to "
                "start fresh."
            )
        _check_resumable(source, state["recipe"], cfg)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if averager is not None:
            averager.load_state_dict(state["averager"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        last_step, accuracy = int(state["step"]), state["accuracy"]
        out(f"resumed from {source} after step {last_step} of {total}")
    elif (metrics := pt.read_trial_training_metrics(cfg.job_dir)) is not None and (
        metrics.training_accuracy_over_steps
    ):
        logger.warning(
            "%s already holds results up to %.1f%%; reports up to there will be ignored",
            cfg.job_dir,
            metrics.last_pct,
        )

    out(
        f"digits trainer: {params} params, {macs} MACs, {num_train} training images "
        f"({cfg.train_data_pct:g}%), {cfg.image_size}x{cfg.image_size}, device={device}, "
        f"lr_schedule={cfg.lr_schedule}, weight_averaging={cfg.weight_averaging}, "
        f"steps {last_step + 1}..{total - 1}"
    )
    if source is None and cfg.zero_cost_scores:  # a fresh start: the model is at its init
        batch = zero_cost_batch_indices(len(split.train_y))
        images = data.to_tensor(split.train_x[batch], cfg.image_size).to(device, memory_format=fmt)
        labels = torch.from_numpy(split.train_y[batch]).to(device)
        scores = _zero_cost(net, images, labels, out)
        if scores:
            save_zero_cost_scores(cfg.job_dir, scores)
    net.train()
    stopped = False
    epoch_cache: dict[int, torch.Tensor] = {}
    per_epoch = data.batches_per_epoch(num_train, cfg.batch_size)
    size = min(cfg.batch_size, num_train)

    while last_step < total - 1:
        if pt.get_stop_training(cfg.job_dir, last_step, total):
            stopped = True
            out(f"stopping on request after step {last_step} of {total}")
            break
        begin = last_step + 1
        end = min(begin + cfg.eval_every_steps - 1, total - 1)
        # a cooperating latency measurement never overlaps this cycle (proxytask.torch)
        with training_cycle():
            loss_sum = torch.zeros((), device=device)
            _sync(device)
            start = time.perf_counter()
            for step in range(begin, end + 1):
                epoch, i = divmod(step, per_epoch)
                if epoch not in epoch_cache:  # data order: a pure function of (seed, epoch)
                    epoch_cache.clear()
                    order = data.epoch_permutation(num_train, cfg.seed, epoch)
                    epoch_cache[epoch] = torch.from_numpy(order).to(device)
                idx = epoch_cache[epoch][i * size : (i + 1) * size]
                images = train_x[idx]
                if cfg.augment:
                    shifts = data.batch_shifts(size, cfg.image_size, cfg.seed, step)
                    images = data.shift_images(images, torch.from_numpy(shifts).to(device))
                loss = F.cross_entropy(net(images), train_y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                scheduler.step()
                if averager is not None:
                    averager.update(net, step)
                guard.observe(loss, step)
                loss_sum += loss.detach()
            # records TRIAL_FAILURE.json (cause "nan") and raises NonFiniteMetricError
            guard.check()
            if averager is not None and averager.needs_bn_update:
                # SWA: the averaged weights need their own BatchNorm statistics (training cost)
                averager.update_bn(train_x[i : i + size] for i in range(0, num_train, size))
            _sync(device)
            train_secs = time.perf_counter() - start
            eval_net = net if averager is None else averager.eval_module(net)
            accuracy = _evaluate(eval_net, val_x, val_y)  # evaluation is load too
        mean_loss = float(loss_sum.item()) / (end - begin + 1)
        if not math.isfinite(accuracy):
            # records TRIAL_FAILURE.json (cause "nan") and raises NonFiniteMetricError
            pt.update_trial_training_accuracy_metric(
                cfg.job_dir, accuracy, begin, end, train_secs, total
            )
        # checkpoint first: whoever sees a reported pct can rely on its checkpoint
        checkpoints.save(
            own,
            {
                "step": end,
                "accuracy": accuracy,
                "recipe": _recipe(cfg),
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "averager": None if averager is None else averager.state_dict(),
                # data order and augmentation need no state: functions of (seed, step)
                "rng": {"torch": torch.get_rng_state()},
            },
        )
        pt.update_trial_training_accuracy_metric(
            cfg.job_dir, accuracy, begin, end, train_secs, total
        )
        last_step = end
        out(
            f"step {end + 1}/{total} ({pt.compute_training_step_pct(end, total):.1f}%) "
            f"accuracy={accuracy:.4f} loss={mean_loss:.4f} train_secs={train_secs:.2f}"
        )

    latency = latency_ms(net, cfg)
    pt.update_trial_training_latency_metric(cfg.job_dir, latency)
    final: dict[str, float] = {"latency_ms": latency, "params": params, "macs": macs}
    if accuracy is not None:
        final["accuracy"] = accuracy
    pt.save_final_metrics(cfg.job_dir, final)
    acc_text = "none" if accuracy is None else f"{accuracy:.4f}"
    out(f"done: accuracy={acc_text} latency_ms={latency:.3f} params={params}")
    return TrialResult(last_step, accuracy, latency, params, macs, stopped)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="examples/digits/trainer.py",
        description="Train one digits architecture as a proxytask trial.",
        allow_abbrev=False,
    )
    add = p.add_argument
    add(
        "--job-dir",
        "--job_dir",
        dest="job_dir",
        default=os.environ.get(layout.ENV_MODEL_DIR),
        help="the trial dir: a local path or an fsspec URL (default: $AIP_MODEL_DIR)",
    )
    add("--nas_params_str", help="the architecture: a JSON object, or a path ending .json")
    add("--baseline", action="store_true", help="train the search space's baseline model")
    add("--retrain_search_job_dir", help="the job dir of the earlier trials to continue")
    add("--retrain_search_job_trials", help="comma-separated earlier trial ids")
    add(
        "--retrain_use_search_job_checkpoint",
        type=_bool,
        default=False,
        help="resume the earlier trial's full training state (true/false)",
    )
    add(
        "--auto_resume",
        type=_bool,
        default=True,
        help="resume from this trial dir's own checkpoint when one exists (default true)",
    )
    add(
        "--train_data_pct",
        type=_number(float, 0, 100, lo_open=True),
        default=100.0,
        help="percent of the training images to keep, class-balanced",
    )
    add("--width_multiplier", type=_number(float, 0, lo_open=True), default=1.0)
    add("--depth_multiplier", type=_number(float, 0, lo_open=True), default=1.0)
    add("--image_size", type=_number(int, 4, 256), default=16)
    add("--batch_size", type=_number(int, 1), default=64)
    add("--learning_rate", type=_number(float, 0, lo_open=True), default=0.1)
    add("--momentum", type=_number(float, 0, 1), default=0.9)
    add("--weight_decay", type=_number(float, 0), default=5e-4)
    add("--total_steps", type=_number(int, 1), default=DEFAULT_TOTAL_STEPS)
    add(
        "--eval_every_steps",
        type=_number(int, 1),
        default=None,
        help="steps per cycle (default: total_steps / 10)",
    )
    add("--seed", type=_number(int, 0), default=0)
    add("--num_threads", type=_number(int, 1), default=1)
    add("--device", default="auto", help="auto (cuda if available, else cpu), cpu, cuda, cuda:N")
    add("--latency_runs", type=_number(int, 1), default=50)
    add(
        "--augment",
        type=_bool,
        default=True,
        help="random translations of up to one original pixel (default true)",
    )
    add(
        "--lr_schedule",
        type=_choice(SCHEDULES),
        default="cosine",
        help="per-step learning-rate schedule: cosine (to ~0, default), step, constant",
    )
    add(
        "--weight_averaging",
        type=_choice(WEIGHT_AVERAGING),
        default="none",
        help="evaluate averaged weights: none (default), ema, swa",
    )
    add(
        "--ema_decay",
        type=_number(float, 0, 1, hi_open=True),
        default=DEFAULT_EMA_DECAY,
        help=f"EMA decay per step, with warm-up (default {DEFAULT_EMA_DECAY})",
    )
    add(
        "--swa_start_fraction",
        type=_number(float, 0, 1, hi_open=True),
        default=DEFAULT_SWA_START_FRACTION,
        help="SWA averages from this fraction of --total_steps on "
        f"(default {DEFAULT_SWA_START_FRACTION})",
    )
    add(
        "--zero_cost_scores",
        type=_bool,
        default=True,
        help="on a fresh start, save the initial model's zero-cost scores (params, flops, "
        "synflow, grad_norm, naswot, jacob_cov) as zero_cost.* final metrics (default true)",
    )
    return p


def parse_args(argv: Sequence[str] | None = None) -> TrainConfig:
    """Parse trainer flags into a :class:`TrainConfig`; raise UsageError for bad ones."""
    args = _build_parser().parse_args(argv)
    if not args.job_dir:
        raise UsageError("--job-dir must be given (or AIP_MODEL_DIR set), got neither.")
    continuing = bool(args.retrain_search_job_trials)
    if args.baseline and args.nas_params_str:
        raise UsageError("--baseline and --nas_params_str must not both be given, got both.")
    if args.baseline:
        arch = search_space.baseline()
    elif args.nas_params_str:
        arch = pt.load_nas_params(args.nas_params_str)
    elif continuing:
        arch = pt.load_nas_params(
            pt.get_finetune_nas_params_str(
                args.retrain_search_job_trials, args.retrain_search_job_dir or ""
            )
        )
    else:
        raise UsageError(
            "--nas_params_str must be given (a JSON architecture or a .json path), got nothing. "
            "Use --baseline for the baseline model."
        )
    resume_from = None
    if args.retrain_use_search_job_checkpoint:
        if not continuing:
            raise UsageError(
                "--retrain_use_search_job_checkpoint=True must come with "
                "--retrain_search_job_trials and --retrain_search_job_dir, got neither."
            )
        earlier = pt.get_retrain_search_job_model_dir(
            args.retrain_search_job_trials, args.retrain_search_job_dir or ""
        )
        resume_from = checkpoint_path(earlier)
    total = args.total_steps
    return TrainConfig(
        job_dir=args.job_dir,
        arch=search_space.validate(arch),
        train_data_pct=args.train_data_pct,
        width_multiplier=args.width_multiplier,
        depth_multiplier=args.depth_multiplier,
        image_size=args.image_size,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        total_steps=total,
        eval_every_steps=args.eval_every_steps or max(1, total // 10),
        seed=args.seed,
        num_threads=args.num_threads,
        device=args.device,
        resume_from=resume_from,
        auto_resume=args.auto_resume,
        latency_runs=args.latency_runs,
        augment=args.augment,
        lr_schedule=args.lr_schedule,
        weight_averaging=args.weight_averaging,
        ema_decay=args.ema_decay,
        swa_start_fraction=args.swa_start_fraction,
        zero_cost_scores=args.zero_cost_scores,
    )


def proxytask_warm_up() -> None:
    """Warm workers (``--trainer-entry examples.digits.trainer:main``): run once in the fork
    server, so that no trial pays PyTorch's import and first-use costs: one forward pass,
    one optimizer step and one evaluation of the baseline on a few images, with the data split read
    (:func:`examples.common.torch_utils.warm_up`; no backward pass, which cannot cross
    ``fork``)."""
    split = data.load_split()
    images = data.to_tensor(split.train_x[:64], 16)
    _warm_up(
        build_model(search_space.baseline(), 1.0, 1.0), images, torch.from_numpy(split.train_y[:64])
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the trainer on ``argv`` (default ``sys.argv[1:]``) and return its exit code."""
    return run_main(
        argv,
        parse_args,
        lambda cfg: run_trial(cfg, out=lambda line: print(line, flush=True)),
        lambda cfg: cfg.job_dir,
    )


if __name__ == "__main__":
    sys.exit(main())
