"""Proxy-task configurations and the generators that produce them."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from proxytask.errors import ConfigError
from proxytask.imports import import_callable

__all__ = ["ProxyTaskConfig", "load_proxy_task_configs"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]{0,99}$")


@dataclasses.dataclass(frozen=True)
class ProxyTaskConfig:
    """One candidate proxy task: a readable name and the trainer flags it overrides.

    Example::

        ProxyTaskConfig("data50", {"train_data_pct": 50})
    """

    name: str
    trainer_args: Mapping[str, Any]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(
                f"ProxyTaskConfig.name must be 1-100 letters, digits or _.=+- , got "
                f"{self.name!r}. Use names like 'data50_img12'."
            )
        if not isinstance(self.trainer_args, Mapping):
            raise ConfigError(
                f"ProxyTaskConfig.trainer_args must be a dict of trainer flags, got "
                f"{self.trainer_args!r}."
            )
        object.__setattr__(self, "trainer_args", dict(self.trainer_args))

    @property
    def docker_args_map(self) -> Mapping[str, Any]:
        """The reference tools' name for :attr:`trainer_args`."""
        return self.trainer_args


def load_proxy_task_configs(ref: str, baseline_args: Mapping[str, Any]) -> list[ProxyTaskConfig]:
    """Call the generator ``pkg.module:function(baseline_args)`` and check what it returns."""
    fn = import_callable(ref, "--proxy-task-config-generator", ConfigError)
    try:
        configs = fn(dict(baseline_args))
    except Exception as exc:
        raise ConfigError(
            f"--proxy-task-config-generator {ref} must return configs, got "
            f"{type(exc).__name__}: {exc}. Fix the generator."
        ) from exc
    if not isinstance(configs, Sequence) or isinstance(configs, (str, bytes)) or not configs:
        raise ConfigError(
            f"--proxy-task-config-generator {ref} must return a non-empty list of "
            f"ProxyTaskConfig, got {configs!r:.80}."
        )
    out: list[ProxyTaskConfig] = []
    for item in configs:
        if not isinstance(item, ProxyTaskConfig):
            raise ConfigError(
                f"--proxy-task-config-generator {ref} must return ProxyTaskConfig items "
                f"(from proxytask import ProxyTaskConfig), got {item!r:.80}."
            )
        out.append(item)
    names = [c.name for c in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(
            f"proxy-task config names must be unique, got {', '.join(dupes)} more than once."
        )
    return out
