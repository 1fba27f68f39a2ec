"""Record the loss-curve replay table ``curves.json`` once (numpy + scikit-learn's digits).

Run from the repository root: ``python -m tests.loss_curves.build_table``. Every architecture
of ``space.py`` is trained for real: a one-hidden-layer ReLU MLP, softmax cross-entropy,
minibatch SGD (batch 32, momentum 0.9) with a cosine learning-rate decay to 0 over 300 steps,
on the first ``train_data_pct`` % of a fixed shuffled split of the 1,797 digits (1,437 train,
360 validation). Every 10 steps it records the validation cross-entropy loss (nats) and, as a
second table of the same runs, the validation accuracy. Seed 0 is the recipe's curve; seeds
1-3 (``--seed=k``, full data) are the variance measurement's copies. Each curve's training
time is a cost model (multiply-adds at a notional 1 MFLOP/s), not a wall clock, so a rebuild
gives the same file; its latency is the multiply-adds per example / 1e4 and
``zero_cost.params`` its parameter count. Deterministic: a rebuild gives the same bytes.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_digits

if __package__ in (None, ""):  # run as a script: make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.loss_curves.space import ARCHITECTURES

TABLE = Path(__file__).resolve().parent / "curves.json"
TOTAL_STEPS, EVAL_EVERY, BATCH = 300, 10, 32
DATA_PCTS = (25, 50, 100)  # the proxies of proxies.py, and the recipe
SEEDS = (0, 1, 2, 3)  # 0: the recipe; 1-3: variance copies (full data only)


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    digits = load_digits()
    x = digits.data.astype(np.float64) / 16.0
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(1234).permutation(len(y))
    x, y = x[order], y[order]
    n_train = 1437
    pixel_rank = np.argsort(-x[:n_train].var(axis=0), kind="stable")
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:], pixel_rank


def _loss_and_accuracy(
    params: list[np.ndarray], x: np.ndarray, y: np.ndarray
) -> tuple[float, float]:
    w1, b1, w2, b2 = params
    logits = np.maximum(x @ w1 + b1, 0.0) @ w2 + b2
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    loss = float(-log_p[np.arange(len(y)), y].mean())
    return loss, float((logits.argmax(axis=1) == y).mean())


def train(arch: dict[str, Any], data_pct: int, seed: int) -> list[tuple[int, float, float]]:
    """One real training run: ``(end step, validation loss, validation accuracy)`` per eval."""
    x_tr, y_tr, x_va, y_va, rank = _data()
    pixels = rank[: arch["num_pixels"]]
    n = int(len(y_tr) * data_pct / 100)
    x_tr, y_tr, x_va = x_tr[:n, pixels], y_tr[:n], x_va[:, pixels]
    rng = np.random.default_rng([seed, 77])
    d, h = len(pixels), arch["width"]
    params = [
        rng.normal(0.0, math.sqrt(2.0 / d), (d, h)),
        np.zeros(h),
        rng.normal(0.0, math.sqrt(1.0 / h), (h, 10)),
        np.zeros(10),
    ]
    velocity = [np.zeros_like(p) for p in params]
    out = []
    for step in range(TOTAL_STEPS):
        idx = rng.integers(0, n, BATCH)
        xb, yb = x_tr[idx], y_tr[idx]
        w1, b1, w2, b2 = params
        hidden = np.maximum(xb @ w1 + b1, 0.0)
        logits = hidden @ w2 + b2
        logits -= logits.max(axis=1, keepdims=True)
        prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        prob[np.arange(BATCH), yb] -= 1.0
        g_logits = prob / BATCH
        g_hidden = (g_logits @ w2.T) * (hidden > 0)
        grads = [xb.T @ g_hidden, g_hidden.sum(0), hidden.T @ g_logits, g_logits.sum(0)]
        lr = arch["learning_rate"] * 0.5 * (1.0 + math.cos(math.pi * step / TOTAL_STEPS))
        for p, v, g in zip(params, velocity, grads, strict=True):
            v *= 0.9
            v -= lr * g
            p += v
        if (step + 1) % EVAL_EVERY == 0:
            out.append((step, *_loss_and_accuracy(params, x_va, y_va)))
    return out


def _curves(arch: dict[str, Any], index: int) -> list[dict[str, Any]]:
    macs = arch["num_pixels"] * arch["width"] + arch["width"] * 10
    params = macs + arch["width"] + 10
    cycle_secs = float(f"{EVAL_EVERY * BATCH * 6 * macs / 1e6:.4g}")
    runs = [(pct, 0) for pct in DATA_PCTS] + [(100, s) for s in SEEDS[1:]]
    curves = []
    for pct, seed in runs:
        points = train(arch, pct, seed)
        for report, column in (("loss", 1), ("accuracy", 2)):
            args: dict[str, Any] = {"report": report, "train_data_pct": pct}
            if seed:
                args["seed"] = seed
            curves.append(
                {
                    "curve_id": f"a{index}-{report}-d{pct}" + (f"-s{seed}" if seed else ""),
                    "match": {"nas_params": dict(arch), "trainer_args": args},
                    "total_steps": TOTAL_STEPS,
                    "latency": macs / 1e4,
                    "final_metrics": {"zero_cost.params": float(params)},
                    "points": [[p[0], round(p[column], 5), cycle_secs] for p in points],
                }
            )
    return curves


def main() -> int:
    """Train every architecture and write :data:`TABLE`."""
    curves = [c for i, arch in enumerate(ARCHITECTURES) for c in _curves(arch, i)]
    table = {
        "format": "proxytask-replay-table",
        "version": 1,
        "curves": curves,
        "metadata": {
            "sources": ["scikit-learn's bundled digits (sklearn.datasets.load_digits)"],
            "made_by": "tests/loss_curves/build_table.py (real numpy training, see its docstring)",
            "metric": "trainer arg report=loss: validation cross-entropy (nats, lower is "
            "better); report=accuracy: validation accuracy of the same runs",
        },
    }
    TABLE.write_text(json.dumps(table, separators=(",", ":")) + "\n")
    print(f"wrote {len(curves)} curves to {TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
