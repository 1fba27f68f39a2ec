"""The search space of the recorded loss curves (``tests.loss_curves.space:sample``).

An architecture is a one-hidden-layer MLP on scikit-learn's digits that sees only the
``num_pixels`` most varying of the 64 pixels: few pixels make weak models (a high validation
loss), many make strong ones, so model selection finds reference models spread over a wide
loss range. ``width`` and ``learning_rate`` change the loss less. ``build_table.py`` trained
every architecture once and recorded its curves in ``curves.json``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

__all__ = ["ARCHITECTURES", "sample"]

NUM_PIXELS = (4, 6, 8, 16, 32, 64)
WIDTHS = (8, 32)
LEARNING_RATES = (0.03, 0.1)

#: Every architecture of the space, in the order the table lists them.
ARCHITECTURES: tuple[dict[str, Any], ...] = tuple(
    {"num_pixels": p, "width": w, "learning_rate": lr}
    for p, w, lr in itertools.product(NUM_PIXELS, WIDTHS, LEARNING_RATES)
)


def sample(rng: np.random.Generator) -> dict[str, Any]:
    """One of :data:`ARCHITECTURES`, uniformly, drawn with ``rng`` alone (plain JSON types)."""
    return dict(ARCHITECTURES[int(rng.integers(len(ARCHITECTURES)))])
