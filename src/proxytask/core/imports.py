"""Import user code named as ``pkg.module:function`` with errors that teach."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from proxytask.core.errors import UsageError

__all__ = ["import_callable"]


def import_callable(
    ref: str, what: str, error: type[UsageError] = UsageError
) -> Callable[..., Any]:
    """Return the function named by ``ref`` (``pkg.module:function``).

    The current working directory is importable, as with ``python -m``. ``what`` names the
    flag in messages (e.g. ``--search-space``).
    """
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise error(
            f"{what} must look like 'package.module:function', got {ref!r}. "
            "Example: examples.digits.search_space:sample."
        )
    module_name, func_name = ref.split(":")
    if not module_name or not func_name:
        raise error(f"{what} must look like 'package.module:function', got {ref!r}.")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise error(
            f"{what} must name an importable module, got {module_name!r} ({exc}). Run from the "
            "folder that contains the package, or install it."
        ) from exc
    except Exception as exc:  # the user's module failed while importing
        raise error(
            f"{what}: importing {module_name!r} must succeed, got {type(exc).__name__}: {exc}. "
            "Fix the error in that module."
        ) from exc
    func = getattr(module, func_name, None)
    if func is None:
        raise error(
            f"{what} must name a function in {module_name!r}, got {func_name!r}, which is not "
            f"there. Functions found: {', '.join(n for n in dir(module) if not n.startswith('_'))}."
        )
    if not callable(func):
        raise error(f"{what} must name a callable, got {func_name!r} = {func!r}.")
    return func  # type: ignore[no-any-return]
