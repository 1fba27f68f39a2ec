"""Proxy-task configs the NAS-Bench-201 data supports: when and what the trainer evaluates.

Use it with ``--proxy-task-config-generator examples.nasbench201.proxies:generate``. The
data is one training recipe (the 200-epoch cosine schedule), so every config trains the same
way; the search finds the epoch where each becomes good enough, i.e. "train the 200-epoch
schedule for fewer epochs". The configs differ in what the search can see:

- ``valid_e10``: validation accuracy every 10 epochs (the baseline's flags);
- ``valid_e1``: validation accuracy every epoch (more looks: earlier, and noisier, decisions);
- ``train_e10``: train accuracy every 10 epochs (ranking without a validation set).

Not supported by the data: less training data, smaller images or narrower models, and a
cosine schedule that decays to 0 at the recommended epoch (see README.md).
"""

from __future__ import annotations

from typing import Any

from proxytask import ProxyTaskConfig

__all__ = ["CONFIGS", "generate"]

#: name → the trainer flags that select its curves in ``curves.json``.
CONFIGS: dict[str, dict[str, Any]] = {
    "valid_e10": {"eval_every_epochs": 10, "eval_split": "valid"},
    "valid_e1": {"eval_every_epochs": 1, "eval_split": "valid"},
    "train_e10": {"eval_every_epochs": 10, "eval_split": "train"},
}


def generate(baseline_args: dict[str, Any]) -> list[ProxyTaskConfig]:
    """The configs of :data:`CONFIGS`, each on top of ``baseline_args``.

    Example::

        [c.name for c in generate({})]  # ['valid_e10', 'valid_e1', 'train_e10']
    """
    return [ProxyTaskConfig(name, {**baseline_args, **args}) for name, args in CONFIGS.items()]
