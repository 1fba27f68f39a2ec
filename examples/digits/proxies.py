"""Proxy-task candidates for the digits trainer: less data, smaller images, a narrower model.

Use it with ``--proxy-task-config-generator examples.digits.proxies:generate``. The step count
is not a dimension here: every proxy runs the full step budget, and proxytask finds the step
where the proxy becomes good enough.
"""

from __future__ import annotations

from typing import Any

from examples.common.proxies import reducing_configs
from proxytask import ProxyTaskConfig

__all__ = ["DATA_PCTS", "DEMO_NAMES", "IMAGE_SIZES", "WIDTH_MULTIPLIERS", "demo", "generate"]

DATA_PCTS = (25, 50, 75)  # never 100: that is the full recipe's data
IMAGE_SIZES = (8, 12)  # the full recipe uses 16
WIDTH_MULTIPLIERS = (0.5,)
# A few combinations of two reductions; all pairs would triple the list for little news.
_COMBINATIONS: tuple[dict[str, Any], ...] = (
    {"train_data_pct": 50, "image_size": 12},
    {"train_data_pct": 50, "width_multiplier": 0.5},
    {"image_size": 12, "width_multiplier": 0.5},
    {"train_data_pct": 25, "image_size": 8},
)
_SHORT = {"train_data_pct": "data", "image_size": "img", "width_multiplier": "width"}


def generate(baseline_args: dict[str, Any]) -> list[ProxyTaskConfig]:
    """Proxy-task configs over data %, image size, width and a few combinations.

    Each config's ``trainer_args`` is ``baseline_args`` with the reductions applied; settings
    that would not reduce anything (e.g. an image size not below the baseline's) are skipped.

    Example::

        [c.name for c in generate({"total_steps": 1000})][:4]
        # ['data25', 'data50', 'data75', 'img8']
    """
    base_size = int(baseline_args.get("image_size", 16))
    base_pct = float(baseline_args.get("train_data_pct", 100))
    base_width = float(baseline_args.get("width_multiplier", 1.0))

    baseline = {"train_data_pct": base_pct, "image_size": base_size, "width_multiplier": base_width}

    candidates: list[dict[str, Any]] = [{"train_data_pct": p} for p in DATA_PCTS]
    candidates += [{"image_size": s} for s in IMAGE_SIZES]
    candidates += [{"width_multiplier": w} for w in WIDTH_MULTIPLIERS]
    candidates += [dict(c) for c in _COMBINATIONS]
    return reducing_configs(baseline_args, baseline, candidates, _SHORT)


DEMO_NAMES = ("data25", "data50", "img8", "img12", "data25_img8")


def demo(baseline_args: dict[str, Any]) -> list[ProxyTaskConfig]:
    """The demo's smaller set: data % and image size, and one combination of both."""
    return [c for c in generate(baseline_args) if c.name in DEMO_NAMES]
