"""Proxy-task search: which cheap recipe ranks the reference models like full training?

For each proxy-task config, the reference models train under it (the config's trainer args
over the baseline args, the full step budget). After every evaluation the controller
recomputes, at each step reached, the Kendall tau-b between proxy and full-training accuracies
(≥ 5 pairs and ≥ 70 % of the models), the median accuracy and the median training time, and
stops the config at the first step where: the correlation reaches the desired value; the median
accuracy reaches the desired accuracy; the training time reaches the limit; or (early stop) the
time reaches the best config's. It records the interpolated ``final_training_steps`` and
``final_training_time_in_hours``, tells the trials to stop at once, refreshes the statistics when
they have ended and checks the latency correlation. The best proxy task is the successful one
with the lowest final training time.

``SEARCH_CONTROLLER_STATE.json`` (the reference fields, invalid values as null) is saved after
every change; a resumed controller evaluates only what is unfinished, including configs a
generator added since, and re-scores finished configs when thresholds changed. The state is
typed (:mod:`proxytask.controllers.search_state`, which holds the one JSON codec).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from proxytask.controllers import base
from proxytask.controllers.base import Controller, ControllerContext, fmt_number
from proxytask.controllers.search_state import (
    RECOMMENDATION,
    SEARCH_STATE,
    HoldoutCheck,
    ProxyTaskEntry,
    ProxyTaskStats,
    Recommendation,
    SearchSettings,
    SearchState,
    TauSummary,
    ZeroTrainingComparison,
)
from proxytask.controllers.state import TrialRecord, TrialRecordState
from proxytask.controllers.tracker import PCT_TOLERANCE, TrialTracker
from proxytask.core import layout, storage
from proxytask.core.errors import UsageError
from proxytask.core.proxies import ProxyTaskConfig
from proxytask.executors.command import Continuation
from proxytask.report import background
from proxytask.report.progress import ProgressSnapshot
from proxytask.stats.search import (
    MIN_PAIRS,
    MIN_VALID_RATIO,
    StepStats,
    best_proxy_task,
    rank_correlation,
    step_budget,
    step_stats,
    with_uncertainty,
)
from proxytask.stats.stopping import StopDecision, StoppingState, scan_stopping
from proxytask.trainer.contract import TrialTrainingMetrics

if TYPE_CHECKING:
    from proxytask.stats.stability import StabilityResult

__all__ = [
    "RECOMMENDATION",
    "SEARCH_STATE",
    "ReferenceModels",
    "SearchController",
    "SearchSettings",
    "SearchState",
    "config_args",
]

#: --stage-pct auto: a stage may spend at most this share of its wall time outside training
#: (starting the trial again, restoring its checkpoint): stages span as many evaluations as
#: that takes (one evaluation each with warm workers or replayed curves).
AUTO_STAGE_MAX_OVERHEAD = 0.25
#: A stage target below any evaluation's pct: the trial stops after its first evaluation.
FIRST_EVALUATION_PCT = 1e-3
#: A later stage's job: ``proxy_<name>@stage<s>`` (``@`` is never in a config name).
STAGE_SEPARATOR = "@stage"

COMPARISON_PLOT = layout.SEARCH_COMPARISON_PLOT
TAU_PLOT = layout.SEARCH_TAU_PLOT
STABILITY_PLOT = layout.SEARCH_STABILITY_PLOT


@dataclasses.dataclass(frozen=True)
class ReferenceModels:
    """The reference models a search judges proxies by, read from a model-selection dir."""

    model_selection_dir: str
    job_dir: str  # the job holding their fully trained trials
    trial_ids: tuple[str, ...]
    accuracies: tuple[float | None, ...]
    latencies: tuple[float | None, ...]
    # models trained fully that the search never chooses by (--num-holdout-models)
    holdout_trial_ids: tuple[str, ...] = ()
    holdout_accuracies: tuple[float | None, ...] = ()
    # each reference model's zero-training scores (zero_cost.* final metrics), by name
    zero_cost_scores: tuple[Mapping[str, float], ...] = ()
    # each reference model's full training time in hours (None: not recorded)
    training_hours: tuple[float | None, ...] = ()
    # the model selection's warnings (a short reference set among them)
    warnings: tuple[str, ...] = ()

    @classmethod
    def load(cls, model_selection_dir: str) -> ReferenceModels:
        """Read ``REFERENCE_MODELS.json``; raise UsageError when the dir has none."""
        path = storage.join(model_selection_dir, layout.REFERENCE_MODELS)
        data = storage.read_json(path)
        if not isinstance(data, dict) or not data.get("reference_models"):
            raise UsageError(
                f"--model-selection-dir must be a finished model selection, got "
                f"{model_selection_dir!r}, which holds no REFERENCE_MODELS.json with models. Run "
                "`proxytask select-models` to the end first."
            )
        try:
            return cls._from_json(model_selection_dir, path, data)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            if isinstance(exc, UsageError):
                raise
            raise UsageError(
                f"--model-selection-dir: {path!r} must be the REFERENCE_MODELS.json "
                f"proxytask wrote, got one that does not read ({exc!r}). Restore it from a "
                "copy, or resume the model selection to write it again."
            ) from None

    @classmethod
    def _from_json(
        cls, model_selection_dir: str, path: str, data: Mapping[str, Any]
    ) -> ReferenceModels:
        models = data["reference_models"]
        holdout = data.get("holdout_models") or []
        job_dirs = {m["trial_dir"].rstrip("/").rsplit("/", 1)[0] for m in [*models, *holdout]}
        if len(job_dirs) != 1:
            raise UsageError(
                f"reference models must come from one job, got {sorted(job_dirs)} in {path!r}."
            )
        return cls(
            model_selection_dir=model_selection_dir,
            job_dir=job_dirs.pop(),
            trial_ids=tuple(str(m["trial_id"]) for m in models),
            accuracies=tuple(m.get("accuracy") for m in models),
            latencies=tuple(m.get("latency") for m in models),
            holdout_trial_ids=tuple(str(m["trial_id"]) for m in holdout),
            holdout_accuracies=tuple(m.get("accuracy") for m in holdout),
            zero_cost_scores=tuple(dict(m.get("zero_cost_scores") or {}) for m in models),
            training_hours=tuple(m.get("training_hours") for m in models),
            warnings=tuple(str(w) for w in data.get("warnings") or ()),
        )

    @property
    def full_training_hours(self) -> float | None:
        """The mean full training time of a reference model in hours (None: not recorded)."""
        valid = [h for h in self.training_hours if h]
        return sum(valid) / len(valid) if valid else None


class SearchController(Controller):
    """The proxy-task search controller (see the module docstring).

    Example::

        ctl = SearchController.create(ctx, references, configs, SearchSettings())
        ctl.run()
        print(ctl.best_proxy_task_name)
    """

    draws_plots = True

    kind = layout.KIND_SEARCH
    state_file = SEARCH_STATE
    resume_flag = "--previous-proxy-task-search-dir"
    resume_what = "a proxy-task search dir"

    def __init__(
        self,
        ctx: ControllerContext,
        tracker: TrialTracker,
        references: ReferenceModels,
        configs: Sequence[ProxyTaskConfig],
        settings: SearchSettings,
        state: SearchState,
    ) -> None:
        super().__init__(ctx, tracker)
        self.references = references
        self.settings = settings
        self.configs = {c.name: c for c in configs}
        # frozen entries, replaced (never edited) as the search goes
        self.tasks: dict[str, ProxyTaskEntry] = dict(state.proxy_tasks)
        self.order: list[str] = list(state.order)
        for name in self.configs:  # configs a generator added since are evaluated too
            if name not in self.order:
                self.order.append(name)
        self.done: set[str] = set(state.done)
        # the order configs finished in (early stopping only knew those before each one)
        self.finish_order: list[str] = list(state.finish_order)
        self.best_proxy_task_name: str = state.best_proxy_task_name
        # the winner's check on the held-out models, by proxy-task name
        self.holdout: dict[str, HoldoutCheck] = dict(state.holdout)
        self._dirty: set[str] = set()
        self._stability_result: StabilityResult | None = None
        self._reference_metrics: TrialTrainingMetrics | None = None
        self._zero_training: dict[str, TauSummary] | None = None
        self._plotted: set[str] = set()  # configs whose plots this run drew (or handed over)
        self._chain_cache: dict[str, tuple[int, list[list[str]]]] = {}

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        ctx: ControllerContext,
        references: ReferenceModels,
        configs: Sequence[ProxyTaskConfig],
        settings: SearchSettings,
    ) -> SearchController:
        """A new search in ``ctx.controller_dir``."""
        state = SearchState(proxy_tasks={})
        return cls(ctx, cls.new_tracker(ctx), references, configs, settings, state).started()

    @classmethod
    def resume(
        cls,
        ctx: ControllerContext,
        references: ReferenceModels,
        configs: Sequence[ProxyTaskConfig],
        settings: SearchSettings | None = None,
    ) -> SearchController:
        """Continue the search saved in ``ctx.controller_dir``; new configs are added.

        ``settings`` None: the saved ones (the defaults when the state has none readable).
        Finished configs are re-scored under the settings given.
        """
        data, tracker = cls.saved_tracker(ctx)
        state = SearchState.from_json(data)
        _check_same_args(configs, state)
        chosen = settings or state.settings or SearchSettings()
        ctl = cls(ctx, tracker, references, configs, chosen, state)
        return ctl.resumed(ctl.recover())

    def recover(self) -> list[str]:
        """Take over the trials left running (a config told to stop restarts them in place)
        and re-score the finished configs under the current settings."""
        replanned = super().recover()
        for key in replanned:
            entry = self.tasks.get(config_of_job(self.tracker.records[key].job))
            if entry is not None and entry.stats.posted_stop_trials_message:
                # told to stop before the crash: start it again in its dir as it is, so it
                # keeps its curve, sees the stop signal at once and reports its latency
                self.tracker.in_place.add(key)
        self._rescore_finished()
        return replanned

    # ---- the loop -----------------------------------------------------------------------------

    def is_finished(self) -> bool:
        """True once every config has its answer (and the winner its held-out check)."""
        return self._configs_done() and not self._holdout_pending()

    def _configs_done(self) -> bool:
        return all(name in self.done for name in self.order)

    def _holdout_pending(self) -> bool:
        best = self.best_proxy_task_name
        return bool(best and self.references.holdout_trial_ids and best not in self.holdout)

    def _active(self) -> list[str]:
        return [n for n in self.order if n in self.tasks and n not in self.done]

    def _started(self) -> list[str]:
        return [n for n in self.order if n in self.tasks]

    def step(self) -> None:
        """Poll → update statistics → decide stops → start configs → persist (:meth:`advance`)."""
        self.advance()

    def announce(self, record: TrialRecord) -> None:
        """An ended trial: its config's statistics are computed again (nothing is shown)."""
        self._dirty.add(config_of_job(record.job))

    def decide(self) -> None:
        """Update the active configs' statistics and stops, start configs, check the winner."""
        for name in self._active():
            self._dirty.add(name)  # new reports may have arrived
        for name in list(self._active()):
            self._update(name)
        self._start_configs()
        if self._configs_done() and self._holdout_pending():
            self._check_holdout(self.best_proxy_task_name)

    def _chains(self, name: str) -> list[list[str]]:
        """Each reference model's trials under config ``name``, one per stage, in order
        (trials are only ever added: the answer holds until the tracker has more)."""
        known = len(self.tracker.records)
        cached = self._chain_cache.get(name)
        if cached is not None and cached[0] == known:
            return cached[1]
        chains = []
        for number in range(1, len(self.references.trial_ids) + 1):
            chain: list[str] = []
            while (key := f"{stage_job(name, len(chain) + 1)}/{number}") in self.tracker.records:
                chain.append(key)
            if chain:
                chains.append(chain)
        self._chain_cache[name] = (known, chains)
        return chains

    def _keys(self, name: str) -> list[str]:
        """Each reference model's latest trial under config ``name`` (its latest stage)."""
        return [chain[-1] for chain in self._chains(name)]

    def _parallel_configs(self) -> int:
        """How many configs train at once (``--max-parallel-proxy-tasks``; auto: all)."""
        chosen = self.settings.max_parallel_proxy_tasks
        return len(self.order) if chosen is None else chosen

    def _staged(self) -> bool:
        """True when the models cannot all train at once, so they train in stages."""
        if self.settings.stage_pct is not None and self.settings.stage_pct >= 100.0:
            return False
        slots = getattr(self.ctx.executor, "max_parallel_trials", None)
        models = len(self.references.trial_ids) * max(
            1, min(self._parallel_configs(), len(self.order))
        )
        return isinstance(slots, int) and slots < models

    def _stage_target(self, name: str, stage: int) -> float:
        """The pct stage ``stage`` of config ``name`` trains to (0: to the end of the
        budget, the controller decides).

        A fixed ``--stage-pct`` gives stages of that size. Auto (breadth-first): the first
        stage ends at the first evaluation a decision can come at (the reference models'
        evaluation pace; the confident rule needs ``--persistence`` evaluations), each later
        one a whole number of evaluations on (the config's own pace): one, or as many as keep
        the measured restart overhead under AUTO_STAGE_MAX_OVERHEAD of the stage.
        """
        if not self._staged():
            return 0.0
        size = self.settings.stage_pct
        if size is not None:
            target = stage * size
        elif stage == 1:
            paces = _evaluation_pcts(self._reference_curve())
            looks = self.settings.persistence if self.settings.stopping_rule == "confident" else 1
            # a full-training curve of fewer evaluations says nothing of the pace: the
            # first stage then stops at the first evaluation, whatever it is
            target = paces[looks - 1] if len(paces) > looks else FIRST_EVALUATION_PCT
        else:
            curves = [m for m in self._metrics(name) if m is not None]
            reached = max((m.last_pct for m in curves), default=0.0)
            pace = _pace_pct(curves)
            if pace is None:
                return 0.0
            target = reached + pace * self._evaluations_per_stage(name)
        return 0.0 if target >= 100.0 - PCT_TOLERANCE else target

    def _reference_curve(self) -> TrialTrainingMetrics | None:
        """The first reference model's full-training curve (its evaluation pace)."""
        if self._reference_metrics is None:
            from proxytask.trainer.contract import read_trial_training_metrics

            for trial_id in self.references.trial_ids:
                found = read_trial_training_metrics(
                    layout.trial_dir(self.references.job_dir, int(trial_id))
                )
                if found is not None and found.training_accuracy_over_steps:
                    self._reference_metrics = found
                    break
        return self._reference_metrics

    def _evaluations_per_stage(self, name: str) -> int:
        """How many evaluations a stage of ``name`` spans: enough that restarting the trial
        (its wall time outside training, measured on the config's ended trials) stays under
        AUTO_STAGE_MAX_OVERHEAD of the stage's time."""
        overheads, per_eval = [], []
        for chain in self._chains(name):
            # each stage continues the one before: its time and points start from those
            previous_secs, previous_points = 0.0, 0
            for key in chain:
                # the executor's start (a launched trial may wait for a slot first)
                status = self.tracker.statuses.get(key)
                metrics = self.tracker.progress(key).metrics
                if metrics is None or status is None:
                    break
                total = metrics.training_time.total_training_time_in_secs
                points = len(metrics.training_accuracy_over_steps)
                secs, evals = total - previous_secs, points - previous_points
                began, ended = status.started_at, status.ended_at
                if evals > 0 and secs > 0 and began is not None and ended is not None:
                    overheads.append(max(0.0, ended - began - secs))
                    per_eval.append(secs / evals)
                previous_secs, previous_points = total, points
        if not overheads:
            return 1
        overhead, eval_secs = statistics.median(overheads), statistics.median(per_eval)
        budget = AUTO_STAGE_MAX_OVERHEAD / (1.0 - AUTO_STAGE_MAX_OVERHEAD)
        return max(1, math.ceil(overhead / (budget * eval_secs)))

    def _start_configs(self) -> None:
        while len(self._active()) < self._parallel_configs():
            pending = [n for n in self.order if n not in self.tasks]
            if not pending:
                return
            self._start_config(pending[0])

    def _start_config(self, name: str) -> None:
        job = f"proxy_{name}"
        refs = self.references
        cont = Continuation(refs.job_dir, refs.trial_ids, use_checkpoint=False)
        args = {**self.ctx.baseline_args, **config_args(self.configs[name])}
        target = self._stage_target(name, 1)
        for number in range(1, len(refs.trial_ids) + 1):
            self.tracker.plan(
                job,
                number,
                None,
                args,
                target_pct=target,
                continuation=cont,
                max_training_time_hrs=self.settings.training_time_hrs_limit,
            )
        self.tasks[name] = ProxyTaskEntry(
            name=name,
            stats=ProxyTaskStats(),
            search_job_name=job,
            search_job_link=layout.job_dir(self.ctx.controller_dir, job),
        )
        upto = f" (in stages: to {target:g} % first)" if target else ""
        self.ctx.display.message(
            f"proxy task {name}: training {len(refs.trial_ids)} reference models with "
            f"{config_args(self.configs[name])}{upto}"
        )
        self.events.append(self.ctx.clock.now(), "proxy_task_started", proxy_task=name)

    # ---- statistics and decisions -------------------------------------------------------------

    def _stats(self, name: str) -> ProxyTaskStats:
        return self.tasks[name].stats

    def _set_stats(self, name: str, **changes: Any) -> ProxyTaskStats:
        """Replace the config's statistics with ``changes`` applied; return the new value."""
        entry = self.tasks[name]
        stats = dataclasses.replace(entry.stats, **changes)
        self.tasks[name] = dataclasses.replace(entry, stats=stats)
        return stats

    def _metrics(self, name: str) -> list[TrialTrainingMetrics | None]:
        """Each model's curve under config ``name``: its latest trial's, or while a next
        stage has not reported yet, the stage before's (the curve it continues)."""
        out: list[TrialTrainingMetrics | None] = []
        for chain in self._chains(name):
            found = None
            for key in reversed(chain):
                found = self.tracker.progress(key).metrics
                if found is not None:
                    break
            out.append(found)
        return out

    def _best_time(self, excluding: str, finished_before: bool = False) -> float | None:
        """The best successful config's final time, among the finished ones other than
        ``excluding``; with ``finished_before``, only those that finished before it did (a
        re-score judges each config by what early stopping knew when it ran)."""
        earlier = set(self.finish_order)
        if finished_before and excluding in self.finish_order:
            earlier = set(self.finish_order[: self.finish_order.index(excluding)])
        times = []
        for other, entry in self.tasks.items():
            if other == excluding or other not in self.done or other not in earlier:
                continue
            stats = entry.stats
            if stats.stopping_state.is_success and stats.final_training_time_in_hours:
                times.append(stats.final_training_time_in_hours)
        return min(times) if times else None

    def _scan(self, name: str, stats: StepStats, rescore: bool = False) -> StopDecision:
        s = self.settings
        return scan_stopping(
            stats,
            desired_accuracy_correlation=s.desired_accuracy_correlation,
            desired_accuracy=s.desired_accuracy,
            training_time_hrs_limit=s.training_time_hrs_limit,
            best_training_time_hrs=self._best_time(name, finished_before=rescore),
            early_stop_if_not_best=s.early_stop_proxy_task_if_not_best,
            rule=s.stopping_rule,
            confidence=s.confidence,
            persistence=s.persistence,
            total_steps=self._total_steps(name),
            metric_mode=s.metric_mode,
        )

    def _total_steps(self, name: str) -> int | None:
        """The proxy task's step budget, from its trials' reports (None before any)."""
        return step_budget(self._metrics(name))

    def evaluations_in_budget(self, name: str) -> int | None:
        """How many evaluations config ``name`` makes over its step budget at the pace of
        those it made (None before any, or without a known budget): the number of looks the
        confident rule spreads its error budget over."""
        total = self._total_steps(name)
        steps = self._stats(name).step_stats.training_steps if name in self.tasks else ()
        if total is None or not steps:
            return None
        return max(1, round(total * len(steps) / (steps[-1] + 1)))

    def _budget_end(self, name: str) -> int:
        """The last 0-based step of the proxy task's budget (-1 when unknown)."""
        total = self._total_steps(name)
        return -1 if total is None else total - 1

    def _step_stats(self, name: str) -> StepStats:
        s = self.settings
        return step_stats(
            self._metrics(name),
            list(self.references.accuracies),
            confidence=s.confidence,
            desired_accuracy_correlation=s.desired_accuracy_correlation,
            metric_mode=s.metric_mode,
        )

    def _update(self, name: str) -> None:
        if name not in self._dirty:
            return
        self._dirty.discard(name)
        keys = self._keys(name)
        stats = self._step_stats(name)
        ended = self.tracker.all_terminal(keys)
        recorded = self._set_stats(name, steps=stats)
        if not recorded.posted_stop_trials_message:
            settled = self._settled_step(keys)
            decision = self._scan(name, stats if settled is None else _truncate(stats, settled))
            failed = [k for k in keys if self.tracker.records[k].state == TrialRecordState.FAILED]
            usable = len(keys) - len(failed)
            if decision.stopped:
                self._record_decision(name, stats, decision)
                self._post_stop(name, keys, decision.state.value)
            elif failed and usable < max(MIN_PAIRS, MIN_VALID_RATIO * len(keys)):
                self._set_stats(name, stopping_state=StoppingState.EXCESS_TRIAL_FAILURES)
                self._post_stop(name, keys, "too many trials failed to compute a correlation")
        if ended and not (
            not self._stats(name).posted_stop_trials_message and self._start_next_stage(name)
        ):
            self._finish_config(name, stats)

    def _start_next_stage(self, name: str) -> bool:
        """Continue the config's models that ended a stage short of the budget; True if any.

        A stage's trials stop at its pct; with no decision yet, each model that finished
        the stage goes on from its checkpoint (its full training state, its curve copied)
        to the next stage's pct, in a trial of the next stage's job.
        """
        chains = self._chains(name)
        stage = max(len(chain) for chain in chains)
        going_on = []
        for chain in chains:
            record = self.tracker.records[chain[-1]]
            metrics = self.tracker.progress(record.key).metrics
            if (
                len(chain) == stage
                and record.state == TrialRecordState.SUCCEEDED
                and metrics is not None
                and metrics.last_pct + PCT_TOLERANCE < 100.0
            ):
                going_on.append(record)
        if not going_on:
            return False
        target = self._stage_target(name, stage + 1)
        ids = tuple(str(n) for n in range(1, len(self.references.trial_ids) + 1))
        args = {**self.ctx.baseline_args, **config_args(self.configs[name])}
        for record in going_on:
            # trial k of each stage's job continues trial k of the stage before
            cont = Continuation(layout.job_dir(self.ctx.controller_dir, record.job), ids)
            self.tracker.plan(
                stage_job(name, stage + 1),
                record.number,
                None,
                args,
                target_pct=target,
                continuation=cont,
                copy_metrics_from=record.trial_dir,
                max_training_time_hrs=self.settings.training_time_hrs_limit,
            )
        upto = f"{target:g} %" if target else "the end of the budget"
        self.ctx.display.message(
            f"proxy task {name}: no decision yet; stage {stage + 1}: continuing "
            f"{len(going_on)} models from their checkpoints to {upto}"
        )
        self.events.append(
            self.ctx.clock.now(),
            "proxy_task_stage_started",
            proxy_task=name,
            stage=stage + 1,
            models=len(going_on),
            target_pct=target,
        )
        return True

    def _settled_step(self, keys: Sequence[str]) -> int | None:
        """The last step every still-running trial of a config has reported (-1: none yet;
        None when no trial is running, so every step is settled).

        A live decision is made only from settled steps: at a later step the slower models'
        accuracies are still missing, and a tau over the faster ones alone can pass a rule
        that the complete curves, read again once the trials end, do not pass.
        """
        settled: int | None = None
        for key in keys:
            if self.tracker.records[key].is_terminal:
                continue  # ended trials are complete: they limit nothing
            metrics = self.tracker.progress(key).metrics
            points = metrics.training_accuracy_over_steps if metrics else ()
            last = points[-1].training_step if points else -1
            settled = last if settled is None else min(settled, last)
        return settled

    def _record_decision(self, name: str, stats: StepStats, decision: StopDecision) -> None:
        decided = self._stats(name).decided_at_training_step
        if decision.step_index is not None and stats.training_steps:
            decided = stats.training_steps[decision.step_index]
        self._set_stats(
            name,
            decided_at_training_step=decided,
            stopping_state=decision.state,
            final_training_steps=decision.final_training_steps,
            final_training_time_in_hours=decision.final_training_time_in_hours,
        )

    def _post_stop(self, name: str, keys: list[str], why: str) -> None:
        for key in keys:
            self.tracker.request_stop(key)
        self._set_stats(name, posted_stop_trials_message=True)
        self.ctx.display.message(f"proxy task {name}: stopping its trials ({why})")
        self.events.append(self.ctx.clock.now(), "proxy_task_stop_posted", proxy_task=name, why=why)

    def _finish_config(self, name: str, stats: StepStats) -> None:
        # The statistics are refreshed once more now that every trial has ended (late reports
        # of earlier steps count), up to the step the decision was made at: what trials did
        # after being told to stop depends on timing, not on the proxy.
        decided_at = self._stats(name).decided_at_training_step
        if decided_at is not None:
            stats = _truncate(stats, decided_at)
            self._set_stats(name, steps=stats)
        if self._stats(name).stopping_state is not StoppingState.EXCESS_TRIAL_FAILURES:
            decision = self._scan(name, stats)
            if decision.stopped:
                self._record_decision(name, stats, decision)
            elif not self._stats(name).stopping_state.value:
                self._set_stats(name, stopping_state=StoppingState.RAN_TILL_COMPLETION)
        self._check_latency(name)
        self.done.add(name)
        if name not in self.finish_order:
            self.finish_order.append(name)
        self._render(name)
        self._choose_best()
        final = self._stats(name)
        where = (
            f" at step {final.final_training_steps}"
            if final.final_training_steps is not None
            else ""
        )
        self.ctx.display.message(
            f"proxy task {name}: {final.stopping_state.value or 'no answer'}{where}"
        )
        self.events.append(
            self.ctx.clock.now(),
            "proxy_task_done",
            proxy_task=name,
            state=final.stopping_state.value,
        )

    def _check_latency(self, name: str) -> None:
        """Record the latency correlation; a success that fails its target fails."""
        latencies = self.latencies(name)
        lat = rank_correlation(latencies, list(self.references.latencies))
        summary = _tau_summary(latencies, list(self.references.latencies), self.settings.confidence)
        stats = self._set_stats(
            name,
            latency_correlation=lat.tau,
            latency_correlation_p_value=lat.p_value,
            latency_interval=(summary.ci_low, summary.ci_high),
        )
        if stats.stopping_state.is_success and self._latency_fails(lat.tau):
            self._set_stats(name, stopping_state=StoppingState.FAILED_DESIRED_LATENCY_CORRELATION)

    def _latency_fails(self, tau: float | None) -> bool:
        """True when a latency target is set and ``tau`` misses it (or is unknown)."""
        desired = self.settings.desired_latency_correlation
        return desired is not None and (tau is None or tau < desired)

    def _rescore_finished(self) -> None:
        """Apply the current thresholds to finished configs, from their recorded statistics."""
        ordered = [n for n in self.finish_order if n in self.done]
        for name in ordered + sorted(self.done - set(ordered)):  # in the order they finished
            if name in self.tasks:
                self._rescore(name)
        self._choose_best()

    def _rescore(self, name: str) -> None:
        s = self.settings
        recorded = self._stats(name)
        stats = with_uncertainty(
            recorded.step_stats,
            s.confidence,
            s.desired_accuracy_correlation,
            self._total_steps(name),
        )
        self._set_stats(name, steps=stats)
        if recorded.stopping_state is StoppingState.EXCESS_TRIAL_FAILURES:
            return
        decision = self._scan(name, stats, rescore=True)
        self._set_stats(name, rescore_note=None)
        if decision.stopped:
            self._record_decision(name, stats, decision)
        elif recorded.stopping_state in _STOPPED_BY_TIME:
            pass  # stopped by a time limit or another proxy's time, not by the rule: kept
        else:
            self._set_stats(
                name,
                stopping_state=StoppingState.RAN_TILL_COMPLETION,
                final_training_steps=None,
                final_training_time_in_hours=None,
            )
            cut = stats.training_steps[-1] if stats.training_steps else None
            if cut is not None and cut < self._budget_end(name):
                note = (
                    f"the recorded curves end at step {cut}, where the earlier settings "
                    "stopped the proxy; the new settings need more evidence than that. "
                    "Train it further in a new search to decide."
                )
                self._set_stats(name, rescore_note=note)
                self.ctx.display.message(f"proxy task {name}: {note}")
        latency = self._stats(name).latency_correlation
        if decision.stopped and decision.state.is_success and self._latency_fails(latency):
            self._set_stats(name, stopping_state=StoppingState.FAILED_DESIRED_LATENCY_CORRELATION)

    def _choose_best(self) -> None:
        results = {
            name: (self._stats(name).stopping_state, self._stats(name).final_training_time_in_hours)
            for name in self.done
        }
        self.best_proxy_task_name = best_proxy_task(results) or ""
        if self.is_finished():
            self._write_recommendation()

    # ---- outputs ------------------------------------------------------------------------------

    def _render(self, name: str) -> None:
        from proxytask.report.data import correlation_scatter_figure, search_curves_figure
        from proxytask.report.plots import render_correlation_scatter, render_search_curves

        self._plotted.add(name)
        stats = self._stats(name)
        prefix = storage.join(self.ctx.controller_dir, f"proxy_task_{name}")
        fig = search_curves_figure(
            name,
            stats.step_stats,
            desired_correlation=self.settings.desired_accuracy_correlation,
            desired_accuracy=self.settings.desired_accuracy,
            stop_step=stats.final_training_steps,
            stop_time_hrs=stats.final_training_time_in_hours,
            stopping_state=stats.stopping_state.value,
            metric_label=self.settings.mode.label,
        )
        background.submit(render_search_curves, fig, prefix + _CONFIG_PLOTS[0])
        labels = [f"{i}" for i in self.references.trial_ids]
        # the evaluation where the stopping rule held (not the interpolated step before it)
        at_step = stats.deciding_step
        proxy_at_stop = self.accuracies_at_step(name, at_step)
        acc = _tau_summary(
            proxy_at_stop, list(self.references.accuracies), self.settings.confidence
        )
        # the interval the search recorded there (adjusted for repeated looks), as printed
        recorded = stats.interval_at(at_step)
        interval = acc.interval if recorded is None else recorded.interval
        metric = self.settings.mode.label
        background.submit(
            render_correlation_scatter,
            correlation_scatter_figure(
                f"{name}: proxy vs full-training {metric} at step {at_step}",
                list(self.references.accuracies),
                proxy_at_stop,
                labels,
                acc.tau,
                acc.p_value,
                f"full-training {metric}",
                f"proxy-task {metric}",
                interval,
                "adjusted for repeated looks" if recorded is not None and interval else "",
            ),
            prefix + _CONFIG_PLOTS[1],
        )
        low, high = stats.latency_interval or (None, None)
        latency_interval = (
            None if low is None or high is None else (low, high, self.settings.confidence)
        )
        background.submit(
            render_correlation_scatter,
            correlation_scatter_figure(
                f"{name}: latency",
                list(self.references.latencies),
                self.latencies(name),
                labels,
                stats.latency_correlation,
                stats.latency_correlation_p_value,
                "full-training latency",
                "proxy-task latency",
                latency_interval,
            ),
            prefix + _CONFIG_PLOTS[2],
        )

    def accuracies_at_step(self, name: str, step: int | None) -> list[float | None]:
        """Each reference model's accuracy under config ``name`` at 0-based ``step``
        (interpolated between evaluations; None where a trial has no value there)."""
        return self._accuracies_of(self._keys(name), step)

    def latencies(self, name: str) -> list[float | None]:
        """Each reference model's latency as its trial under config ``name`` reported it."""
        return [m.latency if m is not None and m.has_latency else None for m in self._metrics(name)]

    # ---- held-out models and zero-training baselines ------------------------------------------

    def _check_holdout(self, best: str) -> None:
        """Train the winner on the held-out models to its steps; then its tau on them."""
        job = f"holdout_{best}"
        refs = self.references
        steps = self._stats(best).final_training_steps
        keys = [f"{job}/{n}" for n in range(1, len(refs.holdout_trial_ids) + 1)]
        if keys[0] not in self.tracker.records:
            cont = Continuation(refs.job_dir, refs.holdout_trial_ids, use_checkpoint=False)
            args = {**self.ctx.baseline_args, **config_args(self.configs[best])}
            for number in range(1, len(keys) + 1):
                self.tracker.plan(job, number, None, args, target_pct=0.0, continuation=cont)
            self.ctx.display.message(
                f"held-out check: training {len(keys)} held-out models with {best} to step {steps}"
            )
            return
        for key in keys:  # stop each once it has passed the recommended step
            metrics = self.tracker.progress(key).metrics
            points = metrics.training_accuracy_over_steps if metrics is not None else ()
            record = self.tracker.records[key]
            passed = bool(points) and steps is not None and points[-1].training_step >= steps
            if passed and not record.stop_requested and record.state == TrialRecordState.RUNNING:
                self.tracker.request_stop(key)
        if not self.tracker.all_terminal(keys):
            return
        proxy = self._accuracies_of(keys, steps)
        check = HoldoutCheck(
            summary=_tau_summary(proxy, list(refs.holdout_accuracies), self.settings.confidence),
            proxy_task_name=best,
            final_training_step=steps,
            proxy_accuracies=tuple(proxy),
            full_accuracies=tuple(refs.holdout_accuracies),
            trial_ids=tuple(refs.holdout_trial_ids),
        )
        self.holdout[best] = check
        tau = check.summary.tau
        self.ctx.display.message(
            f"held-out check of {best}: Kendall tau-b {fmt_number(tau)} on "
            f"{len(keys)} held-out models"
        )
        self.events.append(self.ctx.clock.now(), "holdout_done", proxy_task=best, tau=tau)
        self._write_recommendation()

    def _accuracies_of(self, keys: Sequence[str], step: int | None) -> list[float | None]:
        from proxytask.trainer.contract import get_accuracy_at_pct

        out: list[float | None] = []
        for key in keys:
            metrics = self.tracker.progress(key).metrics
            if step is None or metrics is None or not metrics.training_accuracy_over_steps:
                out.append(None)
                continue
            point = metrics.training_accuracy_over_steps[-1]
            total = (point.training_step + 1) * 100.0 / point.training_step_pct
            out.append(get_accuracy_at_pct(metrics, 100.0 * (step + 1) / total))
        return out

    def zero_training_baselines(self) -> dict[str, TauSummary]:
        """Each zero-training score's Kendall tau-b against full training, with its interval.

        The scores (parameters, FLOPs, synflow, grad_norm, NASWOT, jacob_cov: whatever the
        trainer saved as ``zero_cost.*`` final metrics) cost no training at all, so a trained
        proxy task is only worth its cost when it ranks the reference models better. A score
        predicts a high accuracy, so under ``--metric-mode min`` (a loss) it is negated: its tau
        then says how well it predicts a low loss, comparable with the trained proxy's.
        """
        if self._zero_training is None:  # references and settings never change: once
            refs = self.references
            names = sorted({n for scores in refs.zero_cost_scores for n in scores})
            sign = self.settings.mode.sign
            self._zero_training = {
                name: _tau_summary(
                    [_signed(scores.get(name), sign) for scores in refs.zero_cost_scores],
                    list(refs.accuracies),
                    self.settings.confidence,
                )
                for name in names
            }
        return self._zero_training

    def _zero_training_verdict(self, best: str) -> ZeroTrainingComparison | None:
        baselines = {k: v for k, v in self.zero_training_baselines().items() if v.tau is not None}
        if not baselines:
            return None
        name, top = max(baselines.items(), key=lambda kv: kv[1].tau or 0.0)
        assert top.tau is not None
        stats = self._stats(best)
        trained = stats.tau_at(stats.deciding_step)
        beats = trained is not None and trained > top.tau
        interval = stats.interval_at(stats.deciding_step)
        low = interval.ci_low if interval else None
        clear = beats and low is not None and top.ci_high is not None and low > top.ci_high
        return ZeroTrainingComparison(
            best_zero_training_score=name,
            best_zero_training_tau=top.tau,
            trained_proxy_tau=trained,
            trained_proxy_beats_zero_training=beats,
            clearly_beats=clear,
            message=_verdict_message(best, trained, name, top.tau, beats, clear),
        )

    def recommendation(self) -> dict[str, Any]:
        """What to set (the JSON form of :meth:`recommended`)."""
        return self.recommended().to_json()

    def recommended(self) -> Recommendation:
        """What to set: the best proxy task, its args, steps and decay steps, its speed-up."""
        best = self.best_proxy_task_name
        others = {
            n: self._stats(n).stopping_state.value or "not finished"
            for n in self._started()
            if n != best
        }
        if not best:
            return Recommendation(best_proxy_task_name="", others=others)
        stats = self._stats(best)
        return Recommendation(
            best_proxy_task_name=best,
            others=others,
            trainer_args={**dict(self.ctx.baseline_args), **config_args(self.configs[best])}
            if best in self.configs
            else None,
            final_training_step=stats.final_training_steps,
            final_training_time_in_hours=stats.final_training_time_in_hours,
            # at the evaluation where the rule held (the point rule interpolates the steps
            # back from it, but no evaluation exists there)
            accuracy_correlation_at_stop=stats.tau_at(stats.deciding_step),
            full_training_hours_per_model=self.references.full_training_hours,
            stopping_rule=self.settings.stopping_rule,
            confidence=self.settings.reported_confidence,
            interval_at_stop=stats.interval_at(stats.deciding_step),
            holdout=self.holdout.get(best),
            zero_training_baselines=self.zero_training_baselines(),
            zero_training_comparison=self._zero_training_verdict(best),
            winner_stability=self._stability_summary(),
        )

    def _stability_summary(self) -> StabilityResult | None:
        if not self.is_finished():
            return None
        if self._stability_result is None:
            self._stability_result = self.stability()
        return self._stability_result

    def _write_recommendation(self) -> None:
        self._stability_result = self.stability() if self.is_finished() else None
        if self.is_finished():
            self._render_summary()
        storage.write_json_atomic(
            storage.join(self.ctx.controller_dir, RECOMMENDATION),
            self.recommendation(),
            durable=True,
        )

    def _render_summary(self) -> None:
        """The search-wide figures: time per proxy, tau vs zero-training, winner stability."""
        from proxytask.report.data import (
            TRAINED_PROXY,
            ZERO_TRAINING,
            proxy_comparison_figure,
            stability_figure,
            tau_comparison_figure,
        )
        from proxytask.report.plots import (
            render_proxy_comparison,
            render_stability,
            render_tau_comparison,
        )

        names = self._started()
        cdir = self.ctx.controller_dir
        for name in sorted(self.done - self._plotted):
            prefix = storage.join(cdir, f"proxy_task_{name}")
            if not all(storage.exists(prefix + suffix) for suffix in _CONFIG_PLOTS):
                self._render(name)  # a killed run had not drawn them yet
        rows = [
            (
                name,
                self._stats(name).final_training_time_in_hours,
                self._stats(name).stopping_state.value,
                name == self.best_proxy_task_name,
            )
            for name in names
        ]
        background.submit(
            render_proxy_comparison,
            proxy_comparison_figure(rows),
            storage.join(cdir, COMPARISON_PLOT),
        )
        tau_rows: list[tuple[str, str, float | None, float | None, float | None]] = [
            (name, TRAINED_PROXY, *self._stats(name).trained_tau()) for name in names
        ]
        for name, check in self.zero_training_baselines().items():
            tau_rows.append((name, ZERO_TRAINING, check.tau, check.ci_low, check.ci_high))
        background.submit(
            render_tau_comparison,
            tau_comparison_figure(
                tau_rows,
                desired_correlation=self.settings.desired_accuracy_correlation,
                confidence=self.settings.confidence,
            ),
            storage.join(cdir, TAU_PLOT),
        )
        stability = self._stability_result
        if stability is not None:
            background.submit(
                render_stability, stability_figure(stability), storage.join(cdir, STABILITY_PLOT)
            )

    def stability(self) -> StabilityResult | None:
        """How often each proxy would win if the reference set were resampled (200 draws).

        Each config is judged on its own curves as recorded (no early stop against the best),
        with the search's rule and thresholds. None without a correlation threshold.
        """
        from proxytask.stats.stability import winner_frequencies

        s = self.settings
        if s.desired_accuracy_correlation is None:
            return None
        names = self._started()
        if not names:
            return None
        scan = {
            "desired_accuracy_correlation": s.desired_accuracy_correlation,
            "desired_accuracy": s.desired_accuracy,
            "training_time_hrs_limit": s.training_time_hrs_limit,
            "rule": s.stopping_rule,
            "confidence": s.confidence,
            "persistence": s.persistence,
            "metric_mode": s.metric_mode,
        }
        curves = {name: self._metrics(name) for name in names}
        return winner_frequencies(curves, list(self.references.accuracies), scan, draws=200)

    def summary(self) -> list[str]:
        """The answer in lines for the terminal."""
        lines = [_summary_line(name, self.tasks.get(name)) for name in self.order]
        rec = self.recommended()
        if not rec.found:
            lines.append("no proxy task met the targets; see each one's state above.")
            return lines
        lines.append(f"best proxy task: {rec.best_proxy_task_name}  {rec.trainer_args}")
        evidence = _evidence_line(rec, self.settings.desired_accuracy_correlation)
        if evidence:
            lines.append(evidence)
        lines.append(
            f"set training steps = {rec.training_steps}, cosine-decay steps = {rec.training_steps}"
        )
        if rec.speedup:
            lines.append(f"cost per trial: {rec.speedup:.1f}× cheaper than full training")
        return lines

    # ---- persistence and display --------------------------------------------------------------

    def state(self) -> SearchState:
        """The search's state as it is saved."""
        return SearchState(
            proxy_tasks=dict(self.tasks),
            best_proxy_task_name=self.best_proxy_task_name,
            holdout=dict(self.holdout),
            zero_training_baselines=self.zero_training_baselines(),
            order=tuple(self.order),
            done=frozenset(self.done),
            finish_order=tuple(self.finish_order),
            config_args={n: config_args(c) for n, c in self.configs.items()},
            settings=self.settings,
            reference_trial_ids=tuple(self.references.trial_ids),
            model_selection_dir=self.references.model_selection_dir,
            trials=tuple(self.tracker.records.values()),
        )

    def state_json(self) -> dict[str, Any]:
        """The content of ``SEARCH_CONTROLLER_STATE.json`` (:meth:`state` in its JSON form).

        Built afresh each step (no JSON round trip: the unchanged trial records stay the same
        objects, so the state file re-encodes only the records that changed)."""
        return self.state().to_json()

    def snapshot(self) -> ProgressSnapshot:
        """The live display: the active configs' trials, current tau and time vs limit."""
        keys: list[str] = []
        titles = []
        for name in self._active():
            keys.extend(self._keys(name))
            steps = self._stats(name).step_stats
            taus = [t for t in steps.accuracy_correlation_over_step if t is not None]
            times = [t for t in steps.median_training_time_hrs_over_step if t is not None]
            tau = f"{taus[-1]:.2f}" if taus else "-"
            spent = f"{times[-1] * 3600:.0f} s" if times else "-"
            limit = self.settings.training_time_hrs_limit
            titles.append(
                f"{name}: tau {tau}, time {spent}" + (f" of {limit * 3600:.0f} s" if limit else "")
            )
        done = len(self.done)
        return ProgressSnapshot(
            title=f"proxy-task search — {done}/{len(self.order)} done; " + "; ".join(titles),
            rows=base.progress_rows(self.tracker, keys),
            elapsed_secs=self.ctx.clock.now() - self.started_at,
        )


#: Stops a re-score cannot reproduce from a proxy's own statistics: they came from a time
#: limit or from another proxy's time, so a re-score that does not stop the proxy keeps them.
_STOPPED_BY_TIME = frozenset(
    {StoppingState.EXCEEDED_TRAIN_TIME_LIMIT, StoppingState.EXCEEDED_BEST_TRAIN_TIME}
)


def _signed(value: float | None, sign: float) -> float | None:
    """``value`` times ``sign`` (+1 or -1), None kept; +1 returns it unchanged."""
    return value if value is None or sign > 0 else -value


def _check_same_args(configs: Sequence[ProxyTaskConfig], state: SearchState) -> None:
    """A resumed config must keep the trainer args it was started with."""
    for config in configs:
        saved = state.config_args.get(config.name)
        if saved is not None and dict(saved) != config_args(config):
            raise UsageError(
                f"proxy-task config {config.name!r} must keep its trainer args on resume, got "
                f"{config_args(config)} instead of {dict(saved)}. Give the changed config a "
                "new name."
            )


def _summary_line(name: str, entry: ProxyTaskEntry | None) -> str:
    """One config's line of :meth:`SearchController.summary`."""
    if entry is None:
        return f"  {name}: not started"
    stats = entry.stats
    hours = stats.final_training_time_in_hours
    return (
        f"  {name}: {stats.stopping_state.value or 'running'}"
        + (f", {stats.final_training_steps} steps" if stats.final_training_steps else "")
        + (f", {hours * 3600:.1f} s per model" if hours else "")
    )


def _verdict_message(
    best: str, trained: float | None, name: str, top: float, beats: bool, clear: bool
) -> str:
    """The zero-training comparison in words."""
    if not beats:
        return (
            f"a zero-training score is as good: {name} ranks the reference models with "
            f"Kendall tau-b {fmt_number(top)}, the trained proxy {best} with "
            f"{fmt_number(trained)}. Consider ranking by {name} (no training) instead"
        )
    return (
        f"the trained proxy {best} (Kendall tau-b {fmt_number(trained)}) ranks the reference "
        f"models better than the best zero-training score, {name} ({fmt_number(top)})"
        + (
            ""
            if clear
            else "; their intervals overlap, so with these reference models the advantage "
            "is not established"
        )
    )


def _evidence_line(rec: Recommendation, threshold: float | None) -> str | None:
    """The winner's Kendall tau-b at its deciding evaluation, with its interval (or None)."""
    tau, interval = rec.accuracy_correlation_at_stop, rec.interval_at_stop
    if tau is None:
        return None
    line = f"Kendall tau-b {tau:.3f} at the deciding evaluation"
    if interval is not None and interval.ci_high is not None:
        level = f"{interval.confidence * 100:g} % " if interval.confidence is not None else ""
        line += (
            f", {level}interval adjusted for repeated looks "
            f"[{interval.ci_low:.3f}, {interval.ci_high:.3f}]"
        )
        prob = interval.probability_above_threshold
        if prob is not None and threshold is not None:
            line += f", P(true tau > {threshold:g}) = {prob:.2f}"
    return line


def _truncate(stats: StepStats, last_step: int) -> StepStats:
    """The statistics of the steps up to ``last_step``."""
    keep = sum(1 for s in stats.training_steps if s <= last_step)
    return dataclasses.replace(
        stats,
        **{
            f.name: getattr(stats, f.name)[:keep]
            for f in dataclasses.fields(stats)
            if isinstance(getattr(stats, f.name), tuple)
        },
    )


def _evaluation_pcts(metrics: TrialTrainingMetrics | None) -> list[float]:
    """The pct of each evaluation of a curve, in order ([] without one)."""
    if metrics is None:
        return []
    return [p.training_step_pct for p in metrics.training_accuracy_over_steps]


def _pace_pct(curves: Sequence[TrialTrainingMetrics]) -> float | None:
    """The pct between two evaluations of these curves (their smallest step apart; the
    first evaluation's pct when each has one; None without any)."""
    gaps = []
    for metrics in curves:
        pcts = _evaluation_pcts(metrics)
        gaps += [b - a for a, b in itertools.pairwise(pcts) if b - a > PCT_TOLERANCE]
        if len(pcts) == 1:
            gaps.append(pcts[0])
    return min(gaps) if gaps else None


#: Each finished proxy's plots: ``proxy_task_<name>`` + these (drawn at its end).
_CONFIG_PLOTS = ("_curves.png", "_accuracy_correlation.png", "_latency_correlation.png")


def stage_job(name: str, stage: int) -> str:
    """The job of config ``name``'s trials in ``stage`` (1-based): ``proxy_<name>`` first."""
    return f"proxy_{name}" if stage == 1 else f"proxy_{name}{STAGE_SEPARATOR}{stage}"


def config_of_job(job: str) -> str:
    """The config a trial job belongs to (``proxy_<name>[@stage<s>]`` → ``<name>``)."""
    return job.removeprefix("proxy_").split(STAGE_SEPARATOR, 1)[0]


def config_args(config: ProxyTaskConfig) -> dict[str, str]:
    """A proxy-task config's trainer args as strings (as the trials get them)."""
    return {str(k): str(v) for k, v in config.trainer_args.items()}


def _tau_summary(
    proxy: Sequence[float | None], full: Sequence[float | None], confidence: float
) -> TauSummary:
    """Kendall tau-b of two score lists with its interval (None where it cannot be computed)."""
    from proxytask.stats.uncertainty import MIN_MODELS_FOR_INTERVAL, tau_interval

    corr = rank_correlation(list(proxy), list(full))
    low = high = None
    if corr.tau is not None and corr.n >= MIN_MODELS_FOR_INTERVAL:
        interval = tau_interval(corr.tau, corr.n, confidence)
        low, high = interval.low, interval.high
    return TauSummary(corr.tau, corr.p_value, corr.n, low, high, confidence, corr.reason)
