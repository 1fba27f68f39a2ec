"""Report figures: variance and model-selection data objects and their PNG renderers."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from proxytask.core import storage
from proxytask.core.errors import UsageError
from proxytask.report import data, plots
from proxytask.stats import selection
from proxytask.stats import variance as stats

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _series() -> list[data.CurveSeries]:
    return [
        data.CurveSeries("copy 1", [25, 50, 100], [0.4, 0.6, 0.9], [0.05, 0.1, 0.2]),
        data.CurveSeries("copy 2", [25, 50, 75], [0.3, 0.5, 0.7], [0.05, 0.1, 0.15]),
        data.CurveSeries("copy 3", [25, 50, 100], [0.45, 0.55, 0.85], [0.06, 0.12, 0.24]),
    ]


def _figure() -> data.VarianceFigure:
    series = _series()
    finals = [s.accuracies[-1] for s in series if s.pcts[-1] == 100]
    return data.variance_figure(
        series,
        "Variance measurement",
        stats.coefficient_of_variation(finals),
        stats.mean_smoothness([(s.pcts, s.accuracies) for s in series]),
        cv_threshold=0.4,
        smoothness_threshold=10.0,
    )


def test_curve_series_stores_tuples_of_floats_and_checks_lengths() -> None:
    s = data.CurveSeries("c", [1, 2], [0.5, 0.6], [0.1, 0.2])
    assert s.pcts == (1.0, 2.0) and s.accuracies == (0.5, 0.6) and s.has_time
    assert not data.CurveSeries("c", [1], [0.5]).has_time
    with pytest.raises(UsageError, match="one accuracy per pct"):
        data.CurveSeries("c", [1, 2], [0.5])
    with pytest.raises(UsageError, match="one training time per pct"):
        data.CurveSeries("c", [1, 2], [0.5, 0.6], [0.1])


def test_variance_figure_band_is_the_stats_spread() -> None:
    series = _series()
    fig = _figure()
    expected = stats.curve_spread([(s.pcts, s.accuracies) for s in series])
    assert fig.spread == expected
    # Copy 2 stops at 75 %, so 100 % has only copies 1 and 3.
    assert fig.spread.pcts == (25.0, 50.0, 75.0, 100.0)
    assert fig.spread.n == (3, 3, 3, 2)
    assert fig.spread.min[3] == pytest.approx(0.85) and fig.spread.max[3] == pytest.approx(0.9)
    assert fig.series == tuple(series)
    assert fig.title == "Variance measurement"


def test_variance_figure_subtitle_carries_the_verdict_numbers() -> None:
    fig = _figure()
    cv = stats.coefficient_of_variation([0.9, 0.85])
    assert fig.cv == pytest.approx(cv.cv)
    assert f"CV {cv.cv:.4f} (good: ≤ 0.4, std {cv.std:.4f}" in fig.subtitle
    assert "95 % CI of std" in fig.subtitle and "n=2" in fig.subtitle
    assert fig.smoothness == 0.0
    assert "smoothness 0 (good: ≤ 10, mean of 3/3 curves)" in fig.subtitle


def test_variance_figure_with_plain_numbers_and_missing_values() -> None:
    s = _series()
    plain = data.variance_figure(s, "t", 0.5, 12.0, cv_threshold=0.4, smoothness_threshold=10)
    assert plain.subtitle == "CV 0.5000 (bad: > 0.4) · smoothness 12 (bad: > 10)"
    missing = data.variance_figure(s, "t", stats.coefficient_of_variation([0.9]), None)
    assert missing.subtitle == "CV n/a (needs at least 2 values, got 1) · smoothness n/a"
    assert missing.cv is None and missing.smoothness is None


@pytest.mark.parametrize(
    ("hours", "unit", "factor"),
    [(5.0, "hours", 1.0), (1.0, "hours", 1.0), (0.5, "minutes", 60.0), (0.01, "seconds", 3600.0)],
)
def test_time_unit_is_readable(hours: float, unit: str, factor: float) -> None:
    assert data.readable_time_unit(hours) == (unit, factor)
    s = [data.CurveSeries("c", [50, 100], [0.5, 0.6], [hours / 2, hours])]
    fig = data.variance_figure(s, "t", None, None)
    assert (fig.time_unit, fig.time_factor) == (unit, factor)


def test_render_writes_a_png_to_a_local_path(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "variance.png"
    plots.render_variance_figure(_figure(), str(target))
    assert target.read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in target.parent.iterdir()] == ["variance.png"]  # no temp file left


def test_render_writes_a_png_to_a_memory_url() -> None:
    url = f"memory://report-{uuid.uuid4().hex}/variance.png"
    try:
        plots.render_variance_figure(_figure(), url)
        written = storage.read_bytes(url)
        assert written is not None and written.startswith(PNG_MAGIC)
    finally:
        storage.remove(url)


def test_render_copes_with_no_data_and_no_times(tmp_path: Path) -> None:
    empty = data.variance_figure([], "empty", None, None)
    plots.render_variance_figure(empty, str(tmp_path / "empty.png"))
    untimed = data.variance_figure(
        [data.CurveSeries("c", [50, 100], [0.5, 0.6]), data.CurveSeries("d", [], [])],
        "untimed",
        None,
        None,
    )
    plots.render_variance_figure(untimed, str(tmp_path / "untimed.png"))
    for name in ("empty.png", "untimed.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC)


def test_rendering_does_not_touch_pyplot() -> None:
    def open_figures() -> list[int]:
        pyplot = sys.modules.get("matplotlib.pyplot")
        return [] if pyplot is None else list(pyplot.get_fignums())

    before = open_figures()
    plots.render_variance_figure(_figure(), f"memory://report-{uuid.uuid4().hex}/v.png")
    plots.render_selection_figure(_selection_figure(), f"memory://report-{uuid.uuid4().hex}/s.png")
    assert open_figures() == before


# --------------------------------------------------------------------------------------------
# Model selection: one round's scatter plot
# --------------------------------------------------------------------------------------------


def _selection_scores() -> list[selection.TrialScore]:
    # b sits next to a and is removed by the rule (a–b is the closest pair and b is also
    # nearer to c); x failed and is invalid.
    return [
        selection.TrialScore("a", 0.50, 10.0),
        selection.TrialScore("b", 0.52, 10.1),
        selection.TrialScore("x", None, None, "failed (oom)"),
        selection.TrialScore("c", 0.90, 10.0),
        selection.TrialScore("d", 0.70, 20.0),
    ]


def _selection_figure(latency_unit: str = "ms") -> data.SelectionFigure:
    scores = _selection_scores()
    result = selection.select_survivors(scores, 2, requires_latency=True)
    return data.selection_figure(scores, result, 2, 22 / 3, latency_unit=latency_unit)


def test_selection_figure_points_are_the_rules_decision_in_raw_units() -> None:
    fig = _selection_figure()
    assert fig.kept == (("a", 0.5, 10.0), ("c", 0.9, 10.0), ("d", 0.7, 20.0))
    assert fig.removed == (("b", 0.52, 10.1),)
    assert fig.invalid == (("x", "failed (oom)"),)
    assert fig.has_latency
    assert (fig.x_label, fig.y_label) == ("accuracy", "latency (ms)")
    assert fig.title == "Round 2: 5 models at 7.33 % → kept 3"
    assert fig.subtitle == (
        "removed 1 by spread (b) · 1 invalid: x (failed (oom)) · removals requested: 2"
    )
    assert _selection_figure("").y_label == "latency"


def test_selection_figure_without_latency_puts_points_at_zero() -> None:
    scores = [selection.TrialScore(str(i), acc, None) for i, acc in enumerate([0.5, 0.51, 0.9])]
    result = selection.select_survivors(scores, 1, requires_latency=False)
    fig = data.selection_figure(scores, result, 1, 100 / 3)
    assert not fig.has_latency
    assert fig.removed == (("1", 0.51, 0.0),)
    assert fig.kept == (("0", 0.5, 0.0), ("2", 0.9, 0.0))
    assert fig.title == "Round 1: 3 models at 33.33 % → kept 2"


def test_selection_figure_needs_the_scores_the_rule_saw() -> None:
    scores = _selection_scores()
    result = selection.select_survivors(scores, 2, requires_latency=True)
    with pytest.raises(UsageError, match="'a'"):
        data.selection_figure(scores[1:], result, 1, 10.0)


def test_render_selection_writes_a_png_locally_and_to_memory(tmp_path: Path) -> None:
    target = tmp_path / "round" / "filtered_trial_scores.png"
    plots.render_selection_figure(_selection_figure(), str(target))
    assert target.read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in target.parent.iterdir()] == ["filtered_trial_scores.png"]
    url = f"memory://report-{uuid.uuid4().hex}/filtered_trial_scores.png"
    try:
        plots.render_selection_figure(_selection_figure(), url)
        written = storage.read_bytes(url)
        assert written is not None and written.startswith(PNG_MAGIC)
    finally:
        storage.remove(url)


def test_render_selection_copes_with_no_latency_and_no_points(tmp_path: Path) -> None:
    scores = [selection.TrialScore(str(i), acc, None) for i, acc in enumerate([0.5, 0.51, 0.9])]
    result = selection.select_survivors(scores, 1, requires_latency=False)
    plots.render_selection_figure(
        data.selection_figure(scores, result, 1, 10.0), str(tmp_path / "flat.png")
    )
    failed = [selection.TrialScore("1", None, None, "failed (nan)")]
    empty = selection.select_survivors(failed, 1, requires_latency=True)
    plots.render_selection_figure(
        data.selection_figure(failed, empty, 1, 10.0), str(tmp_path / "empty.png")
    )
    for name in ("flat.png", "empty.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC)
