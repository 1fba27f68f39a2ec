"""The proxy-task search's typed state and results, and their one JSON codec.

``SEARCH_CONTROLLER_STATE.json`` and ``PROXY_TASK_RECOMMENDATION.json`` keep the reference
tools' field names; those names appear here only, in the ``to_json`` / ``from_json`` methods.
Everything else (the controller, the report, ``proxytask status``) reads the frozen values.

Example::

    state = SearchState.load(search_dir)  # None when the dir holds no search state
    for entry in state.proxy_tasks.values():
        print(entry.name, entry.stats.stopping_state.value or "running")
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from proxytask.controllers.state import TrialRecord, load_state
from proxytask.core import layout, storage
from proxytask.core.errors import StorageError, UsageError
from proxytask.core.metric import MetricMode, metric_mode
from proxytask.stats.search import StepStats
from proxytask.stats.stability import StabilityResult
from proxytask.stats.stopping import STOPPING_RULES, StoppingState

__all__ = [
    "RECOMMENDATION",
    "SEARCH_STATE",
    "HoldoutCheck",
    "IntervalAtStop",
    "ProxyTaskEntry",
    "ProxyTaskStats",
    "Recommendation",
    "SearchSettings",
    "SearchState",
    "TauSummary",
    "ZeroTrainingComparison",
]

SEARCH_STATE = layout.SEARCH_STATE
RECOMMENDATION = layout.SEARCH_RECOMMENDATION
#: The statistic every tau in these files is.
STATISTIC = "Kendall tau-b"


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)


def _fields_json(value: Any) -> dict[str, Any]:
    """A flat value's fields by name, in order (its JSON form when the names are the keys)."""
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def _from_fields(cls: Any, data: Mapping[str, Any] | None) -> Any:
    """The flat value ``cls`` whose fields are the keys of ``data`` (None for None)."""
    return None if data is None else cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """Thresholds and limits of one proxy-task search (SPEC defaults)."""

    desired_accuracy_correlation: float | None = 0.65
    desired_accuracy: float | None = None
    training_time_hrs_limit: float | None = None
    desired_latency_correlation: float | None = None
    early_stop_proxy_task_if_not_best: bool = True
    max_parallel_proxy_tasks: int | None = None  # None: auto, every config at once
    stopping_rule: str = "confident"
    confidence: float = 0.85  # the defaults measured best in bench/stopping_rules.py
    persistence: int = 2
    metric_mode: str = "max"  # min: a loss; --desired-accuracy and zero-training signs follow
    # train the reference models in stages of this pct when they cannot all run at once
    # (None: auto, breadth-first by evaluations, see SearchController._stage_target; 100: never)
    stage_pct: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metric_mode", metric_mode(self.metric_mode).value)
        if self.stopping_rule not in STOPPING_RULES:
            raise UsageError(
                f"--stopping-rule must be one of {', '.join(STOPPING_RULES)}, got "
                f"{self.stopping_rule!r}."
            )
        if not 0.5 <= self.confidence < 1.0:
            raise UsageError(
                f"--confidence must lie in [0.5, 1), got {self.confidence}. Use e.g. 0.9."
            )
        if self.persistence < 1:
            raise UsageError(f"--persistence must be >= 1, got {self.persistence}.")
        for name in ("desired_accuracy_correlation", "desired_latency_correlation"):
            value = getattr(self, name)
            if value is not None and not -1.0 <= value <= 1.0:
                raise UsageError(
                    f"--{name.replace('_', '-')} must be a correlation in [-1, 1], got {value}."
                )
        if self.desired_accuracy_correlation is None and self.desired_accuracy is None:
            raise UsageError(
                "--desired-accuracy-correlation or --desired-accuracy must be set, got neither. "
                "A proxy needs a target to stop at (0.65 is the usual correlation)."
            )
        if self.training_time_hrs_limit is not None and self.training_time_hrs_limit <= 0:
            raise UsageError(
                f"--training-time-hrs-limit must be > 0, got {self.training_time_hrs_limit}."
            )
        if self.max_parallel_proxy_tasks is not None and self.max_parallel_proxy_tasks < 1:
            raise UsageError(
                f"--max-parallel-proxy-tasks must be >= 1, got {self.max_parallel_proxy_tasks}."
            )
        if self.stage_pct is not None and not 0 < self.stage_pct <= 100:
            raise UsageError(
                f"--stage-pct must be in (0, 100] or auto, got {self.stage_pct}. Use e.g. 25 "
                "(100: no stages)."
            )

    @property
    def mode(self) -> MetricMode:
        """The metric's direction."""
        return MetricMode(self.metric_mode)

    @property
    def reported_confidence(self) -> float | None:
        """The confidence the rule used (None for rules that use none)."""
        return self.confidence if self.stopping_rule == "confident" else None


@dataclasses.dataclass(frozen=True)
class TauSummary:
    """A Kendall tau-b of two score lists with its interval (None where not computable)."""

    tau: float | None
    p_value: float | None
    n: int
    ci_low: float | None
    ci_high: float | None
    confidence: float | None
    reason: str | None = None

    @property
    def interval(self) -> tuple[float, float, float] | None:
        """``(low, high, confidence)``, or None without an interval."""
        if self.ci_low is None or self.ci_high is None or self.confidence is None:
            return None
        return (self.ci_low, self.ci_high, self.confidence)

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"statistic": STATISTIC} | _fields_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TauSummary:
        """Parse :meth:`to_json`'s form."""
        return cls(
            tau=_number(data.get("tau")),
            p_value=_number(data.get("p_value")),
            n=int(data.get("n") or 0),
            ci_low=_number(data.get("ci_low")),
            ci_high=_number(data.get("ci_high")),
            confidence=_number(data.get("confidence")),
            reason=data.get("reason"),
        )


@dataclasses.dataclass(frozen=True)
class HoldoutCheck:
    """The winner's tau on the held-out models, trained to its recommended step."""

    summary: TauSummary
    proxy_task_name: str
    final_training_step: int | None
    proxy_accuracies: tuple[float | None, ...]
    full_accuracies: tuple[float | None, ...]
    trial_ids: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The JSON form: the tau summary's fields and the check's."""
        return self.summary.to_json() | {
            "proxy_task_name": self.proxy_task_name,
            "final_training_step": self.final_training_step,
            "proxy_accuracies": list(self.proxy_accuracies),
            "full_accuracies": list(self.full_accuracies),
            "trial_ids": list(self.trial_ids),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HoldoutCheck:
        """Parse :meth:`to_json`'s form."""
        return cls(
            summary=TauSummary.from_json(data),
            proxy_task_name=str(data.get("proxy_task_name", "")),
            final_training_step=_integer(data.get("final_training_step")),
            proxy_accuracies=tuple(_number(v) for v in data.get("proxy_accuracies") or ()),
            full_accuracies=tuple(_number(v) for v in data.get("full_accuracies") or ()),
            trial_ids=tuple(str(t) for t in data.get("trial_ids") or ()),
        )


@dataclasses.dataclass(frozen=True)
class IntervalAtStop:
    """The tau interval and probability recorded at the deciding evaluation."""

    training_step: int
    ci_low: float
    ci_high: float | None
    probability_above_threshold: float | None
    confidence: float | None

    @property
    def interval(self) -> tuple[float, float, float] | None:
        """``(low, high, confidence)``, or None without a full interval."""
        if self.ci_high is None or self.confidence is None:
            return None
        return (self.ci_low, self.ci_high, self.confidence)

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return _fields_json(self) | {"statistic": STATISTIC}


@dataclasses.dataclass(frozen=True)
class ProxyTaskStats:
    """One proxy task's statistics and decision (``proxy_task_stats`` in the state file).

    ``steps`` is None until the statistics were first computed. ``latency_interval`` is the
    latency tau's ``(low, high)``, None until the config finished. ``decided_at_training_step``
    is the evaluation at which the stopping rule held (the final steps may be interpolated
    back from it); ``rescore_note`` says why a re-score could not decide.
    """

    steps: StepStats | None = None
    latency_correlation: float | None = None
    latency_correlation_p_value: float | None = None
    latency_interval: tuple[float | None, float | None] | None = None
    stopping_state: StoppingState = StoppingState.INVALID_STOPPING_STATE
    posted_stop_trials_message: bool = False
    final_training_time_in_hours: float | None = None
    final_training_steps: int | None = None
    decided_at_training_step: int | None = None
    rescore_note: str | None = None

    @property
    def step_stats(self) -> StepStats:
        """The step statistics (empty before any were computed)."""
        return self.steps if self.steps is not None else _EMPTY_STEPS

    @property
    def deciding_step(self) -> int | None:
        """The evaluation step at which the stopping rule held (the final step when none)."""
        decided = self.decided_at_training_step
        return decided if decided is not None else self.final_training_steps

    def tau_at(self, step: int | None) -> float | None:
        """The last valid tau recorded at or before ``step``."""
        if step is None:
            return None
        best = None
        s = self.step_stats
        for at, tau in zip(s.training_steps, s.accuracy_correlation_over_step, strict=True):
            if at <= step and tau is not None:
                best = tau
        return best

    def interval_at(self, step: int | None) -> IntervalAtStop | None:
        """The interval and probability recorded at the last step up to ``step``."""
        if step is None:
            return None
        s = self.step_stats
        found = None
        for i, at in enumerate(s.training_steps):
            low = s.accuracy_correlation_ci_low[i]
            if at <= step and low is not None:
                found = IntervalAtStop(
                    at,
                    low,
                    s.accuracy_correlation_ci_high[i],
                    s.accuracy_correlation_prob_above[i],
                    s.confidence,
                )
        return found

    def trained_tau(self) -> tuple[float | None, float | None, float | None]:
        """The tau and its interval at the deciding step (or the last valid step)."""
        step = self.deciding_step
        s = self.step_stats
        found: tuple[float | None, float | None, float | None] = (None, None, None)
        for i, (at, tau) in enumerate(
            zip(s.training_steps, s.accuracy_correlation_over_step, strict=True)
        ):
            if tau is not None and (step is None or at <= step):
                low, high = s.accuracy_correlation_ci_low[i], s.accuracy_correlation_ci_high[i]
                found = (
                    (tau, low, high) if low is not None and high is not None else (tau, None, None)
                )
        return found

    def to_json(self) -> dict[str, Any]:
        """The JSON form, keys in the order the reference tools' files have them."""
        s = self.step_stats
        out: dict[str, Any] = {
            "training_steps": list(s.training_steps),
            "accuracy_correlation_over_step": list(s.accuracy_correlation_over_step),
            "accuracy_correlation_p_value_over_step": list(
                s.accuracy_correlation_p_value_over_step
            ),
            "median_accuracy_over_step": list(s.median_accuracy_over_step),
            "median_training_time_hrs_over_step": list(s.median_training_time_hrs_over_step),
            "num_pairs_over_step": list(s.num_pairs_over_step),
            "latency_correlation": self.latency_correlation,
            "latency_correlation_p_value": self.latency_correlation_p_value,
            "stopping_state": self.stopping_state.value,
            "posted_stop_trials_message": self.posted_stop_trials_message,
            "final_training_time_in_hours": self.final_training_time_in_hours,
            "final_training_steps": self.final_training_steps,
        }
        if self.steps is not None:
            out |= {k: v for k, v in self.steps.to_dict().items() if k not in out}
        if self.decided_at_training_step is not None:
            out["decided_at_training_step"] = self.decided_at_training_step
        if self.latency_interval is not None:
            out["latency_correlation_ci_low"] = self.latency_interval[0]
            out["latency_correlation_ci_high"] = self.latency_interval[1]
        if self.rescore_note is not None:
            out["rescore_note"] = self.rescore_note
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str) -> ProxyTaskStats:
        """Parse :meth:`to_json`'s form (or an older one); raise StorageError naming
        ``source`` when it is malformed."""
        computed = "statistic" in data or bool(data.get("training_steps"))
        latency_known = "latency_correlation_ci_low" in data
        try:
            return cls(
                steps=StepStats.from_dict(data, source) if computed else None,
                latency_correlation=_number(data.get("latency_correlation")),
                latency_correlation_p_value=_number(data.get("latency_correlation_p_value")),
                latency_interval=(
                    _number(data.get("latency_correlation_ci_low")),
                    _number(data.get("latency_correlation_ci_high")),
                )
                if latency_known
                else None,
                stopping_state=StoppingState(data.get("stopping_state") or ""),
                posted_stop_trials_message=bool(data.get("posted_stop_trials_message")),
                final_training_time_in_hours=_number(data.get("final_training_time_in_hours")),
                final_training_steps=_integer(data.get("final_training_steps")),
                decided_at_training_step=_integer(data.get("decided_at_training_step")),
                rescore_note=data.get("rescore_note"),
            )
        except (TypeError, ValueError) as exc:
            raise StorageError(
                f"{source} must hold a proxy task's statistics as the search writes them, got "
                f"an error: {exc}. Let the search controller write this state."
            ) from exc


_EMPTY_STEPS = StepStats((), (), (), (), (), ())


@dataclasses.dataclass(frozen=True)
class ProxyTaskEntry:
    """One proxy-task config's place in the search: its statistics and its job."""

    name: str
    stats: ProxyTaskStats
    search_job_name: str
    search_job_link: str
    latency_calculator_job_name: str = ""
    latency_calculator_job_link: str = ""

    def to_json(self) -> dict[str, Any]:
        """The JSON form (an entry of ``proxy_tasks_map``)."""
        return {
            "proxy_task_stats": self.stats.to_json(),
            "proxy_task_name": self.name,
            "search_job_name": self.search_job_name,
            "search_job_link": self.search_job_link,
            "latency_calculator_job_name": self.latency_calculator_job_name,
            "latency_calculator_job_link": self.latency_calculator_job_link,
        }

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> ProxyTaskEntry:
        """Parse :meth:`to_json`'s form."""
        return cls(
            name=str(data.get("proxy_task_name", name)),
            stats=ProxyTaskStats.from_json(
                data.get("proxy_task_stats") or {}, f"proxy_tasks_map[{name!r}]"
            ),
            search_job_name=str(data.get("search_job_name", "")),
            search_job_link=str(data.get("search_job_link", "")),
            latency_calculator_job_name=str(data.get("latency_calculator_job_name", "")),
            latency_calculator_job_link=str(data.get("latency_calculator_job_link", "")),
        )


def _settings_from_json(data: Any) -> SearchSettings | None:
    if not isinstance(data, Mapping):
        return None
    known = {f.name for f in dataclasses.fields(SearchSettings)}
    try:
        return SearchSettings(**{k: v for k, v in data.items() if k in known})
    except (TypeError, UsageError):
        return None  # settings a former version allowed: the resumed run gives its own


@dataclasses.dataclass(frozen=True)
class SearchState:
    """Everything ``SEARCH_CONTROLLER_STATE.json`` holds.

    ``order`` is the order configs are evaluated in, ``done`` those with an answer,
    ``finish_order`` the order they got it in (early stopping judged each only by those
    before it). ``settings`` is None in a state whose settings cannot be read.
    """

    proxy_tasks: Mapping[str, ProxyTaskEntry]
    best_proxy_task_name: str = ""
    holdout: Mapping[str, HoldoutCheck] = dataclasses.field(default_factory=dict)
    zero_training_baselines: Mapping[str, TauSummary] = dataclasses.field(default_factory=dict)
    order: tuple[str, ...] = ()
    done: frozenset[str] = frozenset()
    finish_order: tuple[str, ...] = ()
    config_args: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    settings: SearchSettings | None = None
    reference_trial_ids: tuple[str, ...] = ()
    model_selection_dir: str = ""
    trials: tuple[TrialRecord, ...] = ()

    @classmethod
    def load(cls, controller_dir: str) -> SearchState | None:
        """The state saved in a search dir; None when it holds none."""
        path = storage.join(controller_dir, SEARCH_STATE)
        data = load_state(path)
        return None if data is None else cls.from_json(data)

    def to_json(self) -> dict[str, Any]:
        """The JSON form (without the format version, which saving adds)."""
        return {
            "proxy_tasks_map": {k: v.to_json() for k, v in self.proxy_tasks.items()},
            "best_proxy_task_name": self.best_proxy_task_name,
            "holdout": {k: v.to_json() for k, v in self.holdout.items()},
            "zero_training_baselines": {
                k: v.to_json() for k, v in self.zero_training_baselines.items()
            },
            "order": list(self.order),
            "done": sorted(self.done),
            "finish_order": list(self.finish_order),
            "config_args": {k: dict(v) for k, v in self.config_args.items()},
            "settings": None if self.settings is None else dataclasses.asdict(self.settings),
            "reference_trial_ids": list(self.reference_trial_ids),
            "model_selection_dir": self.model_selection_dir,
            "trials": [r.to_dict() for r in self.trials],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SearchState:
        """Parse :meth:`to_json`'s form (older states: missing fields take their defaults)."""
        done = frozenset(str(n) for n in data.get("done") or ())
        order = tuple(str(n) for n in data.get("order") or ())
        finish = data.get("finish_order") or [n for n in order if n in done]
        return cls(
            proxy_tasks={
                str(k): ProxyTaskEntry.from_json(str(k), v)
                for k, v in (data.get("proxy_tasks_map") or {}).items()
            },
            best_proxy_task_name=str(data.get("best_proxy_task_name") or ""),
            holdout={
                str(k): HoldoutCheck.from_json(v) for k, v in (data.get("holdout") or {}).items()
            },
            zero_training_baselines={
                str(k): TauSummary.from_json(v)
                for k, v in (data.get("zero_training_baselines") or {}).items()
                if isinstance(v, Mapping)
            },
            order=order,
            done=done,
            finish_order=tuple(str(n) for n in finish),
            config_args={
                str(k): {str(a): str(b) for a, b in v.items()}
                for k, v in (data.get("config_args") or {}).items()
            },
            settings=_settings_from_json(data.get("settings")),
            reference_trial_ids=tuple(str(t) for t in data.get("reference_trial_ids") or ()),
            model_selection_dir=str(data.get("model_selection_dir") or ""),
            trials=tuple(TrialRecord.from_dict(r) for r in data.get("trials") or ()),
        )


@dataclasses.dataclass(frozen=True)
class ZeroTrainingComparison:
    """The trained winner beside the best zero-training score."""

    best_zero_training_score: str
    best_zero_training_tau: float
    trained_proxy_tau: float | None
    trained_proxy_beats_zero_training: bool
    clearly_beats: bool  # its interval lies above the zero-training score's
    message: str

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return _fields_json(self) | {"statistic": STATISTIC}


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """What to set: the best proxy task, its args, steps and speed-up (``found`` False: none).

    ``others`` maps every other started config to its stopping state ("not finished" while
    it runs). ``final_training_step`` is 0-based; the step budget is one more.
    """

    best_proxy_task_name: str
    others: Mapping[str, str]
    trainer_args: Mapping[str, str] | None = None
    final_training_step: int | None = None
    final_training_time_in_hours: float | None = None
    accuracy_correlation_at_stop: float | None = None
    full_training_hours_per_model: float | None = None
    stopping_rule: str = ""
    confidence: float | None = None
    interval_at_stop: IntervalAtStop | None = None
    holdout: HoldoutCheck | None = None
    zero_training_baselines: Mapping[str, TauSummary] = dataclasses.field(default_factory=dict)
    zero_training_comparison: ZeroTrainingComparison | None = None
    winner_stability: StabilityResult | None = None

    @property
    def found(self) -> bool:
        """True when a proxy task met its targets."""
        return bool(self.best_proxy_task_name)

    @property
    def training_steps(self) -> int | None:
        """The step budget to set: the deciding evaluation's 0-based step + 1."""
        step = self.final_training_step
        return None if step is None else step + 1

    @property
    def speedup(self) -> float | None:
        """How many times cheaper than full training one trial is."""
        full, hours = self.full_training_hours_per_model, self.final_training_time_in_hours
        return (full / hours) if full and hours else None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recommendation:
        """Parse :meth:`to_json`'s form (``PROXY_TASK_RECOMMENDATION.json``, or the
        ``recommendation`` of the workflow's ``RECOMMENDATION.json``)."""
        others = {str(k): str(v) for k, v in (data.get("others") or {}).items()}
        if not data.get("found"):
            return cls(best_proxy_task_name="", others=others)
        holdout, stability = data.get("holdout"), data.get("winner_stability")
        return cls(
            best_proxy_task_name=str(data["best_proxy_task_name"]),
            others=others,
            trainer_args=data.get("trainer_args"),
            final_training_step=_integer(data.get("final_training_step")),
            final_training_time_in_hours=_number(data.get("final_training_time_in_hours")),
            accuracy_correlation_at_stop=_number(data.get("accuracy_correlation_at_stop")),
            full_training_hours_per_model=_number(data.get("full_training_hours_per_model")),
            stopping_rule=str(data.get("stopping_rule") or ""),
            confidence=_number(data.get("confidence")),
            interval_at_stop=_from_fields(
                IntervalAtStop, data.get("accuracy_correlation_interval_at_stop")
            ),
            holdout=None if holdout is None else HoldoutCheck.from_json(holdout),
            zero_training_baselines={
                str(k): TauSummary.from_json(v)
                for k, v in (data.get("zero_training_baselines") or {}).items()
            },
            zero_training_comparison=_from_fields(
                ZeroTrainingComparison, data.get("zero_training_comparison")
            ),
            winner_stability=None if stability is None else StabilityResult(**stability),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON form of ``PROXY_TASK_RECOMMENDATION.json``."""
        if not self.found:
            return {"best_proxy_task_name": "", "found": False, "others": dict(self.others)}
        steps = self.training_steps
        return {
            "found": True,
            "best_proxy_task_name": self.best_proxy_task_name,
            "trainer_args": None if self.trainer_args is None else dict(self.trainer_args),
            "training_steps": steps,
            "cosine_decay_steps": steps,
            "final_training_step": self.final_training_step,
            "final_training_time_in_hours": self.final_training_time_in_hours,
            "accuracy_correlation_at_stop": self.accuracy_correlation_at_stop,
            "full_training_hours_per_model": self.full_training_hours_per_model,
            "speedup_vs_full_training": self.speedup,
            "advice": (
                f"Set the total training steps to {steps} and the cosine-decay steps to the "
                "same value; one evaluation at the end is enough for the search."
            ),
            "others": dict(self.others),
            "stopping_rule": self.stopping_rule,
            "confidence": self.confidence,
            "accuracy_correlation_interval_at_stop": _json_or_none(self.interval_at_stop),
            "holdout": _json_or_none(self.holdout),
            "zero_training_baselines": {
                k: v.to_json() for k, v in self.zero_training_baselines.items()
            },
            "zero_training_comparison": _json_or_none(self.zero_training_comparison),
            "winner_stability": None
            if self.winner_stability is None
            else self.winner_stability.to_dict(),
        }


def _json_or_none(value: IntervalAtStop | HoldoutCheck | ZeroTrainingComparison | None) -> Any:
    return None if value is None else value.to_json()
