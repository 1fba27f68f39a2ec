"""proxytask: design proxy tasks for neural architecture search, and prove they can be trusted.

The folders name the layers, from the bottom up:

- :mod:`proxytask.trainer` — the trainer side, cheap to import: the contract calls a trainer
  makes (:mod:`proxytask.vertex` has the reference tools' names; :mod:`proxytask.torch` the
  PyTorch helpers and zero-cost scores);
- :mod:`proxytask.core` — storage (the only fsspec user), layout (every path and file name),
  clock, errors, options, search spaces and proxy-task configs;
- :mod:`proxytask.stats` — pure statistics: variance and smoothness, Kendall tau and its
  intervals, stopping rules, the selection rule, winner stability;
- :mod:`proxytask.executors` — where trials run: local, Ray, replay;
- :mod:`proxytask.controllers` — the tools you ``step()``: variance measurement, model
  selection, proxy-task search, final checks, the whole workflow, the latency worker;
- :mod:`proxytask.report` — plain data for figures, their renderers, status and live progress;
- :mod:`proxytask.cli` — the ``proxytask`` command: parse and forward.

Importing this package is cheap: heavy modules load only when used.
"""

from __future__ import annotations

from proxytask.core.errors import NonFiniteMetricError, ProxyTaskError, UsageError
from proxytask.core.proxies import ProxyTaskConfig

__all__ = [
    "NonFiniteMetricError",
    "ProxyTaskConfig",
    "ProxyTaskError",
    "UsageError",
    "__version__",
]

__version__ = "0.1.0"
