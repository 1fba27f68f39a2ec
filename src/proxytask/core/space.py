"""Search spaces: ``pkg.module:function(rng) -> dict``, sampled deterministically from a seed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from proxytask.core.errors import SearchSpaceError
from proxytask.core.imports import import_callable

__all__ = ["SearchSpace", "load_search_space"]


class SearchSpace:
    """A user's search space: a function taking a ``numpy.random.Generator``.

    The function returns one architecture as a JSON-serialisable dict. Sampling is
    deterministic: architecture ``i`` of seed ``s`` is the same on every machine and run.

    Example::

        space = load_search_space("examples.digits.search_space:sample")
        archs = space.sample_many(seed=0, count=30)
    """

    def __init__(self, fn: Callable[[np.random.Generator], Any], name: str) -> None:
        self._fn = fn
        self.name = name

    def sample(self, seed: int, index: int = 0) -> dict[str, Any]:
        """Architecture number ``index`` of the stream for ``seed``."""
        rng = np.random.default_rng([int(seed), int(index)])
        try:
            arch = self._fn(rng)
        except Exception as exc:
            raise SearchSpaceError(
                f"search space {self.name} must return an architecture, got "
                f"{type(exc).__name__}: {exc} while sampling. Fix the function."
            ) from exc
        return _check_arch(arch, self.name)

    def sample_many(self, seed: int, count: int, start: int = 0) -> list[dict[str, Any]]:
        """``count`` architectures, numbers ``start .. start+count-1``."""
        return [self.sample(seed, start + i) for i in range(count)]


def _check_arch(arch: Any, name: str) -> dict[str, Any]:
    if not isinstance(arch, dict):
        raise SearchSpaceError(
            f"search space {name} must return a dict, got {type(arch).__name__}: {arch!r:.80}. "
            "Return e.g. {'width': 32, 'depth': 2}."
        )
    try:
        text = json.dumps(arch, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise SearchSpaceError(
            f"search space {name} must return a JSON-serialisable dict, got {arch!r:.120} "
            f"({exc}). Convert numpy values with int()/float() and use lists, not tuples of "
            "objects."
        ) from exc
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def load_search_space(ref: str) -> SearchSpace:
    """Load ``pkg.module:function`` as a :class:`SearchSpace`."""
    fn = import_callable(ref, "--search-space", SearchSpaceError)
    return SearchSpace(fn, ref)
