"""Final checks of ``proxytask run``: the baseline under a model-scaling proxy task, and the
checks and recommendation written to the workflow's ``RECOMMENDATION.json``.

A proxy task that shrinks the model (width, depth, image size) also shrinks its latency, so a
latency constraint written for the full model is too loose in the search. SPEC §5: measure
the scaled baseline's latency and use a correspondingly stricter constraint. This controller
trains the baseline architecture once under the recommended proxy task (one proxy-task trial,
stopped after its first evaluation: a latency needs no more), reads its latency the same way
model selection did (the trainer's report, a named final metric, or a latency worker) and
writes ``FINAL_CHECKS_STATE.json``.

:func:`stricter_constraint` turns the two baseline latencies into the constraint to use;
:func:`latency_check` says it (measured, or estimated from the reference models).
:func:`final_checks` gathers every check (failure rates, reward range, latency) into a frozen
:class:`FinalChecks`; the workflow prints it and writes ``RECOMMENDATION.json``.
"""

from __future__ import annotations

import dataclasses
import enum
import statistics
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from proxytask.controllers.base import (
    Controller,
    ControllerContext,
    fmt_number,
    progress_rows,
)
from proxytask.controllers.command_options import LATENCY_SOURCES
from proxytask.controllers.state import TrialRecord, TrialRecordState, json_value, load_state
from proxytask.controllers.tracker import TrialTracker
from proxytask.core import layout, storage
from proxytask.core.errors import UsageError
from proxytask.report.progress import ProgressSnapshot
from proxytask.trainer.contract import (
    RewardRangeCheck,
    check_reward_range,
    read_final_metrics,
)

if TYPE_CHECKING:
    from proxytask.controllers.search import SearchController
    from proxytask.controllers.search_state import Recommendation
    from proxytask.stats.reference_size import ReferenceSizeAdvice

__all__ = [
    "FINAL_CHECKS_STATE",
    "LATENCY_SOURCES",
    "FailureRate",
    "FinalChecks",
    "LatencyCheck",
    "LatencyMethod",
    "ScaledBaselineController",
    "ScaledBaselinePhase",
    "ScaledBaselinePlan",
    "ScaledBaselineResult",
    "ScaledBaselineSettings",
    "ScaledBaselineState",
    "VarianceJudgement",
    "count_plots",
    "failure_rate",
    "final_checks",
    "judge_variance",
    "latency_check",
    "read_final_checks",
    "read_scaled_baseline_state",
    "reference_set_size",
    "scaled_baseline_plan",
    "scaling_args",
    "stricter_constraint",
]

FINAL_CHECKS_STATE = layout.FINAL_CHECKS_STATE
SCALED_BASELINE_JOB = layout.SCALED_BASELINE_JOB


@dataclasses.dataclass(frozen=True)
class ScaledBaselineSettings:
    """What to train and how to read its latency (the model-selection settings)."""

    proxy_task_name: str
    baseline_architecture: Mapping[str, Any]
    proxy_trainer_args: Mapping[str, str]
    latency_source: str = "trainer"
    latency_metric_id: str | None = None
    latency_timeout_secs: float = 3600.0

    def __post_init__(self) -> None:
        if self.latency_source not in LATENCY_SOURCES:
            raise UsageError(
                f"the latency source must be one of {', '.join(LATENCY_SOURCES)}, got "
                f"{self.latency_source!r}."
            )
        if self.latency_timeout_secs <= 0:
            raise UsageError(
                f"the latency timeout must be > 0 seconds, got {self.latency_timeout_secs!r}."
            )


def stricter_constraint(
    target: float | None, full_latency: float, scaled_latency: float
) -> dict[str, Any]:
    """The latency constraint to use in a search under a model-scaling proxy task.

    The scaled model runs ``ratio = scaled_latency / full_latency`` as fast as the full one,
    so a target ``T`` for the full model becomes ``ratio · T`` for the proxy's models.

    Example::

        >>> stricter_constraint(10.0, 4.0, 1.0)["proxy_latency_constraint"]
        2.5
    """
    for name, value in (("full_latency", full_latency), ("scaled_latency", scaled_latency)):
        if not isinstance(value, (int, float)) or not value > 0:
            raise UsageError(f"{name} must be a latency > 0, got {value!r}.")
    if target is not None and not target > 0:
        raise UsageError(f"the latency constraint must be > 0, got {target!r}.")
    ratio = scaled_latency / full_latency
    return {
        "ratio_scaled_to_full": ratio,
        "latency_constraint": target,
        "proxy_latency_constraint": None if target is None else target * ratio,
    }


class ScaledBaselinePhase(str, enum.Enum):
    """Where the scaled-baseline measurement stands (the ``phase`` of its state file)."""

    TRAIN = "train"  # the baseline trains, or its latency is awaited
    DONE = "done"  # the latency is known, or known to be unavailable: see ``result``

    def __str__(self) -> str:
        return self.value


#: The scaled baseline's stop target: it stops after its first evaluation and reports its
#: latency then (a model's latency needs no more training than that).
LATENCY_ONLY_PCT = 1e-3


def _last_accuracy(metrics: Any) -> float | None:
    points = metrics.training_accuracy_over_steps if metrics is not None else ()
    return float(points[-1].accuracy) if points else None


@dataclasses.dataclass(frozen=True)
class ScaledBaselineResult:
    """The baseline measured under the proxy task (the ``result`` of the state file).

    Fields in the order of the file's keys; ``latency`` None comes with an ``error``;
    ``accuracy`` is the one it reached when it stopped (after its first evaluation).
    """

    trial_dir: str
    state: TrialRecordState
    proxy_task_name: str
    trainer_args: Mapping[str, str]
    accuracy: float | None
    latency: float | None
    error: str | None

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        data: dict[str, Any] = json_value(self)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScaledBaselineResult:
        """Parse the JSON form."""
        values = {f.name: data[f.name] for f in dataclasses.fields(cls)}
        return cls(**{**values, "state": TrialRecordState(data["state"])})


@dataclasses.dataclass(frozen=True)
class ScaledBaselineState:
    """What ``FINAL_CHECKS_STATE.json`` says apart from its trial records."""

    phase: ScaledBaselinePhase
    proxy_task_name: str
    result: ScaledBaselineResult | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScaledBaselineState:
        """Parse the state file's JSON (as :class:`ScaledBaselineController` writes it)."""
        result = data.get("result")
        return cls(
            phase=ScaledBaselinePhase(data.get("phase", ScaledBaselinePhase.TRAIN)),
            proxy_task_name=str(data.get("proxy_task_name", "")),
            result=None if result is None else ScaledBaselineResult.from_json(result),
        )


def read_scaled_baseline_state(controller_dir: str) -> ScaledBaselineState | None:
    """The state a scaled-baseline measurement saved in ``controller_dir``, or None."""
    data = load_state(storage.join(controller_dir, FINAL_CHECKS_STATE))
    return None if data is None else ScaledBaselineState.from_json(data)


class ScaledBaselineController(Controller):
    """Trains the baseline architecture once under a proxy task and reads its latency.

    Example::

        ctl = ScaledBaselineController.create(ctx, settings)
        ctl.run()
        print(ctl.result.latency)
    """

    kind = layout.KIND_FINAL_CHECKS
    state_file = FINAL_CHECKS_STATE
    resume_flag = "proxytask run"
    resume_what = "a final-checks dir"

    def __init__(
        self,
        ctx: ControllerContext,
        tracker: TrialTracker,
        settings: ScaledBaselineSettings,
        state: Mapping[str, Any],
    ) -> None:
        super().__init__(ctx, tracker)
        self.settings = settings
        saved = ScaledBaselineState.from_json(state)
        self.phase = saved.phase
        self.result: ScaledBaselineResult | None = saved.result
        self.latency_wait_started: float | None = state.get("latency_wait_started")

    @classmethod
    def create(
        cls, ctx: ControllerContext, settings: ScaledBaselineSettings
    ) -> ScaledBaselineController:
        """A new check in ``ctx.controller_dir`` (which must not hold one yet)."""
        return cls(ctx, cls.new_tracker(ctx), settings, {}).started()

    @classmethod
    def resume(
        cls, ctx: ControllerContext, settings: ScaledBaselineSettings
    ) -> ScaledBaselineController:
        """Continue a check after a crash (a running trial is restarted or accepted)."""
        state, tracker = cls.saved_tracker(ctx)
        ctl = cls(ctx, tracker, settings, state)
        return ctl.resumed(ctl.recover())

    @property
    def key(self) -> str:
        """The tracker key of the one trial."""
        return f"{SCALED_BASELINE_JOB}/1"

    def is_finished(self) -> bool:
        """True once the latency is known, or known to be unavailable."""
        return self.phase == ScaledBaselinePhase.DONE

    def step(self) -> None:
        """Poll → decide → act → persist (:meth:`advance`)."""
        if not self.is_finished():
            self.advance()

    def announce(self, record: TrialRecord) -> None:
        """Nothing: the one trial's end is told with its latency (:meth:`decide`)."""

    def decide(self) -> None:
        """Plan the one trial; once it ended, read its latency."""
        if self.key not in self.tracker.records:
            self.tracker.plan(
                SCALED_BASELINE_JOB,
                1,
                self.settings.baseline_architecture,
                {**self.ctx.baseline_args, **self.settings.proxy_trainer_args},
                target_pct=LATENCY_ONLY_PCT,
            )
        record = self.tracker.records[self.key]
        if record.state in (TrialRecordState.SUCCEEDED, TrialRecordState.FAILED):
            self._finish(record)

    def _finish(self, record: TrialRecord) -> None:
        metrics = self.tracker.progress(self.key).metrics
        result = ScaledBaselineResult(
            trial_dir=record.trial_dir,
            state=record.state,
            proxy_task_name=self.settings.proxy_task_name,
            trainer_args={**self.ctx.baseline_args, **self.settings.proxy_trainer_args},
            accuracy=_last_accuracy(metrics),
            latency=None,
            error=None,
        )
        if record.state == TrialRecordState.FAILED:
            failure = f"the scaled baseline failed ({record.cause}): {record.message}"
            self._done(dataclasses.replace(result, error=failure))
            return
        latency, error = self._latency(record.trial_dir, metrics)
        if latency is None and error is None:
            return  # waiting for a latency worker
        self._done(dataclasses.replace(result, latency=latency, error=error))

    def _latency(self, trial_dir: str, metrics: Any) -> tuple[float | None, str | None]:
        s = self.settings
        if s.latency_source == "none":
            return None, "model selection measured no latency (--latency-source none)"
        if s.latency_metric_id:
            value = read_final_metrics(trial_dir).get(s.latency_metric_id)
            if value is not None:
                return value, None
        if s.latency_source == "worker":
            return self._worker_latency(trial_dir)
        if metrics is not None and metrics.has_latency:
            return float(metrics.latency), None
        return None, (
            "the scaled baseline reported no latency: the trainer must call "
            "update_trial_training_latency_metric (or save the --latency-metric-id metric)"
        )

    def _worker_latency(self, trial_dir: str) -> tuple[float | None, str | None]:
        from proxytask.controllers.latency import read_latency, request_latency

        now = self.ctx.clock.now()
        result = read_latency(trial_dir)
        if result is not None:
            if result.latency is None:
                return None, f"the latency worker could not measure it: {result.error}"
            return result.latency, None
        if self.latency_wait_started is None:
            request_latency(trial_dir, now)
            self.latency_wait_started = now
            self.ctx.display.message(
                "waiting for a latency worker: run `proxytask latency-worker --controller-dir "
                f"{self.ctx.controller_dir} --latency-command ...`"
            )
            return None, None
        if now - self.latency_wait_started > self.settings.latency_timeout_secs:
            return None, (
                f"no latency worker measured the scaled baseline within "
                f"{self.settings.latency_timeout_secs:g} s"
            )
        return None, None

    def _done(self, result: ScaledBaselineResult) -> None:
        self.result = result
        self.phase = ScaledBaselinePhase.DONE
        self.events.append(self.ctx.clock.now(), "scaled_baseline_done", latency=result.latency)
        self.ctx.display.message(
            f"  scaled baseline under {self.settings.proxy_task_name}: latency "
            f"{fmt_number(result.latency)}" + (f" ({result.error})" if result.error else "")
        )

    def summary(self) -> list[str]:
        """The answer in lines for the terminal."""
        if self.result is None:
            return ["final checks in progress"]
        line = (
            f"baseline under {self.settings.proxy_task_name}: latency "
            f"{fmt_number(self.result.latency)}"
        )
        return [line] + ([f"problem: {self.result.error}"] if self.result.error else [])

    def state_json(self) -> dict[str, Any]:
        """The content of ``FINAL_CHECKS_STATE.json``."""
        return {
            "phase": self.phase.value,
            "proxy_task_name": self.settings.proxy_task_name,
            "baseline_architecture": dict(self.settings.baseline_architecture),
            "result": None if self.result is None else self.result.to_json(),
            "latency_wait_started": self.latency_wait_started,
            "trials": [r.to_dict() for r in self.tracker.records.values()],
        }

    def snapshot(self) -> ProgressSnapshot:
        """The live display: the one trial."""
        keys = list(self.tracker.records)
        return ProgressSnapshot(
            title=f"final checks — baseline under {self.settings.proxy_task_name}",
            rows=progress_rows(self.tracker, keys),
            elapsed_secs=self.ctx.clock.now() - self.started_at,
        )


# ---- the final checks of `proxytask run`: pure functions with frozen results ----------------


@dataclasses.dataclass(frozen=True)
class ScaledBaselinePlan:
    """What to measure under the recommended proxy task, or why nothing is measured.

    Both None: the proxy task does not scale the model, so there is nothing to measure.
    """

    settings: ScaledBaselineSettings | None
    skipped: str | None = None


def scaling_args(search: SearchController, model_scale_args: Sequence[str]) -> list[str]:
    """The model-scaling trainer flags the recommended proxy task sets ([] for none)."""
    best = search.best_proxy_task_name
    if not best or best not in search.configs:
        return []
    return sorted(set(model_scale_args) & set(search.configs[best].trainer_args))


def scaled_baseline_plan(
    search: SearchController,
    f_values: Mapping[str, Any],
    m_values: Mapping[str, Any],
    baseline_architecture: Mapping[str, Any] | None,
) -> ScaledBaselinePlan:
    """What to measure under the proxy task (``f_values``: the final-checks options,
    ``m_values``: model selection's, ``baseline_architecture``: its resolved baseline)."""
    from proxytask.controllers.search import config_args

    if not scaling_args(search, f_values["model_scale_args"]):
        return ScaledBaselinePlan(None)  # the proxy does not scale the model
    if m_values["latency_source"] == "none":
        return ScaledBaselinePlan(
            None, "model selection measured no latency (latency-source: none)"
        )
    if not f_values["measure_scaled_baseline"]:
        return ScaledBaselinePlan(None, "final-checks.measure-scaled-baseline is false")
    if baseline_architecture is None:
        return ScaledBaselinePlan(
            None,
            "no model-selection.baseline-architecture was given, so the baseline could not be "
            "measured",
        )
    best = search.best_proxy_task_name
    settings = ScaledBaselineSettings(
        proxy_task_name=best,
        baseline_architecture=baseline_architecture,
        proxy_trainer_args=config_args(search.configs[best]),
        latency_source=m_values["latency_source"],
        latency_metric_id=m_values["latency_metric_id"] or None,
        latency_timeout_secs=m_values["latency_timeout_secs"],
    )
    return ScaledBaselinePlan(settings)


class LatencyMethod(enum.Enum):
    """How the latency ratio of the proxy's models to the full ones was found."""

    MEASURED = "measured"
    ESTIMATED = "estimated_from_reference_models"
    UNAVAILABLE = "unavailable"


@dataclasses.dataclass(frozen=True)
class LatencyCheck:
    """The latency part of the final checks for a model-scaling proxy task.

    ``to_dict`` gives the ``latency_constraint`` entry of ``RECOMMENDATION.json``: the
    measured fields only when ``method`` is measured, ``problem`` only when it is not.
    """

    scaled_by: tuple[str, ...]
    latency_constraint: float | None
    method: LatencyMethod
    proxy_latency_constraint: float | None
    advice: str
    problem: str | None = None
    latency_ratio_scaled_to_full: float | None = None
    baseline_latency_full: float | None = None
    baseline_latency_scaled: float | None = None
    scaled_baseline_trial_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON entry, keys in the order the file has always had them."""
        out: dict[str, Any] = {
            "scaled_by": list(self.scaled_by),
            "latency_constraint": self.latency_constraint,
            "method": self.method.value,
        }
        if self.method is LatencyMethod.MEASURED:
            out.update(
                baseline_latency_full=self.baseline_latency_full,
                baseline_latency_scaled=self.baseline_latency_scaled,
                scaled_baseline_trial_dir=self.scaled_baseline_trial_dir,
                latency_ratio_scaled_to_full=self.latency_ratio_scaled_to_full,
            )
        else:
            out["problem"] = self.problem
            if self.method is LatencyMethod.ESTIMATED:
                out["latency_ratio_scaled_to_full"] = self.latency_ratio_scaled_to_full
        out.update(proxy_latency_constraint=self.proxy_latency_constraint, advice=self.advice)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyCheck:
        """Parse :meth:`to_dict`'s form (the fields it leaves out take their defaults)."""
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        scaled_by, method = tuple(data["scaled_by"]), LatencyMethod(data["method"])
        return cls(**{**values, "scaled_by": scaled_by, "method": method})


def _advice(scaled_by: Sequence[str], what: str, ratio: float, target: float | None) -> str:
    if target is None:
        advice = f"a latency target T for the full model becomes {ratio:.3g}·T in the search"
    else:
        advice = (
            f"use the latency constraint {target * ratio:.4g} in the search instead of {target:.4g}"
        )
    return f"the proxy scales the model ({', '.join(scaled_by)}): {what}, so {advice}"


def _measured_check(
    scaled_by: tuple[str, ...],
    target: float | None,
    best: str,
    full: float,
    measured: float,
    trial_dir: str | None,
) -> LatencyCheck:
    numbers = stricter_constraint(target, full, measured)
    ratio = numbers["ratio_scaled_to_full"]
    what = f"the baseline measures {measured:.4g} under {best} and {full:.4g} fully trained"
    return LatencyCheck(
        scaled_by,
        target,
        LatencyMethod.MEASURED,
        numbers["proxy_latency_constraint"],
        _advice(scaled_by, what, ratio, target),
        latency_ratio_scaled_to_full=ratio,
        baseline_latency_full=full,
        baseline_latency_scaled=measured,
        scaled_baseline_trial_dir=trial_dir,
    )


def _estimated_check(
    scaled_by: tuple[str, ...], target: float | None, ratios: list[float], problem: str | None
) -> LatencyCheck:
    if not ratios:
        return LatencyCheck(
            scaled_by,
            target,
            LatencyMethod.UNAVAILABLE,
            None,
            f"the proxy scales the model ({', '.join(scaled_by)}) but no latency could be "
            f"compared ({problem or 'no latencies reported'}): measure the scaled baseline "
            "yourself and tighten the latency target by the same ratio",
            problem=problem,
        )
    ratio = statistics.median(ratios)
    what = (
        f"its models measure {ratio:.3g}× the full models' latency (median over the "
        f"reference models; estimated because {problem or 'the baseline was not measured'})"
    )
    return LatencyCheck(
        scaled_by,
        target,
        LatencyMethod.ESTIMATED,
        None if target is None else target * ratio,
        _advice(scaled_by, what, ratio, target),
        problem=problem,
        latency_ratio_scaled_to_full=ratio,
    )


def latency_check(
    search: SearchController,
    f_values: Mapping[str, Any],
    scaled: ScaledBaselineResult | None,
    skipped: str | None,
    full_baseline_latency: float | None,
) -> LatencyCheck | None:
    """The latency part of the final checks for a model-scaling proxy task (None otherwise).

    With the scaled baseline measured (``scaled``: the scaled-baseline controller's result)
    and the full one known, the ratio is measured; otherwise it is estimated from the
    reference models' latencies under the proxy and fully trained.
    """
    scaled_by = tuple(scaling_args(search, f_values["model_scale_args"]))
    if not scaled_by:
        return None
    target = f_values["latency_constraint"]
    best = search.best_proxy_task_name
    measured = scaled.latency if scaled else None
    if measured is not None and full_baseline_latency:
        trial_dir = scaled.trial_dir if scaled else None
        return _measured_check(scaled_by, target, best, full_baseline_latency, measured, trial_dir)
    problem = skipped or (scaled.error if scaled else None)
    if measured is not None and not full_baseline_latency:
        problem = "model selection's baseline has no latency to compare with"
    ratios = [
        p / f
        for p, f in zip(search.latencies(best), search.references.latencies, strict=False)
        if p is not None and f is not None and f > 0
    ]
    return _estimated_check(scaled_by, target, ratios, problem)


@dataclasses.dataclass(frozen=True)
class VarianceJudgement:
    """A finished variance measurement judged under the current thresholds.

    ``result`` is its saved result with the verdicts and thresholds replaced ({} when the
    measurement wrote none); ``lines`` say the two verdicts for the terminal.
    """

    result: Mapping[str, Any]
    lines: tuple[str, ...] = ()

    @property
    def good(self) -> bool:
        """True when there is no result, or both verdicts are good."""
        return not self.result or bool(
            self.result.get("variance_good") and self.result.get("smoothness_good")
        )


def judge_variance(
    result: Mapping[str, Any], max_variance: float, max_smoothness: float
) -> VarianceJudgement:
    """The variance verdict under these thresholds (a finished measurement is judged again
    when the workflow file's thresholds changed, without training again)."""
    from proxytask.controllers.variance import judge

    if not result:
        return VarianceJudgement({})
    var, smooth = result.get("variance_value"), result.get("smoothness_value")
    variance_good, smoothness_good = judge(var, smooth, max_variance, max_smoothness)
    judged = {
        **result,
        "variance_good": variance_good,
        "smoothness_good": smoothness_good,
        "thresholds": {"max_variance": max_variance, "max_smoothness": max_smoothness},
    }
    lines = tuple(
        f"  {what} {fmt_number(value)} (threshold {limit:g}): {'good' if good else 'NOT GOOD'}"
        for what, value, limit, good in (
            ("variance", var, max_variance, variance_good),
            ("smoothness", smooth, max_smoothness, smoothness_good),
        )
    )
    return VarianceJudgement(judged, lines)


@dataclasses.dataclass(frozen=True)
class FailureRate:
    """How many of a controller's trials failed, and of which causes."""

    trials: int
    failed: int
    causes: Mapping[str, int]

    @property
    def rate(self) -> float:
        """The failed fraction (0 with no trials)."""
        return self.failed / self.trials if self.trials else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The ``failure_rates`` entry of ``RECOMMENDATION.json``."""
        return {
            "trials": self.trials,
            "failed": self.failed,
            "rate": self.rate,
            "causes": dict(self.causes),
        }


def failure_rate(controller_dir: str, kind: str) -> FailureRate:
    """The failed trials of the controller of ``kind`` in ``controller_dir`` (its state file)."""
    state_file = layout.ControllerPaths(controller_dir).state_file(kind)
    data = (storage.read_json(state_file) if state_file else None) or {}
    trials = data.get("trials", [])
    causes: dict[str, int] = {}
    for t in trials:
        if t.get("state") == "failed":
            cause = t.get("cause") or "crash"
            causes[cause] = causes.get(cause, 0) + 1
    return FailureRate(len(trials), sum(causes.values()), causes)


#: The variance result's fields the final checks repeat.
VARIANCE_FIELDS = (
    "variance_value",
    "variance_good",
    "smoothness_value",
    "smoothness_good",
    "std",
    "std_confidence_interval",
)


@dataclasses.dataclass(frozen=True)
class FinalChecks:
    """The final checks of the workflow and its recommendation: ``RECOMMENDATION.json``."""

    recommendation: Recommendation
    variance: Mapping[str, Any] | None
    failure_rates: Mapping[str, FailureRate | None]
    reward_range: RewardRangeCheck | None
    latency_constraint: LatencyCheck | None
    stage_dirs: Mapping[str, str | None]
    reference_set_size: ReferenceSizeAdvice | None = None

    def to_dict(self) -> dict[str, Any]:
        """The file's content (version 1)."""
        reward = self.reward_range
        return {
            "version": 1,
            "recommendation": self.recommendation.to_json(),
            "variance": None if self.variance is None else dict(self.variance),
            "failure_rates": {
                k: None if v is None else v.to_dict() for k, v in self.failure_rates.items()
            },
            "reward_range": None
            if reward is None
            else {
                "minimum": reward.minimum,
                "maximum": reward.maximum,
                "ok": reward.ok,
                "scale_factor": reward.scale_factor,
                "message": reward.message,
            },
            "latency_constraint": None
            if self.latency_constraint is None
            else self.latency_constraint.to_dict(),
            "stage_dirs": dict(self.stage_dirs),
            "reference_set_size": None
            if self.reference_set_size is None
            else self.reference_set_size.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FinalChecks:
        """Parse :meth:`to_dict`'s form."""
        from proxytask.controllers.search_state import Recommendation
        from proxytask.stats.reference_size import ReferenceSizeAdvice

        reward, latency = data["reward_range"], data["latency_constraint"]
        size = data.get("reference_set_size")  # files written before it read with none
        return cls(
            recommendation=Recommendation.from_json(data["recommendation"]),
            variance=data["variance"],
            failure_rates={
                k: None if v is None else FailureRate(v["trials"], v["failed"], v["causes"])
                for k, v in data["failure_rates"].items()
            },
            reward_range=None if reward is None else RewardRangeCheck(**reward),
            latency_constraint=None if latency is None else LatencyCheck.from_dict(latency),
            stage_dirs=data["stage_dirs"],
            reference_set_size=None if size is None else ReferenceSizeAdvice.from_dict(size),
        )

    def lines(self) -> list[str]:
        """The checks for the terminal, one line each (under ``== final checks``)."""
        out = [
            f"  {name}: {rate.failed} of {rate.trials} trials failed {dict(rate.causes)}"
            for name, rate in self.failure_rates.items()
            if rate is not None
        ]
        if self.reward_range:
            out.append(f"  rewards: {self.reward_range.message}")
        if self.latency_constraint:
            out.append(f"  latency: {self.latency_constraint.advice}")
        verdict = self.recommendation.zero_training_comparison
        if verdict and verdict.message:
            out.append(f"  zero-training baselines: {verdict.message}")
        holdout = self.recommendation.holdout
        if holdout and holdout.summary.tau is not None:
            out.append(
                f"  held-out check: Kendall tau-b {holdout.summary.tau:.3f} on "
                f"{holdout.summary.n} models the search never chose by"
            )
        if self.reference_set_size:
            out.extend(self.reference_set_size.lines(indent="  "))
        return out


#: Workflow stage → the kind of controller that runs it.
STAGE_KINDS = {
    "variance": layout.KIND_VARIANCE,
    "model_selection": layout.KIND_MODEL_SELECTION,
    "search": layout.KIND_SEARCH,
    "final_checks": layout.KIND_FINAL_CHECKS,
}


def reference_set_size(
    search: SearchController, seed_noise_std: float | None
) -> ReferenceSizeAdvice | None:
    """How many reference models the search's confident rule needs at its threshold and
    confidence (:mod:`proxytask.stats.reference_size`), for the number of evaluations the
    recommended proxy makes over its budget (the default 20 without a recommendation); None
    without a seed noise or a correlation threshold, or when the reference models cannot give
    a ceiling."""
    from proxytask.stats.reference_size import DEFAULT_LOOKS, reference_size_advice

    threshold = search.settings.desired_accuracy_correlation
    if seed_noise_std is None or threshold is None:
        return None
    best = search.best_proxy_task_name
    looks = search.evaluations_in_budget(best) if best else None
    try:
        return reference_size_advice(
            search.references.accuracies,
            seed_noise_std,
            threshold,
            search.settings.confidence,
            looks or DEFAULT_LOOKS,
        )
    except UsageError:
        return None


def final_checks(
    stage_dirs: Mapping[str, str | None],
    search: SearchController,
    f_values: Mapping[str, Any],
    plan: ScaledBaselinePlan,
    scaled: ScaledBaselineResult | None = None,
    variance: Mapping[str, Any] | None = None,
    seed_noise_std: float | None = None,
) -> FinalChecks:
    """The final checks of the workflow (rewards, failures, latency, reference-set size) and
    the recommendation.

    ``stage_dirs``: each stage's controller dir; ``scaled``: the scaled baseline's result;
    ``variance``: the judged variance result (None without one); ``seed_noise_std``: the seed
    noise for the reference-set size (default: the variance result's sample std).
    """
    from proxytask.stats.reference_size import seed_noise_of_variance_result

    rec = search.recommended()
    failures: dict[str, FailureRate | None] = {
        stage: failure_rate(cdir, STAGE_KINDS[stage]) if cdir else None
        for stage, cdir in (
            ("variance", stage_dirs.get("variance")),
            ("model_selection", stage_dirs["model_selection"]),
            ("search", stage_dirs["search"]),
        )
    }
    if stage_dirs.get("final_checks"):
        failures["final_checks"] = failure_rate(
            str(stage_dirs["final_checks"]), layout.KIND_FINAL_CHECKS
        )
    reward, latency = None, None
    if rec.found:
        scores = search.accuracies_at_step(rec.best_proxy_task_name, rec.final_training_step)
        mode = search.settings.metric_mode  # min: a loss is no reward, the check says so
        reward = check_reward_range([a for a in scores if a is not None], mode)
        references = storage.read_json(
            layout.ControllerPaths(str(stage_dirs["model_selection"])).file(layout.REFERENCE_MODELS)
        )
        baseline = (references or {}).get("baseline") or {}
        latency = latency_check(search, f_values, scaled, plan.skipped, baseline.get("latency"))
    return FinalChecks(
        recommendation=rec,
        variance=None if variance is None else {k: variance.get(k) for k in VARIANCE_FIELDS},
        failure_rates=failures,
        reward_range=reward,
        latency_constraint=latency,
        stage_dirs=dict(stage_dirs),
        reference_set_size=reference_set_size(
            search,
            seed_noise_of_variance_result(variance) if seed_noise_std is None else seed_noise_std,
        ),
    )


def read_final_checks(workflow_dir: str) -> FinalChecks | None:
    """The final checks a finished workflow wrote in ``RECOMMENDATION.json``, or None."""
    data = storage.read_json(
        layout.ControllerPaths(workflow_dir).file(layout.WORKFLOW_RECOMMENDATION)
    )
    return FinalChecks.from_dict(data) if isinstance(data, dict) else None


def count_plots(controller_dir: str) -> int:
    """The PNG figures in a controller dir and its job dirs (model selection plots per round)."""
    paths = layout.ControllerPaths(controller_dir)
    dirs = [controller_dir] + [paths.job(job).root for job in storage.listdir(paths.jobs)]
    return sum(1 for d in dirs for name in storage.listdir(d) if name.endswith(layout.PLOT_SUFFIX))
