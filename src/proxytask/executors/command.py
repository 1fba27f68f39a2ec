"""How a trial is started: its argument list and environment, for every executor."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from proxytask.core import layout
from proxytask.core.errors import UsageError
from proxytask.executors.base import Resources, TrainerSpec, TrialSpec

__all__ = [
    "Continuation",
    "build_trial_spec",
    "check_local_command",
    "format_trainer_args",
    "parse_trainer_args",
    "parse_trainer_command",
    "render_flag",
]


def parse_trainer_command(command: str | Sequence[str], entry: str | None = None) -> TrainerSpec:
    """Split a trainer command like a shell would (no shell is run) into a TrainerSpec.

    ``entry`` (``--trainer-entry``): the trainer's function for warm workers, checked here.
    """
    if isinstance(command, str):
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise UsageError(
                f"--trainer must be a command line with balanced quotes, got {command!r} "
                f"({exc}). Close the quote."
            ) from exc
    else:
        argv = [str(a) for a in command]
    if not argv:
        raise UsageError(
            f"--trainer must name a command, got {command!r}. Example: "
            "--trainer 'python examples/digits/trainer.py'."
        )
    if entry is not None:
        from proxytask.executors.warm import check_trainer_entry

        check_trainer_entry(entry)
    return TrainerSpec(argv=tuple(argv), entry=entry)


def check_local_command(
    program: str,
    *,
    option: str = "--trainer",
    example: str = "'python path/to/trainer.py'",
) -> str:
    """Return the path of ``program`` on this machine, or raise UsageError naming ``option``."""
    found = shutil.which(program)
    if found is None and os.sep in program and os.access(program, os.X_OK):
        found = None if os.path.isdir(program) else program
    if found is None:
        raise UsageError(
            f"{option} must start with a program that exists on this machine, got "
            f"{program!r}, which is not on PATH nor an executable file. Use e.g. "
            f"{example} or an absolute path."
        )
    return found


def parse_trainer_args(pairs: Sequence[str]) -> dict[str, str]:
    """Parse ``K=V`` strings (V may contain '=' and spaces) into an ordered dict."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key:
            raise UsageError(
                f"--trainer-args entries must look like KEY=VALUE, got {pair!r}. Example: "
                "--trainer-args batch_size=64 learning_rate=0.1."
            )
        result[key] = value
    return result


def render_flag(value: Any) -> str:
    """A trainer-argument value as it appears after ``--key=``: ``True``, compact JSON, text."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def format_trainer_args(args: Mapping[str, Any]) -> tuple[str, ...]:
    """Render trainer args as ``--k=v`` strings, one argv item each (values kept whole)."""
    out = []
    for key, value in args.items():
        if not isinstance(key, str) or not key or key.startswith("-") or "=" in key:
            raise UsageError(
                f"trainer argument names must be plain words like 'batch_size', got {key!r}."
            )
        out.append(f"--{key}={render_flag(value)}")
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Continuation:
    """This trial continues an earlier trial (model selection rounds, proxy tasks).

    ``trial_ids``: trial k of this job continues ``trial_ids[k-1]`` of ``job_dir``.
    ``use_checkpoint``: resume the earlier trial's full training state.
    """

    job_dir: str
    trial_ids: tuple[str, ...]
    use_checkpoint: bool = True

    def args(self) -> tuple[str, ...]:
        """The continuation flags (--retrain_search_job_dir, ..._trials, ..._checkpoint)."""
        out = [
            f"--retrain_search_job_dir={self.job_dir}",
            f"--retrain_search_job_trials={','.join(self.trial_ids)}",
        ]
        if self.use_checkpoint:
            out.append("--retrain_use_search_job_checkpoint=True")
        return tuple(out)


def build_trial_spec(
    *,
    trainer: TrainerSpec,
    job_name: str,
    job_dir: str,
    trial_number: int,
    controller_dir: str,
    nas_params: Mapping[str, Any] | None,
    trainer_args: Mapping[str, Any] | None = None,
    continuation: Continuation | None = None,
    resources: Resources = Resources(),
    timeout_secs: float | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> TrialSpec:
    """Build the spec of trial ``trial_number`` (1-based) of a job.

    The trainer is started as ``<trainer> --job-dir=<trial dir> --nas_params_str=<JSON>
    [--k=v ...] [continuation flags]`` with ``CLOUD_ML_TRIAL_ID``, ``AIP_MODEL_DIR``,
    ``PROXYTASK_TRIAL_DIR``, ``PROXYTASK_CONTROLLER_DIR`` and ``PROXYTASK_CACHE_DIR`` (the
    root's shared ``cache/`` folder: :mod:`proxytask.trainer.latency`) set. On a continuation
    without an explicit architecture, the trainer reads it from the earlier trial's
    ``nas_params_str.json`` (the controllers' tracker passes that file's architecture as
    ``nas_params`` when it exists, so the trainer gets ``--nas_params_str`` as well).
    """
    if trial_number < 1:
        raise ValueError(f"trial numbers are 1-based, got {trial_number}")
    tdir = layout.trial_dir(job_dir, trial_number)
    args: list[str] = [f"--job-dir={tdir}"]
    if nas_params is not None:
        args.append(f"--nas_params_str={json.dumps(dict(nas_params), separators=(',', ':'))}")
    args.extend(format_trainer_args(trainer_args or {}))
    if continuation is not None:
        args.extend(continuation.args())
    env = {
        layout.ENV_TRIAL_ID: str(trial_number),
        layout.ENV_MODEL_DIR: tdir,
        layout.ENV_TRIAL_DIR: tdir,
        layout.ENV_CONTROLLER_DIR: controller_dir,
        layout.ENV_CACHE_DIR: layout.cache_dir(controller_dir),
        **(extra_env or {}),
    }
    return TrialSpec(
        trial_id=f"{job_name}/{trial_number}",
        trial_dir=tdir,
        trainer=trainer,
        args=tuple(args),
        env=env,
        resources=resources,
        timeout_secs=timeout_secs,
    )
