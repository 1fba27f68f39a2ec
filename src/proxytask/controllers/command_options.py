"""The options of every command, one table each: the CLI, workflow files and docs/cli.md read them.

Values are parsed by :mod:`proxytask.core.options`; the controllers take the resolved values.
They live here, not next to each controller, so the CLI, the workflow file and the generated
flag reference read one place, and a controller module stays free of command-line wording.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from proxytask.core.metric import METRIC_MODES
from proxytask.core.options import (
    Option,
    boolean,
    correlation_or_auto,
    float_or_none,
    non_negative_float,
    non_negative_int,
    pct_or_auto,
    positive_float,
    positive_int,
    positive_int_or_auto,
    storage_path,
    string_list,
    text,
)
from proxytask.executors.factory import EXECUTOR_NAMES

__all__ = [
    "FINAL_CHECKS_OPTIONS",
    "LATENCY_SOURCES",
    "LATENCY_WORKER_OPTIONS",
    "LIVE_OPTION",
    "MODEL_SCALE_ARGS",
    "SEARCH_OPTIONS",
    "SELECTION_OPTIONS",
    "TRIAL_COMMAND_OPTIONS",
    "TRIAL_OPTIONS",
    "VARIANCE_OPTIONS",
]

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
        "trainer-entry",
        text,
        None,
        "run trials in warm workers (local executor): the trainer's function PKG.MOD:FN or "
        "path/to/trainer.py:FN, called with the trial's arguments, returning the exit code. "
        "--trainer's interpreter imports it once and forks every trial from it, so the "
        "trainer's start-up (torch, data) is paid once; other executors run --trainer",
        "PKG.MOD:FN",
    ),
    Option(
        "search-space",
        text,
        None,
        "the search space: PKG.MOD:FN(rng) -> dict, or a no-argument PKG.MOD:FN returning a "
        "PyGlove search space (the Vertex AI NAS search-space modules)",
        "PKG.MOD:FN",
        required=True,
        hint="Example: examples.digits.search_space:sample.",
    ),
    Option(
        "root-output-dir",
        storage_path,
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
        "replay-speed",
        positive_float,
        None,
        "with --executor replay: play the curves at this many recorded seconds per real second "
        "(e.g. 60, to watch the run in proxytask dashboard); default: as fast as possible",
        "X",
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
    Option("seed", non_negative_int, 0, "seed for sampling architectures", "N"),
    Option(
        "metric-mode",
        text,
        "max",
        "which way the metric the trainer reports is better: max (an accuracy) or min (a loss, "
        "perplexity or error rate)",
        choices=METRIC_MODES,
    ),
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
        storage_path,
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
    Option(
        "architecture",
        text,
        None,
        "measure this architecture (JSON, a .json file, or PKG.MOD:FN returning a dict), e.g. "
        "the baseline (default: the first sampled architecture that trains, as the reference "
        "tools)",
        "ARCH",
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
        "seed-noise-std",
        non_negative_float,
        None,
        "the std of one model's final accuracy over trainings with different seeds (proxytask "
        "variance measures it: sample_std in variance_and_smoothness.json); with it the summary "
        "says how many reference models the confident rule needs (proxytask run passes it)",
        "S",
    ),
    Option(
        "previous-model-selection-dir",
        storage_path,
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
        storage_path,
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
        choices=("point", "confident"),  # = stats.stopping.STOPPING_RULES (tested)
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
        positive_int_or_auto,
        "auto",
        "proxy-task configs evaluated at once (auto: all of them, breadth-first, so a config "
        "never trains past the time another one qualified at; 1: one after another, as the "
        "reference tools)",
        "N|auto",
    ),
    Option(
        "stage-pct",
        pct_or_auto,
        "auto",
        "when the reference models cannot all train at once, train them in stages of this pct, "
        "continuing from checkpoints, so no model trains far past the step the search decides "
        "at (auto: breadth-first, to the first evaluation a decision can come at, then one "
        "evaluation at a time, or as many as keep restarts under a quarter of a stage's time; "
        "100: no stages)",
        "PCT|auto",
    ),
    Option(
        "previous-proxy-task-search-dir",
        storage_path,
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
        storage_path,
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
        "the trial dir (with --protocol vertex: its saved_model dir) as its last argument and "
        "prints the latency on its last stdout line",
        "CMD",
        required=True,
        hint="Example: --latency-command 'python bench/latency.py --device cuda'.",
    ),
    Option(
        "protocol",
        text,
        "proxytask",
        "which requests to answer: proxytask's LATENCY_REQUEST.json (model selection's "
        "--latency-source worker), or 'vertex': trainers written for the Vertex AI NAS tools "
        "that export saved_model/ and wait for saved_model/model_latency.json (the command "
        "then gets the saved_model dir and prints milliseconds or a JSON object)",
        choices=("proxytask", "vertex"),  # = controllers.latency.PROTOCOLS (tested)
    ),
    Option(
        "saved-model-file",
        text,
        "saved_model.pb",
        "with --protocol vertex: the file in saved_model/ that says the export is complete "
        "(the reference tools wait for saved_model.pb; a PyTorch trainer names its own, "
        "written last)",
        "NAME",
    ),
    Option(
        "saved-model-dir",
        text,
        "saved_model",
        "with --protocol vertex: where in each trial dir the trainer exports its model (the "
        "reference tools' get_saved_model_dir: saved_model)",
        "PATH",
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
