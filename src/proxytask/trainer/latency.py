"""Latency a trial can trust: measured once per model, with a statistic that ignores load.

A model's latency is a property of the architecture and its model-scale settings (width,
depth, input size), not of the training run. Measured anew by every trial, on a machine busy
with other trials, it differs between two trials of the same model by the load of the moment,
and a proxy that trains the very same model on less data can fail the search's latency
correlation for nothing. So a trainer:

1. times the model many times after a warm-up and keeps a low quantile of the timings
   (:func:`robust_latency`): the fastest runs are the ones the load did not disturb;
2. keys the result by everything the latency depends on (:func:`latency_key`: the model's
   architecture and model-scale settings, the device, the thread count) and keeps it in the
   cache folder every trial under the same root output dir shares, ``$PROXYTASK_CACHE_DIR``
   (``<root-output-dir>/cache``, set by proxytask's executors), so every later trial of the
   same model reuses the first measurement (:func:`cached_latency`).

Two trials of the same model measuring at once both measure, and the first to store its value
wins: the other returns the stored value, so all of them report the same number. On a local
disk a measurement also has the machine to itself: trainers wrap each training cycle in
:func:`training_cycle`, a measurement waits for the cycles in flight to end and holds new ones
back while it runs (two lock files in the cache folder; a crashed process releases its locks).
Parallel trials then cost a measurement nothing but a short wait.

Example (with the PyTorch helper :func:`proxytask.torch.measure_latency_ms`)::

    from proxytask.trainer.latency import cached_latency
    from proxytask.torch import measure_latency_ms

    key = {"trainer": "mnist1d", "arch": arch, "width_multiplier": 0.5, "seq_length": 40}
    latency = cached_latency(key, lambda: measure_latency_ms(net, torch.zeros(1, 1, 40)))
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from proxytask.core import layout, storage
from proxytask.core.errors import ProxyTaskError, UsageError

__all__ = [
    "DEFAULT_QUANTILE",
    "LATENCY_CACHE_DIR",
    "cache_dir_from_env",
    "cached_latency",
    "cpu_name",
    "latency_key",
    "robust_latency",
    "training_cycle",
]

logger = logging.getLogger(__name__)

#: The folder inside the shared cache dir that holds one JSON file per measured model.
LATENCY_CACHE_DIR = "latency"
#: The quantile of the timings a latency is: low, so the runs slowed by other work drop out.
DEFAULT_QUANTILE = 0.1
_FORMAT = 1
# Local lock files in the cache's latency folder (see training_cycle).
_GATE_FILE = ".gate"
_QUIET_FILE = ".quiet"
# The lock files of the training cycles this process holds now (a measurement must not wait
# on its own process's cycle).
_open_cycles: list[str] = []
# Lock files this process has already created (so a training cycle does no disk I/O for them).
_prepared: set[str] = set()
try:
    import fcntl as _fcntl  # noqa: F401 - POSIX only

    _HAS_FLOCK = True
except ImportError:  # pragma: no cover - not on POSIX
    _HAS_FLOCK = False


def robust_latency(times: Sequence[float], quantile: float = DEFAULT_QUANTILE) -> float:
    """The ``quantile`` of ``times`` (linear interpolation): a load-robust latency.

    Timings on a busy machine have a floor (the model's own cost) and a long upper tail (the
    moments another process had the core); a low quantile sits on the floor without being
    the single luckiest run. Raises UsageError for no timings, a non-finite or negative
    timing, or a quantile outside [0, 1].

    Example::

        robust_latency([1.0, 1.1, 5.0, 1.05, 9.0])  # 1.02
    """
    if not 0.0 <= quantile <= 1.0 or math.isnan(quantile):
        raise UsageError(f"quantile must be in [0, 1], got {quantile!r}.")
    values = sorted(float(t) for t in times)
    if not values:
        raise UsageError("robust_latency needs at least one timing, got none.")
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise UsageError(f"timings must be finite numbers >= 0, got {list(times)!r:.200}.")
    position = quantile * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def cpu_name() -> str:
    """This machine's CPU model (from /proc/cpuinfo where there is one) and architecture."""
    name = ""
    with (
        contextlib.suppress(OSError),
        open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle,
    ):
        for line in handle:
            if line.lower().startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name or platform.processor() or 'cpu'} ({platform.machine()})"


def latency_key(parts: Mapping[str, Any]) -> str:
    """A short stable digest of ``parts`` (JSON-serialisable): the cache file's name.

    Raises UsageError when ``parts`` does not serialise as JSON.
    """
    try:
        text = json.dumps(dict(parts), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"the latency key must be JSON-serialisable (numbers, strings, lists, dicts), got "
            f"{dict(parts)!r:.200} ({exc}). Key by the architecture dict and plain settings."
        ) from None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def cache_dir_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The shared cache dir proxytask's executors set (``PROXYTASK_CACHE_DIR``), or None."""
    env = os.environ if environ is None else environ
    return env.get(layout.ENV_CACHE_DIR) or None


def _read_cached(url: str, parts: Mapping[str, Any]) -> float | None:
    """The stored latency at ``url`` when it is a valid entry for ``parts``; else None."""
    try:
        data = storage.read_json(url)
    except (ProxyTaskError, OSError) as exc:
        logger.warning("ignoring the unreadable latency cache entry %s: %s", url, exc)
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return None
    value = data.get("latency")
    if data.get("key") != json.loads(json.dumps(dict(parts))):
        return None  # a digest collision or a hand-edited file: measure instead
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _lock_path(cache: str, name: str) -> str | None:
    """The local path of lock file ``name`` in ``cache``, created once per process.

    None when the cache is not local, there is no ``flock`` (not POSIX), or the file cannot be
    created (a read-only cache: measurements then go without the lock).
    """
    if not _HAS_FLOCK or not storage.is_local(cache):
        return None
    path = storage.to_local_path(storage.join(cache, LATENCY_CACHE_DIR, name))
    if path in _prepared:  # every training cycle asks: touch the disk only the first time
        return path
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as exc:
        logger.warning("latency lock %s unusable (%s); measuring without it", path, exc)
        return None
    _prepared.add(path)
    return path


@contextlib.contextmanager
def _flocks(paths: Sequence[tuple[str, int]]) -> Iterator[None]:
    """Hold ``flock`` locks ``(path, mode)`` in order, released in reverse (crash-safe)."""
    import fcntl

    handles = []
    try:
        for path, mode in paths:
            handle = open(path, "a+b")  # noqa: SIM115 - closed in the finally below
            handles.append(handle)
            fcntl.flock(handle.fileno(), mode)
        yield
    finally:
        for handle in reversed(handles):
            handle.close()  # closing releases the lock


@contextlib.contextmanager
def _quiet(cache: str) -> Iterator[None]:
    """Hold the machine quiet for a measurement: no cooperating training cycle runs.

    Takes the gate (so no new cycle starts while this waits), then the quiet lock
    exclusively (so the cycles in flight end first). Nothing on a remote cache.
    """
    gate, quiet = _lock_path(cache, _GATE_FILE), _lock_path(cache, _QUIET_FILE)
    if gate is None or quiet is None:
        yield
        return
    import fcntl

    with _flocks([(gate, fcntl.LOCK_EX), (quiet, fcntl.LOCK_EX)]):
        yield


@contextlib.contextmanager
def training_cycle(cache_dir: str | None = None) -> Iterator[None]:
    """Hold while training one cycle, so that latency measurements never overlap training.

    A trial that measures a latency (:func:`cached_latency`) waits until the cycles in flight
    end, and no cycle starts until it is done: on a machine shared by parallel trials, the
    measurement sees the machine as a lone trial would. Cycles of different trials still run
    at the same time. ``cache_dir`` defaults to ``$PROXYTASK_CACHE_DIR``; without one, or on a
    remote cache, it does nothing. Start the cycle's clock inside the block: the wait is not
    training time.

    Example::

        while step < total:
            with training_cycle():
                start = time.perf_counter()
                ...  # train eval_every_steps steps
                seconds = time.perf_counter() - start
            ...  # evaluate, checkpoint, report
    """
    cache = cache_dir if cache_dir is not None else cache_dir_from_env()
    gate = quiet = None
    if cache is not None:
        gate, quiet = _lock_path(cache, _GATE_FILE), _lock_path(cache, _QUIET_FILE)
    if gate is None or quiet is None:
        yield
        return
    import fcntl

    with _flocks([(gate, fcntl.LOCK_EX)]):  # wait while a measurement holds the gate
        handle = open(quiet, "a+b")  # noqa: SIM115 - closed in the finally below
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
    _open_cycles.append(quiet)
    try:
        yield
    finally:
        _open_cycles.remove(quiet)
        handle.close()


def cached_latency(
    parts: Mapping[str, Any],
    measure: Callable[[], float],
    cache_dir: str | None = None,
) -> float:
    """The latency of the model ``parts`` describes: from the shared cache, or measured once.

    ``parts`` must name everything the latency depends on (the architecture, model-scale
    settings, input size; the device and thread count are best added by the caller, e.g.
    with :func:`cpu_name`). ``measure`` times the model and returns a finite number >= 0.
    ``cache_dir`` defaults to ``$PROXYTASK_CACHE_DIR``; with neither, every call measures.
    The first value stored for a key stays: a later or concurrent measurement of the same
    model returns it, so every trial of one model reports one latency.
    """
    cache = cache_dir if cache_dir is not None else cache_dir_from_env()
    if cache is None:
        return _checked(measure())
    if _open_cycles:
        raise UsageError(
            "cached_latency must not be called inside a training_cycle() block, got a call "
            "while this process holds a cycle: the measurement would wait for its own cycle "
            "forever. Measure after the block ends."
        )
    folder = storage.join(cache, LATENCY_CACHE_DIR)
    url = storage.join(folder, latency_key(parts) + ".json")
    stored = _read_cached(url, parts)
    if stored is not None:
        return stored
    with _quiet(cache):
        stored = _read_cached(url, parts)  # measured while this one waited its turn
        if stored is not None:
            return stored
        start = time.perf_counter()
        value = _checked(measure())
        entry = {
            "format": _FORMAT,
            "latency": value,
            "key": dict(parts),
            "measured_at": time.time(),
            "duration_secs": round(time.perf_counter() - start, 3),
            "host": platform.node(),
        }
        body = json.dumps(entry, sort_keys=True, indent=1).encode("utf-8")
        try:
            storage.makedirs(folder)
            if storage.create_exclusive(url, body):
                return value
        except (ProxyTaskError, OSError) as exc:
            logger.warning("latency not cached at %s (%s); using this measurement", url, exc)
            return value
    winner = _read_cached(url, parts)
    return value if winner is None else winner


def _checked(value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and value >= 0)
    ):
        raise UsageError(
            f"the latency measurement must return a finite number >= 0, got {value!r}."
        )
    return float(value)
