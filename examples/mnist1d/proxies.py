"""Proxy-task candidates for the MNIST-1D trainer: less data, shorter signals, a smaller model.

Use it with ``--proxy-task-config-generator examples.mnist1d.proxies:generate``. The step
count is not a dimension here: every proxy runs the full step budget, and proxytask finds the
step where the proxy becomes good enough.
"""

from __future__ import annotations

from typing import Any

from examples.common.proxies import reducing_configs
from proxytask import ProxyTaskConfig

__all__ = ["DATA_PCTS", "DEMO_NAMES", "SEQ_LENGTHS", "WIDTH_MULTIPLIERS", "demo", "generate"]

DATA_PCTS = (25, 50)  # never 100: that is the full recipe's data
SEQ_LENGTHS = (20, 30)  # the full recipe uses 40 points
WIDTH_MULTIPLIERS = (0.5,)
# A few combinations of two reductions; all pairs would multiply the list for little news.
_COMBINATIONS: tuple[dict[str, Any], ...] = (
    {"train_data_pct": 25, "seq_length": 20},
    {"train_data_pct": 50, "width_multiplier": 0.5},
    {"seq_length": 20, "width_multiplier": 0.5},
)
_SHORT = {"train_data_pct": "data", "seq_length": "len", "width_multiplier": "width"}


def generate(baseline_args: dict[str, Any]) -> list[ProxyTaskConfig]:
    """Proxy-task configs over data %, signal length, width and a few combinations.

    Each config's ``trainer_args`` is ``baseline_args`` with the reductions applied; settings
    that would not reduce anything (e.g. a length not below the baseline's) are skipped.

    Example::

        [c.name for c in generate({"total_steps": 1000})][:4]
        # ['data25', 'data50', 'len20', 'len30']
    """
    baseline = {
        "train_data_pct": float(baseline_args.get("train_data_pct", 100)),
        "seq_length": int(baseline_args.get("seq_length", 40)),
        "width_multiplier": float(baseline_args.get("width_multiplier", 1.0)),
    }

    candidates: list[dict[str, Any]] = [{"train_data_pct": p} for p in DATA_PCTS]
    candidates += [{"seq_length": n} for n in SEQ_LENGTHS]
    candidates += [{"width_multiplier": w} for w in WIDTH_MULTIPLIERS]
    candidates += [dict(c) for c in _COMBINATIONS]
    return reducing_configs(baseline_args, baseline, candidates, _SHORT)


DEMO_NAMES = ("data25", "data50", "len20", "width0.5", "data25_len20")


def demo(baseline_args: dict[str, Any]) -> list[ProxyTaskConfig]:
    """The demo's smaller set: data %, signal length, width, and one combination."""
    return [c for c in generate(baseline_args) if c.name in DEMO_NAMES]
