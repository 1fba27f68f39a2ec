"""Search spaces: ``pkg.module:function(rng) -> dict``, sampled deterministically from a seed."""

from __future__ import annotations

import inspect
import json
import random
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
    """Load ``pkg.module:function`` as a :class:`SearchSpace`.

    The function takes a ``numpy.random.Generator`` and returns an architecture dict, or (as
    the reference tools' search-space modules define them) takes no argument and returns a
    PyGlove search space (``pg.Dict(...)`` of ``pg.oneof(...)`` and other hyper values; needs
    ``pip install 'proxytask[vertex]'``). A PyGlove space is sampled as a random DNA and the
    trial gets its decisions as ``{"<decision key>": "<index>/<choices>", ...}`` (floats as
    numbers), the form ``cloud_nas_utils.parse_and_save_nas_params_str`` materialises.
    """
    fn = import_callable(ref, "--search-space", SearchSpaceError)
    if _takes_no_argument(fn):
        return _pyglove_space(fn, ref)
    return SearchSpace(fn, ref)


def _takes_no_argument(fn: Callable[..., Any]) -> bool:
    """True when ``fn`` takes no positional argument (a PyGlove space builder)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_POSITIONAL,
    )
    return not any(p.kind in positional for p in params)


def _pyglove_space(fn: Callable[[], Any], ref: str) -> SearchSpace:
    """A search space from a function returning a PyGlove hyper value."""
    try:
        import pyglove as pg
    except ImportError:
        raise SearchSpaceError(
            f"--search-space {ref} takes no argument, so it must return a PyGlove search "
            "space, but pyglove is not installed. Install it with pip install "
            "'proxytask[vertex]', or make the function take a numpy Generator and return "
            "an architecture dict."
        ) from None
    try:
        value = fn()
        spec = pg.dna_spec(value)
    except Exception as exc:
        raise SearchSpaceError(
            f"--search-space {ref} must return a PyGlove search space (pg.Dict of pg.oneof, "
            f"...), got {type(exc).__name__}: {exc}. Fix the function."
        ) from None
    if not spec.decision_points:
        raise SearchSpaceError(
            f"--search-space {ref} must return a PyGlove search space with at least one "
            f"decision (pg.oneof, pg.floatv, ...), got {value!r:.80}, which has none."
        )

    def sample(rng: np.random.Generator) -> dict[str, Any]:
        dna = pg.random_dna(spec, random.Random(int(rng.integers(2**62))))
        decisions = dna.to_dict(key_type="id", value_type="choice")
        return {str(key): decision for key, decision in decisions.items()}

    return SearchSpace(sample, ref)
