"""The search space of the guide trainer (``--search-space tests.guide_trainer.space:sample``).

An architecture is a small MLP on the ``num_features`` least informative of the 30 input
features (the trainer orders them by their correlation with the label). The feature count
spans weak models (3 features: about the 63 % of always answering the majority class) to strong
ones (all 30 features: about 97 %) in many distinct steps, so that model selection finds
reference models spread over a wide accuracy range, which a proxy can rank. Width, depth and
learning rate change the accuracy less, and the latency (multiply-adds) more.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["NUM_FEATURES", "baseline", "sample"]

NUM_FEATURES = (3, 4, 5, 6, 8, 10, 12, 16, 20, 30)
WIDTHS = (2, 4, 8, 16, 32)
DEPTHS = (1, 2)
LEARNING_RATES = (0.01, 0.03, 0.1)


def sample(rng: np.random.Generator) -> dict[str, Any]:
    """Draw one architecture from ``rng`` alone, as plain JSON types."""
    return {
        "num_features": int(rng.choice(NUM_FEATURES)),
        "width": int(rng.choice(WIDTHS)),
        "depth": int(rng.choice(DEPTHS)),
        "learning_rate": float(rng.choice(LEARNING_RATES)),
    }


def baseline() -> dict[str, Any]:
    """A fixed, strong architecture (for ``--baseline-architecture`` or ``--architecture``)."""
    return {"num_features": 30, "width": 16, "depth": 1, "learning_rate": 0.1}
