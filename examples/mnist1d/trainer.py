"""The MNIST-1D trainer: a real PyTorch trainer that follows the proxytask trainer contract.

Run it as a script (proxytask starts one process per trial)::

    python examples/mnist1d/trainer.py --job-dir=/tmp/trial1 --baseline
    python examples/mnist1d/trainer.py --job-dir=/tmp/trial1 \\
        --nas_params_str='{"stem": 16, "stem_kernel": 5, "stages": [...]}' --train_data_pct=50

or import it and call :func:`main` (argv list, returns the exit code) or :func:`run_trial`.

What it does: saves the architecture, then trains in cycles of ``--eval_every_steps`` steps;
before each cycle it asks :func:`get_stop_training`, after each it evaluates on the fixed
validation split, saves a checkpoint (full training state) and reports the accuracy with the
training-only time (CPU time on a CPU: :func:`training_clock`). At the end, or when told to
stop, it reports the model's CPU latency (milliseconds per batch of 1024 signals) and saves
final metrics. A continuation (``--retrain_search_job_trials``) takes the architecture from
the earlier trial and, with ``--retrain_use_search_job_checkpoint=True``, resumes its full
training state, so the cosine schedule carries on where it stopped.

Proxy-task settings: ``--train_data_pct`` (a class-balanced subset), ``--seq_length`` (the
signals resampled to fewer points), ``--width_multiplier`` and ``--depth_multiplier`` (a
smaller model), and the step budget, which proxytask finds itself.

Latency is a property of the model, not of the run: it is the 10 % quantile of
``--latency_runs`` timings after a warm-up (:func:`proxytask.torch.measure_latency_ms`), and it
is measured once per (architecture, width, depth, sequence length, CPU, threads) and kept in
``$PROXYTASK_CACHE_DIR`` (:func:`proxytask.torch.cached_latency`), so every trial of one model
reports the same latency, however busy the machine was.

Smoothing (proxytask's advice for noisy proxy tasks): ``--lr_schedule=cosine|step|constant``
(default cosine) and ``--weight_averaging=none|ema|swa`` (default none), as in the digits
trainer. Zero-training baselines: on a fresh start, with ``--zero_cost_scores=true`` (the
default), the freshly initialised model is scored on one fixed batch of
``ZERO_COST_BATCH_SIZE`` training signals and the scores are saved as ``zero_cost.<name>``
final metrics.

Exit codes: 0 done or stopped on request; 1 the run failed (NaN/inf loss, out of memory,
unreadable storage); 2 bad flags or input.
"""

from __future__ import annotations

import argparse
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

if __package__ in (None, ""):  # run as a script: make `examples.mnist1d` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch
import torch.nn.functional as F
from torch import nn

from examples.common import checkpoints
from examples.common.cli import Parser, boolean, choice, number, run_main
from examples.common.torch_utils import evaluate as _evaluate
from examples.common.torch_utils import resolve_device as _resolve_device
from examples.common.torch_utils import warm_up as _warm_up
from examples.mnist1d import data, search_space
from examples.mnist1d.model import build_model, count_params, estimate_macs
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
    cpu_name,
    measure_latency_ms,
    save_zero_cost_scores,
    training_cycle,
    zero_cost_scores,
)

__all__ = [
    "DEFAULT_TOTAL_STEPS",
    "WEIGHT_AVERAGING",
    "ZERO_COST_BATCH_SIZE",
    "TrainConfig",
    "TrialResult",
    "latency_ms",
    "main",
    "parse_args",
    "run_trial",
    "training_clock",
    "zero_cost_batch_indices",
]

logger = logging.getLogger("examples.mnist1d.trainer")

#: The full recipe's step budget (batch 64: 16 epochs of the 4000 training signals).
DEFAULT_TOTAL_STEPS = 1000
#: The weight-averaging choices: none, or a proxytask.torch.WeightAverager mode.
WEIGHT_AVERAGING = ("none", *AVERAGING_MODES)
#: How many training signals the zero-cost scores see.
ZERO_COST_BATCH_SIZE = 64
_ZERO_COST_SEED = 0  # fixed: every trial scores the same signals with the same seed
# A checkpoint only continues a run of the same model and schedule; these must match.
_MUST_MATCH = (
    "arch",
    "width_multiplier",
    "depth_multiplier",
    "total_steps",
    "lr_schedule",
    "weight_averaging",
)
# These may differ on purpose, but usually mean a mistake: warn.
_SHOULD_MATCH = ("train_data_pct", "seq_length", "batch_size", "seed", "learning_rate")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one trial needs; the command-line flags map onto these fields."""

    job_dir: str
    arch: dict[str, Any]
    train_data_pct: float = 100.0
    width_multiplier: float = 1.0
    depth_multiplier: float = 1.0
    seq_length: int = data.SEQ_LENGTH
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
    latency_runs: int = 30
    latency_batch_size: int = 1024
    lr_schedule: str = "cosine"
    weight_averaging: str = "none"
    ema_decay: float = 0.99
    swa_start_fraction: float = 0.75
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


def zero_cost_batch_indices(num_examples: int, size: int = ZERO_COST_BATCH_SIZE) -> np.ndarray:
    """The zero-cost scores' batch: ``min(size, num_examples)`` distinct indices, sorted.

    Drawn with a fixed seed from all training signals, so every trial's model sees the same.
    """
    rng = np.random.default_rng(_ZERO_COST_SEED)
    return np.sort(rng.choice(num_examples, size=min(size, num_examples), replace=False))


def latency_ms(net: nn.Module, cfg: TrainConfig) -> float:
    """The model's CPU latency (ms per batch of ``cfg.latency_batch_size`` signals).

    The shared cache's value, or measured once (:func:`proxytask.torch.cached_latency`). A
    large batch, not one signal: these models are so small that one signal's latency is
    mostly the per-layer overhead of PyTorch, the same for every model of one depth, and
    would rank models by noise; and at 128 signals one model measured in 12 processes
    spread over 1.26-2.07 ms (each process steady, the processes apart), at 1024 over
    9.3-11.2 ms.
    """
    key = {
        "trainer": "examples.mnist1d",
        "arch": cfg.arch,
        "width_multiplier": cfg.width_multiplier,
        "depth_multiplier": cfg.depth_multiplier,
        "seq_length": cfg.seq_length,
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "runs": cfg.latency_runs,
        "batch_size": cfg.latency_batch_size,
    }
    example = torch.zeros(cfg.latency_batch_size, 1, cfg.seq_length)
    return cached_latency(key, lambda: measure_latency_ms(net, example, runs=cfg.latency_runs))


def training_clock(device: torch.device) -> Callable[[], float]:
    """The clock a cycle's training time is read from: the process's CPU time on a CPU,
    the wall clock on a GPU (after synchronising).

    On a CPU shared by parallel trials the wall time of a cycle grows with the others' load,
    and the search compares proxies by that time (measured with wall time: in one demo run
    `data50`, which costs the same per step as `data25`, took longer to its step 500 than
    `data25` to its step 600). The CPU time the training used does not count the moments
    another process had the core.
    """
    return time.process_time if device.type == "cpu" else time.perf_counter


def _zero_cost(
    net: nn.Module, signals: torch.Tensor, labels: torch.Tensor, out: Callable[[str], None]
) -> dict[str, float]:
    """Each zero-cost score of ``net`` that can be computed; the others are logged and skipped."""
    start = time.perf_counter()
    scores: dict[str, float] = {}
    for name in ZERO_COST_NAMES:
        try:
            scores.update(
                zero_cost_scores(net, signals, labels, names=(name,), seed=_ZERO_COST_SEED)
            )
        except UsageError as exc:
            logger.warning("zero-cost score %s skipped: %s", name, exc)
    shown = " ".join(f"{name}={value:.6g}" for name, value in scores.items())
    out(f"zero-cost scores ({time.perf_counter() - start:.3f} s): {shown}")
    return scores


def _recipe(cfg: TrainConfig) -> dict[str, Any]:
    keys = (*_MUST_MATCH, *_SHOULD_MATCH, "ema_decay", "swa_start_fraction")
    return {key: getattr(cfg, key) for key in keys}


def run_trial(cfg: TrainConfig, out: Callable[[str], None] = print) -> TrialResult:
    """Train one trial in ``cfg.job_dir`` under the proxytask contract; see the module doc.

    Raises UsageError for bad input, NonFiniteMetricError when the loss or the network's
    output becomes NaN/inf (the trial is then recorded as failed), and lets
    ``torch.OutOfMemoryError`` through.
    """
    torch.set_num_threads(cfg.num_threads)
    device = _resolve_device(cfg.device)
    arch = search_space.validate(cfg.arch)
    pt.save_nas_params(cfg.job_dir, arch)

    split = data.load_split()
    keep = data.subsample_indices(split.train_y, cfg.train_data_pct, cfg.seed)
    train_x = data.to_tensor(split.train_x[keep], cfg.seq_length).to(device)
    train_y = torch.from_numpy(split.train_y[keep]).to(device)
    val_x = data.to_tensor(split.val_x, cfg.seq_length).to(device)
    val_y = torch.from_numpy(split.val_y).to(device)
    num_train = len(train_y)

    torch.manual_seed(cfg.seed)
    net = build_model(arch, cfg.width_multiplier, cfg.depth_multiplier).to(device)
    params = count_params(net)
    macs = estimate_macs(arch, cfg.seq_length, cfg.width_multiplier, cfg.depth_multiplier)
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
    own = checkpoints.checkpoint_path(cfg.job_dir)
    source = own if cfg.auto_resume and storage.exists(own) else cfg.resume_from
    if source is not None:
        state = checkpoints.load(source, device)
        if state is None:
            raise UsageError(
                f"the checkpoint to continue must exist at {source!r}, got nothing there. Did "
                "the earlier trial run a cycle? Drop --retrain_use_search_job_checkpoint to "
                "start fresh."
            )
        relevant = {"ema": ("ema_decay",), "swa": ("swa_start_fraction",)}
        checkpoints.check_resumable(
            source,
            state["recipe"],
            _recipe(cfg),
            _MUST_MATCH,
            (*_SHOULD_MATCH, *relevant.get(cfg.weight_averaging, ())),
        )
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if averager is not None:
            averager.load_state_dict(state["averager"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        last_step, accuracy = int(state["step"]), state["accuracy"]
        out(f"resumed from {source} after step {last_step} of {total}")

    out(
        f"mnist1d trainer: {params} params, {macs} MACs, {num_train} training signals "
        f"({cfg.train_data_pct:g}%), length {cfg.seq_length}, device={device}, "
        f"lr_schedule={cfg.lr_schedule}, weight_averaging={cfg.weight_averaging}, "
        f"steps {last_step + 1}..{total - 1}"
    )
    if source is None and cfg.zero_cost_scores:  # a fresh start: the model is at its init
        batch = zero_cost_batch_indices(len(split.train_y))
        signals = data.to_tensor(split.train_x[batch], cfg.seq_length).to(device)
        labels = torch.from_numpy(split.train_y[batch]).to(device)
        scores = _zero_cost(net, signals, labels, out)
        if scores:
            save_zero_cost_scores(cfg.job_dir, scores)
    net.train()
    clock = training_clock(device)
    stopped = False
    order: tuple[int, torch.Tensor] | None = None
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
            start = clock()
            for step in range(begin, end + 1):
                epoch, i = divmod(step, per_epoch)
                if order is None or order[0] != epoch:  # a pure function of (seed, epoch)
                    perm = data.epoch_permutation(num_train, cfg.seed, epoch)
                    order = (epoch, torch.from_numpy(perm).to(device))
                idx = order[1][i * size : (i + 1) * size]
                loss = F.cross_entropy(net(train_x[idx]), train_y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                scheduler.step()
                if averager is not None:
                    averager.update(net, step)
                guard.observe(loss, step)
                loss_sum += loss.detach()
            guard.check()  # records TRIAL_FAILURE.json (cause "nan") and raises on NaN/inf
            if averager is not None and averager.needs_bn_update:
                averager.update_bn(train_x[i : i + size] for i in range(0, num_train, size))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            train_secs = clock() - start
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
                "rng": {"torch": torch.get_rng_state()},  # the data order needs no state
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
    out(f"done: accuracy={acc_text} latency_ms={latency:.4f} params={params}")
    return TrialResult(last_step, accuracy, latency, params, macs, stopped)


def _build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="examples/mnist1d/trainer.py",
        description="Train one MNIST-1D architecture as a proxytask trial.",
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
        type=boolean,
        default=False,
        help="resume the earlier trial's full training state (true/false)",
    )
    add(
        "--auto_resume",
        type=boolean,
        default=True,
        help="resume from this trial dir's own checkpoint when one exists (default true)",
    )
    add(
        "--train_data_pct",
        type=number(float, 0, 100, lo_open=True),
        default=100.0,
        help="percent of the training signals to keep, class-balanced",
    )
    add("--width_multiplier", type=number(float, 0, lo_open=True), default=1.0)
    add("--depth_multiplier", type=number(float, 0, lo_open=True), default=1.0)
    add(
        "--seq_length",
        type=number(int, 8, 400),
        default=data.SEQ_LENGTH,
        help=f"resample the signals to this many points (default {data.SEQ_LENGTH})",
    )
    add("--batch_size", type=number(int, 1), default=64)
    add("--learning_rate", type=number(float, 0, lo_open=True), default=0.1)
    add("--momentum", type=number(float, 0, 1), default=0.9)
    add("--weight_decay", type=number(float, 0), default=5e-4)
    add("--total_steps", type=number(int, 1), default=DEFAULT_TOTAL_STEPS)
    add(
        "--eval_every_steps",
        type=number(int, 1),
        default=None,
        help="steps per cycle (default: total_steps / 10)",
    )
    add("--seed", type=number(int, 0), default=0)
    add("--num_threads", type=number(int, 1), default=1)
    add("--device", default="auto", help="auto (cuda if available, else cpu), cpu, cuda, cuda:N")
    add(
        "--latency_runs",
        type=number(int, 1),
        default=30,
        help="timed runs of the latency measurement (its 10 %% quantile is the latency)",
    )
    add(
        "--latency_batch_size",
        type=number(int, 1, 65536),
        default=1024,
        help="signals per timed forward pass; the latency is ms per batch (default 1024)",
    )
    add("--lr_schedule", type=choice(SCHEDULES), default="cosine")
    add("--weight_averaging", type=choice(WEIGHT_AVERAGING), default="none")
    add("--ema_decay", type=number(float, 0, 1, hi_open=True), default=0.99)
    add("--swa_start_fraction", type=number(float, 0, 1, hi_open=True), default=0.75)
    add(
        "--zero_cost_scores",
        type=boolean,
        default=True,
        help="on a fresh start, save the initial model's zero-cost scores as zero_cost.* "
        "final metrics (default true)",
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
        resume_from = checkpoints.checkpoint_path(earlier)
    total = args.total_steps
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {
        "job_dir",
        "arch",
        "eval_every_steps",
        "resume_from",
    }
    return TrainConfig(
        job_dir=args.job_dir,
        arch=search_space.validate(arch),
        eval_every_steps=args.eval_every_steps or max(1, total // 10),
        resume_from=resume_from,
        **{name: getattr(args, name) for name in fields},
    )


def proxytask_warm_up() -> None:
    """Warm workers (``--trainer-entry examples.mnist1d.trainer:main``): run once in the fork
    server, so that no trial pays PyTorch's import and first-use costs: one forward pass,
    one optimizer step and one evaluation of the baseline on a few signals, with the data split read
    (:func:`examples.common.torch_utils.warm_up`; no backward pass, which cannot cross
    ``fork``)."""
    split = data.load_split()
    signals = data.to_tensor(split.train_x[:64], split.train_x.shape[1])
    _warm_up(
        build_model(search_space.baseline(), 1.0, 1.0),
        signals,
        torch.from_numpy(split.train_y[:64]),
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
