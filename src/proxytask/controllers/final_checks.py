"""Final checks: measure the baseline model under a model-scaling proxy task.

A proxy task that shrinks the model (width, depth, image size) also shrinks its latency, so a
latency constraint written for the full model is too loose in the search. SPEC §5: measure
the scaled baseline's latency and use a correspondingly stricter constraint. This controller
trains the baseline architecture once under the recommended proxy task (one proxy-task trial:
cheap by construction), reads its latency the same way model selection did (the trainer's
report, a named final metric, or a latency worker) and writes ``FINAL_CHECKS_STATE.json``.

:func:`stricter_constraint` turns the two baseline latencies into the constraint to use.
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
from proxytask.controllers.state import TrialRecordState
from proxytask.controllers.tracker import TrialTracker
from proxytask.core import layout
from proxytask.core.errors import UsageError
from proxytask.report.progress import ProgressSnapshot
from proxytask.trainer.contract import get_accuracy_at_pct, read_final_metrics

__all__ = [
    "FINAL_CHECKS_STATE",
    "LATENCY_SOURCES",
    "ScaledBaselineController",
    "ScaledBaselineSettings",
    "stricter_constraint",
]

FINAL_CHECKS_STATE = layout.FINAL_CHECKS_STATE
SCALED_BASELINE_JOB = layout.SCALED_BASELINE_JOB
LATENCY_SOURCES = ("trainer", "worker", "none")


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


class ScaledBaselineController(Controller):
    """Trains the baseline architecture once under a proxy task and reads its latency.

    Example::

        ctl = ScaledBaselineController.create(ctx, settings)
        ctl.run()
        print(ctl.result["latency"])
    """

    kind = layout.KIND_FINAL_CHECKS

    def __init__(
        self,
        ctx: ControllerContext,
        tracker: TrialTracker,
        settings: ScaledBaselineSettings,
        state: Mapping[str, Any],
    ) -> None:
        super().__init__(ctx, tracker)
        self.settings = settings
        self.phase: str = state.get("phase", "train")
        self.result: dict[str, Any] | None = state.get("result")
        self.latency_wait_started: float | None = state.get("latency_wait_started")

    @classmethod
    def create(
        cls, ctx: ControllerContext, settings: ScaledBaselineSettings
    ) -> ScaledBaselineController:
        """A new check in ``ctx.controller_dir`` (which must not hold one yet)."""
        tracker = new_tracker(ctx, FINAL_CHECKS_STATE, "proxytask run")
        ctl = cls(ctx, tracker, settings, {})
        ctl.events.append(ctx.clock.now(), "controller_started", controller=cls.kind)
        ctl._persist()
        return ctl

    @classmethod
    def resume(
        cls, ctx: ControllerContext, settings: ScaledBaselineSettings
    ) -> ScaledBaselineController:
        """Continue a check after a crash (a running trial is restarted or accepted)."""
        state, tracker = saved_tracker(
            ctx, FINAL_CHECKS_STATE, "proxytask run", "a final-checks dir"
        )
        ctl = cls(ctx, tracker, settings, state)
        replanned = tracker.recover()
        ctl.events.append(
            ctx.clock.now(), "controller_resumed", controller=cls.kind, restarted=replanned
        )
        ctl._persist()
        return ctl

    @property
    def key(self) -> str:
        """The tracker key of the one trial."""
        return f"{SCALED_BASELINE_JOB}/1"

    def is_finished(self) -> bool:
        """True once the latency is known, or known to be unavailable."""
        return self.phase == "done"

    def step(self) -> None:
        """Poll → decide → act → persist."""
        if self.is_finished():
            return
        self.tracker.poll()
        if self.key not in self.tracker.records:
            self.tracker.plan(
                SCALED_BASELINE_JOB,
                1,
                self.settings.baseline_architecture,
                {**self.ctx.baseline_args, **self.settings.proxy_trainer_args},
            )
        record = self.tracker.records[self.key]
        if record.state in (TrialRecordState.SUCCEEDED, TrialRecordState.FAILED):
            self._finish()
        self._persist()
        self.tracker.launch_planned()
        self._persist()

    def _finish(self) -> None:
        record = self.tracker.records[self.key]
        metrics = self.tracker.progress(self.key).metrics
        base = {
            "trial_dir": record.trial_dir,
            "state": record.state,
            "proxy_task_name": self.settings.proxy_task_name,
            "trainer_args": {**self.ctx.baseline_args, **self.settings.proxy_trainer_args},
            "accuracy": get_accuracy_at_pct(metrics, 100.0),
        }
        if record.state == TrialRecordState.FAILED:
            self._done(
                {
                    **base,
                    "latency": None,
                    "error": f"the scaled baseline failed ({record.cause}): {record.message}",
                }
            )
            return
        latency, error = self._latency(record.trial_dir, metrics)
        if latency is None and error is None:
            return  # waiting for a latency worker
        self._done({**base, "latency": latency, "error": error})

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

    def _done(self, result: dict[str, Any]) -> None:
        self.result = result
        self.phase = "done"
        self.events.append(
            self.ctx.clock.now(), "scaled_baseline_done", latency=result.get("latency")
        )
        latency = fmt_number(result.get("latency"))
        self.ctx.display.message(
            f"  scaled baseline under {self.settings.proxy_task_name}: latency {latency}"
            + (f" ({result['error']})" if result.get("error") else "")
        )

    def summary(self) -> list[str]:
        """The answer in lines for the terminal."""
        if self.result is None:
            return ["final checks in progress"]
        line = (
            f"baseline under {self.settings.proxy_task_name}: latency "
            f"{fmt_number(self.result.get('latency'))}"
        )
        return [line] + ([f"problem: {self.result['error']}"] if self.result.get("error") else [])

    def _state(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "proxy_task_name": self.settings.proxy_task_name,
            "baseline_architecture": dict(self.settings.baseline_architecture),
            "result": self.result,
            "latency_wait_started": self.latency_wait_started,
            "trials": [r.to_dict() for r in self.tracker.records.values()],
        }

    def _persist(self) -> None:
        self.save_if_changed(FINAL_CHECKS_STATE, self._state())

    def snapshot(self) -> ProgressSnapshot:
        """The live display: the one trial."""
        keys = list(self.tracker.records)
        return ProgressSnapshot(
            title=f"final checks — baseline under {self.settings.proxy_task_name}",
            rows=progress_rows(self.tracker, keys),
            elapsed_secs=self.ctx.clock.now() - self.started_at,
        )
