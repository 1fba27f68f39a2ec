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
import enum
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from proxytask.controllers.base import (
    ControllerContext,
    SpaceController,
    describe_causes,
    fmt_number,
    progress_rows,
)
from proxytask.controllers.command_options import LATENCY_SOURCES
from proxytask.controllers.state import TrialRecord, TrialRecordState, json_value
from proxytask.controllers.tracker import TrialTracker
from proxytask.core import layout, storage
from proxytask.core.errors import UsageError
from proxytask.core.metric import MetricMode
from proxytask.core.space import SearchSpace
from proxytask.executors.command import Continuation
from proxytask.report import background
from proxytask.report.progress import ProgressSnapshot
from proxytask.trainer.contract import get_accuracy_at_pct, read_final_metrics
from proxytask.trainer.zero_cost_metrics import read_zero_cost_scores

if TYPE_CHECKING:
    from proxytask.stats.selection import TrialScore

__all__ = [
    "MODEL_SELECTION_STATE",
    "REFERENCE_MODELS",
    "BaselineModel",
    "Iteration",
    "ModelSelectionController",
    "ModelSelectionResult",
    "PrunedRound",
    "ReferenceModel",
    "SelectionCost",
    "SelectionPhase",
    "SelectionSettings",
    "SelectionState",
    "read_model_selection_result",
    "selection_warnings",
]

MODEL_SELECTION_STATE = layout.MODEL_SELECTION_STATE
REFERENCE_MODELS = layout.REFERENCE_MODELS
SCORES_PLOT = layout.SELECTION_SCORES_PLOT
BASELINE_JOB = layout.BASELINE_JOB
#: What the reference tools record as the final round's pct: "train to completion".
COMPLETE_TRAINING_PCT = 101.0


class SelectionPhase(str, enum.Enum):
    """Where a model selection stands (the ``phase`` of its state file)."""

    RUNNING = "running"
    DONE = "done"  # REFERENCE_MODELS.json is written
    FAILED = "failed"  # see ``error``; a resume retries the failed round's trials

    def __str__(self) -> str:
        return self.value


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
    metric_mode: MetricMode = MetricMode.MAX  # min: the baseline comparison looks for lower
    seed_noise_std: float | None = None  # known: the summary advises the reference-set size

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
        if self.seed_noise_std is not None and not self.seed_noise_std >= 0:
            raise UsageError(
                f"--seed-noise-std must be >= 0, got {self.seed_noise_std}. Give the std of one "
                "model's final accuracy over seeds (proxytask variance measures it)."
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


# ---- typed state: the rounds ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Iteration:
    """One round as the reference state file records it (an entry of ``iterations``).

    Fields in the order of the file's keys.
    """

    num_trials: int
    trials_to_retrain: tuple[str, ...] = ()  # the survivors, once the round is pruned
    search_job_name: str
    search_job_link: str
    latency_calculator_job_name: str = ""
    latency_calculator_job_link: str = ""
    desired_training_step_pct: float  # COMPLETE_TRAINING_PCT for the final round

    @property
    def is_final(self) -> bool:
        """True for the round that trains the survivors to completion."""
        return self.desired_training_step_pct == COMPLETE_TRAINING_PCT

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        data: dict[str, Any] = json_value(self)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Iteration:
        """Parse the JSON form."""
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        return cls(**{**values, "trials_to_retrain": tuple(data.get("trials_to_retrain", ()))})


@dataclasses.dataclass(frozen=True)
class PrunedRound:
    """What the spread rule did after a round (an entry of ``rounds`` in the state file)."""

    round: str
    pct: float
    kept: tuple[str, ...]
    removed: tuple[str, ...]
    invalid: tuple[tuple[str, str], ...]  # (trial id, why it could not be scored)

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        data: dict[str, Any] = json_value(self)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PrunedRound:
        """Parse the JSON form."""
        return cls(
            round=data["round"],
            pct=data["pct"],
            kept=tuple(data["kept"]),
            removed=tuple(data["removed"]),
            invalid=tuple((str(t), str(r)) for t, r in data["invalid"]),
        )


@dataclasses.dataclass(frozen=True)
class SelectionState:
    """Where ``MODEL_SELECTION_STATE.json`` says a selection stands (without its trials)."""

    phase: SelectionPhase = SelectionPhase.RUNNING
    iterations: tuple[Iteration, ...] = ()
    rounds: tuple[PrunedRound, ...] = ()
    error: str | None = None
    latency_wait_started: float | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SelectionState:
        """Parse the state file's JSON (``{}``: a new selection)."""
        return cls(
            SelectionPhase(data.get("phase", SelectionPhase.RUNNING)),
            tuple(Iteration.from_json(i) for i in data.get("iterations", [])),
            tuple(PrunedRound.from_json(r) for r in data.get("rounds", [])),
            data.get("error"),
            data.get("latency_wait_started"),
        )


# ---- typed result: REFERENCE_MODELS.json -----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ReferenceModel:
    """A fully trained model (a reference model, or a held-out one)."""

    trial_id: str
    trial_dir: str
    origin_trial: str  # the round-1 trial it descends from (it holds the architecture)
    architecture: Mapping[str, Any] | None
    accuracy: float | None
    latency: float | None
    training_hours: float | None
    final_metrics: Mapping[str, float]
    zero_cost_scores: Mapping[str, float] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReferenceModel:
        """Parse the JSON form (files older than zero-cost scores read with none)."""
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


@dataclasses.dataclass(frozen=True)
class BaselineModel:
    """The user's baseline architecture, trained alongside for comparison."""

    trial_dir: str
    state: TrialRecordState
    accuracy: float | None
    latency: float | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BaselineModel:
        """Parse the JSON form."""
        return cls(
            data["trial_dir"], TrialRecordState(data["state"]), data["accuracy"], data["latency"]
        )


@dataclasses.dataclass(frozen=True)
class SelectionCost:
    """What the selection cost in training time (the ``cost`` of the result)."""

    training_hours: float
    gpu_hours: float | None
    full_training_hours: float | None  # the mean training time of one reference model
    multiple_of_full_training: float | None
    note: str = "trainer-reported training time only (no start-up, no evaluation)"


@dataclasses.dataclass(frozen=True)
class ModelSelectionResult:
    """The answer of a model selection: the content of ``REFERENCE_MODELS.json``.

    :meth:`to_json` and :meth:`from_json` are the one codec; the file keeps its keys
    (``num_reference_models`` and ``num_holdout_models`` are derived).
    """

    reference_models: tuple[ReferenceModel, ...]
    holdout_models: tuple[ReferenceModel, ...]
    accuracy_range: tuple[float, float] | None
    latency_range: tuple[float, float] | None
    baseline: BaselineModel | None
    cost: SelectionCost
    warnings: tuple[str, ...]
    accuracy_metric_id: str
    latency_metric_id: str

    def to_json(self) -> dict[str, Any]:
        """The JSON form, keys in the order the file has always had them."""
        return {
            "reference_models": json_value(self.reference_models),
            "num_reference_models": len(self.reference_models),
            "holdout_models": json_value(self.holdout_models),
            "num_holdout_models": len(self.holdout_models),
            "accuracy_range": json_value(self.accuracy_range),
            "latency_range": json_value(self.latency_range),
            "baseline": json_value(self.baseline),
            "cost": json_value(self.cost),
            "warnings": list(self.warnings),
            "accuracy_metric_id": self.accuracy_metric_id,
            "latency_metric_id": self.latency_metric_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelSelectionResult:
        """Parse the JSON form (files written before held-out models read with none)."""
        acc, lat, base = data["accuracy_range"], data["latency_range"], data["baseline"]
        return cls(
            reference_models=tuple(ReferenceModel.from_json(m) for m in data["reference_models"]),
            holdout_models=tuple(
                ReferenceModel.from_json(m) for m in data.get("holdout_models") or ()
            ),
            accuracy_range=(acc[0], acc[1]) if acc else None,
            latency_range=(lat[0], lat[1]) if lat else None,
            baseline=BaselineModel.from_json(base) if base else None,
            cost=SelectionCost(**data["cost"]),
            warnings=tuple(data["warnings"]),
            accuracy_metric_id=data.get("accuracy_metric_id", ""),
            latency_metric_id=data.get("latency_metric_id", ""),
        )


def read_model_selection_result(controller_dir: str) -> ModelSelectionResult | None:
    """The result a finished model selection wrote in ``controller_dir``, or None."""
    data = storage.read_json(storage.join(controller_dir, REFERENCE_MODELS))
    return ModelSelectionResult.from_json(data) if isinstance(data, dict) else None


def _value_range(values: Sequence[float | None]) -> tuple[float, float] | None:
    present = [v for v in values if v is not None]
    return (min(present), max(present)) if present else None


def selection_warnings(
    models: Sequence[ReferenceModel],
    baseline: BaselineModel | None,
    num_holdout: int,
    num_holdout_asked: int,
    mode: MetricMode = MetricMode.MAX,
    num_models_asked: int | None = None,
    failures: str = "",
) -> tuple[str, ...]:
    """The model selection's warnings: fewer reference models than ``num_models_asked`` (with
    the final round's ``failures`` by cause), the best reference model more than 0.01 worse
    than the baseline (below it, or above it under ``mode`` min), and held-out models that did
    not finish."""
    warnings = []
    if num_models_asked is not None and len(models) < num_models_asked:
        why = f" (failed in the final round: {failures})" if failures else ""
        warnings.append(
            f"only {len(models)} of the {num_models_asked} reference models asked for finished "
            f"training{why}: the search ranks fewer models, with wider intervals on every tau. "
            "Fix the failures and resume with --previous-model-selection-dir (it trains the "
            "failed ones again), or start again with more --start-num-models."
        )
    accs = [m.accuracy for m in models if m.accuracy is not None]
    baseline_acc = baseline.accuracy if baseline else None
    if baseline_acc is not None and accs:
        best = mode.best(accs)
        if not mode.reached(best, baseline_acc - 0.01 * mode.sign):
            where = "below" if mode is MetricMode.MAX else "above (worse than)"
            warnings.append(
                f"the best reference model ({best:.4f}) is more than 1 point {where} the "
                f"baseline model ({baseline_acc:.4f}): the search space's good "
                "region is not represented; consider more start models or a narrower space."
            )
    if num_holdout < num_holdout_asked:
        warnings.append(
            f"only {num_holdout} of {num_holdout_asked} held-out models "
            "finished training (reference models come first)"
        )
    return tuple(warnings)


def _selection_cost(
    cost_hours: float, models: Sequence[ReferenceModel], gpus: float
) -> SelectionCost:
    full = [m.training_hours for m in models if m.training_hours]
    full_hours = sum(full) / len(full) if full else None
    return SelectionCost(
        training_hours=cost_hours,
        gpu_hours=cost_hours * gpus if gpus else None,
        full_training_hours=full_hours,
        multiple_of_full_training=(cost_hours / full_hours) if full_hours else None,
    )


class ModelSelectionController(SpaceController[SelectionSettings]):
    """The model-selection controller (see the module docstring).

    Example::

        ctl = ModelSelectionController.create(ctx, space, SelectionSettings(12, 6, 2))
        ctl.run()
        models = ctl.result().reference_models
    """

    draws_plots = True

    kind = layout.KIND_MODEL_SELECTION
    phase: SelectionPhase
    state_file = MODEL_SELECTION_STATE
    resume_flag = "--previous-model-selection-dir"
    resume_what = "a model-selection dir"

    def __init__(
        self,
        ctx: ControllerContext,
        tracker: TrialTracker,
        space: SearchSpace,
        settings: SelectionSettings,
        state: Mapping[str, Any],
    ) -> None:
        super().__init__(ctx, tracker, space, settings, state)
        saved = SelectionState.from_json(state)
        self.iterations = list(saved.iterations)
        self.rounds = list(saved.rounds)
        self.phase = saved.phase
        self.latency_wait_started: float | None = saved.latency_wait_started
        self._result: ModelSelectionResult | None = None

    def recover(self) -> list[str]:
        """Take over the trials left running (one that finished training but died before its
        latency report trains again: the spread rule needs it); after a failed round, retry
        its failed trials."""
        self.tracker.expects_latency = self.settings.latency_source == "trainer"
        replanned = super().recover()
        if self.iterations and (
            self.phase == SelectionPhase.FAILED
            or (self.phase == SelectionPhase.DONE and self._final_round_failures())
        ):
            # a failed round, or a finished selection short of the models asked for (its
            # warning says to resume): its failed trials train again
            self._retry_failed_round()
        return replanned

    def _final_round_failures(self) -> bool:
        final = self.iterations[-1]
        return final.is_final and any(
            r.job == final.search_job_name and r.state == TrialRecordState.FAILED
            for r in self.tracker.records.values()
        )

    def _retry_failed_round(self) -> None:
        job = self.iterations[-1].search_job_name
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
        self.phase, self.error = SelectionPhase.RUNNING, None
        self.latency_wait_started = None
        self.events.append(self.ctx.clock.now(), "round_retried", round=job, trials=retried)
        self.ctx.display.message(f"retrying {len(retried)} failed trials of {job}")
        self._result = None

    # ---- the loop -----------------------------------------------------------------------------

    def decide(self) -> None:
        """Start the first round; after each round, prune and go on, or finish."""
        if not self.iterations:
            self._start_round(0, [], 0.0)
            if self.settings.baseline_architecture is not None:
                self.tracker.plan(
                    BASELINE_JOB, 1, self.settings.baseline_architecture, self.ctx.baseline_args
                )
            return
        current = self.iterations[-1]
        job = current.search_job_name
        keys = [k for k, r in self.tracker.records.items() if r.job == job]
        if not self.tracker.all_terminal(keys):
            return
        if not self._latencies_ready(keys):
            return
        index = len(self.iterations) - 1
        if index == 0 and self._first_round_failed(keys):
            return
        if current.is_final:
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
            Iteration(
                num_trials=count,
                search_job_name=job,
                search_job_link=layout.job_dir(self.ctx.controller_dir, job),
                latency_calculator_job_name=(
                    "latency-worker" if s.latency_source == "worker" else ""
                ),
                desired_training_step_pct=COMPLETE_TRAINING_PCT if is_final else pct,
            )
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
            self.tracker.records[k]
            for k in keys
            if self.tracker.records[k].state == TrialRecordState.SUCCEEDED
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
        self._fail(
            f"{len(failed)} of {len(keys)} trials of the first round failed "
            f"({rate:.0%} > {self.settings.max_first_round_failure_rate:.0%}): "
            + describe_causes(self.tracker.failure_causes(failed))
            + ". Fix the trainer, then resume with --previous-model-selection-dir "
            f"{self.ctx.controller_dir} to retry the failed trials."
        )
        return True

    def _scores(self, keys: list[str], pct: float) -> list[TrialScore]:
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
        pct = current.desired_training_step_pct
        count = len(keys)
        to_remove = min(s.num_models_to_remove_per_iter, count - s.num_survivors)
        scores = self._scores(keys, pct)
        requires = s.requires_latency and not self._no_trainer_latency(scores, index)
        result = select_survivors(scores, to_remove, requires_latency=requires)
        job = current.search_job_name
        fig = selection_figure(scores, result, index + 1, pct, metric_label=s.metric_mode.label)
        background.submit(
            render_selection_figure, fig, storage.join(current.search_job_link, SCORES_PLOT)
        )
        self.iterations[-1] = dataclasses.replace(current, trials_to_retrain=result.kept)
        self.rounds.append(PrunedRound(job, pct, result.kept, result.removed, result.invalid))
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

    def _no_trainer_latency(self, scores: Sequence[TrialScore], index: int) -> bool:
        """True when latency should come from the trainer and no valid trial reported one.

        A trainer that reports no latency at all (many do not: the reference tools needed one
        only with a latency job) is pruned by accuracy alone instead of leaving no valid
        model; the first round says so in one line. A trainer that reports some latencies
        and not others is broken, and its silent trials stay invalid.
        """
        if self.settings.latency_source != "trainer":
            return False
        valid = [sc for sc in scores if sc.invalid_reason is None]
        if not valid or any(sc.latency is not None for sc in valid):
            return False
        if index == 0:
            self.ctx.display.message(
                "no trial reported a latency: pruning by accuracy alone (report one with "
                "update_trial_training_latency_metric, or pass --latency-source none to "
                "silence this)"
            )
        return True

    def _fail(self, message: str) -> None:
        self.phase = SelectionPhase.FAILED
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

    def _reference_model(self, record: TrialRecord) -> ReferenceModel:
        """A fully trained trial as the result lists it."""
        metrics = self.tracker.progress(record.key).metrics
        final_metrics = read_final_metrics(record.trial_dir)
        accuracy = (
            final_metrics.get(self.settings.accuracy_metric_id)
            if self.settings.accuracy_metric_id
            else get_accuracy_at_pct(metrics, 100.0)
        )
        origin = self._origin(record)
        return ReferenceModel(
            trial_id=str(record.number),
            trial_dir=record.trial_dir,
            origin_trial=origin.key,
            architecture=dict(origin.nas_params) if origin.nas_params else None,
            accuracy=accuracy,
            latency=self._latency_of(record),
            training_hours=(
                metrics.training_time.total_training_time_in_secs / 3600.0 if metrics else None
            ),
            final_metrics=final_metrics,
            zero_cost_scores={
                **read_zero_cost_scores(origin.trial_dir),
                **read_zero_cost_scores(record.trial_dir),
            },
        )

    def _finish(self, keys: list[str]) -> None:
        records = [self.tracker.records[k] for k in keys]
        finished = [self._reference_model(r) for r in records if _succeeded(r)]
        models, holdout = self._split_holdout(finished)
        if len(models) < 2:
            self._fail(f"only {len(models)} reference models finished training; a ranking needs 2.")
            return
        cost_hours = self._cost_secs() / 3600.0
        baseline = self._baseline()
        s = self.settings
        result = ModelSelectionResult(
            reference_models=tuple(models),
            holdout_models=tuple(holdout),
            accuracy_range=_value_range([m.accuracy for m in models]),
            latency_range=_value_range([m.latency for m in models]),
            baseline=baseline,
            cost=_selection_cost(cost_hours, models, self.ctx.trial_settings.resources.gpus),
            warnings=selection_warnings(
                models,
                baseline,
                len(holdout),
                s.num_holdout_models,
                s.metric_mode,
                num_models_asked=s.final_num_models,
                failures=describe_causes(self.tracker.failure_causes(keys)),
            ),
            accuracy_metric_id=s.accuracy_metric_id,
            latency_metric_id=s.latency_metric_id,
        )
        self._result = result
        storage.write_json_atomic(
            storage.join(self.ctx.controller_dir, REFERENCE_MODELS), result.to_json(), durable=True
        )
        self.phase = SelectionPhase.DONE
        self.events.append(
            self.ctx.clock.now(), "selection_done", models=len(models), cost_hours=cost_hours
        )

    def _split_holdout(
        self, models: list[ReferenceModel]
    ) -> tuple[list[ReferenceModel], list[ReferenceModel]]:
        """Draw the held-out models at random (seeded) from the fully trained ones.

        Random, not by score: the held-out models must be a fair sample of what the search
        will rank. Stratified by accuracy (:func:`stratified_holdout`), so that both sets span
        the accuracy range: a held-out set that happens to gather near-equal models cannot
        check a ranking. Reference models come first when fewer models finished than asked.
        """
        from proxytask.stats.selection import stratified_holdout

        k = max(
            0, min(self.settings.num_holdout_models, len(models) - self.settings.final_num_models)
        )
        mode = self.settings.metric_mode  # strata from worst to best, whatever the direction
        scores = [None if m.accuracy is None else mode.oriented(m.accuracy) for m in models]
        chosen = set(stratified_holdout(scores, k, (self.settings.seed, 0x401D)))
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

    def _baseline(self) -> BaselineModel | None:
        key = f"{BASELINE_JOB}/1"
        record = self.tracker.records.get(key)
        if record is None:
            return None
        metrics = self.tracker.progress(key).metrics
        return BaselineModel(
            trial_dir=record.trial_dir,
            state=record.state,
            accuracy=get_accuracy_at_pct(metrics, 100.0),
            latency=self._latency_of(record),
        )

    def result(self) -> ModelSelectionResult | None:
        """The answer (``REFERENCE_MODELS.json``) once done."""
        if self._result is None and self.phase == SelectionPhase.DONE:
            self._result = read_model_selection_result(self.ctx.controller_dir)
        return self._result

    def summary(self) -> list[str]:
        """The answer in lines for the terminal."""
        if self.phase == SelectionPhase.FAILED:
            return [f"model selection failed: {self.error}"]
        result = self.result()
        if result is None:
            return [f"model selection in progress (round {len(self.iterations)})"]
        lines = [f"{len(result.reference_models)} reference models:"]
        noun = self.settings.metric_mode.noun
        for m in result.reference_models:
            lat = "-" if m.latency is None else f"{m.latency:.4g}"
            acc = "-" if m.accuracy is None else f"{m.accuracy:.4f}"
            lines.append(f"  {m.origin_trial:>10}: {noun} {acc}  latency {lat}  {m.trial_dir}")
        if result.holdout_models:
            lines.append(
                f"{len(result.holdout_models)} held-out models (the search never chooses by "
                "them): "
                + ", ".join(
                    f"{m.origin_trial} ({fmt_number(m.accuracy)})" for m in result.holdout_models
                )
            )
        if result.accuracy_range:
            lo, hi = result.accuracy_range
            lines.append(f"{noun} range {lo:.4f} – {hi:.4f}")
        if result.latency_range:
            lo, hi = result.latency_range
            lines.append(f"latency range {lo:.4g} – {hi:.4g}")
        if result.baseline:
            b = result.baseline
            lines.append(
                f"baseline model: {noun} {fmt_number(b.accuracy)}, latency {fmt_number(b.latency)}"
            )
        lines.append(_cost_line(result.cost))
        lines.extend(f"warning: {w}" for w in result.warnings)
        return lines + _reference_size_lines(result, self.settings.seed_noise_std)

    # ---- persistence and display --------------------------------------------------------------

    def state_json(self) -> dict[str, Any]:
        """The content of ``MODEL_SELECTION_STATE.json``: the reference fields, then ours."""
        s = self.settings
        return {
            "start_num_models": s.start_num_models,
            "final_num_models": s.final_num_models,
            "num_models_to_remove_per_iter": s.num_models_to_remove_per_iter,
            "accuracy_metric_id": s.accuracy_metric_id,
            "latency_metric_id": s.latency_metric_id,
            "iterations": [i.to_json() for i in self.iterations],
            "phase": self.phase.value,
            "error": self.error,
            "latency_wait_started": self.latency_wait_started,
            "rounds": [r.to_json() for r in self.rounds],
            "settings": {
                **dataclasses.asdict(s),
                "baseline_architecture": (
                    dict(s.baseline_architecture) if s.baseline_architecture else None
                ),
            },
            "trials": [r.to_dict() for r in self.tracker.records.values()],
        }

    def snapshot(self) -> ProgressSnapshot:
        """The live display: the current round's trials and the cost so far."""
        job = self.iterations[-1].search_job_name if self.iterations else ""
        keys = [k for k, r in self.tracker.records.items() if r.job in (job, BASELINE_JOB)]
        now = self.ctx.clock.now()
        pct = self.iterations[-1].desired_training_step_pct if self.iterations else 0.0
        shown = "to completion" if pct == COMPLETE_TRAINING_PCT else f"to {pct:.2f} %"
        return ProgressSnapshot(
            title=(
                f"model selection — {job} ({len(keys)} models {shown}), cost so far "
                f"{self._cost_secs() / 3600.0:.3f} training hours"
            ),
            rows=progress_rows(self.tracker, keys),
            elapsed_secs=now - self.started_at,
        )


def _succeeded(record: TrialRecord) -> bool:
    return record.state == TrialRecordState.SUCCEEDED


def _cost_line(cost: SelectionCost) -> str:
    multiple = cost.multiple_of_full_training
    return (
        f"cost: {cost.training_hours:.4f} training hours"
        + (f" = {multiple:.2f} × one full training" if multiple else "")
        + (f"; {cost.gpu_hours:.4f} GPU-hours" if cost.gpu_hours else "")
    )


def _reference_size_lines(result: ModelSelectionResult, noise: float | None) -> list[str]:
    """The reference-set size advice at the search's default threshold and confidence
    (:mod:`proxytask.stats.reference_size`); none without a seed noise."""
    from proxytask.controllers.command_options import SEARCH_OPTIONS
    from proxytask.stats.reference_size import reference_size_advice

    if noise is None:
        return []
    defaults = {o.dest: o.default for o in SEARCH_OPTIONS}
    threshold, confidence = defaults["desired_accuracy_correlation"], defaults["confidence"]
    try:
        advice = reference_size_advice(
            [m.accuracy for m in result.reference_models], noise, threshold, confidence
        )
    except UsageError as exc:
        return [f"reference set size: not estimated ({exc})"]
    return advice.lines(label="reference set size (for the search's default settings)")


def _round_job(index: int) -> str:
    return f"round{index + 1}"
