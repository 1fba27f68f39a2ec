"""The MNIST-1D data: generated offline, cached once, split fixed, downsampled for proxies.

MNIST-1D (Greydanus & Kobak, 2020; the ``mnist1d`` package) draws 1-D signals of length 40
from ten digit-shaped templates with random padding, translation, shear, scale and
correlated noise. It is small enough for a CPU and hard enough that architectures differ
widely: a linear model reaches about 32 %, an MLP about 68 %, a CNN about 94 %.

- :func:`load_split` gives 4000 training signals, as many as the package's default dataset,
  and 8000 validation signals (the default has 1000 test signals): the package's generator
  with its default settings and ``seed`` 42, asked for 12,000 signals split 1/3 : 2/3. The
  larger validation set is every trial's fixed yardstick: on 1000 signals a 97 % model's
  accuracy carries ±0.5 points of sampling noise alone, as much as the gaps between good
  models; on 8000, ±0.2. The first call generates it with ``mnist1d.data.make_dataset`` (a few
  seconds, no network) and stores it in ``$PROXYTASK_DATA_DIR`` (default
  ``~/.cache/proxytask``) as ``mnist1d-v2.npz``; later calls, in any trial process, read it.
- ``train_data_pct`` keeps a shuffled, class-balanced subset of the training signals, seeded
  by the trial seed; the validation set is never downsampled.
- :func:`to_tensor` resamples the signals to ``seq_length`` points (linear interpolation):
  the proxy's counterpart of a smaller image.
- The data order is a pure function of (seed, step), so a resumed run sees the same batches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from examples.common.data import (
    batch_indices,
    batches_per_epoch,
    epoch_permutation,
    subsample_indices,
)
from proxytask import UsageError

__all__ = [
    "DATASET_ARGS",
    "ENV_DATA_DIR",
    "NUM_CLASSES",
    "SEQ_LENGTH",
    "Split",
    "batch_indices",
    "batches_per_epoch",
    "cache_path",
    "epoch_permutation",
    "generate",
    "load_split",
    "subsample_indices",
    "to_tensor",
]

#: Where the generated dataset is kept (default ``~/.cache/proxytask``).
ENV_DATA_DIR = "PROXYTASK_DATA_DIR"
#: The generator's settings that differ from the package's defaults: 12,000 signals, 4000 of
#: them for training (``int(12000 / 3)``), the rest for validation; generator seed 42.
DATASET_ARGS: dict[str, Any] = {"num_samples": 12_000, "train_split": 1 / 3, "seed": 42}
SEQ_LENGTH = 40
NUM_CLASSES = 10
_FILE = "mnist1d-v2.npz"


@dataclasses.dataclass(frozen=True)
class Split:
    """Training and validation signals (float32, N×40) and labels (int64)."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray


def cache_path() -> str:
    """The cached dataset's path: ``$PROXYTASK_DATA_DIR/mnist1d-v2.npz``."""
    root = os.environ.get(ENV_DATA_DIR) or os.path.join(
        os.path.expanduser("~"), ".cache", "proxytask"
    )
    return os.path.join(root, _FILE)


def generate() -> Split:
    """Generate the dataset with the ``mnist1d`` package (a few seconds, no network)."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise UsageError(
            "the MNIST-1D example needs the `mnist1d` package, got none installed. Install it "
            "with `pip install mnist1d` (`make demo` does)."
        ) from None
    args = get_dataset_args()
    for key, value in DATASET_ARGS.items():
        setattr(args, key, value)
    raw = make_dataset(args)
    return Split(
        np.asarray(raw["x"], dtype=np.float32),
        np.asarray(raw["y"], dtype=np.int64),
        np.asarray(raw["x_test"], dtype=np.float32),
        np.asarray(raw["y_test"], dtype=np.int64),
    )


def _digest(split: Split) -> str:
    h = hashlib.sha256()
    for array in (split.train_x, split.train_y, split.val_x, split.val_y):
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def _save(path: str, split: Split) -> None:
    """Write the cache atomically (a temporary file renamed), so readers never see half."""
    buffer = io.BytesIO()
    arrays = dataclasses.asdict(split)
    np.savez(buffer, digest=np.array(_digest(split)), **arrays)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(buffer.getvalue())
    os.replace(tmp, path)


def _load(path: str) -> Split | None:
    """The cached split, or None when the file is missing, unreadable or fails its digest."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            split = Split(npz["train_x"], npz["train_y"], npz["val_x"], npz["val_y"])
            digest = str(npz["digest"])
    except (OSError, KeyError, ValueError):
        return None
    return split if digest == _digest(split) else None


def load_split() -> Split:
    """The fixed split: 4000 training and 8000 validation signals of length 40.

    Read from the cache (:func:`cache_path`); generated and cached on the first call, or when
    the cached file is damaged.
    """
    path = cache_path()
    split = _load(path)
    if split is None:
        split = generate()
        try:
            _save(path, split)
        except OSError as exc:  # a read-only home: generate again next time
            raise UsageError(
                f"the MNIST-1D cache must be writable, got {exc.strerror} at {path!r}. Set "
                f"{ENV_DATA_DIR} to a writable folder."
            ) from None
    return split


def to_tensor(signals: np.ndarray, seq_length: int) -> torch.Tensor:
    """Signals (N×40) as a float tensor N×1×L, linearly resampled when L differs from 40."""
    x = torch.from_numpy(np.ascontiguousarray(signals, dtype=np.float32)).unsqueeze(1)
    if seq_length != x.shape[-1]:
        x = F.interpolate(x, size=seq_length, mode="linear", align_corners=True)
    return x.contiguous()
