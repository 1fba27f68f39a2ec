"""proxytask: design proxy tasks for neural architecture search, and prove they can be trusted.

Trainers import :mod:`proxytask.trainer` (or :mod:`proxytask.vertex` for the reference tools'
names). Importing this package is cheap: heavy modules load only when used.
"""

from __future__ import annotations

from proxytask.errors import ProxyTaskError, UsageError
from proxytask.proxies import ProxyTaskConfig

__all__ = ["ProxyTaskConfig", "ProxyTaskError", "UsageError", "__version__"]

__version__ = "0.1.0"
