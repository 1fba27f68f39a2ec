"""Variance measurement: find a workable model, train copies of it, judge repeatability.

1. Find a workable model: sample an architecture and train it to 1 %; a trial that fails
   (crash, OOM, NaN/inf, timeout, no report) is replaced by a new sample, up to 10 tries.
2. Train ``num_copies`` copies of it from scratch to 100 %, as slots allow.
3. Variance = coefficient of variation of the final accuracies (population std / mean);
   smoothness = the reference tools' 30-point measure, averaged over the copies. Both come
   with proxytask's extra figures: the plain std with a confidence interval and the per-step
   spread of the curves (0.4 is a very loose bar for the CV).

Writes ``measurement_state.json`` after every change, ``variance_and_smoothness.json`` and
``variance_curves.png`` at the end. A resumed controller continues where the dead one was.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from typing import Any

from proxytask.controllers.base import (
    ControllerContext,
    SpaceController,
    describe_causes,
    fmt_number,
    progress_rows,
)
from proxytask.controllers.state import TrialRecord, TrialRecordState, json_value
from proxytask.controllers.tracker import TrialTracker
from proxytask.core import layout, storage
from proxytask.core.errors import UsageError
from proxytask.core.metric import MetricMode
from proxytask.core.space import SearchSpace
from proxytask.executors.base import FailureCause
from proxytask.executors.causes import ADVICE
from proxytask.executors.command import Continuation
from proxytask.report import background
from proxytask.report.progress import ProgressSnapshot
from proxytask.trainer.contract import TrialTrainingMetrics

__all__ = [
    "MEASUREMENT_STATE",
    "RESULT_FILE",
    "FailedCopy",
    "StepSpread",
    "VarianceController",
    "VariancePhase",
    "VarianceResult",
    "VarianceSettings",
    "VarianceState",
    "judge",
    "read_variance_result",
]

MEASUREMENT_STATE = layout.MEASUREMENT_STATE
RESULT_FILE = layout.VARIANCE_RESULT
PLOT_FILE = layout.VARIANCE_PLOT
WORKABLE_JOB = layout.WORKABLE_JOB
COPIES_JOB = layout.COPIES_JOB

ADVICE_BAD_CURVES = (
    "Use a cosine learning-rate decay to ~0 over the reduced step budget of the proxy task.",
    "Then smooth the weights: EMA (TensorFlow) or SWA (PyTorch; proxytask.torch.WeightAverager "
    "does both).",
    "Heavy augmentation is a sign of too little data for the proxy: prefer an augmentation "
    "search over fixed heavy augmentation.",
)


class VariancePhase(str, enum.Enum):
    """Where a measurement stands (the ``phase`` of its state file)."""

    FIND_WORKABLE = "find_workable"
    COPIES = "copies"
    DONE = "done"  # variance_and_smoothness.json is written
    FAILED = "failed"  # no workable model, or too few copies finished: see ``error``

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass(frozen=True)
class VarianceSettings:
    """The settings of one measurement (SPEC defaults)."""

    num_copies: int = 5
    min_finished_copies: int = 3
    max_workable_attempts: int = 10
    workable_pct: float = 1.0
    max_variance: float = 0.4
    max_smoothness: float = 10.0
    confidence: float = 0.95
    seed: int = 0
    copy_seed_flag: str | None = None  # vary this trainer flag per copy (1..N), e.g. "seed"
    metric_mode: MetricMode = MetricMode.MAX  # min: a loss, judged by its rising slopes
    # measure this architecture's copies instead of the first sampled one that trains
    architecture: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.num_copies < 2:
            raise UsageError(f"--num-copies must be >= 2, got {self.num_copies}.")
        if not 1 <= self.min_finished_copies <= self.num_copies:
            raise UsageError(
                f"the minimum of finished copies must be between 1 and --num-copies "
                f"({self.num_copies}), got {self.min_finished_copies}."
            )
        if not 0 < self.workable_pct <= 100:
            raise UsageError(f"workable pct must be in (0, 100], got {self.workable_pct}.")
        if not 0 < self.confidence < 1:
            raise UsageError(f"the confidence level must be in (0, 1), got {self.confidence}.")
        flag = self.copy_seed_flag
        if flag is not None and (not flag or flag.startswith("-") or "=" in flag or " " in flag):
            raise UsageError(
                f"--copy-seed-flag must be a trainer flag name such as 'seed' (no dashes, no "
                f"'=', no spaces), got {flag!r}."
            )


@dataclasses.dataclass(frozen=True)
class VarianceState:
    """Where ``measurement_state.json`` says a measurement stands (without its trials)."""

    phase: VariancePhase = VariancePhase.FIND_WORKABLE
    error: str | None = None
    workable_trial: str | None = None  # the tracker key of the workable model, once found

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VarianceState:
        """Parse the state file's JSON (``{}``: a new measurement)."""
        return cls(
            VariancePhase(data.get("phase", VariancePhase.FIND_WORKABLE)),
            data.get("error"),
            data.get("workable_trial"),
        )


def judge(
    variance: float | None, smoothness: float | None, max_variance: float, max_smoothness: float
) -> tuple[bool, bool]:
    """The two verdicts: (variance good, smoothness good); a missing value is not good."""
    return (
        variance is not None and variance <= max_variance,
        smoothness is not None and smoothness <= max_smoothness,
    )


def _finished(record: TrialRecord) -> bool:
    return record.state == TrialRecordState.SUCCEEDED


# ---- the result: variance_and_smoothness.json --------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FailedCopy:
    """A copy that did not finish, as the result lists it."""

    trial_dir: str
    cause: str | None
    message: str


@dataclasses.dataclass(frozen=True)
class StepSpread:
    """The spread of the copies' accuracies at one pct (a row of ``per_step_spread``)."""

    pct: float
    n: int  # how many copies reached this pct
    mean: float
    std: float  # population std
    min: float
    max: float


@dataclasses.dataclass(frozen=True)
class VarianceResult:
    """The answer of a measurement: the content of ``variance_and_smoothness.json``.

    Field names are the JSON keys, except ``max_variance``/``max_smoothness`` (the JSON's
    ``thresholds``). :meth:`to_json` and :meth:`from_json` are the one codec; readers of the
    file may keep reading it as plain JSON (:func:`read_variance_result` gives this object).
    """

    variance_value: float | None  # the CV of the final accuracies
    variance_info: str
    smoothness_value: float | None
    smoothness_info: str
    variance_good: bool
    smoothness_good: bool
    max_variance: float
    max_smoothness: float
    final_accuracies: tuple[float, ...]
    mean_accuracy: float | None
    std: float | None
    sample_std: float | None
    std_confidence_interval: tuple[float | None, float | None]
    confidence: float
    smoothness_per_copy: tuple[float | None, ...]
    per_step_spread: tuple[StepSpread, ...]  # one row per pct (columns in the JSON)
    max_per_step_std: float | None
    num_copies: int
    num_copies_finished: int
    finished_model_dirs: tuple[str, ...]
    failed_copies: tuple[FailedCopy, ...]
    workable_model_dir: str
    architecture: Mapping[str, Any] | None
    advice: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The JSON form, key for key as the file has always held it."""
        rows = self.per_step_spread
        return {
            "variance_value": self.variance_value,
            "variance_info": self.variance_info,
            "smoothness_value": self.smoothness_value,
            "smoothness_info": self.smoothness_info,
            "variance_good": self.variance_good,
            "smoothness_good": self.smoothness_good,
            "thresholds": {
                "max_variance": self.max_variance,
                "max_smoothness": self.max_smoothness,
            },
            "final_accuracies": list(self.final_accuracies),
            "mean_accuracy": self.mean_accuracy,
            "std": self.std,
            "sample_std": self.sample_std,
            "std_confidence_interval": list(self.std_confidence_interval),
            "confidence": self.confidence,
            "smoothness_per_copy": list(self.smoothness_per_copy),
            "per_step_spread": {k: [getattr(r, k) for r in rows] for k in _SPREAD_KEYS},
            "max_per_step_std": self.max_per_step_std,
            "num_copies": self.num_copies,
            "num_copies_finished": self.num_copies_finished,
            "finished_model_dirs": list(self.finished_model_dirs),
            "failed_copies": json_value(self.failed_copies),
            "workable_model_dir": self.workable_model_dir,
            "architecture": dict(self.architecture) if self.architecture is not None else None,
            "advice": list(self.advice),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VarianceResult:
        """Parse the JSON form (as :meth:`to_json` writes it)."""
        spread = data["per_step_spread"]
        lo, hi = data["std_confidence_interval"]
        return cls(
            **{k: data[k] for k in _PLAIN_KEYS},
            max_variance=data["thresholds"]["max_variance"],
            max_smoothness=data["thresholds"]["max_smoothness"],
            final_accuracies=tuple(data["final_accuracies"]),
            std_confidence_interval=(lo, hi),
            smoothness_per_copy=tuple(data["smoothness_per_copy"]),
            per_step_spread=tuple(
                StepSpread(*row) for row in zip(*(spread[k] for k in _SPREAD_KEYS), strict=True)
            ),
            finished_model_dirs=tuple(data["finished_model_dirs"]),
            failed_copies=tuple(FailedCopy(**f) for f in data["failed_copies"]),
            architecture=data["architecture"],
            advice=tuple(data["advice"]),
        )


_PLAIN_KEYS = (
    "variance_value",
    "variance_info",
    "smoothness_value",
    "smoothness_info",
    "variance_good",
    "smoothness_good",
    "mean_accuracy",
    "std",
    "sample_std",
    "confidence",
    "max_per_step_std",
    "num_copies",
    "num_copies_finished",
    "workable_model_dir",
)
_SPREAD_KEYS = ("pct", "n", "mean", "std", "min", "max")


def read_variance_result(controller_dir: str) -> VarianceResult | None:
    """The result a finished measurement wrote in ``controller_dir``, or None."""
    data = storage.read_json(storage.join(controller_dir, RESULT_FILE))
    return VarianceResult.from_json(data) if isinstance(data, dict) else None


def _verdict_info(
    what: str, value: float | None, reason: str | None, good: bool, limit: float
) -> str:
    if value is None:
        return f"Model {what} could not be computed: {reason}."
    if good:
        return f"Model {what} is good."
    return f"Model {what} is not good, measured:{value} > threshold:{limit}."


def _advice(curves_good: bool, causes: Mapping[str, int]) -> tuple[str, ...]:
    advice: list[str] = [] if curves_good else list(ADVICE_BAD_CURVES)
    for cause in causes:
        try:
            advice.append(f"{cause}: {ADVICE[FailureCause(cause)]}")
        except ValueError:
            pass
    return tuple(advice)


def compute_result(
    copies: Sequence[TrialRecord],
    curves: Sequence[TrialTrainingMetrics],
    settings: VarianceSettings,
    causes: Mapping[str, int],
    workable: TrialRecord | None,
) -> VarianceResult:
    """The measurement's answer from the copies and the curves of those that finished.

    ``curves`` holds the metrics of the finished copies, in order; ``causes`` the failure
    counts of the copies that did not finish.
    """
    from proxytask.stats import variance as stats

    finished = [r for r in copies if _finished(r)]
    points = [m.training_accuracy_over_steps for m in curves]
    finals = [p[-1].accuracy for p in points]
    variation = stats.coefficient_of_variation(finals, confidence=settings.confidence)
    xy = [([p.training_step_pct for p in pts], [p.accuracy for p in pts]) for pts in points]
    smooth = stats.mean_smoothness(xy, settings.metric_mode)
    spread = stats.curve_spread(xy)
    s = settings
    variance_ok, smooth_ok = judge(variation.cv, smooth.value, s.max_variance, s.max_smoothness)
    return VarianceResult(
        variance_value=variation.cv,
        variance_info=_verdict_info(
            "variance", variation.cv, variation.reason, variance_ok, s.max_variance
        ),
        smoothness_value=smooth.value,
        smoothness_info=_verdict_info(
            "smoothness", smooth.value, smooth.reason, smooth_ok, s.max_smoothness
        ),
        variance_good=bool(variance_ok),
        smoothness_good=bool(smooth_ok),
        max_variance=s.max_variance,
        max_smoothness=s.max_smoothness,
        final_accuracies=tuple(finals),
        mean_accuracy=variation.mean,
        std=variation.std,
        sample_std=variation.sample_std,
        std_confidence_interval=(variation.std_ci_low, variation.std_ci_high),
        confidence=variation.confidence,
        smoothness_per_copy=tuple(r.value for r in smooth.per_curve),
        per_step_spread=tuple(
            StepSpread(*row)
            for row in zip(
                spread.pcts, spread.n, spread.mean, spread.std, spread.min, spread.max, strict=True
            )
        ),
        max_per_step_std=spread.max_std,
        num_copies=len(copies),
        num_copies_finished=len(finished),
        finished_model_dirs=tuple(r.trial_dir for r in finished),
        failed_copies=tuple(
            FailedCopy(r.trial_dir, r.cause, r.message) for r in copies if not _finished(r)
        ),
        workable_model_dir=workable.trial_dir if workable else "",
        architecture=dict(workable.nas_params) if workable and workable.nas_params else None,
        advice=_advice(variance_ok and smooth_ok, causes),
    )


class VarianceController(SpaceController[VarianceSettings]):
    """The variance-measurement controller (see the module docstring).

    Example::

        ctl = VarianceController.create(ctx, space, VarianceSettings())
        ctl.run()
        print(ctl.result().variance_value)
    """

    draws_plots = True

    kind = layout.KIND_VARIANCE
    phase: VariancePhase
    state_file = MEASUREMENT_STATE
    resume_flag = "--previous-variance-dir"
    resume_what = "a variance measurement dir"

    def __init__(
        self,
        ctx: ControllerContext,
        tracker: TrialTracker,
        space: SearchSpace,
        settings: VarianceSettings,
        state: Mapping[str, Any],
    ) -> None:
        super().__init__(ctx, tracker, space, settings, state)
        saved = VarianceState.from_json(state)
        self.phase = saved.phase
        self.workable_key: str | None = saved.workable_trial
        self._result: VarianceResult | None = None

    # ---- the loop -----------------------------------------------------------------------------

    def announce(self, record: TrialRecord) -> None:
        """Show an ended trial: a failure with its cause, a success with its accuracy."""
        super().announce(record)
        if record.state == TrialRecordState.SUCCEEDED:
            acc = self.tracker.progress(record.key).last_accuracy
            acc_text = "-" if acc is None else f"{acc:.4f}"
            self.ctx.display.message(f"  {record.key} finished: accuracy {acc_text}")

    def decide(self) -> None:
        """Find a workable model, then plan and judge the copies."""
        if self.phase == VariancePhase.FIND_WORKABLE:
            self._decide_workable()
        if self.phase == VariancePhase.COPIES:
            self._decide_copies()

    def _attempts(self) -> list[TrialRecord]:
        return [r for r in self.tracker.records.values() if r.job == WORKABLE_JOB]

    def _copies(self) -> list[TrialRecord]:
        return [r for r in self.tracker.records.values() if r.job == COPIES_JOB]

    def _decide_workable(self) -> None:
        attempts = self._attempts()
        if any(not r.is_terminal for r in attempts):
            return
        good = [r for r in attempts if _finished(r)]
        if good:
            self.workable_key = good[0].key
            self.phase = VariancePhase.COPIES
            self.ctx.display.message(
                f"workable model found: {good[0].key} ({json_arch(good[0].nas_params)}); "
                f"training {self.settings.num_copies} copies to 100 %"
            )
            self.events.append(self.ctx.clock.now(), "workable_found", trial=good[0].key)
            self._plan_copies(good[0])
            return
        if attempts and self.settings.architecture is not None:
            self._fail(
                "the given architecture did not train to "
                f"{self.settings.workable_pct:g} %: "
                + describe_causes(self.tracker.failure_causes([r.key for r in attempts]))
                + "; fix the trainer or name another architecture (or none, to sample)"
            )
            return
        if len(attempts) >= self.settings.max_workable_attempts:
            self._fail(
                f"no workable model after {len(attempts)} tries: "
                + describe_causes(self.tracker.failure_causes([r.key for r in attempts]))
            )
            return
        number = len(attempts) + 1
        arch = (
            dict(self.settings.architecture)
            if self.settings.architecture is not None
            else self.space.sample(self.settings.seed, number - 1)
        )
        self.tracker.plan(
            WORKABLE_JOB,
            number,
            arch,
            self.ctx.baseline_args,
            target_pct=self.settings.workable_pct,
        )
        if number == 1:
            which = "the given" if self.settings.architecture is not None else "a sampled"
            self.ctx.display.message(
                f"finding a workable model: training {which} architecture to "
                f"{self.settings.workable_pct:g} %"
            )

    def _plan_copies(self, workable: TrialRecord) -> None:
        job_dir = layout.job_dir(self.ctx.controller_dir, WORKABLE_JOB)
        for k in range(1, self.settings.num_copies + 1):
            args = dict(self.ctx.baseline_args)
            if self.settings.copy_seed_flag:
                args[self.settings.copy_seed_flag] = str(k)
            # as the reference: the architecture comes from the workable trial, no checkpoint
            self.tracker.plan(
                COPIES_JOB,
                k,
                None,
                args,
                continuation=Continuation(
                    job_dir, (str(workable.number),) * self.settings.num_copies, False
                ),
            )

    def _decide_copies(self) -> None:
        copies = self._copies()
        if not copies:
            assert self.workable_key is not None
            self._plan_copies(self.tracker.records[self.workable_key])
            return
        if not all(r.is_terminal for r in copies):
            return
        finished = [r for r in copies if _finished(r)]
        if len(finished) < self.settings.min_finished_copies:
            self._fail(
                f"only {len(finished)} of {len(copies)} copies finished (at least "
                f"{self.settings.min_finished_copies} are needed): "
                + describe_causes(self.tracker.failure_causes([r.key for r in copies]))
            )
            return
        workable = self.tracker.records[self.workable_key] if self.workable_key else None
        causes = self.tracker.failure_causes([r.key for r in copies])
        curves = [m for _, m in self._curves(finished)]
        result = compute_result(copies, curves, self.settings, causes, workable)
        self._result = result
        storage.write_json_atomic(
            storage.join(self.ctx.controller_dir, RESULT_FILE), result.to_json(), durable=True
        )
        self._render_plot(finished, result)
        self.phase = VariancePhase.DONE
        self.events.append(
            self.ctx.clock.now(),
            "measurement_done",
            variance=result.variance_value,
            smoothness=result.smoothness_value,
        )

    def _fail(self, message: str) -> None:
        self.phase = VariancePhase.FAILED
        self.error = message
        self.events.append(self.ctx.clock.now(), "measurement_failed", error=message)

    # ---- results ------------------------------------------------------------------------------

    def _curves(self, records: list[TrialRecord]) -> list[tuple[str, TrialTrainingMetrics]]:
        out = []
        for record in records:
            metrics = self.tracker.progress(record.key).metrics
            assert metrics is not None
            out.append((record.trial_dir, metrics))
        return out

    def _render_plot(self, finished: list[TrialRecord], result: VarianceResult) -> None:
        from proxytask.report.data import CurveSeries, variance_figure
        from proxytask.report.plots import render_variance_figure

        series = []
        for _k, (tdir, metrics) in enumerate(self._curves(finished), start=1):
            points = metrics.training_accuracy_over_steps
            last_step = points[-1].training_step + 1
            secs = metrics.training_time.total_training_time_in_secs
            # per-point time is not in the metrics file: attribute it in proportion to steps
            hours = [secs * (p.training_step + 1) / last_step / 3600.0 for p in points]
            series.append(
                CurveSeries(
                    label=f"copy {tdir.rstrip('/').split('/')[-1]}",
                    pcts=tuple(p.training_step_pct for p in points),
                    accuracies=tuple(p.accuracy for p in points),
                    training_hours=tuple(hours),
                )
            )
        fig = variance_figure(
            series,
            title="Variance measurement: copies of the workable model",
            cv=result.variance_value,
            smoothness=result.smoothness_value,
            metric_label=self.settings.metric_mode.label,
        )
        background.submit(
            render_variance_figure, fig, storage.join(self.ctx.controller_dir, PLOT_FILE)
        )

    def result(self) -> VarianceResult | None:
        """The answer (``variance_and_smoothness.json``) once done."""
        if self._result is None and self.phase == VariancePhase.DONE:
            self._result = read_variance_result(self.ctx.controller_dir)
        return self._result

    def summary(self) -> list[str]:
        """The verdict in lines for the terminal."""
        if self.phase == VariancePhase.FAILED:
            return [f"variance measurement failed: {self.error}"]
        result = self.result()
        if result is None:
            return [f"variance measurement in progress ({self.phase})"]
        lo, hi = result.std_confidence_interval
        noun = self.settings.metric_mode.noun
        lines = [
            f"variance (CV of final {noun}): {fmt_number(result.variance_value)}  "
            f"[{'good' if result.variance_good else 'NOT GOOD'}, threshold "
            f"{result.max_variance}]",
            f"smoothness: {fmt_number(result.smoothness_value)}  "
            f"[{'good' if result.smoothness_good else 'NOT GOOD'}, threshold "
            f"{result.max_smoothness}]",
            f"final {'accuracies' if noun == 'accuracy' else 'metrics'} of "
            f"{result.num_copies_finished} copies: "
            + ", ".join(f"{a:.4f}" for a in result.final_accuracies),
            f"mean {fmt_number(result.mean_accuracy)}, std {fmt_number(result.std)} "
            f"(sample std {int(result.confidence * 100)} % CI "
            f"[{fmt_number(lo)}, {fmt_number(hi)}]); "
            f"largest per-step std {fmt_number(result.max_per_step_std)}",
            "models whose accuracies differ by less than about twice that std cannot be ranked "
            "reliably by one training run.",
        ]
        lines.extend(f"advice: {a}" for a in result.advice)
        return lines

    # ---- persistence and display --------------------------------------------------------------

    def state_json(self) -> dict[str, Any]:
        """The content of ``measurement_state.json``."""
        copies = self._copies()
        workable = self.tracker.records.get(self.workable_key) if self.workable_key else None
        return {
            "workable_model_dir": workable.trial_dir if workable else "",
            "training_job_name": COPIES_JOB if copies else "",
            "finished_model_dirs": [r.trial_dir for r in copies if _finished(r)],
            "phase": self.phase.value,
            "workable_trial": self.workable_key,
            "error": self.error,
            "settings": dataclasses.asdict(self.settings),
            "trials": [r.to_dict() for r in self.tracker.records.values()],
        }

    def snapshot(self) -> ProgressSnapshot:
        """The live display: the current phase's trials, elapsed time and an ETA."""
        job = WORKABLE_JOB if self.phase == VariancePhase.FIND_WORKABLE else COPIES_JOB
        keys = [k for k, r in self.tracker.records.items() if r.job == job]
        rows = progress_rows(self.tracker, keys)
        now = self.ctx.clock.now()
        eta = None
        running = [r for r in rows if r.state == "running" and r.pct > 0]
        if job == COPIES_JOB and running:
            starts = [self.tracker.records[r.key].started_at or now for r in running]
            rates = [r.pct / max(now - s, 1e-9) for r, s in zip(running, starts, strict=True)]
            remaining = [(100.0 - r.pct) / rate for r, rate in zip(running, rates, strict=True)]
            queued = sum(1 for r in rows if r.state == "planned")
            eta = max(remaining) + queued * (100.0 / (sum(rates) / len(rates)))
        return ProgressSnapshot(
            title=f"variance measurement — {self.phase.value.replace('_', ' ')}",
            rows=rows,
            elapsed_secs=now - self.started_at,
            eta_secs=eta,
        )


def json_arch(arch: Mapping[str, Any] | None) -> str:
    """A short one-line rendering of an architecture."""
    import json

    text = json.dumps(dict(arch or {}), sort_keys=True, separators=(",", ":"))
    return text if len(text) <= 100 else text[:97] + "..."
