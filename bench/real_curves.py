"""Real-curves benchmark: the real proxy-task search replayed on NAS-Bench-201's learning curves.

Run: ``.venv/bin/python bench/real_curves.py [--draws 500] [--seed 0] [--cells GLOB,...]
[--workers 2] [--max-minutes M] [--out bench/results]`` writes ``real_curves.json`` (every
number, the machine, versions, date, wall time, draws and seed), ``real_curves.md`` (the
tables) and ``real_curves_draws.json.gz`` (every search's outcome) under ``--out``;
``--from-draws FILE`` recomputes the first two from a saved draws file without searching.

**What runs.** One *draw* is one proxy-task search: n reference models drawn without
replacement from the 200 architectures of ``examples/nasbench201/curves.json`` (uniformly: no
model selection, whose spreading step would favour easy-to-rank sets), their full-training
accuracy the table's epoch-200 value (the seed mean, as model selection records it), and the
real :class:`~proxytask.controllers.search.SearchController` searching one proxy-task config,
"validation accuracy every ``e`` epochs" (``e`` = 1 or 10, the table's two validation curve
kinds), on the real :class:`~proxytask.executors.replay.ReplayExecutor` with a
:class:`~proxytask.core.clock.SimulatedClock`. All n models train in parallel at their own
recorded speeds (``max_parallel_trials = n``), as in a real search. The controller dirs live in
a fresh local directory per draw (under ``/dev/shm`` where it exists: in RAM; an fsspec
``memory://`` store looks files up by scanning them all, which made a search 1.5× slower) and
are deleted after it.

**Speed-ups that change no decision** (:func:`speedups`, undone on exit): the search's PNG
plots are not rendered, the winner-stability resampling (an output, never read by a decision)
is skipped, the search's state file is not written (the benchmark reads the controller's own
objects; nothing in a search reads its state file back), and ``scipy.stats.kendalltau`` /
``scipy.stats.norm.ppf`` are memoised (the search recomputes every step's tau at every
update; the memo returns the very same values). Together they make a search about 4× faster.

**A cell** is (n, e, rule): n ∈ {10, 15, 20}, e ∈ {1, 10}, and the rules ``point`` (first
evaluation with tau ≥ 0.65) and ``confident(c, p)`` for (0.85, 2) (the default), (0.9, 2),
(0.85, 3). The same draws of architectures serve every cell with the same n (paired data):
draw d of size n uses ``np.random.default_rng([seed, n, d])``.

**The truth.** ``true_tau[e]`` is the Kendall tau-b over all 200 architectures between the
validation accuracy after epoch e (the every-epoch curve) and after epoch 200.

**Per cell:** pass rate (state "Met desired correlation"); *false pass*: a pass whose
recommended step (``final_training_steps`` + 1 epochs; interpolated by the point rule) has a
true tau below 0.65, as a share of all draws, with a Wilson 95 % interval; *true pass*: a pass
whose recommended step's true tau is ≥ 0.65; the share of draws with no recommendation (and of
those, the ones the futility rule abandoned); the recommended epoch's median and quartiles over
the passes; the proxy's training hours per model at the recommendation
(``final_training_time_in_hours``) and the hours the whole search trained (every trial, including
the cycles it ran after the decision until it was stopped), from the table's recorded times;
**coverage**: how often the interval the search recorded at its deciding step
(``ProxyTaskStats.interval_at(deciding_step)``, at the search's confidence, 0.85 for the point
rule too, adjusted for the repeated looks as every interval the search records:
:mod:`proxytask.stats.uncertainty`) contains the true tau at that step; and *partial
evidence*: how often the deciding step had fewer than n valid models (a proxy stopped before
its slowest model reached it).

**The re-score** (the known issue of live decisions): the same rule applied by the library's
``step_stats`` and ``scan_stopping`` to the drawn models' complete curves, i.e. what the search
would decide if every model had reported every step before it decided; its false-pass and
stopping epoch, and how often it agrees with the live search (same pass/no-pass and, for a
pass, the same recommended epoch). Also counted: confident passes whose probability recorded at
the deciding step is below the confidence (the statistics were refreshed after the decision,
so the recorded evidence is not what the rule saw).

**Fixed-epoch coverage** (a diagnostic apart from any stopping rule): on the same draws, the
library's one-look interval (:func:`proxytask.stats.search.rank_correlation` and
:func:`proxytask.stats.uncertainty.tau_interval` at 0.85, no adjustment for repeated looks) at
epochs 5, 10, 20, 50 and 100, its coverage of the true tau, and the coverage on draws holding
no chance-level architecture (final accuracy < 0.15: 9 of the 200 stay at chance).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import fnmatch
import functools
import gzip
import json
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats

from proxytask.controllers.base import ControllerContext
from proxytask.controllers.search import ReferenceModels, SearchController, SearchSettings
from proxytask.controllers.tracker import TrialSettings
from proxytask.core.clock import SimulatedClock
from proxytask.core.proxies import ProxyTaskConfig
from proxytask.executors.command import parse_trainer_command
from proxytask.executors.replay import ReplayExecutor, ReplayTable
from proxytask.stats.search import rank_correlation, step_stats
from proxytask.stats.stopping import StoppingState, scan_stopping
from proxytask.stats.uncertainty import MIN_MODELS_FOR_INTERVAL, probability_above, tau_interval
from proxytask.trainer import contract as trainer
from proxytask.trainer.contract import AccuracyAtStep, TrainingTime, TrialTrainingMetrics

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # run as a script: `bench.` imports need the repository root
    sys.path.insert(0, str(_ROOT))

from bench.stopping_rules import machine_info, wilson_interval  # noqa: E402

#: The replay table of examples/nasbench201 (200 architectures × 200 epochs).
TABLE_PATH = _ROOT / "examples" / "nasbench201" / "curves.json"
EPOCHS = 200
#: Where each draw's controller dirs live (RAM where the system has it).
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else None
THRESHOLD = 0.65
NUM_MODELS = (10, 15, 20)
EVAL_EVERY = (10, 1)
#: (label, rule, confidence, persistence); confidence 0.85 also sets the point rule's intervals.
RULES = (
    ("point", "point", 0.85, 2),
    ("confident-0.85-2", "confident", 0.85, 2),
    ("confident-0.90-2", "confident", 0.90, 2),
    ("confident-0.85-3", "confident", 0.85, 3),
)
#: The cells measured first (and the only ones when time is short).
KEY_CELLS = ("n10-e10-point", "n10-e10-confident-0.85-2", "n10-e1-point", "n10-e1-confident-0.85-2")
FIXED_EPOCHS = (5, 10, 20, 50, 100)
FIXED_CONFIDENCE = 0.85
#: An architecture whose final accuracy is below this stays at chance (CIFAR-10: 10 %).
CHANCE = 0.15
CHUNK = 25
#: Every draw's row, kept so the summaries can be recomputed (``--from-draws``).
DRAWS_FILE = "real_curves_draws.json.gz"


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Data:
    """What the benchmark reads of the table: per architecture, its every-epoch validation
    curve, its hours per epoch; and the true tau after each epoch."""

    valid: np.ndarray  # (200 archs, 200 epochs): accuracy after epoch e at [:, e - 1]
    hours_per_epoch: np.ndarray  # (200,)
    true_tau: np.ndarray  # (201,): true_tau[e] for epoch e (index 0 unused, NaN)

    @property
    def finals(self) -> np.ndarray:
        """Each architecture's full-training (epoch-200) accuracy."""
        return self.valid[:, -1]


def load_data(path: Path = TABLE_PATH) -> Data:
    """Read the every-epoch validation curves of the table and compute the truth."""
    raw = json.loads(path.read_text())
    valid = np.full((200, EPOCHS), np.nan)
    hours = np.full(200, np.nan)
    for curve in raw["curves"]:
        args = curve["match"]["trainer_args"]
        if args != {"eval_every_epochs": 1, "eval_split": "valid"}:
            continue
        index = int(curve["match"]["nas_params"]["nb201_index"])
        valid[index] = [p[1] for p in curve["points"]]
        hours[index] = curve["points"][0][2] / 3600.0
    if np.isnan(valid).any():
        raise ValueError(
            f"{path} must hold an every-epoch validation curve of each of the 200 "
            "architectures. Rebuild it with examples/nasbench201/build_table.py."
        )
    truth = np.full(EPOCHS + 1, np.nan)
    for epoch in range(1, EPOCHS + 1):
        truth[epoch] = scipy.stats.kendalltau(valid[:, epoch - 1], valid[:, -1], variant="b")[0]
    return Data(valid=valid, hours_per_epoch=hours, true_tau=truth)


def draw_archs(seed: int, n: int, draw: int) -> list[int]:
    """The n architectures of draw ``draw`` (the same for every cell with this n)."""
    rng = np.random.default_rng([seed, n, draw])
    return [int(i) for i in rng.choice(200, size=n, replace=False)]


# --------------------------------------------------------------------------------------------
# Speed-ups (no decision changes)
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def speedups() -> Iterator[None]:
    """No plots, no winner-stability resampling, memoised kendalltau and norm.ppf; undone on
    exit (see the module docstring)."""
    import proxytask.report.plots as plots
    import proxytask.stats.stability as stability

    saved_plots = {k: getattr(plots, k) for k in dir(plots) if k.startswith("render_")}
    saved = (stability.winner_frequencies, scipy.stats.kendalltau, scipy.stats.norm.ppf)
    own_persist = SearchController.__dict__.get("persist")  # None: the base class's
    kendalltau, ppf = saved[1], saved[2]

    @functools.lru_cache(maxsize=200_000)
    def cached_tau(xs: tuple[float, ...], ys: tuple[float, ...], variant: str) -> Any:
        return kendalltau(list(xs), list(ys), variant=variant)

    def tau(x: Any, y: Any, *args: Any, variant: str = "b", **kwargs: Any) -> Any:
        if args or kwargs or not isinstance(x, list) or not isinstance(y, list):
            return kendalltau(x, y, *args, variant=variant, **kwargs)
        return cached_tau(tuple(x), tuple(y), variant)

    quantile = functools.lru_cache(maxsize=64)(ppf)

    def norm_ppf(q: Any, *args: Any, **kwargs: Any) -> Any:
        return (
            quantile(q)
            if isinstance(q, float) and not (args or kwargs)
            else ppf(q, *args, **kwargs)
        )

    for name in saved_plots:
        setattr(plots, name, lambda *a, **k: None)
    stability.winner_frequencies = lambda *a, **k: None  # type: ignore[assignment]
    scipy.stats.kendalltau = tau
    scipy.stats.norm.ppf = norm_ppf
    # the state file: the benchmark reads the controller's objects, not its files
    SearchController.persist = lambda self: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        for name, fn in saved_plots.items():
            setattr(plots, name, fn)
        stability.winner_frequencies, scipy.stats.kendalltau = saved[0], saved[1]
        del scipy.stats.norm.ppf  # the instance attribute; the class method shows again
        if own_persist is None:
            del SearchController.persist  # the base class's shows again
        else:
            SearchController.persist = own_persist  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------------
# One search
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Cell:
    """One measured setting: n reference models, evaluation every ``every`` epochs, a rule."""

    n: int
    every: int
    label: str
    rule: str
    confidence: float
    persistence: int

    @property
    def name(self) -> str:
        """``n10-e10-point``, ``n15-e1-confident-0.85-2``, ..."""
        return f"n{self.n}-e{self.every}-{self.label}"

    def settings(self) -> SearchSettings:
        """The search's settings for this cell (threshold 0.65, no other target)."""
        return SearchSettings(
            desired_accuracy_correlation=THRESHOLD,
            stopping_rule=self.rule,
            confidence=self.confidence,
            persistence=self.persistence,
        )


def all_cells() -> list[Cell]:
    """Every cell, the key cells first, then by n (10, 20, 15), interval and rule."""
    cells = [Cell(n, e, *rule) for n in NUM_MODELS for e in EVAL_EVERY for rule in RULES]
    labels = [r[0] for r in RULES]

    def priority(c: Cell) -> tuple[int, ...]:
        main = labels.index(c.label) < 2  # point and the default confident rule
        group = (
            0
            if c.name in KEY_CELLS
            else {(20, True): 1, (15, True): 2, (10, False): 3, (20, False): 4, (15, False): 5}[
                (c.n, main)
            ]
        )
        return (group, EVAL_EVERY.index(c.every), labels.index(c.label))

    return sorted(cells, key=priority)


@dataclasses.dataclass(frozen=True)
class DrawResult:
    """What one search decided and how it compares with the truth (epochs are 1-based)."""

    state: str
    recommended_epoch: int | None
    deciding_epoch: int | None
    true_tau_recommended: float | None
    interval: tuple[float, float | None] | None  # (low, high) at the deciding step
    probability: float | None  # the recorded P(true tau > threshold) there (look-adjusted)
    true_tau_interval_step: float | None
    pairs_at_decision: int | None
    proxy_hours: float | None  # final_training_time_in_hours
    spent_hours: float  # every trial's training hours
    chance_models: int
    secs: float

    @property
    def passed(self) -> bool:
        """True when the search recommended the proxy."""
        return self.state == StoppingState.MET_DESIRED_ACCURACY_CORRELATION.value

    @property
    def covered(self) -> bool | None:
        """Whether the interval at the deciding step holds the true tau (None: no interval)."""
        if self.interval is None or self.true_tau_interval_step is None:
            return None
        low, high = self.interval
        return low <= self.true_tau_interval_step <= (1.0 if high is None else high)


def _references(root: str, archs: Sequence[int], data: Data) -> ReferenceModels:
    """A model-selection dir's worth of reference models: one trial dir per architecture
    holding its ``nas_params_str.json`` (what the replayed continuation reads)."""
    job = f"{root}/model_selection/jobs/round1"
    ids = []
    for number, index in enumerate(archs, start=1):
        trainer.save_nas_params(f"{job}/{number}", {"nb201_index": index})
        ids.append(str(number))
    return ReferenceModels(
        model_selection_dir=f"{root}/model_selection",
        job_dir=job,
        trial_ids=tuple(ids),
        accuracies=tuple(float(data.finals[i]) for i in archs),
        latencies=tuple(None for _ in archs),
        training_hours=tuple(float(data.hours_per_epoch[i] * EPOCHS) for i in archs),
    )


def run_search(
    cell: Cell, archs: Sequence[int], table: ReplayTable, data: Data, root: str
) -> DrawResult:
    """One real search of the cell's proxy on the drawn architectures (``root``: a fresh dir)."""
    started = time.perf_counter()
    refs = _references(root, archs, data)
    clock = SimulatedClock()
    ctx = ControllerContext(
        controller_dir=f"{root}/search",
        executor=ReplayExecutor(table, clock, max_parallel_trials=len(archs)),
        clock=clock,
        trial_settings=TrialSettings(trainer=parse_trainer_command("replay")),
        baseline_args={},
        options={},
    )
    config = ProxyTaskConfig(
        f"valid_e{cell.every}", {"eval_every_epochs": cell.every, "eval_split": "valid"}
    )
    ctl = SearchController.create(ctx, refs, [config], cell.settings())
    ctl.run()
    stats = ctl.tasks[config.name].stats
    metrics = [ctl.tracker.progress(key).metrics for key in ctl.tracker.records]
    spent = sum(m.training_time.total_training_time_in_secs for m in metrics if m) / 3600.0
    return _result(stats, archs, data, spent, time.perf_counter() - started)


def _epoch(step: int | None) -> int | None:
    return None if step is None else step + 1


def _truth(data: Data, epoch: int | None) -> float | None:
    return None if epoch is None else float(data.true_tau[min(max(epoch, 1), EPOCHS)])


def _result(stats: Any, archs: Sequence[int], data: Data, spent: float, secs: float) -> DrawResult:
    """The search's decision (its :class:`ProxyTaskStats`) beside the truth."""
    interval = stats.interval_at(stats.deciding_step)
    steps = stats.step_stats
    pairs = None
    if stats.deciding_step is not None and stats.deciding_step in steps.training_steps:
        pairs = steps.num_pairs_over_step[steps.training_steps.index(stats.deciding_step)]
    recommended = _epoch(stats.final_training_steps)
    at = None if interval is None else _epoch(interval.training_step)
    return DrawResult(
        state=stats.stopping_state.value,
        recommended_epoch=recommended,
        deciding_epoch=_epoch(stats.deciding_step),
        true_tau_recommended=_truth(data, recommended),
        interval=None if interval is None else (interval.ci_low, interval.ci_high),
        probability=None if interval is None else interval.probability_above_threshold,
        true_tau_interval_step=_truth(data, at),
        pairs_at_decision=pairs,
        proxy_hours=stats.final_training_time_in_hours,
        spent_hours=spent,
        chance_models=int(sum(data.finals[i] < CHANCE for i in archs)),
        secs=secs,
    )


# --------------------------------------------------------------------------------------------
# Workers
# --------------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(table_path: str) -> None:
    _WORKER["table"] = ReplayTable.load(table_path)
    _WORKER["data"] = load_data(Path(table_path))
    _WORKER["speedups"] = speedups()
    _WORKER["speedups"].__enter__()


def _run_chunk(
    task: tuple[Cell, int, Sequence[int], float | None],
) -> tuple[str, list[dict[str, Any]]]:
    """Draws ``draws`` of a cell (skipping those past the deadline); JSON-ready rows."""
    cell, seed, draws, deadline = task
    rows = []
    for draw in draws:
        if deadline is not None and time.time() > deadline:
            break
        root = tempfile.mkdtemp(prefix="real_curves_", dir=SCRATCH)
        try:
            archs = draw_archs(seed, cell.n, draw)
            result = run_search(cell, archs, _WORKER["table"], _WORKER["data"], root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        rows.append(
            {
                "draw": draw,
                **dataclasses.asdict(result),
                "passed": result.passed,
                "covered": result.covered,
            }
        )
    return cell.name, rows


def run_cells(
    cells: Sequence[Cell],
    draws: int,
    seed: int,
    workers: int,
    deadline: float | None,
    table_path: Path = TABLE_PATH,
    log: bool = False,
    done: Mapping[str, set[int]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Every draw of every cell but those in ``done`` (cell name → draws already measured),
    in chunks over ``workers`` processes (1: in this process)."""
    todo = {
        c.name: [d for d in range(draws) if d not in (done or {}).get(c.name, set())] for c in cells
    }
    tasks = [  # chunk by chunk across the cells: a deadline leaves them even, not the last short
        (cell, seed, todo[cell.name][start : start + CHUNK], deadline)
        for start in range(0, draws, CHUNK)
        for cell in cells
        if todo[cell.name][start : start + CHUNK]
    ]
    rows: dict[str, list[dict[str, Any]]] = {c.name: [] for c in cells}
    started = time.perf_counter()
    if workers <= 1:
        _init_worker(str(table_path))
        try:
            finished = [_run_chunk(t) for t in tasks]
        finally:
            _WORKER.pop("speedups").__exit__(None, None, None)
    else:
        context = multiprocessing.get_context("fork")
        with context.Pool(workers, _init_worker, (str(table_path),)) as pool:
            finished = []
            for name, chunk in pool.imap_unordered(_run_chunk, tasks):
                finished.append((name, chunk))
                if log:
                    print(
                        f"{time.perf_counter() - started:7.1f} s  {name}: +{len(chunk)}",
                        file=sys.stderr,
                        flush=True,
                    )
    for name, chunk in finished:
        rows[name].extend(chunk)
    for name in rows:
        rows[name].sort(key=lambda r: r["draw"])
    return rows


# --------------------------------------------------------------------------------------------
# The re-score: the same rule on the complete curves (every model at every step)
# --------------------------------------------------------------------------------------------


def _full_metrics(index: int, every: int, data: Data) -> TrialTrainingMetrics:
    """Architecture ``index``'s whole curve as a trial that trained to the end reports it."""
    points = tuple(
        AccuracyAtStep(100.0 * epoch / EPOCHS, epoch - 1, float(data.valid[index, epoch - 1]))
        for epoch in range(every, EPOCHS + 1, every)
    )
    secs = float(data.hours_per_epoch[index]) * 3600.0 * EPOCHS
    return TrialTrainingMetrics(TrainingTime(EPOCHS, secs), -1.0, points)


def rescore(cell: Cell, archs: Sequence[int], data: Data) -> tuple[str, int | None]:
    """The state and recommended epoch of the cell's rule (the library's ``step_stats`` and
    ``scan_stopping``) on the drawn models' complete curves: what the search would decide if
    every model had reported every step before it decided."""
    metrics = [_full_metrics(i, cell.every, data) for i in archs]
    stats = step_stats(
        metrics,
        [float(data.finals[i]) for i in archs],
        confidence=cell.confidence,
        desired_accuracy_correlation=THRESHOLD,
    )
    decision = scan_stopping(
        stats,
        desired_accuracy_correlation=THRESHOLD,
        rule=cell.rule,
        confidence=cell.confidence,
        persistence=cell.persistence,
        total_steps=EPOCHS,
    )
    return decision.state.value, _epoch(decision.final_training_steps)


def _rescore_figures(
    cell: Cell, rows: Sequence[Mapping[str, Any]], seed: int, data: Data
) -> dict[str, Any]:
    """The re-score's false-pass and pass rates, and how often it agrees with the live search."""
    passed = StoppingState.MET_DESIRED_ACCURACY_CORRELATION.value
    outcomes = [rescore(cell, draw_archs(seed, cell.n, r["draw"]), data) for r in rows]
    passes = [epoch for state, epoch in outcomes if state == passed]
    false = [e for e in passes if e is not None and data.true_tau[e] < THRESHOLD]
    same = sum(
        1
        for r, (state, epoch) in zip(rows, outcomes, strict=True)
        if r["passed"] == (state == passed) and (not r["passed"] or r["recommended_epoch"] == epoch)
    )
    return {
        "pass": _rate(len(passes), len(rows)),
        "false_pass": _rate(len(false), len(rows)),
        "recommended_epoch": _quartiles([e for e in passes if e is not None]),
        "same_decision_as_live": _rate(same, len(rows)),
    }


def per_look(cell: Cell, archs: Sequence[int], data: Data) -> tuple[int | None, bool | None]:
    """The confident rule as it was before repeated looks were counted, on the complete curves:
    the first epoch at which ``probability_above`` ≥ the confidence at ``persistence``
    consecutive evaluations (each judged at the full level), and whether the one-look interval
    there holds the true tau. (None, None) when it never passes. A diagnostic: the library's
    rule spends the error budget over the evaluations (:mod:`proxytask.stats.uncertainty`)."""
    stats = step_stats(
        [_full_metrics(i, cell.every, data) for i in archs], [float(data.finals[i]) for i in archs]
    )
    passes = 0
    for step, tau, n in zip(
        stats.training_steps,
        stats.accuracy_correlation_over_step,
        stats.num_pairs_over_step,
        strict=True,
    ):
        if tau is None or n < MIN_MODELS_FOR_INTERVAL:
            continue
        passes = passes + 1 if probability_above(tau, n, THRESHOLD) >= cell.confidence else 0
        if passes >= cell.persistence:
            epoch = step + 1
            interval = tau_interval(tau, n, cell.confidence)
            return epoch, bool(interval.low <= data.true_tau[epoch] <= interval.high)
    return None, None


def _per_look_figures(
    cell: Cell, rows: Sequence[Mapping[str, Any]], seed: int, data: Data
) -> dict[str, Any] | None:
    """The confident cell's rule judged at the full level at every evaluation (see
    :func:`per_look`): its false-pass, stopping epoch and one-look interval's coverage."""
    if cell.rule != "confident":
        return None
    outcomes = [per_look(cell, draw_archs(seed, cell.n, r["draw"]), data) for r in rows]
    epochs = [e for e, _ in outcomes if e is not None]
    false = [e for e in epochs if data.true_tau[e] < THRESHOLD]
    covered = [c for e, c in outcomes if e is not None]
    return {
        "pass": _rate(len(epochs), len(rows)),
        "false_pass": _rate(len(false), len(rows)),
        "recommended_epoch": _quartiles(epochs),
        "coverage": _rate(sum(1 for c in covered if c), len(covered)),
    }


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def _rate(hits: int, total: int) -> dict[str, Any]:
    """A share with its Wilson 95 % interval (None when nothing was counted)."""
    if total == 0:
        return {"rate": None, "ci95": None, "count": 0, "of": 0}
    return {
        "rate": hits / total,
        "ci95": list(wilson_interval(hits, total)),
        "count": hits,
        "of": total,
    }


def _quartiles(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"q1": float(q1), "median": float(median), "q3": float(q3)}


def _coverage(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """How often the interval at the deciding step held the true tau, and where it missed."""
    judged = [r for r in rows if r["covered"] is not None]
    below = sum(1 for r in judged if r["true_tau_interval_step"] < r["interval"][0])
    return {
        **_rate(sum(1 for r in judged if r["covered"]), len(judged)),
        "truth_below_interval": below,
        "truth_above_interval": len(judged) - below - sum(1 for r in judged if r["covered"]),
        "mean_width": float(np.mean([r["interval"][1] - r["interval"][0] for r in judged]))
        if judged
        else None,
    }


def _below_confidence(cell: Cell, passes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Confident passes whose recorded interval at the deciding step gives a probability
    below the rule's confidence: the statistics were refreshed after the decision (late
    reports of the deciding step), so the recorded evidence is not what the rule saw."""
    if cell.rule != "confident":
        return _rate(0, 0)
    known = [r["probability"] for r in passes if r.get("probability") is not None]
    return _rate(sum(1 for p in known if p < cell.confidence - 1e-9), len(known))


def summarise_cell(
    cell: Cell, rows: Sequence[Mapping[str, Any]], data: Data, seed: int = 0
) -> dict[str, Any]:
    """The cell's figures (see the module docstring) from its draws' rows."""
    passes = [r for r in rows if r["passed"]]
    false = [r for r in passes if r["true_tau_recommended"] < THRESHOLD]
    abandoned = StoppingState.UNLIKELY_TO_MEET_CORRELATION.value
    decided = [r for r in passes if r["pairs_at_decision"] is not None]
    return {
        "cell": cell.name,
        "n": cell.n,
        "eval_every_epochs": cell.every,
        "rule": cell.rule,
        "confidence": cell.confidence if cell.rule == "confident" else None,
        "persistence": cell.persistence if cell.rule == "confident" else None,
        "draws": len(rows),
        "pass": _rate(len(passes), len(rows)),
        "false_pass": _rate(len(false), len(rows)),
        "true_pass": _rate(len(passes) - len(false), len(rows)),
        "false_among_passes": _rate(len(false), len(passes)),
        "no_recommendation": _rate(len(rows) - len(passes), len(rows)),
        "abandoned": _rate(sum(1 for r in rows if r["state"] == abandoned), len(rows)),
        "recommended_epoch": _quartiles([r["recommended_epoch"] for r in passes]),
        "true_tau_at_recommendation": _quartiles([r["true_tau_recommended"] for r in passes]),
        "proxy_hours_per_model": _quartiles([r["proxy_hours"] for r in passes if r["proxy_hours"]]),
        "search_hours_mean": float(np.mean([r["spent_hours"] for r in rows])) if rows else None,
        "full_training_hours_per_model": float(np.mean(data.hours_per_epoch) * EPOCHS),
        "coverage_at_decision": _coverage(rows),
        "coverage_at_decision_passes": _coverage(passes),
        "coverage_no_chance_models": _coverage([r for r in rows if r["chance_models"] == 0]),
        "coverage_with_chance_models": _coverage([r for r in rows if r["chance_models"] > 0]),
        "decided_with_fewer_than_n": _rate(
            sum(1 for r in decided if r["pairs_at_decision"] < cell.n), len(decided)
        ),
        "recorded_probability_below_confidence": _below_confidence(cell, passes),
        "rescore_on_complete_curves": _rescore_figures(cell, rows, seed, data),
        "judged_per_look": _per_look_figures(cell, rows, seed, data),
        "secs_per_search": float(np.mean([r["secs"] for r in rows])) if rows else None,
    }


def jackknife_covers(proxy: Sequence[float], full: Sequence[float], truth: float) -> bool:
    """A candidate for a calibrated interval, not proxytask's interval: the 85 % interval
    ``tau ± q·se`` with the leave-one-out jackknife standard error of tau-b (no normality
    assumed). True when it holds ``truth``."""
    n = len(proxy)
    tau = float(scipy.stats.kendalltau(proxy, full, variant="b")[0])
    loo = np.array(
        [
            scipy.stats.kendalltau(np.delete(proxy, i), np.delete(full, i), variant="b")[0]
            for i in range(n)
        ]
    )
    se = math.sqrt((n - 1) / n * float(np.sum((loo - loo.mean()) ** 2)))
    q = float(scipy.stats.norm.ppf(0.5 + FIXED_CONFIDENCE / 2.0))
    return abs(tau - truth) <= q * se


def _fixed_epoch(n: int, epoch: int, draws: int, seed: int, data: Data) -> dict[str, Any]:
    hits = clean_hits = clean = ties = jackknife = 0
    errors, widths = [], []
    truth = float(data.true_tau[epoch])
    for draw in range(draws):
        archs = draw_archs(seed, n, draw)
        proxy = [float(data.valid[i, epoch - 1]) for i in archs]
        full = [float(data.finals[i]) for i in archs]
        corr = rank_correlation(proxy, full)
        if corr.tau is None:
            continue
        iv = tau_interval(corr.tau, corr.n, FIXED_CONFIDENCE)
        hit = iv.low <= truth <= iv.high
        hits += hit
        widths.append(iv.high - iv.low)
        errors.append(corr.tau - truth)
        ties += len(set(proxy)) < n
        jackknife += jackknife_covers(proxy, full, truth)
        if min(full) >= CHANCE:
            clean += 1
            clean_hits += hit
    return {
        "n": n,
        "epoch": epoch,
        "true_tau": truth,
        "coverage": _rate(hits, len(errors)),
        "coverage_no_chance_models": _rate(clean_hits, clean),
        "coverage_jackknife_candidate": _rate(jackknife, len(errors)),
        "mean_sample_minus_true": float(np.mean(errors)),
        "sd_sample_tau": float(np.std(errors)),
        "mean_width": float(np.mean(widths)),
        "draws_with_tied_proxy_scores": ties / len(errors),
    }


def fixed_epoch_coverage(n: int, draws: int, seed: int, data: Data) -> list[dict[str, Any]]:
    """The library's interval at fixed epochs on the benchmark's draws of size n (no rule)."""
    return [_fixed_epoch(n, epoch, draws, seed, data) for epoch in FIXED_EPOCHS]


def summarise_run(saved: Mapping[str, Any], data: Data) -> dict[str, Any]:
    """The results file: the config, machine, date, wall time, each cell's figures and the
    fixed-epoch coverage of every n measured."""
    cells = {c.name: c for c in all_cells()}
    rows = saved["draws"]
    seed = saved["config"]["seed"]
    summaries = [summarise_cell(cells[name], rows[name], data, seed) for name in rows if rows[name]]
    ns = sorted({s["n"] for s in summaries})
    most = {n: max(s["draws"] for s in summaries if s["n"] == n) for n in ns}
    return {
        "benchmark": "real_curves",
        "config": {
            **saved["config"],
            "threshold": THRESHOLD,
            "table": str(TABLE_PATH.relative_to(_ROOT)),
            "fixed_epochs": list(FIXED_EPOCHS),
            "fixed_confidence": FIXED_CONFIDENCE,
        },
        "machine": saved["machine"],
        "date": saved["date"],
        "wall_time_s": saved["wall_time_s"],
        "true_tau": {str(e): float(data.true_tau[e]) for e in (1, 3, 5, 10, 14, 20, 30, 50, 100)},
        "first_epoch_true_tau_at_threshold": int(np.argmax(data.true_tau[1:] >= THRESHOLD)) + 1,
        "cells": summaries,
        "not_run": [name for name in cells if not rows.get(name)],
        "fixed_epoch_coverage": [
            r for n in ns for r in fixed_epoch_coverage(n, most[n], seed, data)
        ],
    }


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def _pct(share: Mapping[str, Any], ci: bool = False) -> str:
    if share["rate"] is None:
        return "–"
    text = f"{100 * share['rate']:.1f} %"
    if ci:
        low, high = share["ci95"]
        text += f" ({100 * low:.1f}–{100 * high:.1f})"
    return text


def _q(quartiles: Mapping[str, float] | None, digits: int = 0) -> str:
    if quartiles is None:
        return "–"
    median, q1, q3 = (f"{quartiles[k]:.{digits}f}" for k in ("median", "q1", "q3"))
    return f"{median} [{q1}–{q3}]"


def _rule_label(row: Mapping[str, Any]) -> str:
    if row["rule"] == "point":
        return "`point`"
    return f"`confident` {row['confidence']:.2f}/{row['persistence']}"


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table: the header row, its separator and one line per row."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell_key(c: Mapping[str, Any]) -> list[object]:
    """The first three columns of every per-cell table: n, the interval, the rule."""
    return [c["n"], c["eval_every_epochs"], _rule_label(c)]


_KEY = ["n", "every", "rule"]


def cells_table(cells: Sequence[Mapping[str, Any]]) -> str:
    """The main table: one row per cell."""
    headers = [
        *_KEY,
        "draws",
        "false-pass (95 % CI)",
        "true-pass",
        "no rec.",
        "stop epoch median [IQR]",
        "true tau at stop",
        "proxy h/model",
        "search h",
        "coverage at decision (nominal: the confidence)",
        "decided on < n models",
        "s/search",
    ]
    rows = []
    for c in cells:
        hours = c["proxy_hours_per_model"]
        rows.append(
            [
                *_cell_key(c),
                c["draws"],
                _pct(c["false_pass"], ci=True),
                _pct(c["true_pass"]),
                _pct(c["no_recommendation"]),
                _q(c["recommended_epoch"]),
                _q(c["true_tau_at_recommendation"], 2),
                "–" if hours is None else f"{hours['median']:.3f}",
                f"{c['search_hours_mean']:.2f}",
                _pct(c["coverage_at_decision"], ci=True),
                _pct(c["decided_with_fewer_than_n"]),
                f"{c['secs_per_search']:.2f}",
            ]
        )
    return _markdown_table(headers, rows)


def coverage_table(cells: Sequence[Mapping[str, Any]]) -> str:
    """Where the intervals at the deciding step missed, and the effect of chance-level models."""
    headers = [
        *_KEY,
        "coverage",
        "truth below / above the interval",
        "mean width",
        "coverage, passes only",
        "coverage, no chance-level model in the draw",
        "with one or more",
    ]
    rows = []
    for c in cells:
        cov = c["coverage_at_decision"]
        rows.append(
            [
                *_cell_key(c),
                _pct(cov),
                f"{cov['truth_below_interval']} / {cov['truth_above_interval']}",
                "–" if cov["mean_width"] is None else f"{cov['mean_width']:.2f}",
                _pct(c["coverage_at_decision_passes"]),
                _pct(c["coverage_no_chance_models"]),
                _pct(c["coverage_with_chance_models"]),
            ]
        )
    return _markdown_table(headers, rows)


def live_table(cells: Sequence[Mapping[str, Any]]) -> str:
    """The live search beside the same rule on the complete curves (the known issue)."""
    headers = [
        *_KEY,
        "live false-pass",
        "re-score false-pass",
        "live stop epoch",
        "re-score stop epoch",
        "same decision",
        "decided on < n models",
        "recorded probability < confidence",
    ]
    rows = [
        [
            *_cell_key(c),
            _pct(c["false_pass"]),
            _pct(c["rescore_on_complete_curves"]["false_pass"]),
            _q(c["recommended_epoch"]),
            _q(c["rescore_on_complete_curves"]["recommended_epoch"]),
            _pct(c["rescore_on_complete_curves"]["same_decision_as_live"]),
            _pct(c["decided_with_fewer_than_n"]),
            _pct(c["recorded_probability_below_confidence"]),
        ]
        for c in cells
    ]
    return _markdown_table(headers, rows)


def per_look_table(cells: Sequence[Mapping[str, Any]]) -> str:
    """Per confident cell: judged per look vs the library's rule (live)."""
    headers = [
        *_KEY,
        "draws",
        "per look: false-pass",
        "per look: stop epoch",
        "per look: coverage",
        "counted looks (live): false-pass",
        "counted looks: stop epoch",
        "counted looks: coverage",
    ]
    rows = [
        [
            *_cell_key(c),
            c["draws"],
            _pct(c["judged_per_look"]["false_pass"], ci=True),
            _q(c["judged_per_look"]["recommended_epoch"]),
            _pct(c["judged_per_look"]["coverage"]),
            _pct(c["false_pass"], ci=True),
            _q(c["recommended_epoch"]),
            _pct(c["coverage_at_decision"]),
        ]
        for c in cells
    ]
    return _markdown_table(headers, rows)


def fixed_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The interval's coverage at fixed epochs, without any stopping rule."""
    headers = [
        "n",
        "epoch",
        "true tau",
        "coverage (nominal 85 %)",
        "no chance-level model",
        "mean sample − true tau",
        "sd of sample tau",
        "mean width",
        "draws with tied proxy scores",
        "jackknife candidate's coverage",
    ]
    table = [
        [
            r["n"],
            r["epoch"],
            f"{r['true_tau']:.3f}",
            _pct(r["coverage"], ci=True),
            _pct(r["coverage_no_chance_models"]),
            f"{r['mean_sample_minus_true']:+.3f}",
            f"{r['sd_sample_tau']:.3f}",
            f"{r['mean_width']:.2f}",
            f"{100 * r['draws_with_tied_proxy_scores']:.1f} %",
            _pct(r["coverage_jackknife_candidate"]),
        ]
        for r in rows
    ]
    return _markdown_table(headers, table)


def _runs_line(result: Mapping[str, Any]) -> str:
    """For merged runs: each run's machine, workers, wall time and cells (empty otherwise)."""
    runs = result["config"].get("runs") or []
    if len(runs) < 2:
        return ""
    parts = []
    for run in runs:
        m, c = run.get("machine") or {}, run["config"]
        parts.append(
            f"{run['date']}: {m.get('cpu', '?')} ({m.get('cores', '?')} cores), "
            f"{c.get('workers', '?')} workers, {run['wall_time_s']:.0f} s, "
            f"{', '.join(c.get('cells', []))}"
        )
    return " Merged from " + str(len(runs)) + " runs: " + "; ".join(parts) + "."


def to_markdown(result: Mapping[str, Any]) -> str:
    """The results as Markdown: the setup line, the three tables, what was not run."""
    m = result["machine"]
    truth = result["true_tau"]
    head = (
        f"# Real curves: the proxy-task search on NAS-Bench-201\n\n"
        f"{result['date']}, {m['cpu']} ({m['cores']} cores), Python {m['python']}, numpy "
        f"{m['numpy']}, scipy {m['scipy']}; seed {result['config']['seed']}, up to "
        f"{result['config']['draws']} draws per cell, {result['config']['workers']} workers, "
        f"wall time {result['wall_time_s']:.0f} s.{_runs_line(result)}\n\n"
        f"True tau (over the 200 architectures, epoch e vs epoch 200): "
        + ", ".join(f"{truth[e]:.3f} at {e}" for e in ("1", "5", "10", "14", "20", "50", "100"))
        + f"; first at or above {THRESHOLD} at epoch {result['first_epoch_true_tau_at_threshold']}."
        "\n\nRates are shares of all draws; false-pass: a recommendation whose epoch's true tau "
        f"is below {THRESHOLD}; coverage: the interval recorded at the deciding step (at the "
        "rule's confidence; 0.85 for the point rule) holds the true tau there. Hours: proxy "
        "h/model is the median recommended proxy's training "
        "hours per model; search h the mean hours all the search's trials trained; one full "
        f"training is {result['cells'][0]['full_training_hours_per_model']:.2f} h on average.\n"
        if result["cells"]
        else "# Real curves\n\nNo cell was run.\n"
    )
    parts = [head]
    if result["cells"]:
        parts += [
            "## Per cell\n",
            cells_table(result["cells"]),
            "",
            "## Where the intervals missed\n",
            coverage_table(result["cells"]),
            "",
            "## The live search and the same rule on the complete curves\n",
            live_table(result["cells"]),
            "",
        ]
    per_look_rows = [c for c in result["cells"] if c.get("judged_per_look")]
    if per_look_rows:
        parts += [
            "## The confident rule judged at its full confidence at every evaluation\n",
            "What the rule did before repeated looks were counted (each evaluation judged at "
            "the confidence, the one-look interval), on the complete curves of the same draws; "
            "beside it the live search's figures from the first table.\n",
            per_look_table(per_look_rows),
            "",
        ]
    if result["fixed_epoch_coverage"]:
        parts += [
            "## The interval at fixed epochs (no stopping rule)\n",
            fixed_table(result["fixed_epoch_coverage"]),
            "",
        ]
    if result["not_run"]:
        parts += [f"Not run (time): {', '.join(result['not_run'])}.", ""]
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def read_draws(path: Path) -> dict[str, Any]:
    """A saved draws file (gzipped JSON, or plain JSON when the name does not end in .gz)."""
    raw = path.read_bytes()
    data = json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)
    if not isinstance(data, dict) or "draws" not in data:
        raise SystemExit(f"--from-draws must be a draws file this script wrote, got {path}.")
    return data


def merge_draws(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Several runs' draws as one (same seed; each cell's draws are the union of the runs'
    draws of it); the wall time is their sum, the machine and date the first run's."""
    seeds = {run["config"]["seed"] for run in runs}
    if len(seeds) != 1:
        raise SystemExit(f"--from-draws files must share one seed, got {sorted(seeds)}.")
    by_draw: dict[str, dict[int, dict[str, Any]]] = {}
    for run in runs:  # the union of the runs' draws (a draw measured twice: the first run's)
        for name, rows in run["draws"].items():
            for row in rows:
                by_draw.setdefault(name, {}).setdefault(row["draw"], row)
    draws = {name: [rows[d] for d in sorted(rows)] for name, rows in by_draw.items()}
    first = runs[0]
    return {
        **first,
        "config": {
            **first["config"],
            "draws": max(run["config"]["draws"] for run in runs),
            "cells": [name for name in draws if draws[name]],
            "runs": [
                {k: run[k] for k in ("date", "wall_time_s", "config", "machine") if k in run}
                for run in runs
            ],
        },
        "wall_time_s": sum(run["wall_time_s"] for run in runs),
        "draws": draws,
    }


def select_cells(patterns: str | None) -> list[Cell]:
    """The cells whose names match any comma-separated glob (all when None)."""
    cells = all_cells()
    if not patterns:
        return cells
    chosen = [c for c in cells if any(fnmatch.fnmatch(c.name, p) for p in patterns.split(","))]
    if not chosen:
        raise SystemExit(
            f"--cells must match a cell, got {patterns!r}. Cells: "
            + ", ".join(c.name for c in cells)
        )
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    """Run the searches (or re-read their draws) and write ``real_curves.json`` / ``.md``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--draws", type=int, default=500, help="searches per cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cells", help="comma-separated globs of cell names, e.g. 'n10-*'")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-minutes", type=float, help="start no search after this long")
    parser.add_argument(
        "--from-draws", type=Path, nargs="+", help="re-summarise saved draws files (merged)"
    )
    parser.add_argument(
        "--missing-from",
        type=Path,
        nargs="+",
        help="run only the draws these saved draws files lack (to complete a cut-short run)",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    if args.draws < 1:
        parser.error("--draws must be at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.from_draws is not None:
        saved = merge_draws([read_draws(path) for path in args.from_draws])
        if len(args.from_draws) > 1:
            text = json.dumps(saved, separators=(",", ":")) + "\n"
            (args.out / DRAWS_FILE).write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        started = time.perf_counter()
        deadline = None if args.max_minutes is None else time.time() + 60 * args.max_minutes
        cells = select_cells(args.cells)
        done: dict[str, set[int]] = {}
        for path in args.missing_from or ():
            for name, rows_done in read_draws(path)["draws"].items():
                done.setdefault(name, set()).update(r["draw"] for r in rows_done)
        rows = run_cells(cells, args.draws, args.seed, args.workers, deadline, log=True, done=done)
        saved = {
            "config": {
                "draws": args.draws,
                "seed": args.seed,
                "workers": args.workers,
                "max_minutes": args.max_minutes,
                "cells": [c.name for c in cells],
            },
            "machine": machine_info(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "wall_time_s": time.perf_counter() - started,
            "draws": rows,
        }
        text = json.dumps(saved, separators=(",", ":")) + "\n"
        (args.out / DRAWS_FILE).write_bytes(gzip.compress(text.encode(), mtime=0))
    result = summarise_run(saved, load_data())
    (args.out / "real_curves.json").write_text(json.dumps(result, indent=1) + "\n")
    markdown = to_markdown(result)
    (args.out / "real_curves.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
