"""The NAS-Bench-201 search space of this example: the 200 architectures of the replay table.

An architecture is ``{"nb201_index": i, "arch": "<NB201 cell string>"}`` with ``i`` in
0..199; the replay table (``curves.json``) matches curves by ``nb201_index`` and carries the
cell strings in its metadata. Use it with
``--search-space examples.nasbench201.search_space:sample``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from proxytask import UsageError

__all__ = ["NUM_ARCHITECTURES", "TABLE", "architecture", "architectures", "sample"]

#: The replay table built by ``build_table.py`` (read here for the cell strings only).
TABLE = Path(__file__).resolve().parent / "curves.json"
NUM_ARCHITECTURES = 200


@functools.lru_cache(maxsize=1)
def architectures() -> tuple[str, ...]:
    """The NB201 cell string of each index, from the table's metadata."""
    names = json.loads(TABLE.read_text())["metadata"]["architectures"]
    if len(names) != NUM_ARCHITECTURES:
        raise UsageError(
            f"{TABLE} must list {NUM_ARCHITECTURES} architectures in its metadata, got "
            f"{len(names)}. Rebuild it with examples/nasbench201/build_table.py."
        )
    return tuple(str(n) for n in names)


def architecture(index: int) -> dict[str, Any]:
    """The architecture with NB201 index ``index`` (0..199), as :func:`sample` returns it."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < NUM_ARCHITECTURES:
        raise UsageError(
            f"`nb201_index` must be an integer in [0, {NUM_ARCHITECTURES - 1}], got {index!r}."
        )
    return {"nb201_index": index, "arch": architectures()[index]}


def sample(rng: np.random.Generator) -> dict[str, Any]:
    """One of the 200 architectures, uniformly, drawn with ``rng`` (same state, same dict).

    Draws are with replacement: model selection may sample an architecture twice, and its
    spreading step then drops one of the two identical models first.

    Example::

        sample(np.random.default_rng([0, 0]))  # {"nb201_index": ..., "arch": "|...|"}
    """
    return architecture(int(rng.integers(NUM_ARCHITECTURES)))
