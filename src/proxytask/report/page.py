"""What a run shows, as one JSON page: the answer, where the run stands, one section per stage.

:func:`build_page` reads a workflow dir or one controller dir (local or any fsspec URL; it
only reads) and returns a JSON-able dict that ``proxytask report`` embeds in a self-contained
HTML file and ``proxytask dashboard`` serves to its live page. Both render it with the same
script (:mod:`proxytask.report.html`): the page is plain data, its figures are Plotly figure
specs (``{"data": [...], "layout": {...}}``) and its tables are columns and rows.

The page::

    {"version": 1, "title": str, "run_dir": str, "kind": str, "generated_at": epoch secs,
     "status": {"state": "finished" | "running" | "failed" | "not started", "lines": [str]},
     "answer": {"found": bool, "headline": str, "facts": [[label, value]], "notes": [str]},
     "sections": [{"id", "title", "facts", "notes", "figures", "tables"}]}

Every number carries its label (Kendall tau-b, the interval and its confidence, the unit).
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from proxytask.core import layout, storage
from proxytask.core.errors import StorageError, UsageError
from proxytask.report.data import format_hours
from proxytask.trainer.contract import TrialTrainingMetrics, read_trial_training_metrics

__all__ = ["PAGE_VERSION", "build_page", "run_kind"]

PAGE_VERSION = 1
STAGE_ORDER = ("variance", "model_selection", "search", "final_checks")
STAGE_TITLES = {
    "variance": "Variance measurement",
    "model_selection": "Model selection",
    "search": "Proxy-task search",
    "final_checks": "Final checks",
    "trials": "Trials",
}
_KIND_STAGE = {
    layout.KIND_VARIANCE: "variance",
    layout.KIND_MODEL_SELECTION: "model_selection",
    layout.KIND_SEARCH: "search",
    layout.KIND_FINAL_CHECKS: "final_checks",
    layout.KIND_TRIALS: "trials",
}
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
_MAX_PLAUSIBLE_RUNTIME = 90 * 24 * 3600.0
_FINISHED_TRIAL_STATES = frozenset({"succeeded", "failed", "stopped"})


# ---- small readers and formatters ------------------------------------------------------------


def _read(path: str) -> Any:
    """A JSON file's content; None when it is missing or being replaced (read again later)."""
    try:
        return storage.read_json(path)
    except StorageError:
        return None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _fmt(value: Any, digits: int = 3) -> str:
    number = _num(value)
    if number is None:
        return "—"
    if number != 0 and (abs(number) < 1e-3 or abs(number) >= 1e4):
        return f"{number:.{digits}g}"
    return f"{number:.{digits}f}"


def _tau_text(tau: Any, low: Any = None, high: Any = None, confidence: Any = None) -> str:
    """``Kendall tau-b 0.84 [0.70, 0.92] (85 % interval)``."""
    text = f"Kendall tau-b {_fmt(tau, 2)}"
    if _num(low) is not None and _num(high) is not None:
        text += f" [{_fmt(low, 2)}, {_fmt(high, 2)}]"
        conf = _num(confidence)
        if conf is not None:
            text += f" ({conf * 100:.0f} % interval)"
    return text


def _hours_text(hours: Any) -> str:
    value = _num(hours)
    return "—" if value is None else format_hours(value)


def _arch_text(arch: Any) -> str:
    if not isinstance(arch, Mapping):
        return "" if arch is None else str(arch)
    return ", ".join(f"{k}={v}" for k, v in sorted(arch.items()))


def _resolve_dir(parent: str, recorded: str) -> str:
    """A stage dir recorded in ``WORKFLOW_STATE.json``: it lives inside the workflow dir, while
    the recorded path is relative to wherever the run was started."""
    inside = storage.join(parent, posixpath.basename(recorded.rstrip("/")))
    return inside if storage.exists(inside) else recorded


def run_kind(path: str) -> str:
    """``workflow``, a controller kind (``Model_Selection``, ...), or raise UsageError."""
    if not storage.exists(path):
        raise UsageError(
            f"DIR must be an existing workflow or controller dir, got {path!r}, which does not "
            "exist. Use the dir `proxytask run` or a tool printed at start."
        )
    if storage.exists(storage.join(path, layout.WORKFLOW_STATE)):
        return layout.KIND_WORKFLOW
    base = posixpath.basename(path.rstrip("/"))
    has_jobs = storage.exists(storage.join(path, layout.JOBS_DIR))
    has_info = storage.exists(storage.join(path, layout.CONTROLLER_INFO))
    for kind in layout.CONTROLLER_KINDS:
        if base.startswith(kind + "_") and (has_jobs or has_info):
            return kind
    raise UsageError(
        f"DIR must be a workflow dir (holding {layout.WORKFLOW_STATE}) or a controller dir "
        f"(Variance_Measurement_..., Model_Selection_..., Search_controller_...), got {path!r}. "
        "Point at the dir itself, not its parent or one of its trials."
    )


# ---- figures ---------------------------------------------------------------------------------


def _layout(title: str, x: str, y: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 15}},
        "xaxis": {"title": {"text": x}, "zeroline": False},
        "yaxis": {"title": {"text": y}, "zeroline": False},
        "hovermode": "closest",
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "legend": {"orientation": "h", "y": -0.2},
        "height": 380,
        **extra,
    }


def _figure(fid: str, data: list[dict[str, Any]], layout_: dict[str, Any]) -> dict[str, Any]:
    return {"id": fid, "data": data, "layout": layout_}


def _table(
    tid: str, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> dict[str, Any]:
    return {"id": tid, "title": title, "columns": list(columns), "rows": [list(r) for r in rows]}


class _Metrics:
    """Each trial's ``TRIAL_TRAINING_METRICS.json``, read at most once per page (a dashboard
    rebuilds the page every second; a copy's curve and its trial-table row share one read)."""

    def __init__(self) -> None:
        self._read: dict[str, TrialTrainingMetrics | None] = {}

    def __call__(self, trial_dir: str) -> TrialTrainingMetrics | None:
        if trial_dir not in self._read:
            try:
                self._read[trial_dir] = read_trial_training_metrics(trial_dir)
            except StorageError:  # being written: read again on the next page
                self._read[trial_dir] = None
        return self._read[trial_dir]

    def curve(self, trial_dir: str) -> tuple[list[int], list[float]]:
        """The trial's (steps, accuracies) so far; empty lists before its first report."""
        metrics = self(trial_dir)
        points = metrics.training_accuracy_over_steps if metrics else ()
        return [p.training_step for p in points], [p.accuracy for p in points]


# ---- stages ----------------------------------------------------------------------------------


def _section(sid: str, title: str) -> dict[str, Any]:
    return {"id": sid, "title": title, "facts": [], "notes": [], "figures": [], "tables": []}


def _state_error(state: Any) -> str | None:
    if isinstance(state, Mapping) and state.get("error"):
        return str(state["error"])
    return None


def _stage_head(stage: str, cdir: str) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """A stage's section with its phase (and the error that stopped it), and its state."""
    section = _section(stage, STAGE_TITLES[stage])
    state = _read(storage.join(cdir, _STATE_FILES[stage])) or {}
    section["facts"].append(["phase", str(state.get("phase", "not started"))])
    if _state_error(state):
        section["notes"].append(f"stopped: {_state_error(state)}")
    return section, state


def _variance_section(cdir: str, metrics: _Metrics) -> dict[str, Any]:
    section, _ = _stage_head("variance", cdir)
    result = _read(storage.join(cdir, layout.VARIANCE_RESULT))
    traces: list[dict[str, Any]] = []
    rows = []
    copies_dir = layout.job_dir(cdir, layout.COPIES_JOB)
    for index, trial in enumerate(sorted(storage.listdir(copies_dir), key=_trial_key)):
        if trial.startswith("."):
            continue
        steps, accs = metrics.curve(layout.trial_dir(copies_dir, trial))
        if not steps:
            continue
        name = f"{layout.COPIES_JOB}/{trial}"
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": name,
                "x": steps,
                "y": accs,
                "line": {"color": _COLORS[index % len(_COLORS)], "width": 1.5},
                "marker": {"size": 4},
                "hovertemplate": f"{name}<br>step %{{x}}<br>accuracy %{{y:.4f}}<extra></extra>",
            }
        )
        rows.append([name, accs[-1], steps[-1]])
    if isinstance(result, Mapping):
        thresholds = result.get("thresholds") or {}
        cv, cv_max = result.get("variance_value"), thresholds.get("max_variance")
        sm, sm_max = result.get("smoothness_value"), thresholds.get("max_smoothness")
        good: dict[Any, str] = {True: "good", False: "not good"}
        section["facts"] += [
            [
                "variance (coefficient of variation of the final accuracy)",
                f"{_fmt(cv, 4)} — {good.get(result.get('variance_good'), '?')} "
                f"(threshold {_fmt(cv_max, 3)})",
            ],
            [
                "smoothness (of the copies' curves)",
                f"{_fmt(sm, 4)} — {good.get(result.get('smoothness_good'), '?')} "
                f"(threshold {_fmt(sm_max, 3)})",
            ],
            ["mean final accuracy", _fmt(result.get("mean_accuracy"), 4)],
            [
                "seed noise: sample std of the final accuracy",
                _std_text(result),
            ],
            [
                "copies finished",
                f"{result.get('num_copies_finished', '?')} of {result.get('num_copies', '?')}",
            ],
            ["architecture measured", _arch_text(result.get("architecture"))],
        ]
        section["notes"] += [str(a) for a in result.get("advice") or []]
        section["figures"].append(
            _figure(
                "variance-curves",
                traces,
                _layout("The copies' learning curves (one model, trained again)", "training step",
                        "accuracy"),
            )
        )  # fmt: skip
    elif traces:
        section["figures"].append(
            _figure(
                "variance-curves", traces, _layout("The copies so far", "training step", "accuracy")
            )
        )
    if rows:
        section["tables"].append(
            _table(
                "variance-copies",
                "Copies",
                ["copy", "accuracy (last evaluation)", "last step"],
                rows,
            )
        )
    return section


def _std_text(result: Mapping[str, Any]) -> str:
    ci = result.get("std_confidence_interval") or [None, None]
    conf = _num(result.get("confidence"))
    text = _fmt(result.get("sample_std"), 4)
    if len(ci) == 2 and _num(ci[0]) is not None:
        text += f" [{_fmt(ci[0], 4)}, {_fmt(ci[1], 4)}]"
        if conf is not None:
            text += f" ({conf * 100:.0f} % interval)"
    return text


def _trial_key(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (10**9, name)


def _selection_section(cdir: str, metrics: _Metrics) -> dict[str, Any]:
    section, state = _stage_head("model_selection", cdir)
    refs = _read(storage.join(cdir, layout.REFERENCE_MODELS))
    rounds = state.get("rounds") or []
    if rounds:
        section["tables"].append(
            _table(
                "selection-rounds",
                "Rounds (models pruned by spread in accuracy × latency)",
                ["round", "trained to %", "kept", "removed", "invalid"],
                [
                    [r.get("round"), r.get("pct"), len(r.get("kept") or []),
                     ", ".join(r.get("removed") or []), ", ".join(r.get("invalid") or [])]
                    for r in rounds
                ],
            )
        )  # fmt: skip
    if not isinstance(refs, Mapping):
        return section
    models = list(refs.get("reference_models") or [])
    holdout = list(refs.get("holdout_models") or [])
    cost = refs.get("cost") or {}
    section["facts"] += [
        ["reference models", str(len(models))],
        ["held-out models", str(len(holdout))],
        ["accuracy range", " – ".join(_fmt(v, 4) for v in refs.get("accuracy_range") or [])],
        ["latency range", " – ".join(_fmt(v, 4) for v in refs.get("latency_range") or [])],
        [
            "cost (training time)",
            f"{_hours_text(cost.get('training_hours'))} = "
            f"{_fmt(cost.get('multiple_of_full_training'), 3)} × one full training",
        ],
    ]
    section["notes"] += [str(w) for w in refs.get("warnings") or []]
    traces = []
    for name, group, symbol in (
        ("reference models", models, "circle"),
        ("held-out models", holdout, "diamond"),
    ):
        points = [m for m in group if _num(m.get("accuracy")) is not None]
        if not points:
            continue
        has_latency = any(_num(m.get("latency")) is not None for m in points)
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": [m.get("latency") if has_latency else i for i, m in enumerate(points)],
                "y": [m.get("accuracy") for m in points],
                "text": [_model_label(m) for m in points],
                "marker": {"size": 10, "symbol": symbol},
                "hovertemplate": "%{text}<br>latency %{x}<br>accuracy %{y:.4f}<extra></extra>",
            }
        )
    if traces:
        section["figures"].append(
            _figure(
                "selection-plane",
                traces,
                _layout("Reference models on the accuracy × latency plane", "latency",
                        "accuracy (full training)"),
            )
        )  # fmt: skip
    section["tables"].append(
        _table(
            "selection-models",
            "Reference models",
            ["model", "accuracy", "latency", "training time", "architecture"],
            [
                [m.get("origin_trial", m.get("trial_id")), m.get("accuracy"), m.get("latency"),
                 _hours_text(m.get("training_hours")), _arch_text(m.get("architecture"))]
                for m in models + holdout
            ],
        )
    )  # fmt: skip
    return section


def _model_label(model: Mapping[str, Any]) -> str:
    name = model.get("origin_trial", model.get("trial_id"))
    return f"{name}: {_arch_text(model.get('architecture'))}"


def _series(stats: Mapping[str, Any], key: str) -> list[float | None]:
    return [_num(v) for v in stats.get(key) or []]


def _search_section(cdir: str, metrics: _Metrics) -> dict[str, Any]:
    section = _section("search", STAGE_TITLES["search"])
    state = _read(storage.join(cdir, layout.SEARCH_STATE)) or {}
    settings = state.get("settings") or {}
    threshold = _num(settings.get("desired_accuracy_correlation"))
    section["facts"] += [
        ["stopping rule", str(settings.get("stopping_rule", "—"))],
        ["threshold", f"Kendall tau-b {_fmt(threshold, 2)}"],
        ["confidence", f"{(_num(settings.get('confidence')) or 0) * 100:.0f} %"],
        ["reference models", str(len(state.get("reference_trial_ids") or []))],
        [
            "configs finished",
            f"{len(state.get('done') or [])} of {len(state.get('order') or [])}",
        ],
    ]
    proxies = state.get("proxy_tasks_map") or {}
    traces: list[dict[str, Any]] = []
    acc_traces: list[dict[str, Any]] = []
    rows = []
    max_step = 0
    for index, name in enumerate(state.get("order") or list(proxies)):
        entry = proxies.get(name) or {}
        stats = entry.get("proxy_task_stats") or {}
        steps = [int(s) for s in stats.get("training_steps") or []]
        color = _COLORS[index % len(_COLORS)]
        tau = _series(stats, "accuracy_correlation_over_step")
        low = _series(stats, "accuracy_correlation_ci_low")
        high = _series(stats, "accuracy_correlation_ci_high")
        if steps:
            max_step = max(max_step, steps[-1])
        if steps and len(low) == len(steps) and len(high) == len(steps):
            traces.append(
                {
                    "type": "scatter", "mode": "lines", "x": steps + steps[::-1],
                    "y": high + low[::-1], "fill": "toself", "fillcolor": color,
                    "opacity": 0.15, "line": {"width": 0}, "hoverinfo": "skip",
                    "name": f"{name} interval", "showlegend": False,
                }
            )  # fmt: skip
        if steps:
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": name,
                    "x": steps,
                    "y": tau,
                    "customdata": [[lo, hi] for lo, hi in zip(low or [None] * len(steps),
                                                            high or [None] * len(steps),
                                                            strict=False)],
                    "line": {"color": color},
                    "hovertemplate": (
                        f"{name}<br>step %{{x}}<br>Kendall tau-b %{{y:.3f}}"
                        "<br>interval [%{customdata[0]:.2f}, %{customdata[1]:.2f}]<extra></extra>"
                    ),
                }
            )  # fmt: skip
            acc_traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": name,
                    "x": steps,
                    "y": _series(stats, "median_accuracy_over_step"),
                    "line": {"color": color},
                    "hovertemplate": f"{name}<br>step %{{x}}<br>median accuracy %{{y:.4f}}"
                    "<extra></extra>",
                }
            )
        stop_step = stats.get("final_training_steps")
        at = steps.index(stop_step) if isinstance(stop_step, int) and stop_step in steps else None
        rows.append(
            [
                name,
                stats.get("stopping_state") or (
                    "not finished" if name not in (state.get("done") or []) else "—"
                ),
                stop_step if stop_step is not None else "—",
                _tau_text(tau[at], low[at] if low else None, high[at] if high else None,
                          stats.get("confidence")) if at is not None else "—",
                _hours_text(stats.get("final_training_time_in_hours")),
                _tau_text(stats.get("latency_correlation"), stats.get("latency_correlation_ci_low"),
                          stats.get("latency_correlation_ci_high"))
                if _num(stats.get("latency_correlation")) is not None else "—",
                _arch_text(state.get("config_args", {}).get(name)),
            ]
        )  # fmt: skip
    if traces:
        shapes = []
        if threshold is not None and max_step:
            shapes.append(
                {"type": "line", "x0": 0, "x1": max_step, "y0": threshold, "y1": threshold,
                 "line": {"dash": "dash", "color": "#444"}}
            )  # fmt: skip
        section["figures"].append(
            _figure(
                "search-tau",
                traces,
                _layout(
                    "Rank correlation with full training, per proxy (band: interval; dashed: "
                    "threshold)",
                    "training step",
                    "Kendall tau-b",
                    shapes=shapes,
                    yaxis={"title": {"text": "Kendall tau-b"}, "range": [-1.05, 1.05]},
                ),
            )
        )
        section["figures"].append(
            _figure(
                "search-accuracy",
                acc_traces,
                _layout("Median accuracy of the reference models under each proxy",
                        "training step", "median accuracy"),
            )
        )  # fmt: skip
    section["tables"].append(
        _table(
            "search-proxies",
            "Proxy-task configs: why each one stopped",
            ["proxy", "state", "decided at step", "Kendall tau-b there", "training time there",
             "latency Kendall tau-b", "trainer args"],
            rows,
        )
    )  # fmt: skip
    baselines = state.get("zero_training_baselines") or {}
    if baselines:
        section["tables"].append(
            _table(
                "search-zero-training",
                "Zero-training baselines (no training at all)",
                ["score", "Kendall tau-b"],
                [[name, _tau_text(b.get("tau"), b.get("ci_low"), b.get("ci_high"))]
                 for name, b in sorted(baselines.items()) if isinstance(b, Mapping)],
            )
        )  # fmt: skip
    return section


def _final_checks_section(cdir: str, metrics: _Metrics) -> dict[str, Any]:
    section, state = _stage_head("final_checks", cdir)
    for key, value in sorted(state.items()):
        if key not in ("phase", "version") and not isinstance(value, (dict, list)):
            section["facts"].append([key.replace("_", " "), str(value)])
    return section


_SECTION_BUILDERS = {
    "variance": _variance_section,
    "model_selection": _selection_section,
    "search": _search_section,
    "final_checks": _final_checks_section,
}
_STATE_FILES = {
    "variance": layout.MEASUREMENT_STATE,
    "model_selection": layout.MODEL_SELECTION_STATE,
    "search": layout.SEARCH_STATE,
    "final_checks": layout.FINAL_CHECKS_STATE,
}


# ---- trials, failures, cost ------------------------------------------------------------------


def _files_trial_rows(cdir: str, metrics: _Metrics) -> list[list[Any]]:
    """The trials of a dir without a state file (``proxytask trial``), from their files."""
    rows = []
    for job in sorted(storage.listdir(storage.join(cdir, layout.JOBS_DIR))):
        if job.startswith("."):
            continue
        jdir = layout.job_dir(cdir, job)
        for number in sorted((n for n in storage.listdir(jdir) if n.isdigit()), key=int):
            tdir = layout.trial_dir(jdir, number)
            found = metrics(tdir)
            failure = _read(layout.trial_file(tdir, layout.TRIAL_FAILURE))
            failed = isinstance(failure, Mapping)
            done = failed or (found is not None and found.last_pct >= 100.0)
            steps, accs = metrics.curve(tdir)
            hours = found.training_time.total_training_time_in_secs / 3600 if found else 0.0
            rows.append(
                [STAGE_TITLES["trials"], f"{job}/{number}",
                 ("failed" if failed else "succeeded") if done else "running",
                 steps[-1] if steps else "—", accs[-1] if accs else "—",
                 round(hours * 3600, 1),
                 str(failure.get("cause", "crash")) if failed else "",
                 str(failure.get("message", "")) if failed else ""]
            )  # fmt: skip
    return rows


def _trial_rows(stage: str, cdir: str, now: float, metrics: _Metrics) -> list[list[Any]]:
    if stage == "trials":
        return _files_trial_rows(cdir, metrics)
    state = _read(storage.join(cdir, _STATE_FILES[stage])) if stage in _STATE_FILES else None
    records = (state.get("trials") or []) if isinstance(state, Mapping) else []
    rows = []
    for record in records:
        if not isinstance(record, Mapping):
            continue
        job, number = str(record.get("job", "")), str(record.get("number", ""))
        tdir = layout.trial_dir(layout.job_dir(cdir, job), number)
        steps, accs = metrics.curve(tdir)
        started, ended = _num(record.get("started_at")), _num(record.get("ended_at"))
        runtime = None
        if started is not None:
            runtime = (ended if ended is not None else now) - started
            if not 0 <= runtime < _MAX_PLAUSIBLE_RUNTIME:  # a replayed run's simulated clock
                runtime = None
        rows.append(
            [
                STAGE_TITLES.get(stage, stage),
                f"{job}/{number}",
                str(record.get("state", "")),
                steps[-1] if steps else "—",
                accs[-1] if accs else "—",
                round(runtime, 1) if runtime is not None else "—",
                str(record.get("cause") or ""),
                str(record.get("message") or ""),
            ]
        )
    return rows


TRIAL_COLUMNS = [
    "stage", "trial", "state", "step", "latest accuracy", "runtime (s)", "failure cause",
    "message",
]  # fmt: skip


# ---- the answer and the status ---------------------------------------------------------------


def _answer(rec: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(rec, Mapping):
        return None
    others = rec.get("others") or {}
    if not rec.get("found"):
        return {
            "found": False,
            "headline": "No proxy task met the targets.",
            "facts": [[name, str(why)] for name, why in sorted(others.items())],
            "notes": [],
        }
    interval = rec.get("accuracy_correlation_interval_at_stop") or {}
    facts = [
        ["trainer arguments", _arch_text(rec.get("trainer_args"))],
        ["training steps", str(rec.get("training_steps"))],
        [
            "cost per trial",
            f"{_fmt(rec.get('speedup_vs_full_training'), 3)}× cheaper than full training",
        ],
        [
            "rank correlation with full training at that step",
            _tau_text(rec.get("accuracy_correlation_at_stop"), interval.get("ci_low"),
                      interval.get("ci_high"), interval.get("confidence")),
        ],
        ["stopping rule", str(rec.get("stopping_rule", "—"))],
    ]  # fmt: skip
    holdout = rec.get("holdout")
    if isinstance(holdout, Mapping):
        facts.append(
            [
                f"held-out check ({holdout.get('n', '?')} models the search never chose by)",
                _tau_text(holdout.get("tau"), holdout.get("ci_low"), holdout.get("ci_high"),
                          holdout.get("confidence")),
            ]
        )  # fmt: skip
    stability = rec.get("winner_stability")
    if isinstance(stability, Mapping):
        freq = _num(stability.get("observed_winner_frequency"))
        freqs = stability.get("frequencies") or {}
        rivals = ", ".join(
            f"{name} {f * 100:.0f} %" for name, f in sorted(freqs.items(), key=lambda kv: -kv[1])
        )
        facts.append(
            [
                "winner stability (the search replayed on resampled reference models)",
                f"wins {freq * 100:.0f} % of {stability.get('draws')} resamples ({rivals})"
                if freq is not None else "—",
            ]
        )  # fmt: skip
    comparison = rec.get("zero_training_comparison")
    if isinstance(comparison, Mapping) and comparison.get("message"):
        facts.append(["against zero-training scores", str(comparison["message"])])
    facts += [[f"{name} (not chosen)", str(why)] for name, why in sorted(others.items())]
    notes = [str(rec["advice"])] if rec.get("advice") else []
    return {
        "found": True,
        "headline": f"Use proxy task {rec.get('best_proxy_task_name')} for "
        f"{rec.get('training_steps')} training steps.",
        "facts": facts,
        "notes": notes,
    }


def _answer_so_far(rec: Any, so_far: Any, overall: str) -> dict[str, Any] | None:
    """The answer; while a workflow's search runs, its best proxy so far, marked as such."""
    if overall == "not started":
        return None
    if rec is not None:
        return _answer(rec)
    current = _answer(so_far)
    if current is None or not current["found"]:
        return None
    current["headline"] = "So far: " + current["headline"]
    going = (
        "The search is still going: a cheaper proxy may still qualify, and the final checks "
        "have not run yet."
    )
    current["notes"] = [going, *current["notes"]]
    return current


def _stage_state(stage: str, cdir: str) -> str:
    if stage == "trials":
        return "finished"
    state = _read(storage.join(cdir, _STATE_FILES[stage]))
    if not isinstance(state, Mapping):
        return "not started"
    if stage == "search":
        order, done = state.get("order") or [], set(state.get("done") or [])
        return "finished" if order and all(n in done for n in order) else "running"
    phase = str(state.get("phase", ""))
    return {"done": "finished", "failed": "failed"}.get(phase, "running")


# ---- the page --------------------------------------------------------------------------------


def _stages(run_dir: str, kind: str) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """The (stage, dir) pairs of the run, and the workflow state (empty for one controller)."""
    if kind != layout.KIND_WORKFLOW:
        return [(_KIND_STAGE[kind], run_dir)], {}
    workflow = _read(storage.join(run_dir, layout.WORKFLOW_STATE)) or {}
    stages = workflow.get("stages") or {}
    pairs = []
    for stage in STAGE_ORDER:
        entry = stages.get(stage)
        if isinstance(entry, Mapping) and entry.get("dir"):
            pairs.append((stage, _resolve_dir(run_dir, str(entry["dir"]))))
    return pairs, workflow


def build_page(run_dir: str, now: float) -> dict[str, Any]:
    """The page of a workflow or controller dir (see the module doc); raise UsageError for a
    dir that is neither. Reads only; a file being written is read again on the next call."""
    kind = run_kind(run_dir)
    stages, workflow = _stages(run_dir, kind)
    metrics = _Metrics()
    sections = []
    trial_rows: list[list[Any]] = []
    lines = []
    states = []
    for stage, cdir in stages:
        if stage in _SECTION_BUILDERS:
            sections.append(_SECTION_BUILDERS[stage](cdir, metrics))
        trial_rows += _trial_rows(stage, cdir, now, metrics)
        stage_state = _stage_state(stage, cdir)
        states.append(stage_state)
        line = f"{STAGE_TITLES.get(stage, stage)}: {stage_state}"
        error = _state_error(_read(storage.join(cdir, _STATE_FILES.get(stage, "")))) if (
            stage in _STATE_FILES
        ) else None  # fmt: skip
        lines.append(line + (f" — {error}" if error else ""))
    rec: Any = None
    so_far: Any = None  # a running workflow's search: its best proxy so far
    if kind == layout.KIND_WORKFLOW:
        saved = _read(storage.join(run_dir, layout.WORKFLOW_RECOMMENDATION))
        rec = saved.get("recommendation") if isinstance(saved, Mapping) else None
        search_dirs = [d for stage, d in stages if stage == "search"]
        if rec is None and search_dirs:
            so_far = _read(storage.join(search_dirs[0], layout.SEARCH_RECOMMENDATION))
    elif kind == layout.KIND_SEARCH:
        rec = _read(storage.join(run_dir, layout.SEARCH_RECOMMENDATION))
    if "failed" in states:
        overall = "failed"
    elif not states:
        overall = "not started"
    elif kind == layout.KIND_WORKFLOW:
        overall = "finished" if rec is not None else "running"
    elif kind == layout.KIND_TRIALS:
        overall = "running" if any(r[2] == "running" for r in trial_rows) else "finished"
    else:
        overall = "finished" if all(s == "finished" for s in states) else "running"
    failed = [r for r in trial_rows if r[2] == "failed"]
    if failed:
        causes: dict[str, int] = {}
        for row in failed:
            causes[row[6] or "unknown"] = causes.get(row[6] or "unknown", 0) + 1
        lines.append(
            f"{len(failed)} of {len(trial_rows)} trials failed: "
            + ", ".join(f"{n} {cause}" for cause, n in sorted(causes.items()))
        )
    running = sum(1 for r in trial_rows if r[2] not in _FINISHED_TRIAL_STATES)
    if running:
        lines.append(f"{running} trials running or waiting")
    tables = [_table("trials", "Every trial", TRIAL_COLUMNS, trial_rows)]
    if failed:
        tables.insert(
            0,
            _table(
                "failures",
                "Failed trials and their causes",
                ["stage", "trial", "failure cause", "message"],
                [[r[0], r[1], r[6], r[7]] for r in failed],
            ),
        )
    sections.append({**_section("trials", "Trials"), "tables": tables})
    name = posixpath.basename(run_dir.rstrip("/"))
    return {
        "version": PAGE_VERSION,
        "title": f"proxytask — {name}",
        "run_dir": run_dir,
        "kind": kind,
        "generated_at": now,
        "status": {"state": overall, "lines": lines},
        "answer": _answer_so_far(rec, so_far, overall),
        "sections": sections,
        "workflow": {k: v for k, v in workflow.items() if k != "version"},
    }
