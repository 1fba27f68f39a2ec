"""Command-line options: the ``Option`` type, value parsers, YAML config files, resume merging.

The tables of each command's options are :mod:`proxytask.controllers.command_options`. Every
flag can come from a YAML file given with ``--config FILE``; flags on the command line win over
the file, and the file wins over defaults. Config keys are flag names with ``-`` or ``_``
(``root-output-dir`` or ``root_output_dir``). A resumed controller starts from the options it
first ran with (:func:`resolve_with_previous`).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import yaml

from proxytask.core import layout, storage
from proxytask.core.errors import ConfigError, StorageError, UsageError

__all__ = [
    "RESUMABLE_OVERRIDES",
    "Option",
    "Resolved",
    "add_options",
    "keep_first_values",
    "load_config_file",
    "normalise_keys",
    "read_yaml",
    "resolve_options",
    "resolve_with_previous",
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


def positive_int_or_auto(value: Any) -> int | None:
    """``auto`` (None) or a whole number >= 1."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    return positive_int(value)


def non_negative_int(value: Any) -> int:
    """A whole number >= 0."""
    number = integer(value)
    if number < 0:
        raise ValueError("must be a whole number >= 0")
    return number


def _number(value: Any, what: str) -> float:
    """``float(value)``, or ValueError "must be <what>" (true/false is not a number here)."""
    if isinstance(value, bool):
        raise ValueError(f"must be {what}, not true/false")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be {what}") from None


def non_negative_float(value: Any) -> float:
    """A finite float >= 0."""
    number = _number(value, "a number")
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
    number = _number(value, "a number or none")
    if not math.isfinite(number):
        raise ValueError("must be a finite number or none")
    return number


def pct_or_auto(value: Any) -> float | None:
    """``auto`` (None) or a pct in (0, 100]."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    number = positive_float(value)
    if number > 100:
        raise ValueError("must be auto or a pct in (0, 100]")
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


def storage_path(value: Any) -> str:
    """A path or fsspec URL; a Vertex ``/gcs/<bucket>/...`` path with no ``/gcs`` mount here
    becomes ``gs://<bucket>/...`` (:func:`proxytask.core.storage.resolve_url`), so trials get
    the same URL."""
    return storage.resolve_url(text(value))


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
    bare: bool = False  # the flag alone means true (--once); its help shows no default

    @property
    def dest(self) -> str:
        """The attribute name."""
        return self.name.replace("-", "_")


# ---- parsing and resolving -------------------------------------------------------------------


def add_options(parser: argparse.ArgumentParser, options: Sequence[Option]) -> None:
    """Add options to a parser. Defaults stay None here so config files can fill them."""
    for opt in options:
        kwargs: dict[str, Any] = {
            "dest": opt.dest,
            "default": None,
            "help": (  # argparse %-formats help strings: a literal % must be doubled
                opt.help
                + (
                    f" (default: {opt.default})"
                    if opt.default not in (None, []) and not opt.bare
                    else ""
                )
            ).replace("%", "%%"),
        }
        if opt.bare:
            kwargs.update(nargs="?", const="true")
        if opt.metavar:
            kwargs["metavar"] = opt.metavar
        if opt.choices:
            kwargs["choices"] = opt.choices
        if opt.many:
            kwargs["nargs"] = "+"
        parser.add_argument(f"--{opt.name}", **kwargs)


def read_yaml(path: str, missing: str, invalid: Callable[[str], str]) -> Any:
    """The parsed YAML file at ``path`` (a path or URL).

    Raises ConfigError with ``missing`` when there is no such file, and with
    ``invalid(" at line N")`` (or ``invalid("")``) when it is not valid YAML.
    """
    try:
        raw = storage.read_text(path)
    except StorageError as exc:  # not UTF-8, a folder, unreadable: the user's file
        raise ConfigError(str(exc)) from None
    if raw is None:
        raise ConfigError(missing)
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(invalid(f" at line {mark.line + 1}" if mark is not None else "")) from exc


def normalise_keys(data: Mapping[Any, Any]) -> dict[str, Any]:
    """Config keys as option dests: ``root-output-dir`` → ``root_output_dir``."""
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def load_config_file(path: str) -> dict[str, Any]:
    """Read a YAML config file into a dict with normalised keys (``-`` → ``_``)."""
    data = read_yaml(
        path,
        f"--config must name an existing file, got {path!r}. Check the path.",
        lambda line: (
            f"config file {path!r} must be valid YAML, got a syntax error{line}. Fix the file."
        ),
    )
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path!r} must hold a mapping of option: value, got "
            f"{type(data).__name__}. Write e.g. 'job-name: digits'."
        )
    return normalise_keys(data)


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


# ---- resuming a controller -------------------------------------------------------------------

#: Options that may change when a controller is resumed; the others stay as first given.
RESUMABLE_OVERRIDES = frozenset(
    {
        "proxy_task_config_generator",
        "desired_accuracy_correlation",
        "desired_accuracy",
        "training_time_hrs_limit",
        "desired_latency_correlation",
        "early_stop_proxy_task_if_not_best",
        "max_parallel_proxy_tasks",
        "stage_pct",
        "stopping_rule",
        "confidence",
        "persistence",
        "seed_noise_std",
        "executor",
        "replay_table",
        "ray_address",
        "ray_on_resume",
        "max_parallel_trials",
        "trial_timeout_secs",
        "report_timeout_secs",
        "heartbeat_threshold_secs",
        "live",
    }
)


def keep_first_values(
    values: Mapping[str, Any], saved: Mapping[str, Any], exempt: Collection[str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """On a resume, what defines the run stays as first given.

    Returns the values with every changed non-resumable option (outside ``exempt``) set back
    to its ``saved`` value, and one note per option kept, for the caller to show.
    """
    kept, notes = dict(values), []
    for dest, value in saved.items():
        changed = dest in kept and kept[dest] != value
        if changed and dest not in RESUMABLE_OVERRIDES and dest not in exempt:
            notes.append(
                f"proxytask: note: keeping {dest.replace('_', '-')}={value!r} of the run "
                f"being resumed (given {kept[dest]!r})"
            )
            kept[dest] = value
    return kept, tuple(notes)


def saved_options(controller_dir: str) -> dict[str, Any] | None:
    """The options a controller dir was started with, or None for a dir holding none."""
    info = storage.read_json(storage.join(controller_dir, layout.CONTROLLER_INFO))
    return dict(info.get("options", {})) if isinstance(info, dict) else None


#: The kind of controller dir each resume flag takes (``CONTROLLER_INFO.json``'s ``kind``).
RESUME_KINDS = {
    "previous_variance_dir": layout.KIND_VARIANCE,
    "previous_model_selection_dir": layout.KIND_MODEL_SELECTION,
    "previous_proxy_task_search_dir": layout.KIND_SEARCH,
}


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A command's resolved options; on a resume, the dir resumed and the notes to show."""

    values: dict[str, Any]
    previous: str | None = None
    notes: tuple[str, ...] = ()


def resolve_with_previous(
    args: argparse.Namespace, options: Sequence[Option], previous_dest: str
) -> Resolved:
    """Resolve options; on a resume (``previous_dest`` given), start from the saved ones.

    Flags and the config file may change only :data:`RESUMABLE_OVERRIDES`; other changes are
    undone, with a note each. Raises UsageError when the dir to resume is not a controller dir.
    """
    previous = getattr(args, previous_dest, None)
    if previous is None and args.config:
        previous = load_config_file(args.config).get(previous_dest)
    if previous is None:
        return Resolved(resolve_options(args, options, args.config))
    flag = f"--{previous_dest.replace('_', '-')}"
    if not storage.exists(previous):
        raise UsageError(
            f"{flag} must be an existing controller dir, got {previous!r}. Use the dir the "
            "first run printed."
        )
    if storage.is_local(previous) and not os.path.isdir(storage.to_local_path(previous)):
        raise UsageError(
            f"{flag} must be a controller dir, got {previous!r}, which is a file. Use the dir "
            "the first run printed."
        )
    try:
        info = storage.read_json(storage.join(previous, layout.CONTROLLER_INFO))
    except StorageError as exc:
        raise UsageError(f"{flag}: {exc}") from None
    if not isinstance(info, dict):
        raise UsageError(
            f"{flag} must be a proxytask controller dir, got {previous!r}, which holds no "
            f"{layout.CONTROLLER_INFO}."
        )
    expected = RESUME_KINDS.get(previous_dest)
    if expected is not None and info.get("kind") not in (None, expected):
        raise UsageError(
            f"{flag} must be a {expected} dir, got {previous!r}, a {info.get('kind')} dir. "
            f"Give that dir to its own command, or pass the {expected} dir here."
        )
    saved = dict(info.get("options", {}))
    given = {dest for dest in vars(args) if getattr(args, dest) is not None}
    base = {k: v for k, v in saved.items() if k not in given or k in RESUMABLE_OVERRIDES}
    values, notes = keep_first_values(
        resolve_options(args, options, args.config, base=base), saved, {previous_dest}
    )
    values[previous_dest] = previous
    return Resolved(values, previous, notes)
