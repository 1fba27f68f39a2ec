"""The proxy tasks the recorded loss curves support: 25 % and 50 % of the training data.

``--proxy-task-config-generator tests.loss_curves.proxies:generate``.
"""

from __future__ import annotations

from proxytask.proxies import data_pct_generator

__all__ = ["generate"]

generate = data_pct_generator((25, 50))
