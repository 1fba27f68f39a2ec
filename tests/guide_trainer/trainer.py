"""A framework-free proxytask trainer, written from docs/guide.md sections 1–3.

A small MLP in plain numpy classifies scikit-learn's bundled breast-cancer data (569 samples,
30 features, no download). It follows the trainer contract of the guide:

- the architecture comes from ``--nas_params_str``, or on any continuation from the earlier
  trial's ``nas_params_str.json``, and is saved either way;
- ``get_stop_training`` before each cycle, ``update_trial_training_accuracy_metric`` after it
  (training time only), ``update_trial_training_latency_metric`` once at the end;
- with ``--retrain_use_search_job_checkpoint=True`` (model selection, rounds 2+) the full
  training state is restored: weights, momentum buffers, the weight average, the data-order
  RNG and the step;
- the learning rate decays per step on a cosine to 0 over ``--total_steps``, and the model is
  evaluated with an exponential moving average (EMA) of its weights, which keeps the curves
  smooth (guide, section 6);
- a non-finite training loss is reported as a NaN accuracy, which proxytask records as a
  failure of cause ``nan``.

Run it as ``python tests/guide_trainer/trainer.py --job-dir=DIR --nas_params_str=JSON``.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from proxytask import NonFiniteMetricError
from proxytask import trainer as pt

__all__ = ["Mlp", "breast_cancer", "latency_kmacs", "load_data", "main", "parse_args"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

DATA_SEED = 1234  # fixed data split and feature order, independent of --seed
VAL_FRACTION = 0.4
BATCH_SIZE = 64
MOMENTUM = 0.9
EMA_DECAY = 0.99


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The flags proxytask passes, plus every baseline and proxy flag (all arrive as text)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--job-dir", "--job_dir", dest="job_dir", default=os.environ.get("AIP_MODEL_DIR")
    )
    p.add_argument("--nas_params_str")
    p.add_argument("--retrain_search_job_dir", default="")
    p.add_argument("--retrain_search_job_trials", default="")
    p.add_argument("--retrain_use_search_job_checkpoint", type=pt.str_2_bool, default=False)
    p.add_argument("--total_steps", type=int, default=600)
    p.add_argument("--eval_every_steps", type=int, default=30)  # steps per cycle
    p.add_argument("--train_data_pct", type=float, default=100.0)  # a proxy knob
    p.add_argument("--width_multiplier", type=float, default=1.0)  # a proxy knob
    p.add_argument("--seed", type=int, default=0)  # weights and data order
    args = p.parse_args(argv)
    if not args.job_dir:
        p.error("--job-dir (or AIP_MODEL_DIR) must be given")
    return args


def breast_cancer() -> tuple[FloatArray, IntArray]:
    """scikit-learn's bundled breast-cancer data: 569 samples, 30 features, 2 classes.

    Every trial is a new process, and importing scikit-learn takes about a second, so the
    trainer reads the CSV file that scikit-learn ships (the same data as
    ``sklearn.datasets.load_breast_cancer``) without importing it, and falls back to the
    loader if the file is not where it expects.
    """
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, "datasets", "data", "breast_cancer.csv")
        if os.path.isfile(path):
            table = np.loadtxt(path, delimiter=",", skiprows=1)  # row 1: sizes and class names
            return table[:, :-1], table[:, -1].astype(np.int64)
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.int64)


def load_data(
    num_features: int, train_data_pct: float
) -> tuple[FloatArray, IntArray, FloatArray, IntArray]:
    """Train and validation splits of the ``num_features`` least informative features.

    Features are ordered by their correlation with the label on the training split, weakest
    first, so that the search space's feature count spans weak to strong models. The
    validation split is always the same 40 %; ``train_data_pct`` keeps that share of the
    training split. Features are standardised with the statistics of the data trained on.
    """
    x_all, y_all = breast_cancer()
    rows = np.random.default_rng(DATA_SEED).permutation(len(y_all))
    x = np.asarray(x_all[rows], dtype=np.float64)
    y = np.asarray(y_all[rows], dtype=np.int64)
    n_val = int(len(y) * VAL_FRACTION)
    strength = [abs(np.corrcoef(x[n_val:, j], y[n_val:])[0, 1]) for j in range(x.shape[1])]
    x = x[:, np.argsort(strength, kind="stable")[:num_features]]
    n_train = max(BATCH_SIZE, round((len(y) - n_val) * train_data_pct / 100))
    train_x, train_y = x[n_val : n_val + n_train], y[n_val : n_val + n_train]
    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-8
    return (train_x - mean) / std, train_y, (x[:n_val] - mean) / std, y[:n_val]


class Mlp:
    """ReLU MLP with a softmax output, trained by SGD with momentum.

    ``params`` alternates weights and biases, layer by layer. ``average`` is an exponential
    moving average (EMA) of ``params``, updated after every step and used for evaluation: it
    keeps the validation curve smooth, as the guide advises.
    """

    def __init__(self, sizes: Sequence[int], rng: np.random.Generator) -> None:
        self.params: list[FloatArray] = []
        for fan_in, fan_out in itertools.pairwise(sizes):
            self.params += [rng.normal(0.0, math.sqrt(2.0 / fan_in), (fan_in, fan_out))]
            self.params += [np.zeros(fan_out)]
        self.velocity = [np.zeros_like(p) for p in self.params]
        self.average = [p.copy() for p in self.params]

    @staticmethod
    def _activations(params: Sequence[FloatArray], x: FloatArray) -> list[FloatArray]:
        """The input and every hidden layer's output."""
        out = [x]
        for i in range(0, len(params) - 2, 2):
            out.append(np.maximum(out[-1] @ params[i] + params[i + 1], 0.0))
        return out

    def train_step(self, x: FloatArray, y: IntArray, learning_rate: float) -> float:
        """One SGD-with-momentum step on a batch, then the EMA update; returns the loss."""
        acts = self._activations(self.params, x)
        z = acts[-1] @ self.params[-2] + self.params[-1]
        z = z - z.max(axis=1, keepdims=True)
        probs = np.exp(z)
        probs /= probs.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        loss = float(-np.mean(np.log(probs[rows, y] + 1e-12)))
        grad = probs
        grad[rows, y] -= 1.0
        grad /= len(y)
        grads: list[FloatArray] = [np.empty(0)] * len(self.params)
        for layer in reversed(range(len(self.params) // 2)):
            grads[2 * layer] = acts[layer].T @ grad
            grads[2 * layer + 1] = grad.sum(axis=0)
            if layer > 0:
                grad = (grad @ self.params[2 * layer].T) * (acts[layer] > 0)
        for param, g, v, a in zip(self.params, grads, self.velocity, self.average, strict=True):
            v *= MOMENTUM
            v += g
            param -= learning_rate * v
            a *= EMA_DECAY
            a += (1.0 - EMA_DECAY) * param
        return loss

    def accuracy(self, x: FloatArray, y: IntArray) -> float:
        """Share of ``x`` that the averaged weights classify correctly."""
        acts = self._activations(self.average, x)
        logits = acts[-1] @ self.average[-2] + self.average[-1]
        return float(np.mean(logits.argmax(axis=1) == y))

    def state(self) -> dict[str, FloatArray]:
        """Every array of the training state, by name."""
        arrays = {f"p{i}": p for i, p in enumerate(self.params)}
        arrays.update({f"v{i}": v for i, v in enumerate(self.velocity)})
        arrays.update({f"a{i}": a for i, a in enumerate(self.average)})
        return arrays

    def load_state(self, arrays: Any) -> None:
        """Restore what :meth:`state` returned (from an ``np.load`` of a checkpoint)."""
        n = len(self.params)
        self.params = [np.array(arrays[f"p{i}"]) for i in range(n)]
        self.velocity = [np.array(arrays[f"v{i}"]) for i in range(n)]
        self.average = [np.array(arrays[f"a{i}"]) for i in range(n)]


def latency_kmacs(sizes: Sequence[int]) -> float:
    """The model's cost per example in thousands of multiply-adds, reported as its latency.

    The guide accepts any latency unit used consistently. A wall-clock time of a model this
    small would be mostly noise, so the trainer reports this exact count instead.
    """
    return sum(a * b for a, b in itertools.pairwise(sizes)) / 1000.0


def checkpoint_path(trial_dir: str) -> str:
    """Where a trial keeps its checkpoint."""
    return os.path.join(trial_dir, "checkpoint", "checkpoint.npz")


def save_checkpoint(path: str, model: Mlp, rng: np.random.Generator, step: int) -> None:
    """Write the full training state by temp file + ``os.replace``: never half-written."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arrays: dict[str, Any] = {
        "step": np.array(step),
        "rng": np.array(json.dumps(rng.bit_generator.state)),
        **model.state(),
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with open(path + ".tmp", "wb") as f:
        f.write(buffer.getvalue())
    os.replace(path + ".tmp", path)


def restore_checkpoint(path: str, model: Mlp, rng: np.random.Generator) -> int:
    """Restore :func:`save_checkpoint`'s state into ``model`` and ``rng``; returns the step."""
    with np.load(path, allow_pickle=False) as data:
        model.load_state(data)
        rng.bit_generator.state = json.loads(str(data["rng"]))
        return int(data["step"])


def load_architecture(args: argparse.Namespace) -> dict[str, Any]:
    """The architecture: given, or (on any continuation) the earlier trial's; saved either way."""
    if args.nas_params_str:
        return pt.save_nas_params(args.job_dir, args.nas_params_str)
    arch = pt.load_nas_params(
        pt.get_finetune_nas_params_str(args.retrain_search_job_trials, args.retrain_search_job_dir)
    )
    pt.save_nas_params(args.job_dir, arch)
    return arch


def main(argv: Sequence[str] | None = None) -> int:
    """Train one trial; returns the exit code."""
    args = parse_args(argv)
    job_dir, total = args.job_dir, args.total_steps
    arch = load_architecture(args)

    train_x, train_y, val_x, val_y = load_data(int(arch["num_features"]), args.train_data_pct)
    hidden = max(1, round(int(arch["width"]) * args.width_multiplier))
    sizes = [train_x.shape[1], *[hidden] * int(arch["depth"]), 2]
    rng = np.random.default_rng(args.seed)
    model = Mlp(sizes, rng)
    base_lr = float(arch["learning_rate"])

    step = -1  # the last completed step (0-based)
    if args.retrain_use_search_job_checkpoint:  # model selection: continue round k-1
        earlier = pt.get_retrain_search_job_model_dir(
            args.retrain_search_job_trials, args.retrain_search_job_dir
        )
        step = restore_checkpoint(checkpoint_path(earlier), model, rng)

    while step + 1 < total:
        if pt.get_stop_training(job_dir, step, total):  # 1. before each cycle
            break
        begin, end = step + 1, min(step + args.eval_every_steps, total - 1)
        start = time.perf_counter()
        loss_sum = 0.0
        for s in range(begin, end + 1):
            lr = base_lr * 0.5 * (1.0 + math.cos(math.pi * s / total))  # cosine to 0
            idx = rng.integers(0, len(train_y), BATCH_SIZE)
            loss_sum += model.train_step(train_x[idx], train_y[idx], lr)
        seconds = time.perf_counter() - start  # training only

        # a non-finite loss is reported as a NaN accuracy: TRIAL_FAILURE.json (cause nan)
        accuracy = model.accuracy(val_x, val_y) if math.isfinite(loss_sum) else math.nan
        if math.isfinite(accuracy):  # checkpoint first: a reported pct can rely on it
            save_checkpoint(checkpoint_path(job_dir), model, rng, end)
        pt.update_trial_training_accuracy_metric(  # 2. after each cycle
            job_dir, accuracy, begin, end, seconds, total
        )
        step = end

    pt.update_trial_training_latency_metric(job_dir, latency_kmacs(sizes))  # 3. once
    pt.save_final_metrics(
        job_dir, {"val_accuracy": model.accuracy(val_x, val_y), "last_step": float(step)}
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NonFiniteMetricError as exc:  # already recorded as cause "nan"
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
