"""The whole workflow in one command: variance → model selection → proxy search → final checks.

``proxytask run CONFIG.yaml`` keeps everything in ``<root-output-dir>/Workflow_<job-name>/``:
each tool's controller dir, ``WORKFLOW_STATE.json`` (which stage is where) and, at the end,
``RECOMMENDATION.json``. Running the same config again skips finished stages and resumes the
stage in flight. A stage whose answer makes the next one pointless stops the run with the
reason; ``--force`` goes on anyway.

The config file holds the shared trial options at the top level (``trainer``,
``search-space``, ``trainer-args``, ``executor``, ...) and one section per tool
(``variance:``, ``model-selection:``, ``search:``) with that tool's options.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from proxytask.core import layout, storage
from proxytask.core.errors import ConfigError
from proxytask.core.options import Option, resolve_options

__all__ = ["WORKFLOW_STATE", "WorkflowConfig", "load_workflow_config", "stage_values"]

WORKFLOW_STATE = layout.WORKFLOW_STATE
RECOMMENDATION = layout.WORKFLOW_RECOMMENDATION
SECTIONS = ("variance", "model_selection", "search", "final_checks")
# options the workflow sets itself, never the user
_MANAGED = frozenset(
    {
        "previous_variance_dir",
        "previous_model_selection_dir",
        "previous_proxy_task_search_dir",
        "model_selection_dir",
        "root_output_dir",
        "job_name",
        "live",
    }
)


@dataclasses.dataclass(frozen=True)
class WorkflowConfig:
    """A parsed workflow file: shared options and one mapping per tool."""

    path: str
    shared: Mapping[str, Any]
    sections: Mapping[str, Mapping[str, Any]]


def _normalise(data: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _suggest(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" Did you mean '{close[0].replace('_', '-')}'?" if close else ""


def load_workflow_config(
    path: str, shared_options: Sequence[Option], stage_options: Mapping[str, Sequence[Option]]
) -> WorkflowConfig:
    """Read and check a workflow file: unknown keys, wrong section types, missing trainer."""
    raw = storage.read_text(path)
    if raw is None:
        raise ConfigError(
            f"CONFIG must be an existing workflow file, got {path!r}. Check the path."
        )
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"workflow file {path!r} must be valid YAML, got an error{where}."
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"workflow file {path!r} must hold a mapping of option: value, got "
            f"{type(data).__name__}. See examples/digits/workflow.yaml."
        )
    data = _normalise(data)
    shared_known = {o.dest for o in shared_options}
    sections: dict[str, dict[str, Any]] = {}
    shared: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS:
            if value is None:
                value = {}
            if not isinstance(value, dict):
                raise ConfigError(
                    f"config key '{key.replace('_', '-')}' in {path!r} must be a mapping of that "
                    f"tool's options, got {type(value).__name__}."
                )
            section = _normalise(value)
            known = {o.dest for o in stage_options[key]} - _MANAGED
            for sub in section:
                if sub not in known:
                    raise ConfigError(
                        f"config key '{key.replace('_', '-')}.{sub.replace('_', '-')}' in {path!r} "
                        f"must be an option of that tool, got an unknown key."
                        + _suggest(sub, sorted(known))
                    )
            sections[key] = section
        elif key in shared_known and key not in _MANAGED - {"root_output_dir", "job_name"}:
            shared[key] = value
        else:
            raise ConfigError(
                f"config key '{key.replace('_', '-')}' in {path!r} must be a shared trial option "
                f"or a section ({', '.join(s.replace('_', '-') for s in SECTIONS)}), got an "
                "unknown key." + _suggest(key, sorted(shared_known | set(SECTIONS)))
            )
    for required in ("trainer", "search_space", "root_output_dir", "job_name"):
        if shared.get(required) in (None, ""):
            raise ConfigError(
                f"config key '{required.replace('_', '-')}' in {path!r} must be given, got "
                "nothing. See examples/digits/workflow.yaml."
            )
    if not sections.get("search", {}).get("proxy_task_config_generator"):
        raise ConfigError(
            f"config key 'search.proxy-task-config-generator' in {path!r} must be given, got "
            "nothing. Example: examples.digits.proxies:demo."
        )
    return WorkflowConfig(path, shared, sections)


def stage_values(
    config: WorkflowConfig, stage: str, options: Sequence[Option], **managed: Any
) -> dict[str, Any]:
    """The resolved options of one stage: shared options < the stage's section < managed."""
    empty = argparse.Namespace(**{o.dest: None for o in options})
    base = {**config.shared, **config.sections.get(stage, {}), **managed}
    return resolve_options(empty, options, None, base=base)


def workflow_dir(config: WorkflowConfig) -> str:
    """``<root-output-dir>/Workflow_<job-name>``: the same file always means the same run."""
    return layout.workflow_dir(
        str(config.shared["root_output_dir"]), str(config.shared["job_name"])
    )


def load_workflow_state(wdir: str) -> dict[str, Any]:
    """The workflow's state ({"stages": {}} for a new one)."""
    data = storage.read_json(storage.join(wdir, WORKFLOW_STATE))
    return data if isinstance(data, dict) else {"version": 1, "stages": {}}


def save_workflow_state(wdir: str, state: Mapping[str, Any]) -> None:
    """Write the workflow's state atomically."""
    storage.write_json_atomic(storage.join(wdir, WORKFLOW_STATE), dict(state))


def failure_rate(controller_dir: str, state_file: str) -> dict[str, Any]:
    """How many of a controller's trials failed, and of which causes."""
    data = storage.read_json(storage.join(controller_dir, state_file)) or {}
    trials = data.get("trials", [])
    failed = [t for t in trials if t.get("state") == "failed"]
    causes: dict[str, int] = {}
    for t in failed:
        cause = t.get("cause") or "crash"
        causes[cause] = causes.get(cause, 0) + 1
    return {
        "trials": len(trials),
        "failed": len(failed),
        "rate": (len(failed) / len(trials)) if trials else 0.0,
        "causes": causes,
    }
