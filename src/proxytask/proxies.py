"""``proxytask.proxies``: the public path of proxy-task configs and the built-in generators.

Config files name the built-in generators here (``proxytask.proxies:training_data_pct``,
``:model_scale``, ``:data_and_scale``); the code lives in :mod:`proxytask.core.proxies`.
"""

from __future__ import annotations

from proxytask.core.proxies import *  # noqa: F403  (the configs and generators, by __all__)
from proxytask.core.proxies import __all__ as __all__
