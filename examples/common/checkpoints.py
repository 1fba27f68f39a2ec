"""Checkpoints of the example trainers: the full training state, written atomically.

A checkpoint holds a ``recipe`` (the settings that made it); a run continues one only when
the settings that shape the model and its schedule match (:func:`check_resumable`), and warns
about settings that may differ on purpose but usually mean a mistake.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from proxytask import UsageError
from proxytask.core import layout, storage

__all__ = ["CHECKPOINT_FILE", "FORMAT", "check_resumable", "checkpoint_path", "load", "save"]

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = 1


def checkpoint_path(trial_dir: str) -> str:
    """Where a trial keeps its checkpoint: ``<trial dir>/checkpoint/checkpoint.pt``."""
    return storage.join(trial_dir, layout.CHECKPOINT_DIR, CHECKPOINT_FILE)


def save(url: str, state: dict[str, Any]) -> None:
    """Write ``state`` (with ``"format"`` added) to ``url``: a temp file renamed, one put."""
    buffer = io.BytesIO()
    torch.save({**state, "format": FORMAT}, buffer)
    storage.write_bytes_atomic(url, buffer.getvalue())


def load(url: str, device: torch.device) -> dict[str, Any] | None:
    """The checkpoint at ``url`` (tensors on ``device``), or None when there is none."""
    raw = storage.read_bytes(url)
    if raw is None:
        return None
    state: dict[str, Any] = torch.load(io.BytesIO(raw), map_location=device, weights_only=True)
    if state.get("format") != FORMAT:
        raise UsageError(
            f"checkpoint {url!r} must be format {FORMAT} of this trainer, got "
            f"{state.get('format')!r}. Start the trial fresh."
        )
    return state


def check_resumable(
    url: str,
    saved: Mapping[str, Any],
    now: Mapping[str, Any],
    must_match: Sequence[str],
    should_match: Sequence[str],
) -> None:
    """Raise UsageError when a ``must_match`` setting differs; warn for ``should_match`` ones."""
    names = ["architecture" if key == "arch" else f"--{key}" for key in must_match]
    same = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    for key in must_match:
        if saved.get(key) != now.get(key):
            raise UsageError(
                f"`{key}` must match the checkpoint being continued ({url}), got "
                f"{now.get(key)!r} here and {saved.get(key)!r} there. Continue with the same "
                f"{same}, or start fresh."
            )
    for key in should_match:
        if saved.get(key) != now.get(key):
            logger.warning(
                "continuing %s with %s=%r (the checkpoint used %r)",
                url,
                key,
                now.get(key),
                saved.get(key),
            )
