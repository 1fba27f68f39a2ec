"""``proxytask.torch``: the public path of the PyTorch helpers (:mod:`proxytask.trainer.torch`).

Importing it imports PyTorch; ``import proxytask`` never does.
"""

from __future__ import annotations

from proxytask.trainer.torch import *  # noqa: F403  (the helpers, by their __all__)
from proxytask.trainer.torch import __all__ as __all__
