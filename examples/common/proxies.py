"""Building proxy-task configs from reductions of the baseline's trainer args."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from proxytask import ProxyTaskConfig

__all__ = ["reducing_configs"]


def _name(args: Mapping[str, Any], short: Mapping[str, str]) -> str:
    parts = []
    for key, value in args.items():
        text = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(short[key] + text)
    return "_".join(parts)


def reducing_configs(
    baseline_args: Mapping[str, Any],
    baseline: Mapping[str, float],
    candidates: Iterable[Mapping[str, Any]],
    short: Mapping[str, str],
) -> list[ProxyTaskConfig]:
    """One config per candidate whose every setting is below the ``baseline`` value.

    ``trainer_args`` is ``baseline_args`` with the candidate applied; the name joins each
    setting's ``short`` name with its value (``{"train_data_pct": 25}`` → ``data25``).
    """
    return [
        ProxyTaskConfig(_name(args, short), {**baseline_args, **args})
        for args in candidates
        if all(value < baseline[key] for key, value in args.items())
    ]
