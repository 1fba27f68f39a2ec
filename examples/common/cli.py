"""Flag parsing and the process entry point shared by the example trainers.

Bad flags raise :class:`proxytask.UsageError` with what was wrong, the value and the allowed
range; :func:`run_main` turns the trainer's outcome into the contract's exit codes: 0 done or
stopped on request, 1 the run failed (recorded in the trial dir), 2 bad flags or input.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from proxytask import NonFiniteMetricError, ProxyTaskError, UsageError
from proxytask import trainer as pt

__all__ = ["Parser", "boolean", "choice", "number", "record_failure", "run_main"]

Config = TypeVar("Config")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises UsageError instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def number(
    kind: type, lo: float, hi: float = math.inf, lo_open: bool = False, hi_open: bool = False
) -> Callable[[str], Any]:
    """An argparse type: ``kind`` (int or float) within the bounds, finite."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be {'an integer' if kind is int else 'a number'}, got {text!r}."
            ) from None
        below = value < hi if hi_open else value <= hi
        ok = (value > lo if lo_open else value >= lo) and below and math.isfinite(value)
        if not ok:
            bound = f"{'>' if lo_open else '>='} {lo:g}" + (
                f" and {'<' if hi_open else '<='} {hi:g}" if hi < math.inf else ""
            )
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text!r}.")
        return value

    return parse


def choice(options: Sequence[str]) -> Callable[[str], str]:
    """An argparse type: one of ``options``."""

    def parse(text: str) -> str:
        if text not in options:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(options)}, got {text!r}.")
        return text

    return parse


def boolean(text: str) -> bool:
    """An argparse type: true/1/yes or false/0/no (a typo must not silently mean False)."""
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"must be true or false, got {text!r}.")


def record_failure(job_dir: str | None, cause: str, message: str) -> None:
    """Record the trial as failed (``TRIAL_FAILURE.json``) and say why on stderr."""
    if job_dir:
        try:
            pt.record_trial_failure(job_dir, cause, message)
        except ProxyTaskError:
            pass  # the message on stderr still tells the controller
    print(f"error: {message}", file=sys.stderr, flush=True)


def run_main(
    argv: Sequence[str] | None,
    parse: Callable[[Sequence[str] | None], Config],
    run: Callable[[Config], object],
    job_dir: Callable[[Config], str | None],
) -> int:
    """Parse ``argv``, run the trial and return the contract's exit code (module doc)."""
    import torch  # the example trainers are PyTorch trainers

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = parse(argv)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    try:
        run(cfg)
    except NonFiniteMetricError as exc:  # already recorded as failed (cause "nan")
        print(f"error: NonFiniteMetricError: {exc}", file=sys.stderr, flush=True)
        return 1
    except torch.OutOfMemoryError as exc:  # torch's message says "CUDA out of memory"
        record_failure(job_dir(cfg), "oom", str(exc).strip().replace("\n", " "))
        return 1
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except ProxyTaskError as exc:
        record_failure(job_dir(cfg), "crash", f"{type(exc).__name__}: {exc}")
        return 1
    return 0
