"""Every proxytask command's options (the tables), their YAML config files, resume merging.

Every flag can come from a YAML file given with ``--config FILE``; flags on the command line
win over the file, and the file wins over defaults. Config keys are flag names with ``-`` or
``_`` (``root-output-dir`` or ``root_output_dir``). A resumed controller starts from the
options it first ran with (:func:`resolve_with_previous`).

The option tables of all commands live here, not next to each controller: the CLI, the
workflow file and the generated flag reference read one place, and a controller module stays
free of command-line wording.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import yaml

from proxytask.core import layout, storage
from proxytask.core.errors import ConfigError, UsageError
from proxytask.executors.factory import EXECUTOR_NAMES

__all__ = [
    "FINAL_CHECKS_OPTIONS",
    "LATENCY_SOURCES",
    "LATENCY_WORKER_OPTIONS",
    "RESUMABLE_OVERRIDES",
    "SEARCH_OPTIONS",
    "SELECTION_OPTIONS",
    "TRIAL_COMMAND_OPTIONS",
    "TRIAL_OPTIONS",
    "VARIANCE_OPTIONS",
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
    bare: bool = False  # the flag alone means true (--once); its help shows no default

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


# ---- the options of each command ------------------------------------------------------------

#: Where latency comes from: the trainer's report, a latency worker, or none (accuracy alone).
LATENCY_SOURCES = ("trainer", "worker", "none")

TRIAL_COMMAND_OPTIONS: tuple[Option, ...] = (
    *TRIAL_OPTIONS,
    Option(
        "architecture",
        text,
        None,
        "the architecture to train: JSON, a .json file, or PKG.MOD:FN returning a dict "
        "(default: sample from --search-space)",
        "ARCH",
    ),
    Option("num-trials", positive_int, 1, "how many trials (architectures) to run", "N"),
)


#: ``--live``: every controller command has it.
LIVE_OPTION = Option(
    "live",
    boolean,
    None,
    "force the live display on or off (default: on a terminal)",
    "true|false",
)

VARIANCE_OPTIONS: tuple[Option, ...] = (
    *TRIAL_OPTIONS,
    Option("num-copies", positive_int, 5, "copies of the workable model to train", "N"),
    Option(
        "previous-variance-dir",
        text,
        None,
        "resume the measurement in this controller dir (after a crash or a stop)",
        "DIR",
    ),
    Option(
        "max-variance",
        non_negative_float,
        0.4,
        "the coefficient of variation above which variance is not good",
        "CV",
    ),
    Option(
        "max-smoothness",
        non_negative_float,
        10.0,
        "the smoothness value above which curves are not smooth enough",
        "S",
    ),
    Option(
        "copy-seed-flag",
        text,
        None,
        "a trainer flag set to 1..N in the N copies (e.g. seed); default: identical copies, "
        "as the reference tools",
        "FLAG",
    ),
    Option(
        "workable-pct",
        positive_float,
        1.0,
        "train each candidate to this pct to see that it works",
        "PCT",
    ),
    LIVE_OPTION,
)

SELECTION_OPTIONS: tuple[Option, ...] = (
    *TRIAL_OPTIONS,
    Option("start-num-models", positive_int, 30, "random models to start from", "N"),
    Option("final-num-models", positive_int, 10, "reference models to train fully", "N"),
    Option("num-models-to-remove-per-iter", positive_int, 5, "models removed per round", "N"),
    Option(
        "num-holdout-models",
        non_negative_int,
        0,
        "extra models trained fully and held out: the search never chooses by them, and "
        "reports the winning proxy's Kendall tau-b on them",
        "K",
    ),
    Option(
        "accuracy-metric-id",
        text,
        "",
        "read the reference models' accuracy from this named final metric "
        "(default: the accuracy at 100 %)",
        "ID",
    ),
    Option(
        "latency-metric-id",
        text,
        "",
        "read latency from this named final metric (default: the reported latency)",
        "ID",
    ),
    Option(
        "latency-source",
        text,
        "trainer",
        "where latency comes from: the trainer's report, a latency worker, or none "
        "(accuracy alone)",
        choices=LATENCY_SOURCES,
    ),
    Option(
        "latency-timeout-secs",
        positive_float,
        3600.0,
        "with --latency-source worker: how long to wait for a round's latencies",
        "SECS",
    ),
    Option(
        "baseline-architecture",
        text,
        None,
        "the baseline model (JSON, a .json file or PKG.MOD:FN) to train fully beside the "
        "candidates, for comparison",
        "ARCH",
    ),
    Option(
        "previous-model-selection-dir",
        text,
        None,
        "resume the model selection in this controller dir (after a crash or a failed round)",
        "DIR",
    ),
    LIVE_OPTION,
)

SEARCH_OPTIONS: tuple[Option, ...] = (
    *(
        dataclasses.replace(o, required=False, help=o.help + " (not needed by search)")
        if o.name == "search-space"
        else o
        for o in TRIAL_OPTIONS
    ),
    Option(
        "model-selection-dir",
        text,
        None,
        "a finished model selection: its reference models judge the proxies",
        "DIR",
        required=True,
    ),
    Option(
        "proxy-task-config-generator",
        text,
        None,
        "PKG.MOD:FN(baseline_args) -> [ProxyTaskConfig]",
        "PKG.MOD:FN",
        required=True,
        hint="Example: examples.digits.proxies:generate.",
    ),
    Option(
        "desired-accuracy-correlation",
        float_or_none,
        0.65,
        "stop a proxy once Kendall tau-b reaches this ('none' to stop on accuracy)",
        "TAU",
    ),
    Option(
        "desired-accuracy",
        float_or_none,
        None,
        "stop a proxy once its median accuracy reaches this",
        "A",
    ),
    Option(
        "training-time-hrs-limit",
        positive_float,
        None,
        "stop a proxy whose median training time reaches this (hours)",
        "H",
    ),
    Option(
        "desired-latency-correlation",
        correlation_or_auto,
        "auto",
        "fail a proxy whose latency correlation is below this (auto: 0.65 when the reference "
        "models have latencies; none: never)",
        "TAU",
    ),
    Option(
        "early-stop-proxy-task-if-not-best",
        boolean,
        True,
        "stop a proxy as soon as it takes longer than the best one so far",
        "true|false",
    ),
    Option(
        "stopping-rule",
        text,
        "confident",
        "point: stop a proxy at the first step whose Kendall tau-b reaches the threshold (the "
        "reference tools' rule); confident: only when the true tau clears it with --confidence "
        "at --persistence consecutive steps, and abandon a proxy that cannot reach it",
        choices=("point", "confident"),
    ),
    Option(
        "confidence",
        positive_float,
        0.85,
        "with --stopping-rule confident: how sure the true tau must be above the threshold "
        "(and the level of the reported intervals)",
        "P",
        hint="Use a value in [0.5, 1), e.g. 0.9.",
    ),
    Option(
        "persistence",
        positive_int,
        2,
        "with --stopping-rule confident: consecutive evaluations that must agree",
        "K",
    ),
    Option(
        "max-parallel-proxy-tasks",
        positive_int,
        1,
        "proxy-task configs evaluated at once (1 matches the reference's cost accounting)",
        "N",
    ),
    Option(
        "previous-proxy-task-search-dir",
        text,
        None,
        "resume the search in this controller dir (after a crash, or with more configs or "
        "new thresholds)",
        "DIR",
    ),
    LIVE_OPTION,
)

# `proxytask run` only: the `final-checks:` section of a workflow file.
MODEL_SCALE_ARGS = ("width_multiplier", "depth_multiplier", "image_size")
FINAL_CHECKS_OPTIONS: tuple[Option, ...] = (
    *(
        dataclasses.replace(o, required=False) if o.name == "search-space" else o
        for o in TRIAL_OPTIONS
    ),
    Option(
        "latency-constraint",
        positive_float,
        None,
        "the latency target of the full model (the trainer's latency unit): the final checks "
        "say the stricter target to use under a model-scaling proxy task",
        "T",
    ),
    Option(
        "measure-scaled-baseline",
        boolean,
        True,
        "train the baseline architecture once under a model-scaling proxy task to measure its "
        "latency (false: estimate it from the reference models)",
        "true|false",
    ),
    Option(
        "model-scale-args",
        string_list,
        list(MODEL_SCALE_ARGS),
        "trainer flags that scale the model: a proxy task setting one of them is model-scaling",
        "FLAG",
        many=True,
    ),
    LIVE_OPTION,
)


# ---- proxytask latency-worker ----------------------------------------------------------------


def _worker_name(value: Any) -> str:
    return text(str(value) if isinstance(value, (int, float)) else value)


LATENCY_WORKER_OPTIONS: tuple[Option, ...] = (
    Option(
        "controller-dir",
        text,
        None,
        "the controller dir to serve (path or fsspec URL, as this machine sees it)",
        "DIR",
        required=True,
        hint="Use the dir the controller printed at start.",
    ),
    Option(
        "latency-command",
        text,
        None,
        "the command measuring one model, split like a shell would (no shell runs); it gets "
        "the trial dir as its last argument and prints the latency on its last stdout line",
        "CMD",
        required=True,
        hint="Example: --latency-command 'python bench/latency.py --device cuda'.",
    ),
    Option(
        "worker-id",
        _worker_name,
        None,
        "this worker's name in claims and results (default: <hostname>-<pid>)",
        "ID",
    ),
    Option("poll-secs", positive_float, 5.0, "seconds between scans for new requests", "SECS"),
    Option(
        "claim-timeout-secs",
        positive_float,
        3600.0,
        "a claim older than this with no result is taken over (its worker died)",
        "SECS",
    ),
    Option(
        "command-timeout-secs",
        positive_float,
        600.0,
        "stop a latency command running longer than this; the trial gets an error result",
        "SECS",
    ),
    Option(
        "max-idle-secs",
        positive_float,
        None,
        "stop after this long without anything to measure",
        "SECS",
    ),
    Option(
        "once",
        boolean,
        False,
        "measure what is pending now, then stop",
        "true|false",
        bare=True,
    ),
)


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
    raw = storage.read_text(path)
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
        "stopping_rule",
        "confidence",
        "persistence",
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
    saved = saved_options(previous)
    if saved is None:
        raise UsageError(
            f"{flag} must be a proxytask controller dir, got {previous!r}, which holds no "
            f"{layout.CONTROLLER_INFO}."
        )
    given = {dest for dest in vars(args) if getattr(args, dest) is not None}
    base = {k: v for k, v in saved.items() if k not in given or k in RESUMABLE_OVERRIDES}
    values, notes = keep_first_values(
        resolve_options(args, options, args.config, base=base), saved, {previous_dest}
    )
    values[previous_dest] = previous
    return Resolved(values, previous, notes)
