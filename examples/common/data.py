"""Data order and training subsets, shared by the example trainers.

Every function is pure: the subset a trial keeps and the order it sees the examples in are
functions of (seed, epoch), so a resumed run repeats them exactly. The seed's streams are kept
apart, so changing one use does not shift the others.
"""

from __future__ import annotations

import numpy as np

__all__ = ["batch_indices", "batches_per_epoch", "epoch_permutation", "subsample_indices"]

_STREAM_SUBSAMPLE = 1
_STREAM_ORDER = 2


def subsample_indices(labels: np.ndarray, train_data_pct: float, seed: int) -> np.ndarray:
    """Indices of a class-balanced random ``train_data_pct`` % of ``labels`` (sorted).

    Each class keeps ``round(n_class * pct / 100)`` (at least 1) members drawn at random with
    ``seed``; 100 % keeps everything.
    """
    if not 0 < train_data_pct <= 100:
        raise ValueError(f"train_data_pct must be in (0, 100], got {train_data_pct!r}")
    if train_data_pct >= 100:
        return np.arange(len(labels))
    rng = np.random.default_rng([int(seed), _STREAM_SUBSAMPLE])
    keep = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        n_keep = max(1, int(np.floor(len(members) * train_data_pct / 100 + 0.5)))
        keep.append(rng.permutation(members)[:n_keep])
    return np.sort(np.concatenate(keep))


def batches_per_epoch(num_examples: int, batch_size: int) -> int:
    """Full batches per epoch (the last partial batch is dropped; at least one batch)."""
    return max(1, num_examples // batch_size)


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    """The example order of ``epoch`` for ``seed``: a pure function, so resumes repeat it."""
    return np.random.default_rng([int(seed), _STREAM_ORDER, int(epoch)]).permutation(num_examples)


def batch_indices(num_examples: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """The example indices of the batch at 0-based ``step``."""
    per_epoch = batches_per_epoch(num_examples, batch_size)
    epoch, i = divmod(step, per_epoch)
    size = min(batch_size, num_examples)
    return epoch_permutation(num_examples, seed, epoch)[i * size : (i + 1) * size]
