"""Does a workload have ranking signal? Its architectures' spread against its seed noise.

A proxy is judged by how its ranking of the reference models agrees with full training's. If
the full-training accuracies of different architectures differ by less than one model's
seed-to-seed noise, full training's own ranking is mostly noise, and no proxy can agree with
it well. This benchmark measures, for an example workload:

- ``models`` architectures drawn from the example's search space (the same ``sample`` the
  model selection uses, generator seed ``--space-seed``), each trained with the full recipe
  under ``seeds`` seeds, in this process (no trial process start-up), each in its own temp dir;
- the **range** of the per-architecture mean accuracies, and the **seed std** (the pooled
  within-architecture standard deviation, every architecture's seeds around its own mean);
- their ratio (the issue's aim: range ≥ 10× the seed std);
- the **seed-to-seed Kendall tau-b**: the tau between the ranking of seed 0 and that of seed 1
  (and every other pair of seeds; their mean), i.e. how well one full training agrees with
  another — the ceiling of any proxy's tau on these models;
- the same over the 10 architectures nearest to evenly spread ranks (what model selection aims
  for), since the reference models are picked to spread.

Usage::

    .venv/bin/python bench/workload_signal.py --example mnist1d            # 20 models x 3 seeds
    .venv/bin/python bench/workload_signal.py --example digits --models 12 --seeds 2

Writes ``workload_signal_<example>.json`` and ``.md`` under ``--out`` (default
``bench/results/``) and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stopping_rules import machine_info

EXAMPLES = ("mnist1d", "digits")
RESULTS = Path(__file__).resolve().parent / "results"


def pooled_seed_std(acc: np.ndarray) -> float:
    """The pooled within-architecture std of ``acc`` (models × seeds), ddof 1 per model."""
    deviations = acc - acc.mean(axis=1, keepdims=True)
    dof = acc.shape[0] * (acc.shape[1] - 1)
    return float(np.sqrt((deviations**2).sum() / dof))


def seed_taus(acc: np.ndarray) -> list[float]:
    """Kendall tau-b between every pair of seeds' rankings of the models."""
    out = []
    for a, b in itertools.combinations(range(acc.shape[1]), 2):
        tau = kendalltau(acc[:, a], acc[:, b]).statistic
        out.append(float(tau) if np.isfinite(tau) else float("nan"))
    return out


def spread_subset(means: np.ndarray, k: int) -> list[int]:
    """Indices of ``k`` models whose means are nearest to ``k`` evenly spaced quantiles."""
    order = list(np.argsort(means))
    if k >= len(order):
        return order
    picks: list[int] = []
    for q in np.linspace(0, 1, k):
        target = means[order[0]] + q * (means[order[-1]] - means[order[0]])
        free = [i for i in order if i not in picks]
        picks.append(min(free, key=lambda i: abs(means[i] - target)))
    return sorted(picks)


def summarise(acc: np.ndarray) -> dict[str, Any]:
    """Range, seed std, their ratio and the seed-to-seed taus of ``acc`` (models × seeds)."""
    means = acc.mean(axis=1)
    std = pooled_seed_std(acc)
    taus = seed_taus(acc)
    return {
        "models": int(acc.shape[0]),
        "seeds": int(acc.shape[1]),
        "min_mean": float(means.min()),
        "max_mean": float(means.max()),
        "range": float(means.max() - means.min()),
        "seed_std": std,
        "range_over_seed_std": float((means.max() - means.min()) / std) if std > 0 else None,
        "seed_taus": taus,
        "seed_tau_mean": float(np.nanmean(taus)),
    }


def train(example: str, arch: dict[str, Any], seed: int, steps: int | None) -> float:
    """Train ``arch`` with the example's full recipe under ``seed``; its final accuracy."""
    trainer = importlib.import_module(f"examples.{example}.trainer")
    with tempfile.TemporaryDirectory(prefix="wsig-") as job:
        extra = {} if steps is None else {"total_steps": steps, "eval_every_steps": steps}
        cfg = trainer.TrainConfig(
            job_dir=job, arch=arch, seed=seed, zero_cost_scores=False, **extra
        )
        result = trainer.run_trial(cfg, out=lambda line: None)
    return float(result.accuracy)


def markdown(example: str, every: dict[str, Any], spread: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    rows = [("all drawn models", every), ("10 spread over the range", spread)]
    lines = [
        f"Workload `{example}`: full-training validation accuracy, per architecture over seeds.",
        "",
        "| models | n | accuracy range (means) | seed std | range / seed std "
        "| seed-to-seed tau-b (mean over seed pairs) |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in rows:
        ratio = s["range_over_seed_std"]
        taus = ", ".join(f"{t:.2f}" for t in s["seed_taus"])
        lines.append(
            f"| {name} | {s['models']} | {100 * s['min_mean']:.1f}–{100 * s['max_mean']:.1f} % "
            f"({100 * s['range']:.1f} points) | {100 * s['seed_std']:.2f} points | "
            f"{'-' if ratio is None else f'{ratio:.0f}×'} | {s['seed_tau_mean']:.2f} ({taus}) |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--example", choices=EXAMPLES, default="mnist1d")
    p.add_argument("--models", type=int, default=20)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--space-seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="override the full step budget")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.models < 3 or args.seeds < 2:
        p.error(f"--models must be >= 3 and --seeds >= 2, got {args.models} and {args.seeds}")
    import torch

    torch.set_num_threads(1)
    space = importlib.import_module(f"examples.{args.example}.search_space")
    rng = np.random.default_rng(args.space_seed)
    archs = [space.sample(rng) for _ in range(args.models)]
    start = time.perf_counter()
    acc = np.zeros((args.models, args.seeds))
    for i, arch in enumerate(archs):
        for s in range(args.seeds):
            acc[i, s] = train(args.example, arch, s, args.steps)
        row = " ".join(f"{a:.3f}" for a in acc[i])
        print(f"{time.perf_counter() - start:7.1f} s  model {i + 1}/{args.models}: {row}")
    every = summarise(acc)
    spread = summarise(acc[spread_subset(acc.mean(axis=1), 10)])
    table = markdown(args.example, every, spread)
    record = {
        "example": args.example,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine_info(), "torch": torch.__version__},
        "wall_secs": round(time.perf_counter() - start, 1),
        "space_seed": args.space_seed,
        "steps": args.steps,
        "archs": archs,
        "accuracy": acc.tolist(),
        "all": every,
        "spread10": spread,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"workload_signal_{args.example}"
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    stem.with_suffix(".md").write_text(table)
    print(table)
    print(
        f"wall {record['wall_secs']} s; mean accuracy per seed:",
        [round(statistics.mean(acc[:, s]), 4) for s in range(args.seeds)],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
