"""The trainer side of proxytask: what a user's trainer imports, cheap to import.

``from proxytask import trainer as pt`` gives the contract calls (:mod:`.contract`); the
PyTorch helpers are :mod:`proxytask.torch` (:mod:`.torch`), zero-cost scores :mod:`.zero_cost`.
"""

from __future__ import annotations

from proxytask.trainer.contract import *  # noqa: F403  (the public contract, by its __all__)
from proxytask.trainer.contract import __all__ as __all__
