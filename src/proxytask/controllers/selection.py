"""Model selection: narrow ~30 random models to ~10 reference models, fully trained.

Round after round, K models train to a cumulative ``pct += 100 / K`` (30, 25, 20, 15 models →
3.33, 7.33, 12.33, 19.0 %), each continuing from its checkpoint of the round before; after a
round, ``min(5, K - final)`` models are removed so the survivors' (accuracy, latency) points
stay spread out (:mod:`proxytask.stats.selection`). When K ≤ the final count, the survivors train to
completion: they are the reference models whose scores judge proxy tasks.

Writes ``MODEL_SELECTION_STATE.json`` (the reference fields plus every trial record) after
every change, ``filtered_trial_scores.png`` in each round's job dir, and at the end
``REFERENCE_MODELS.json`` (models, scores, cost, ranges). A resumed controller continues where
the dead one was; after a failed round it retries that round's failed trials.
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
from proxytask.controllers.command_options import LATENCY_SOURCES
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
from proxytask.trainer.contract import get_accuracy_at_pct, read_final_metrics
from proxytask.trainer.zero_cost_metrics import read_zero_cost_scores

__all__ = [
    "MODEL_SELECTION_STATE",
    "REFERENCE_MODELS",
    "ModelSelectionController",
    "SelectionFailed",
    "SelectionSettings",
]

MODEL_SELECTION_STATE = layout.MODEL_SELECTION_STATE
REFERENCE_MODELS = layout.REFERENCE_MODELS
SCORES_PLOT = layout.SELECTION_SCORES_PLOT
BASELINE_JOB = layout.BASELINE_JOB
#: What the reference tools record as the final round's pct: "train to completion".
COMPLETE_TRAINING_PCT = 101.0


class SelectionFailed(ProxyTaskError):
    """Model selection stopped without reference models."""


@dataclasses.dataclass(frozen=True)
class SelectionSettings:
    """The settings of one model selection (SPEC defaults)."""

    start_num_models: int = 30
    final_num_models: int = 10
    num_models_to_remove_per_iter: int = 5
    seed: int = 0
    latency_source: str = "trainer"  # trainer | worker | none
    latency_timeout_secs: float = 3600.0
    max_first_round_failure_rate: float = 0.2
    accuracy_metric_id: str = ""
    latency_metric_id: str = ""
    baseline_architecture: Mapping[str, Any] | None = None
    num_holdout_models: int = 0  # extra fully trained models the search never chooses by

    def __post_init__(self) -> None:
        if self.num_holdout_models < 0:
            raise UsageError(f"--num-holdout-models must be >= 0, got {self.num_holdout_models}.")
        if self.final_num_models < 2:
            raise UsageError(
                f"--final-num-models must be >= 2 (a ranking needs two models), got "
                f"{self.final_num_models}."
            )
        if self.start_num_models < self.num_survivors:
            raise UsageError(
                f"--start-num-models must be >= --final-num-models + --num-holdout-models "
                f"({self.num_survivors}), got {self.start_num_models}."
            )
        if self.num_models_to_remove_per_iter < 1:
            raise UsageError(
                f"--num-models-to-remove-per-iter must be >= 1, got "
                f"{self.num_models_to_remove_per_iter}."
            )
        if self.latency_source not in LATENCY_SOURCES:
            raise UsageError(
                f"--latency-source must be one of {', '.join(LATENCY_SOURCES)}, got "
                f"{self.latency_source!r}."
            )

    @property
    def num_survivors(self) -> int:
        """The models trained fully: the reference models and the held-out ones."""
        return self.final_num_models + self.num_holdout_models

    @property
    def requires_latency(self) -> bool:
        """True when the spread rule uses latency."""
        return self.latency_source != "none"


def _round_job(index: int) -> str:
    return f"round{index + 1}"


class ModelSelectionController(Controller):
    """The model-selection controller (see the module docstring).

    Example::

        ctl = ModelSelectionController.create(ctx, space, SelectionSettings(12, 6, 2))
        ctl.run()
        models = ctl.result()["reference_models"]
    """

    kind = layout.KIND_MODEL_SELECTION

    def __init__(
        self,
        ctx: ControllerContext,
        tracker: TrialTracker,
        space: SearchSpace,
        settings: SelectionSettings,
        state: Mapping[str, Any],
    ) -> None:
        super().__init__(ctx, tracker)
        self.space = space
        self.settings = settings
        self.iterations: list[dict[str, Any]] = [dict(i) for i in state.get("iterations", [])]
        self.rounds: list[dict[str, Any]] = [dict(r) for r in state.get("rounds", [])]
        self.phase: str = state.get("phase", "running")
        self.error: str | None = state.get("error")
        self.latency_wait_started: float | None = state.get("latency_wait_started")
        self._result: dict[str, Any] | None = None

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def create(
        cls, ctx: ControllerContext, space: SearchSpace, settings: SelectionSettings
    ) -> ModelSelectionController:
        """A new model selection in ``ctx.controller_dir``."""
        tracker = new_tracker(ctx, MODEL_SELECTION_STATE, "--previous-model-selection-dir")
        ctl = cls(ctx, tracker, space, settings, {})
        ctl.events.append(ctx.clock.now(), "controller_started", controller=cls.kind)
        ctl._persist()
        return ctl

    @classmethod
    def resume(
        cls, ctx: ControllerContext, space: SearchSpace, settings: SelectionSettings
    ) -> ModelSelectionController:
        """Continue the model selection saved in ``ctx.controller_dir``."""
        state, tracker = saved_tracker(
            ctx, MODEL_SELECTION_STATE, "--previous-model-selection-dir", "a model-selection dir"
        )
        ctl = cls(ctx, tracker, space, settings, state)
        replanned = tracker.recover()
        if ctl.phase == "failed" and ctl.iterations:
            ctl._retry_failed_round()
        ctl.events.append(
            ctx.clock.now(), "controller_resumed", controller=cls.kind, restarted=replanned
        )
        ctl._persist()
        return ctl

    def _retry_failed_round(self) -> None:
        job = self.iterations[-1]["search_job_name"]
        retried = []
        for key, record in list(self.tracker.records.items()):
            if record.job == job and record.state == TrialRecordState.FAILED:
                self.tracker.records[key] = dataclasses.replace(
                    record,
                    state=TrialRecordState.PLANNED,
                    cause=None,
                    message="",
                    restarts=record.restarts + 1,
                )
                retried.append(key)
        self.phase, self.error = "running", None
        self.latency_wait_started = None
        self.events.append(self.ctx.clock.now(), "round_retried", round=job, trials=retried)
        self.ctx.display.message(f"retrying {len(retried)} failed trials of {job}")

    # ---- the loop -----------------------------------------------------------------------------

    def is_finished(self) -> bool:
        """True once the reference models are trained, or the selection failed."""
        return self.phase in ("done", "failed")

    def step(self) -> None:
        """Poll → decide → act → persist."""
        if self.is_finished():
            return
        for record in self.tracker.poll():
            if record.state == TrialRecordState.FAILED:
                self.ctx.display.message(
                    f"  {record.key} failed ({record.cause}): {record.message}"
                )
        self._decide()
        self._persist()
        self.tracker.launch_planned()
        self._persist()

    def _decide(self) -> None:
        if not self.iterations:
            self._start_round(0, [], 0.0)
            if self.settings.baseline_architecture is not None:
                self.tracker.plan(
                    BASELINE_JOB, 1, self.settings.baseline_architecture, self.ctx.baseline_args
                )
            return
        current = self.iterations[-1]
        job = current["search_job_name"]
        keys = [k for k, r in self.tracker.records.items() if r.job == job]
        if not self.tracker.all_terminal(keys):
            return
        if not self._latencies_ready(keys):
            return
        index = len(self.iterations) - 1
        if index == 0 and self._first_round_failed(keys):
            return
        if current["desired_training_step_pct"] == COMPLETE_TRAINING_PCT:
            baseline_keys = [k for k, r in self.tracker.records.items() if r.job == BASELINE_JOB]
            if not self.tracker.all_terminal(baseline_keys):
                return
            self._finish(keys)
            return
        self._prune_and_continue(index, keys)

    def _start_round(self, index: int, survivors: list[str], previous_pct: float) -> None:
        from proxytask.stats.selection import next_round_pct

        s = self.settings
        job = _round_job(index)
        count = s.start_num_models if index == 0 else len(survivors)
        pct, is_final = next_round_pct(previous_pct, count, s.num_survivors)
        target = 100.0 if is_final else min(pct, 100.0)
        if index == 0:
            for number, arch in enumerate(self.space.sample_many(s.seed, count), start=1):
                self.tracker.plan(job, number, arch, self.ctx.baseline_args, target_pct=target)
        else:
            prev_job = _round_job(index - 1)
            prev_dir = layout.job_dir(self.ctx.controller_dir, prev_job)
            cont = Continuation(prev_dir, tuple(survivors), use_checkpoint=True)
            for number, prev_id in enumerate(survivors, start=1):
                prev = self.tracker.records[f"{prev_job}/{prev_id}"]
                self.tracker.plan(
                    job,
                    number,
                    None,  # the architecture comes from the earlier trial
                    self.ctx.baseline_args,
                    target_pct=target,
                    continuation=cont,
                    copy_metrics_from=prev.trial_dir,
                )
        self.iterations.append(
            {
                "num_trials": count,
                "trials_to_retrain": [],
                "search_job_name": job,
                "search_job_link": layout.job_dir(self.ctx.controller_dir, job),
                "latency_calculator_job_name": (
                    "latency-worker" if s.latency_source == "worker" else ""
                ),
                "latency_calculator_job_link": "",
                "desired_training_step_pct": COMPLETE_TRAINING_PCT if is_final else pct,
            }
        )
        shown = "to completion" if is_final else f"to {pct:.2f} %"
        self.ctx.display.message(f"{job}: training {count} models {shown}")
        self.events.append(self.ctx.clock.now(), "round_started", round=job, models=count, pct=pct)

    # ---- latency ------------------------------------------------------------------------------

    def _latencies_ready(self, keys: list[str]) -> bool:
        if self.settings.latency_source != "worker":
            return True
        from proxytask.controllers.latency import read_latency, request_latency

        now = self.ctx.clock.now()
        succeeded = [
            self.tracker.records[k] for k in keys if self.tracker.records[k].state == "succeeded"
        ]
        if self.latency_wait_started is None:
            for record in succeeded:
                if read_latency(record.trial_dir) is None:
                    request_latency(record.trial_dir, now)
            self.latency_wait_started = now
        missing = [r for r in succeeded if read_latency(r.trial_dir) is None]
        if not missing:
            self.latency_wait_started = None
            return True
        if now - self.latency_wait_started > self.settings.latency_timeout_secs:
            self.ctx.display.message(
                f"{len(missing)} trials got no latency within "
                f"{self.settings.latency_timeout_secs:g} s; they count as invalid. Is a "
                f"`proxytask latency-worker --controller-dir {self.ctx.controller_dir}` running?"
            )
            self.latency_wait_started = None
            return True
        return False

    def _latency_of(self, record: TrialRecord) -> float | None:
        if self.settings.latency_source == "none":
            return None
        if self.settings.latency_metric_id:
            value = read_final_metrics(record.trial_dir).get(self.settings.latency_metric_id)
            if value is not None:
                return value
        if self.settings.latency_source == "worker":
            from proxytask.controllers.latency import read_latency

            result = read_latency(record.trial_dir)
            return None if result is None else result.latency
        metrics = self.tracker.progress(record.key).metrics
        return metrics.latency if metrics is not None and metrics.has_latency else None

    # ---- rounds -------------------------------------------------------------------------------

    def _first_round_failed(self, keys: list[str]) -> bool:
        failed = [k for k in keys if self.tracker.records[k].state == TrialRecordState.FAILED]
        rate = len(failed) / max(len(keys), 1)
        if rate <= self.settings.max_first_round_failure_rate:
            return False
        causes = self.tracker.failure_causes(failed)
        parts = []
        for cause, count in sorted(causes.items(), key=lambda kv: -kv[1]):
            try:
                advice = ADVICE[FailureCause(cause)]
            except ValueError:
                advice = "see the trial logs"
            parts.append(f"{count}× {cause} ({advice})")
        self._fail(
            f"{len(failed)} of {len(keys)} trials of the first round failed "
            f"({rate:.0%} > {self.settings.max_first_round_failure_rate:.0%}): "
            + "; ".join(parts)
            + ". Fix the trainer, then resume with --previous-model-selection-dir "
            f"{self.ctx.controller_dir} to retry the failed trials."
        )
        return True

    def _scores(self, keys: list[str], pct: float) -> list[Any]:
        from proxytask.stats.selection import TrialScore

        scores = []
        for key in keys:
            record = self.tracker.records[key]
            metrics = self.tracker.progress(key).metrics
            reason = None
            if record.state != TrialRecordState.SUCCEEDED:
                reason = f"{record.state} ({record.cause or 'stopped'})"
            accuracy = get_accuracy_at_pct(metrics, min(pct, 100.0))
            scores.append(
                TrialScore(
                    trial_id=str(record.number),
                    accuracy=accuracy,
                    latency=self._latency_of(record),
                    invalid_reason=reason,
                )
            )
        return scores

    def _prune_and_continue(self, index: int, keys: list[str]) -> None:
        from proxytask.report.data import selection_figure
        from proxytask.report.plots import render_selection_figure
        from proxytask.stats.selection import select_survivors

        s = self.settings
        current = self.iterations[-1]
        pct = current["desired_training_step_pct"]
        count = len(keys)
        to_remove = min(s.num_models_to_remove_per_iter, count - s.num_survivors)
        scores = self._scores(keys, pct)
        result = select_survivors(scores, to_remove, requires_latency=s.requires_latency)
        job = current["search_job_name"]
        fig = selection_figure(scores, result, index + 1, pct)
        render_selection_figure(fig, storage.join(current["search_job_link"], SCORES_PLOT))
        current["trials_to_retrain"] = list(result.kept)
        self.rounds.append(
            {
                "round": job,
                "pct": pct,
                "kept": list(result.kept),
                "removed": list(result.removed),
                "invalid": [list(pair) for pair in result.invalid],
            }
        )
        self.ctx.display.message(
            f"{job}: kept {len(result.kept)}, removed {len(result.removed)} by spread"
            + (f", {len(result.invalid)} invalid" if result.invalid else "")
        )
        self.events.append(
            self.ctx.clock.now(),
            "round_pruned",
            round=job,
            kept=list(result.kept),
            removed=list(result.removed),
            invalid=[list(p) for p in result.invalid],
        )
        if len(result.kept) < 2:
            self._fail(f"{job} left {len(result.kept)} valid models; a ranking needs 2.")
            return
        self._start_round(index + 1, list(result.kept), pct)

    def _fail(self, message: str) -> None:
        self.phase = "failed"
        self.error = message
        self.events.append(self.ctx.clock.now(), "selection_failed", error=message)

    # ---- the answer ---------------------------------------------------------------------------

    def _cost_secs(self) -> float:
        """Training seconds spent: each trial's own time, without the time it copied."""
        by_dir = {r.trial_dir: r for r in self.tracker.records.values()}
        total = 0.0
        for record in self.tracker.records.values():
            if record.job == BASELINE_JOB:  # a comparison, not part of the selection
                continue
            metrics = self.tracker.progress(record.key).metrics
            if metrics is None:
                continue
            spent = metrics.training_time.total_training_time_in_secs
            if record.copy_metrics_from:
                prev = by_dir.get(record.copy_metrics_from)
                prev_metrics = self.tracker.progress(prev.key).metrics if prev else None
                if prev_metrics is not None:
                    spent -= prev_metrics.training_time.total_training_time_in_secs
            total += max(spent, 0.0)
        return total

    def _finish(self, keys: list[str]) -> None:
        models: list[dict[str, Any]] = []
        for key in keys:
            record = self.tracker.records[key]
            if record.state != TrialRecordState.SUCCEEDED:
                continue
            metrics = self.tracker.progress(key).metrics
            final_metrics = read_final_metrics(record.trial_dir)
            accuracy = (
                final_metrics.get(self.settings.accuracy_metric_id)
                if self.settings.accuracy_metric_id
                else get_accuracy_at_pct(metrics, 100.0)
            )
            origin = self._origin(record)
            models.append(
                {
                    "trial_id": str(record.number),
                    "trial_dir": record.trial_dir,
                    "origin_trial": origin.key,
                    "architecture": dict(origin.nas_params) if origin.nas_params else None,
                    "accuracy": accuracy,
                    "latency": self._latency_of(record),
                    "training_hours": (
                        metrics.training_time.total_training_time_in_secs / 3600.0
                        if metrics
                        else None
                    ),
                    "final_metrics": final_metrics,
                    "zero_cost_scores": {
                        **read_zero_cost_scores(origin.trial_dir),
                        **read_zero_cost_scores(record.trial_dir),
                    },
                }
            )
        models, holdout = self._split_holdout(models)
        if len(models) < 2:
            self._fail(f"only {len(models)} reference models finished training; a ranking needs 2.")
            return
        cost_hours = self._cost_secs() / 3600.0
        full: list[float] = [m["training_hours"] for m in models if m["training_hours"]]
        full_hours = sum(full) / len(full) if full else None
        accs: list[float] = [m["accuracy"] for m in models if m["accuracy"] is not None]
        lats: list[float] = [m["latency"] for m in models if m["latency"] is not None]
        baseline = self._baseline()
        warnings = []
        baseline_acc = baseline.get("accuracy") if baseline else None
        if baseline_acc is not None and accs and max(accs) < baseline_acc - 0.01:
            warnings.append(
                f"the best reference model ({max(accs):.4f}) is more than 1 point below the "
                f"baseline model ({baseline_acc:.4f}): the search space's good "
                "region is not represented; consider more start models or a narrower space."
            )
        gpus = self.ctx.trial_settings.resources.gpus
        if len(holdout) < self.settings.num_holdout_models:
            warnings.append(
                f"only {len(holdout)} of {self.settings.num_holdout_models} held-out models "
                "finished training (reference models come first)"
            )
        self._result = {
            "reference_models": models,
            "num_reference_models": len(models),
            "holdout_models": holdout,
            "num_holdout_models": len(holdout),
            "accuracy_range": [min(accs), max(accs)] if accs else None,
            "latency_range": [min(lats), max(lats)] if lats else None,
            "baseline": baseline,
            "cost": {
                "training_hours": cost_hours,
                "gpu_hours": cost_hours * gpus if gpus else None,
                "full_training_hours": full_hours,
                "multiple_of_full_training": (cost_hours / full_hours) if full_hours else None,
                "note": "trainer-reported training time only (no start-up, no evaluation)",
            },
            "warnings": warnings,
            "accuracy_metric_id": self.settings.accuracy_metric_id,
            "latency_metric_id": self.settings.latency_metric_id,
        }
        storage.write_json_atomic(
            storage.join(self.ctx.controller_dir, REFERENCE_MODELS), self._result
        )
        self.phase = "done"
        self.events.append(
            self.ctx.clock.now(), "selection_done", models=len(models), cost_hours=cost_hours
        )

    def _split_holdout(
        self, models: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Draw the held-out models at random (seeded) from the fully trained ones.

        Random, not by score: the held-out models must be a fair sample of what the search
        will rank. Reference models come first when fewer models finished than asked.
        """
        import numpy as np

        k = max(
            0, min(self.settings.num_holdout_models, len(models) - self.settings.final_num_models)
        )
        if k == 0:
            return models, []
        rng = np.random.default_rng([self.settings.seed, 0x401D])
        chosen = set(rng.choice(len(models), size=k, replace=False).tolist())
        reference = [m for i, m in enumerate(models) if i not in chosen]
        holdout = [m for i, m in enumerate(models) if i in chosen]
        return reference, holdout

    def _origin(self, record: TrialRecord) -> TrialRecord:
        """The round-1 trial a continued trial descends from (it holds the architecture)."""
        while record.continuation:
            job = record.continuation["job_dir"].rstrip("/").split("/")[-1]
            earlier = record.continuation["trial_ids"][record.number - 1]
            record = self.tracker.records[f"{job}/{earlier}"]
        return record

    def _baseline(self) -> dict[str, Any] | None:
        key = f"{BASELINE_JOB}/1"
        record = self.tracker.records.get(key)
        if record is None:
            return None
        metrics = self.tracker.progress(key).metrics
        return {
            "trial_dir": record.trial_dir,
            "state": record.state,
            "accuracy": get_accuracy_at_pct(metrics, 100.0),
            "latency": self._latency_of(record),
        }

    def result(self) -> dict[str, Any] | None:
        """The content of ``REFERENCE_MODELS.json`` once done."""
        if self._result is None and self.phase == "done":
            self._result = storage.read_json(
                storage.join(self.ctx.controller_dir, REFERENCE_MODELS)
            )
        return self._result

    def summary(self) -> list[str]:
        """The answer in lines for the terminal."""
        if self.phase == "failed":
            return [f"model selection failed: {self.error}"]
        result = self.result()
        if result is None:
            return [f"model selection in progress (round {len(self.iterations)})"]
        cost = result["cost"]
        lines = [f"{result['num_reference_models']} reference models:"]
        for m in result["reference_models"]:
            lat = "-" if m["latency"] is None else f"{m['latency']:.4g}"
            acc = "-" if m["accuracy"] is None else f"{m['accuracy']:.4f}"
            lines.append(
                f"  {m['origin_trial']:>10}: accuracy {acc}  latency {lat}  {m['trial_dir']}"
            )
        held = result.get("holdout_models") or []
        if held:
            lines.append(
                f"{len(held)} held-out models (the search never chooses by them): "
                + ", ".join(f"{m['origin_trial']} ({fmt_number(m['accuracy'])})" for m in held)
            )
        if result["accuracy_range"]:
            lo, hi = result["accuracy_range"]
            lines.append(f"accuracy range {lo:.4f} – {hi:.4f}")
        if result["latency_range"]:
            lo, hi = result["latency_range"]
            lines.append(f"latency range {lo:.4g} – {hi:.4g}")
        if result["baseline"]:
            b = result["baseline"]
            lines.append(
                f"baseline model: accuracy {fmt_number(b['accuracy'])}, "
                f"latency {fmt_number(b['latency'])}"
            )
        multiple = cost["multiple_of_full_training"]
        lines.append(
            f"cost: {cost['training_hours']:.4f} training hours"
            + (f" = {multiple:.2f} × one full training" if multiple else "")
            + (f"; {cost['gpu_hours']:.4f} GPU-hours" if cost["gpu_hours"] else "")
        )
        lines.extend(f"warning: {w}" for w in result["warnings"])
        return lines

    # ---- persistence and display --------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        s = self.settings
        return {
            "start_num_models": s.start_num_models,
            "final_num_models": s.final_num_models,
            "num_models_to_remove_per_iter": s.num_models_to_remove_per_iter,
            "accuracy_metric_id": s.accuracy_metric_id,
            "latency_metric_id": s.latency_metric_id,
            "iterations": [dict(i) for i in self.iterations],
            "phase": self.phase,
            "error": self.error,
            "latency_wait_started": self.latency_wait_started,
            "rounds": [dict(r) for r in self.rounds],
            "settings": {
                **dataclasses.asdict(s),
                "baseline_architecture": (
                    dict(s.baseline_architecture) if s.baseline_architecture else None
                ),
            },
            "trials": [r.to_dict() for r in self.tracker.records.values()],
        }

    def _persist(self) -> None:
        self.save_if_changed(MODEL_SELECTION_STATE, self._state())

    def snapshot(self) -> ProgressSnapshot:
        """The live display: the current round's trials and the cost so far."""
        job = self.iterations[-1]["search_job_name"] if self.iterations else ""
        keys = [k for k, r in self.tracker.records.items() if r.job in (job, BASELINE_JOB)]
        now = self.ctx.clock.now()
        pct = self.iterations[-1]["desired_training_step_pct"] if self.iterations else 0.0
        shown = "to completion" if pct == COMPLETE_TRAINING_PCT else f"to {pct:.2f} %"
        return ProgressSnapshot(
            title=(
                f"model selection — {job} ({len(keys)} models {shown}), cost so far "
                f"{self._cost_secs() / 3600.0:.3f} training hours"
            ),
            rows=progress_rows(self.tracker, keys),
            elapsed_secs=now - self.started_at,
        )
