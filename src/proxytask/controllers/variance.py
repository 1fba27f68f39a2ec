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
from collections.abc import Mapping
from typing import Any

from proxytask.controllers.base import (
    Controller,
    ControllerContext,
    fmt_number,
    new_tracker,
    progress_rows,
    saved_tracker,
)
from proxytask.controllers.state import (
    TrialRecord,
    TrialRecordState,
)
from proxytask.controllers.tracker import TrialTracker
from proxytask.core import layout, storage
from proxytask.core.errors import ProxyTaskError, UsageError
from proxytask.core.space import SearchSpace
from proxytask.executors.base import FailureCause
from proxytask.executors.causes import ADVICE
from proxytask.executors.command import Continuation
from proxytask.report.progress import ProgressSnapshot
from proxytask.trainer.contract import TrialTrainingMetrics

__all__ = [
    "MEASUREMENT_STATE",
    "RESULT_FILE",
    "VarianceController",
    "VarianceFailed",
    "VarianceSettings",
    "judge",
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


class VarianceFailed(ProxyTaskError):
    """The measurement could not reach an answer (no workable model, too few copies)."""


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


class VarianceController(Controller):
    """The variance-measurement controller (see the module docstring).

    Example::

        ctl = VarianceController.create(ctx, space, VarianceSettings())
        ctl.run()
        print(ctl.result()["variance_value"])
    """

    kind = layout.KIND_VARIANCE

    def __init__(
        self,
        ctx: ControllerContext,
        tracker: TrialTracker,
        space: SearchSpace,
        settings: VarianceSettings,
        state: Mapping[str, Any],
    ) -> None:
        super().__init__(ctx, tracker)
        self.space = space
        self.settings = settings
        self.phase: str = state.get("phase", "find_workable")
        self.workable_key: str | None = state.get("workable_trial")
        self.error: str | None = state.get("error")
        self._result: dict[str, Any] | None = None
        self.report_lines: list[str] = []

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def create(
        cls, ctx: ControllerContext, space: SearchSpace, settings: VarianceSettings
    ) -> VarianceController:
        """A new measurement in ``ctx.controller_dir`` (which must not hold one yet)."""
        tracker = new_tracker(ctx, MEASUREMENT_STATE, "--previous-variance-dir")
        ctl = cls(ctx, tracker, space, settings, {})
        ctl.events.append(ctx.clock.now(), "controller_started", controller=cls.kind)
        ctl._persist()
        return ctl

    @classmethod
    def resume(
        cls, ctx: ControllerContext, space: SearchSpace, settings: VarianceSettings
    ) -> VarianceController:
        """Continue the measurement saved in ``ctx.controller_dir`` after a crash or a stop."""
        state, tracker = saved_tracker(
            ctx, MEASUREMENT_STATE, "--previous-variance-dir", "a variance measurement dir"
        )
        ctl = cls(ctx, tracker, space, settings, state)
        replanned = tracker.recover()
        ctl.events.append(
            ctx.clock.now(), "controller_resumed", controller=cls.kind, restarted=replanned
        )
        ctl._persist()
        return ctl

    # ---- the loop -----------------------------------------------------------------------------

    def is_finished(self) -> bool:
        """True once the measurement reached an answer or failed."""
        return self.phase in ("done", "failed")

    def step(self) -> None:
        """Poll → decide → act → persist."""
        if self.is_finished():
            return
        for record in self.tracker.poll():
            self._announce(record)
        self._decide()
        self._persist()
        self.tracker.launch_planned()
        self._persist()

    def _announce(self, record: TrialRecord) -> None:
        if record.state == TrialRecordState.FAILED:
            self.ctx.display.message(f"  {record.key} failed ({record.cause}): {record.message}")
        elif record.state == TrialRecordState.SUCCEEDED:
            acc = self.tracker.progress(record.key).last_accuracy
            acc_text = "-" if acc is None else f"{acc:.4f}"
            self.ctx.display.message(f"  {record.key} finished: accuracy {acc_text}")

    def _decide(self) -> None:
        if self.phase == "find_workable":
            self._decide_workable()
        if self.phase == "copies":
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
            self.phase = "copies"
            self.ctx.display.message(
                f"workable model found: {good[0].key} ({json_arch(good[0].nas_params)}); "
                f"training {self.settings.num_copies} copies to 100 %"
            )
            self.events.append(self.ctx.clock.now(), "workable_found", trial=good[0].key)
            self._plan_copies(good[0])
            return
        if len(attempts) >= self.settings.max_workable_attempts:
            self._fail(
                f"no workable model after {len(attempts)} tries: "
                + _describe_causes(self.tracker.failure_causes([r.key for r in attempts]))
            )
            return
        number = len(attempts) + 1
        arch = self.space.sample(self.settings.seed, number - 1)
        self.tracker.plan(
            WORKABLE_JOB,
            number,
            arch,
            self.ctx.baseline_args,
            target_pct=self.settings.workable_pct,
        )
        if number == 1:
            self.ctx.display.message(
                f"finding a workable model: training a sampled architecture to "
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
                + _describe_causes(self.tracker.failure_causes([r.key for r in copies]))
            )
            return
        self._result = self._compute_result(copies)
        storage.write_json_atomic(storage.join(self.ctx.controller_dir, RESULT_FILE), self._result)
        self._render_plot(finished)
        self.phase = "done"
        self.events.append(
            self.ctx.clock.now(),
            "measurement_done",
            variance=self._result["variance_value"],
            smoothness=self._result["smoothness_value"],
        )

    def _fail(self, message: str) -> None:
        self.phase = "failed"
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

    def _compute_result(self, copies: list[TrialRecord]) -> dict[str, Any]:
        from proxytask.stats import variance as stats

        finished = [r for r in copies if _finished(r)]
        curves = self._curves(finished)
        finals = [m.training_accuracy_over_steps[-1].accuracy for _, m in curves]
        variation = stats.coefficient_of_variation(finals, confidence=self.settings.confidence)
        xy = [
            (
                [p.training_step_pct for p in m.training_accuracy_over_steps],
                [p.accuracy for p in m.training_accuracy_over_steps],
            )
            for _, m in curves
        ]
        smooth = stats.mean_smoothness(xy)
        spread = stats.curve_spread(xy)
        s = self.settings
        variance_ok, smooth_ok = judge(variation.cv, smooth.value, s.max_variance, s.max_smoothness)
        if variation.cv is None:
            variance_info = f"Model variance could not be computed: {variation.reason}."
        elif variance_ok:
            variance_info = "Model variance is good."
        else:
            variance_info = (
                f"Model variance is not good, measured:{variation.cv} > threshold:{s.max_variance}."
            )
        if smooth.value is None:
            smoothness_info = f"Model smoothness could not be computed: {smooth.reason}."
        elif smooth_ok:
            smoothness_info = "Model smoothness is good."
        else:
            smoothness_info = (
                f"Model smoothness is not good, measured:{smooth.value} > "
                f"threshold:{s.max_smoothness}."
            )
        advice: list[str] = []
        if not (variance_ok and smooth_ok):
            advice.extend(ADVICE_BAD_CURVES)
        causes = self.tracker.failure_causes([r.key for r in copies])
        for cause in causes:
            try:
                advice.append(f"{cause}: {ADVICE[FailureCause(cause)]}")
            except ValueError:
                pass
        failed = [
            {"trial_dir": r.trial_dir, "cause": r.cause, "message": r.message}
            for r in copies
            if not _finished(r)
        ]
        workable = self.tracker.records[self.workable_key] if self.workable_key else None
        return {
            "variance_value": variation.cv,
            "variance_info": variance_info,
            "smoothness_value": smooth.value,
            "smoothness_info": smoothness_info,
            "variance_good": bool(variance_ok),
            "smoothness_good": bool(smooth_ok),
            "thresholds": {"max_variance": s.max_variance, "max_smoothness": s.max_smoothness},
            "final_accuracies": list(finals),
            "mean_accuracy": variation.mean,
            "std": variation.std,
            "sample_std": variation.sample_std,
            "std_confidence_interval": [variation.std_ci_low, variation.std_ci_high],
            "confidence": variation.confidence,
            "smoothness_per_copy": [r.value for r in smooth.per_curve],
            "per_step_spread": {
                "pct": list(spread.pcts),
                "n": list(spread.n),
                "mean": list(spread.mean),
                "std": list(spread.std),
                "min": list(spread.min),
                "max": list(spread.max),
            },
            "max_per_step_std": spread.max_std,
            "num_copies": len(copies),
            "num_copies_finished": len(finished),
            "finished_model_dirs": [r.trial_dir for r in finished],
            "failed_copies": failed,
            "workable_model_dir": workable.trial_dir if workable else "",
            "architecture": dict(workable.nas_params) if workable and workable.nas_params else None,
            "advice": advice,
        }

    def _render_plot(self, finished: list[TrialRecord]) -> None:
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
        assert self._result is not None
        fig = variance_figure(
            series,
            title="Variance measurement: copies of the workable model",
            cv=self._result["variance_value"],
            smoothness=self._result["smoothness_value"],
        )
        render_variance_figure(fig, storage.join(self.ctx.controller_dir, PLOT_FILE))

    def result(self) -> dict[str, Any] | None:
        """The content of ``variance_and_smoothness.json`` once done."""
        if self._result is None and self.phase == "done":
            self._result = storage.read_json(storage.join(self.ctx.controller_dir, RESULT_FILE))
        return self._result

    def summary(self) -> list[str]:
        """The verdict in lines for the terminal."""
        if self.phase == "failed":
            return [f"variance measurement failed: {self.error}"]
        result = self.result()
        if result is None:
            return [f"variance measurement in progress ({self.phase})"]
        lo, hi = result["std_confidence_interval"]
        lines = [
            f"variance (CV of final accuracy): {fmt_number(result['variance_value'])}  "
            f"[{'good' if result['variance_good'] else 'NOT GOOD'}, threshold "
            f"{result['thresholds']['max_variance']}]",
            f"smoothness: {fmt_number(result['smoothness_value'])}  "
            f"[{'good' if result['smoothness_good'] else 'NOT GOOD'}, threshold "
            f"{result['thresholds']['max_smoothness']}]",
            f"final accuracies of {result['num_copies_finished']} copies: "
            + ", ".join(f"{a:.4f}" for a in result["final_accuracies"]),
            f"mean {fmt_number(result['mean_accuracy'])}, std {fmt_number(result['std'])} "
            f"(sample std {int(result['confidence'] * 100)} % CI "
            f"[{fmt_number(lo)}, {fmt_number(hi)}]); "
            f"largest per-step std {fmt_number(result['max_per_step_std'])}",
            "models whose accuracies differ by less than about twice that std cannot be ranked "
            "reliably by one training run.",
        ]
        lines.extend(f"advice: {a}" for a in result["advice"])
        return lines

    # ---- persistence and display --------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        copies = self._copies()
        workable = self.tracker.records.get(self.workable_key) if self.workable_key else None
        return {
            "workable_model_dir": workable.trial_dir if workable else "",
            "training_job_name": COPIES_JOB if copies else "",
            "finished_model_dirs": [r.trial_dir for r in copies if _finished(r)],
            "phase": self.phase,
            "workable_trial": self.workable_key,
            "error": self.error,
            "settings": dataclasses.asdict(self.settings),
            "trials": [r.to_dict() for r in self.tracker.records.values()],
        }

    def _persist(self) -> None:
        self.save_if_changed(MEASUREMENT_STATE, self._state())

    def snapshot(self) -> ProgressSnapshot:
        """The live display: the current phase's trials, elapsed time and an ETA."""
        job = WORKABLE_JOB if self.phase == "find_workable" else COPIES_JOB
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
            title=f"variance measurement — {self.phase.replace('_', ' ')}",
            rows=rows,
            elapsed_secs=now - self.started_at,
            eta_secs=eta,
        )


def json_arch(arch: Mapping[str, Any] | None) -> str:
    """A short one-line rendering of an architecture."""
    import json

    text = json.dumps(dict(arch or {}), sort_keys=True, separators=(",", ":"))
    return text if len(text) <= 100 else text[:97] + "..."


def _describe_causes(causes: Mapping[str, int]) -> str:
    if not causes:
        return "no failures recorded"
    parts = []
    for cause, count in sorted(causes.items(), key=lambda kv: -kv[1]):
        try:
            advice = ADVICE[FailureCause(cause)]
        except ValueError:
            advice = "see the trial logs"
        parts.append(f"{count}× {cause} ({advice})")
    return "; ".join(parts)
