"""The MNIST-1D search space: a stem and three stages of 1-D residual conv blocks.

An architecture is a plain JSON dict::

    {
        "stem": 32,
        "stem_kernel": 5,
        "stages": [
            {"kernel": 5, "width": 32, "repeats": 1},
            {"kernel": 5, "width": 32, "repeats": 2},
            {"kernel": 5, "width": 32, "repeats": 1},
        ],
    }

The stem keeps the signal's length; each stage starts with stride 2 (40 → 20 → 10 → 5 for
the full recipe's 40-point signals). Kernel 1 mixes channels but not neighbouring points, so
models built mostly from it see little of the signal's shape: together with 4-channel widths,
that is where the weak models of the space come from. Use it with
``--search-space examples.mnist1d.search_space:sample``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np

from examples.common.arch import int_in as _int_in
from proxytask import UsageError

__all__ = [
    "KERNELS",
    "NUM_STAGES",
    "REPEATS",
    "STRIDE",
    "WIDTHS",
    "baseline",
    "sample",
    "validate",
]

WIDTHS = (4, 8, 16, 32)
KERNELS = (1, 3, 5, 7)
REPEATS = (1, 2)
NUM_STAGES = 3
STRIDE = 2  # every stage's first block halves the length

# What validate() accepts: wider than what sample() draws, so hand-written architectures work.
_MIN_WIDTH, _MAX_WIDTH = 1, 1024
_MAX_KERNEL = 15
_MAX_REPEATS = 8
_STAGE_KEYS = ("kernel", "width", "repeats")
_KEYS = ("stem", "stem_kernel", "stages")


def sample(rng: np.random.Generator) -> dict[str, Any]:
    """Draw one architecture with ``rng``; the same generator state gives the same dict.

    Widths are drawn around one shared level, and kernels around another (independent draws
    would give mostly mid-size models, while reference models must spread from tiny,
    short-sighted ones to wide ones that see the whole signal); repeats are drawn
    independently. The space spans 4-channel models of a few hundred parameters (about
    60 % validation accuracy with the full recipe) to 32-channel ones of about 30k (98 %+).
    Only plain JSON types are returned.

    Example::

        arch = sample(np.random.default_rng(0))
    """
    width_level = int(rng.integers(len(WIDTHS)))
    kernel_level = int(rng.integers(len(KERNELS)))

    def around(options: Sequence[int], level: int) -> int:
        index = min(max(level + int(rng.integers(-1, 2)), 0), len(options) - 1)
        return int(options[index])

    def width() -> int:
        return around(WIDTHS, width_level)

    def kernel() -> int:
        return around(KERNELS, kernel_level)

    stem, stem_kernel = width(), kernel()
    stages = [
        {"kernel": kernel(), "width": width(), "repeats": int(REPEATS[int(rng.integers(2))])}
        for _ in range(NUM_STAGES)
    ]
    return {"stem": stem, "stem_kernel": stem_kernel, "stages": stages}


def baseline() -> dict[str, Any]:
    """The baseline model: 32 channels and kernel 5 throughout, five blocks (21,290 params)."""
    return {
        "stem": 32,
        "stem_kernel": 5,
        "stages": [
            {"kernel": 5, "width": 32, "repeats": 1},
            {"kernel": 5, "width": 32, "repeats": 2},
            {"kernel": 5, "width": 32, "repeats": 1},
        ],
    }


def _odd_kernel(name: str, value: Any) -> int:
    _int_in(name, value, 1, _MAX_KERNEL)
    if value % 2 == 0:
        raise UsageError(f"`{name}` must be odd (the signal keeps its length), got {value!r}.")
    return int(value)


def _exact_keys(where: str, obj: dict[str, Any], keys: Sequence[str]) -> None:
    if set(obj) != set(keys):
        raise UsageError(f"`{where}` must have exactly the keys {list(keys)}, got {sorted(obj)}.")


def validate(arch: Any) -> dict[str, Any]:
    """Check an architecture and return a copy of it; raise UsageError naming the bad field.

    Example::

        validate({"stem": 8, "stem_kernel": 4, ...})  # UsageError: `stem_kernel` must be odd
    """
    if not isinstance(arch, dict):
        raise UsageError(
            f"the architecture must be a JSON object with {list(_KEYS)}, got {arch!r:.80}."
        )
    _exact_keys("architecture", arch, _KEYS)
    _int_in("stem", arch["stem"], _MIN_WIDTH, _MAX_WIDTH)
    _odd_kernel("stem_kernel", arch["stem_kernel"])
    stages = arch["stages"]
    if not isinstance(stages, list) or len(stages) != NUM_STAGES:
        raise UsageError(f"`stages` must be a list of {NUM_STAGES} stages, got {stages!r:.80}.")
    for i, stage in enumerate(stages):
        where = f"stages[{i}]"
        if not isinstance(stage, dict):
            raise UsageError(f"`{where}` must be an object, got {stage!r:.80}.")
        _exact_keys(where, stage, _STAGE_KEYS)
        _odd_kernel(f"{where}.kernel", stage["kernel"])
        _int_in(f"{where}.width", stage["width"], _MIN_WIDTH, _MAX_WIDTH)
        _int_in(f"{where}.repeats", stage["repeats"], 1, _MAX_REPEATS)
    return copy.deepcopy(arch)
