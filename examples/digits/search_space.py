"""The digits search space: a small MnasNet-style space of stem width and three MBConv stages.

An architecture is a plain JSON dict::

    {
        "stem": 16,
        "stages": [
            {"kernel": 3, "expand": 1, "width": 16, "repeats": 1, "se": false},
            {"kernel": 3, "expand": 6, "width": 24, "repeats": 2, "se": false},
            {"kernel": 5, "expand": 6, "width": 32, "repeats": 2, "se": true},
        ],
    }

The stem keeps the input size; stage ``i`` starts with stride ``STRIDES[i]`` (16×16 stem →
8×8 → 4×4 → 4×4 for the full recipe's 16×16 images).
Use it with ``--search-space examples.digits.search_space:sample``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np

from examples.common.arch import int_in as _int_in
from proxytask import UsageError

__all__ = [
    "EXPANSIONS",
    "KERNELS",
    "NUM_STAGES",
    "REPEATS",
    "STAGE_WIDTHS",
    "STEM_WIDTHS",
    "STRIDES",
    "baseline",
    "sample",
    "validate",
]

STEM_WIDTHS = (4, 8, 12, 16)
KERNELS = (3, 5)
EXPANSIONS = (1, 3, 6)
#: Width choices per stage: later stages see smaller maps and may afford more channels.
STAGE_WIDTHS = ((4, 8, 12, 16), (4, 8, 16, 24), (4, 8, 16, 32))
REPEATS = (1, 2, 3)
#: Most compute runs at low resolution, as in MnasNet: depthwise convs are slow on CPUs.
STRIDES = (2, 2, 1)
NUM_STAGES = len(STAGE_WIDTHS)
_NUM_LEVELS = len(STEM_WIDTHS)

# What validate() accepts: wider than what sample() draws, so hand-written architectures work.
_MIN_WIDTH, _MAX_WIDTH = 4, 512
_MAX_REPEATS = 8
_STAGE_KEYS = ("kernel", "expand", "width", "repeats", "se")


def _choice(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def sample(rng: np.random.Generator) -> dict[str, Any]:
    """Draw one architecture with ``rng``; the same generator state gives the same dict.

    The space spans tiny models (4 channels, one block per stage: 298 parameters, ~81 %
    validation accuracy with the full recipe) to wide, deep ones (up to ~180k parameters,
    ~99 %+). Only plain JSON types are returned.

    Example::

        arch = sample(np.random.default_rng(0))
    """
    # Widths are drawn around one shared level: independent draws would give mostly
    # mid-size models, while reference models must spread from tiny to wide.
    level = int(rng.integers(_NUM_LEVELS))

    def width(options: Sequence[int]) -> int:
        index = min(max(level + int(rng.integers(-1, 2)), 0), len(options) - 1)
        return int(options[index])

    stem = width(STEM_WIDTHS)
    stages = []
    for widths in STAGE_WIDTHS:
        stages.append(
            {
                "kernel": int(_choice(rng, KERNELS)),
                "expand": int(_choice(rng, EXPANSIONS)),
                "width": width(widths),
                "repeats": int(_choice(rng, REPEATS)),
                "se": bool(rng.integers(2)),
            }
        )
    return {"stem": stem, "stages": stages}


def baseline() -> dict[str, Any]:
    """The baseline model of this space: a fixed, reasonably strong architecture.

    About 74k parameters; the full recipe (1000 steps) takes it to 98.3-99.7 % validation
    accuracy (seeds 0-2).
    """
    return {
        "stem": 16,
        "stages": [
            {"kernel": 3, "expand": 1, "width": 16, "repeats": 1, "se": False},
            {"kernel": 3, "expand": 6, "width": 24, "repeats": 2, "se": False},
            {"kernel": 5, "expand": 6, "width": 32, "repeats": 2, "se": True},
        ],
    }


def _one_of(name: str, value: Any, options: Sequence[int]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in options:
        allowed = ", ".join(str(o) for o in options[:-1]) + f" or {options[-1]}"
        raise UsageError(f"`{name}` must be {allowed}, got {value!r}.")
    return value


def validate(arch: Any) -> dict[str, Any]:
    """Check an architecture and return a copy of it; raise UsageError naming the bad field.

    Example::

        validate({"stem": 16, "stages": [...]})  # UsageError: `stages[1].kernel` must be 3
                                                 # or 5, got 7.
    """
    if not isinstance(arch, dict):
        raise UsageError(
            f"the architecture must be a JSON object with `stem` and `stages`, got {arch!r:.80}."
        )
    unknown = sorted(set(arch) - {"stem", "stages"})
    if unknown:
        raise UsageError(
            f"the architecture must have only `stem` and `stages`, got extra keys {unknown}."
        )
    if "stem" not in arch or "stages" not in arch:
        missing = [k for k in ("stem", "stages") if k not in arch]
        raise UsageError(f"the architecture must have `stem` and `stages`, got no {missing}.")
    _int_in("stem", arch["stem"], _MIN_WIDTH, _MAX_WIDTH)
    stages = arch["stages"]
    if not isinstance(stages, list) or len(stages) != NUM_STAGES:
        raise UsageError(f"`stages` must be a list of {NUM_STAGES} stages, got {stages!r:.80}.")
    for i, stage in enumerate(stages):
        where = f"stages[{i}]"
        if not isinstance(stage, dict):
            raise UsageError(f"`{where}` must be an object, got {stage!r:.80}.")
        keys = set(stage)
        if keys != set(_STAGE_KEYS):
            raise UsageError(
                f"`{where}` must have exactly the keys {list(_STAGE_KEYS)}, got {sorted(keys)}."
            )
        _one_of(f"{where}.kernel", stage["kernel"], KERNELS)
        _one_of(f"{where}.expand", stage["expand"], EXPANSIONS)
        _int_in(f"{where}.width", stage["width"], _MIN_WIDTH, _MAX_WIDTH)
        _int_in(f"{where}.repeats", stage["repeats"], 1, _MAX_REPEATS)
        if not isinstance(stage["se"], bool):
            raise UsageError(f"`{where}.se` must be true or false, got {stage['se']!r}.")
    return copy.deepcopy(arch)
