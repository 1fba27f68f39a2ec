"""Command-line options shared by every proxytask command, and their YAML config files.

Every flag can come from a YAML file given with ``--config FILE``; flags on the command line
win over the file, and the file wins over defaults. Config keys are flag names with ``-`` or
``_`` (``root-output-dir`` or ``root_output_dir``).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from proxytask.core import storage
from proxytask.core.errors import ConfigError, UsageError
from proxytask.executors.factory import EXECUTOR_NAMES

__all__ = [
    "TRIAL_OPTIONS",
    "Option",
    "add_options",
    "load_config_file",
    "resolve_options",
]


def integer(value: Any) -> int:
    """A whole number (``3``, ``"3"``); not a bool, not ``2.5``."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true/false")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError("must be a whole number") from None


def positive_int(value: Any) -> int:
    """A whole number >= 1."""
    number = integer(value)
    if number < 1:
        raise ValueError("must be a whole number >= 1")
    return number


def non_negative_int(value: Any) -> int:
    """A whole number >= 0."""
    number = integer(value)
    if number < 0:
        raise ValueError("must be a whole number >= 0")
    return number


def non_negative_float(value: Any) -> float:
    """A finite float >= 0."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("must be a number") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError("must be a finite number >= 0")
    return number


def positive_float(value: Any) -> float:
    """A finite float > 0."""
    try:
        number = non_negative_float(value)
    except ValueError as exc:
        if "finite number >= 0" in str(exc):
            raise ValueError("must be a finite number > 0") from None
        raise
    if number == 0:
        raise ValueError("must be a finite number > 0")
    return number


def float_or_none(value: Any) -> float | None:
    """A finite number, or ``none`` to switch a threshold off."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
        return None
    if isinstance(value, bool):
        raise ValueError("must be a number or none, not true/false")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("must be a number or none") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number or none")
    return number


def correlation_or_auto(value: Any) -> float | str | None:
    """``auto``, ``none``, or a finite number."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    return float_or_none(value)


def text(value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value


def boolean(value: Any) -> bool:
    """true/false, yes/no, 1/0."""
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise ValueError("must be true or false")


def string_list(value: Any) -> list[str]:
    """A list of strings (a YAML list, or one string)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [f"{k}={v}" for k, v in value.items()]
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    raise ValueError("must be a list of KEY=VALUE strings or a mapping")


@dataclasses.dataclass(frozen=True)
class Option:
    """One flag: its name, how to parse it, its default and help."""

    name: str  # without the leading dashes, with '-' between words
    parse: Callable[[Any], Any]
    default: Any
    help: str
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    many: bool = False  # takes several values (--trainer-args K=V K=V)
    required: bool = False
    hint: str = ""  # how to fix a bad value

    @property
    def dest(self) -> str:
        """The attribute name."""
        return self.name.replace("-", "_")


TRIAL_OPTIONS: tuple[Option, ...] = (
    Option(
        "trainer",
        text,
        None,
        "the trainer command, split like a shell would (no shell runs)",
        "CMD",
        required=True,
        hint="Example: --trainer 'python examples/digits/trainer.py'.",
    ),
    Option(
        "search-space",
        text,
        None,
        "the search space function PKG.MOD:FN(rng) -> dict",
        "PKG.MOD:FN",
        required=True,
        hint="Example: examples.digits.search_space:sample.",
    ),
    Option(
        "root-output-dir",
        text,
        None,
        "where the controller creates its dir (path or URL)",
        "DIR",
        required=True,
    ),
    Option(
        "job-name",
        text,
        None,
        "a name for this run (letters, digits, _ . -)",
        "NAME",
        required=True,
    ),
    Option(
        "trainer-args", string_list, [], "baseline trainer arguments as KEY=VALUE", "K=V", many=True
    ),
    Option("executor", text, "local", "where trials run", choices=EXECUTOR_NAMES),
    Option(
        "replay-table", text, None, "with --executor replay: the recorded curves (JSON/CSV)", "FILE"
    ),
    Option(
        "ray-address",
        text,
        "auto",
        "with --executor ray: the cluster to run trials on: auto (the one running on this "
        "machine, or RAY_ADDRESS), HOST:PORT, or local (a private one-machine cluster that "
        "ends with the controller)",
        "ADDR",
    ),
    Option(
        "ray-on-resume",
        text,
        "reattach",
        "with --executor ray: what a resumed controller does with trials still running on the "
        "cluster: reattach (keep them) or restart (stop them, train them again)",
        choices=("reattach", "restart"),
    ),
    Option("max-parallel-trials", positive_int, 2, "trials running at once", "N"),
    Option(
        "gpus-per-trial",
        non_negative_float,
        0.0,
        "GPUs per trial; fractions share a GPU (0.25 = four trials per GPU)",
        "G",
    ),
    Option(
        "trial-timeout-secs", positive_float, None, "kill a trial running longer than this", "SECS"
    ),
    Option(
        "report-timeout-secs",
        positive_float,
        None,
        "fail a trial that goes this long without a new accuracy report (hung trials)",
        "SECS",
    ),
    Option(
        "heartbeat-threshold-secs",
        positive_float,
        900.0,
        "trials stop when the controller heartbeat is older than this",
        "SECS",
    ),
    Option("seed", integer, 0, "seed for sampling architectures", "N"),
)


def add_options(parser: argparse.ArgumentParser, options: Sequence[Option]) -> None:
    """Add options to a parser. Defaults stay None here so config files can fill them."""
    for opt in options:
        kwargs: dict[str, Any] = {
            "dest": opt.dest,
            "default": None,
            "help": (  # argparse %-formats help strings: a literal % must be doubled
                opt.help + (f" (default: {opt.default})" if opt.default not in (None, []) else "")
            ).replace("%", "%%"),
        }
        if opt.metavar:
            kwargs["metavar"] = opt.metavar
        if opt.choices:
            kwargs["choices"] = opt.choices
        if opt.many:
            kwargs["nargs"] = "+"
        parser.add_argument(f"--{opt.name}", **kwargs)


def load_config_file(path: str) -> dict[str, Any]:
    """Read a YAML config file into a dict with normalised keys (``-`` → ``_``)."""
    raw = storage.read_text(path)
    if raw is None:
        raise ConfigError(f"--config must name an existing file, got {path!r}. Check the path.")
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(
            f"config file {path!r} must be valid YAML, got a syntax error{line}. Fix the file."
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path!r} must hold a mapping of option: value, got "
            f"{type(data).__name__}. Write e.g. 'job-name: digits'."
        )
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _parse_value(opt: Option, value: Any, source: str) -> Any:
    if opt.choices and value not in opt.choices:
        raise ConfigError(f"{source} must be one of {', '.join(opt.choices)}, got {value!r}.")
    try:
        return opt.parse(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"{source} {exc}, got {value!r}." + (f" {opt.hint}" if opt.hint else "")
        ) from None


def resolve_options(
    args: argparse.Namespace,
    options: Sequence[Option],
    config_path: str | None,
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Merge defaults < ``base`` < config file < flags; check every value.

    ``base`` holds the options a resumed controller ran with. Returns ``{dest: value}``.
    """
    config = {
        **{k: v for k, v in (base or {}).items() if k in {o.dest for o in options}},
        **(load_config_file(config_path) if config_path else {}),
    }
    known = {opt.dest: opt for opt in options}
    unknown = sorted(set(config) - set(known))
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(known), n=1)
        suggestion = f" Did you mean '{close[0].replace('_', '-')}'?" if close else ""
        raise ConfigError(
            f"config key {key.replace('_', '-')!r} in {config_path!r} must be a known option, "
            f"got an unknown key.{suggestion} Known: "
            f"{', '.join(sorted(o.name for o in options))}."
        )
    values: dict[str, Any] = {}
    for dest, opt in known.items():
        flag_value = getattr(args, dest, None)
        if flag_value is not None:
            values[dest] = _parse_value(opt, flag_value, f"--{opt.name}")
        elif dest in config and config[dest] is not None and config[dest] != opt.default:
            values[dest] = _parse_value(opt, config[dest], f"config key '{opt.name}'")
        else:
            values[dest] = opt.default
        if opt.required and values[dest] is None:
            raise UsageError(
                f"--{opt.name} must be given (on the command line or in --config), got "
                f"nothing. {opt.hint}".rstrip()
            )
    return values
