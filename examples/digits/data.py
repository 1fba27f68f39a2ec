"""The digits data: scikit-learn's bundled 8×8 digits, a fixed split, proxy downsampling.

- The train/validation split is stratified and fixed (``SPLIT_SEED``), independent of the trial
  seed: every trial is judged on the same 360 validation images.
- ``train_data_pct`` keeps a shuffled, class-balanced subset of the training images, seeded by
  the trial seed; the validation set is never downsampled.
- Images are scaled to [0, 1]; :func:`to_tensor` resizes them (bilinear) to ``image_size``.
- The data order is a pure function of (seed, step), so a resumed run sees the same batches.

The CSV is read straight from scikit-learn's package data, which avoids importing scikit-learn
(about a second per trial process); :func:`load_digits_arrays` falls back to
``sklearn.datasets.load_digits`` when the file is not where it is expected.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import os

import numpy as np
import torch
import torch.nn.functional as F

from examples.common.data import (
    batch_indices,
    batches_per_epoch,
    epoch_permutation,
    subsample_indices,
)

__all__ = [
    "NUM_VALIDATION",
    "SPLIT_SEED",
    "Split",
    "batch_indices",
    "batch_shifts",
    "batches_per_epoch",
    "epoch_permutation",
    "load_digits_arrays",
    "load_split",
    "max_shift",
    "shift_images",
    "subsample_indices",
    "to_tensor",
]

SPLIT_SEED = 0
NUM_VALIDATION = 360
_PIXEL_MAX = 16.0
_SIDE = 8

# Streams of the trial seed, kept apart so that changing one use does not shift the others.
_STREAM_AUGMENT = 3  # streams 1 and 2: the subset and the order (examples.common.data)


@dataclasses.dataclass(frozen=True)
class Split:
    """Training and validation images (float32, N×8×8 in [0, 1]) and labels (int64)."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray


def _bundled_csv() -> str | None:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = os.path.join(root, "datasets", "data", "digits.csv.gz")
        if os.path.exists(path):
            return path
    return None


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits: images (float32, N×8×8, in [0, 1]) and labels (int64)."""
    path = _bundled_csv()
    if path is not None:
        with gzip.open(path, "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.float64)
        pixels, labels = table[:, :-1], table[:, -1]
    else:  # pragma: no cover - only when scikit-learn moves its data
        from sklearn.datasets import load_digits

        bunch = load_digits()
        pixels, labels = bunch.data, bunch.target
    images = (pixels / _PIXEL_MAX).astype(np.float32).reshape(-1, _SIDE, _SIDE)
    return images, labels.astype(np.int64)


def _allocate(counts: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` across classes in proportion to ``counts`` (largest remainder)."""
    exact = counts * total / counts.sum()
    base: np.ndarray = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - base), kind="stable")
    base[order[: total - int(base.sum())]] += 1
    return base


def load_split(num_validation: int = NUM_VALIDATION) -> Split:
    """The fixed stratified split: ``num_validation`` validation images, the rest to train."""
    images, labels = load_digits_arrays()
    classes, counts = np.unique(labels, return_counts=True)
    rng = np.random.default_rng(SPLIT_SEED)
    val_parts = []
    for cls, n_val in zip(classes, _allocate(counts, num_validation), strict=True):
        members = np.flatnonzero(labels == cls)
        val_parts.append(rng.permutation(members)[:n_val])
    val_idx = np.sort(np.concatenate(val_parts))
    train_mask = np.ones(len(labels), dtype=bool)
    train_mask[val_idx] = False
    train_idx = np.flatnonzero(train_mask)
    return Split(images[train_idx], labels[train_idx], images[val_idx], labels[val_idx])


def to_tensor(images: np.ndarray, image_size: int) -> torch.Tensor:
    """Images (N×8×8) as a float tensor N×1×S×S, bilinearly resized when S differs from 8."""
    x = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1)
    if image_size != _SIDE:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return x.contiguous()


def max_shift(image_size: int) -> int:
    """The augmentation's largest translation in pixels: one original 8×8 pixel, at least 1."""
    return max(1, round(image_size / _SIDE))


def batch_shifts(batch_size: int, image_size: int, seed: int, step: int) -> np.ndarray:
    """Per-image (dy, dx) translations of the batch at ``step``: a pure function, like the order."""
    m = max_shift(image_size)
    rng = np.random.default_rng([int(seed), _STREAM_AUGMENT, int(step)])
    return rng.integers(-m, m + 1, size=(batch_size, 2))


def shift_images(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Translate each image of ``x`` (N×1×S×S) by its (dy, dx), filling with background 0.

    Shifts must lie within ``max_shift(S)`` (as :func:`batch_shifts` draws them).
    """
    n, _, size, _ = x.shape
    m = max_shift(size)  # from the shape, not the values: no device sync
    padded = F.pad(x, (m, m, m, m))
    base = torch.arange(size, device=x.device)
    rows = (m - shifts[:, 0])[:, None] + base  # N×S
    cols = (m - shifts[:, 1])[:, None] + base
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded[batch, 0, rows[:, :, None], cols[:, None, :]]
    return out.unsqueeze(1).contiguous(memory_format=torch.channels_last)
