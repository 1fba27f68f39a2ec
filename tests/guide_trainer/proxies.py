"""The proxy-task configs of the guide trainer.

``--proxy-task-config-generator tests.guide_trainer.proxies:generate``. Each config keeps the
full step budget (the search finds the step where it becomes good enough) and trains on a
share of the training data. The smaller share comes first: the guide advises putting the
likely cheap winners first, so that a later config stops as soon as it takes longer.
"""

from __future__ import annotations

from collections.abc import Mapping

from proxytask import ProxyTaskConfig

__all__ = ["generate"]


def generate(baseline_args: Mapping[str, str]) -> list[ProxyTaskConfig]:
    """Two cheap proxies: a quarter and a half of the training data."""
    return [
        ProxyTaskConfig(f"data{pct}", {**baseline_args, "train_data_pct": pct}) for pct in (25, 50)
    ]
