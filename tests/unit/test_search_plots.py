"""Proxy-task search figures: curves, correlation scatters, proxy comparison and renderers."""

from __future__ import annotations

import dataclasses
import math
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from proxytask.core import storage
from proxytask.core.errors import UsageError
from proxytask.report import data, plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _stats(**extra: Any) -> dict[str, Any]:
    stats: dict[str, Any] = {
        "training_steps": [100, 200, 300, 400],
        "accuracy_correlation_over_step": [None, 0.4, 0.6, 0.8],
        "accuracy_correlation_p_value_over_step": [None, 0.2, 0.05, 0.01],
        "median_accuracy_over_step": [0.2, 0.4, float("nan"), 0.7],
        "median_training_time_hrs_over_step": [0.1, 0.2, 0.3, None],
    }
    stats.update(extra)
    return stats


def _curves(**kwargs: Any) -> data.SearchCurvesFigure:
    args: dict[str, Any] = {
        "desired_correlation": 0.65,
        "desired_accuracy": 0.5,
        "stop_step": 325,
        "stop_time_hrs": 0.25,
        "stopping_state": "Met desired correlation",
    }
    args.update(kwargs)
    stats = args.pop("stats", _stats())
    return data.search_curves_figure("data_50", stats, **args)


def test_search_curves_drop_invalid_points_per_panel() -> None:
    fig = _curves()
    corr_step, corr_time, acc_step, acc_time = fig.panels
    assert corr_step.points == ((200.0, 0.4), (300.0, 0.6), (400.0, 0.8))
    # time at step 400 is None, so only steps 200 and 300 have both; 0.3 h -> minutes.
    assert fig.time_unit == "minutes" and fig.time_factor == 60.0
    assert [x for x, _ in corr_time.points] == pytest.approx([12.0, 18.0])
    assert [y for _, y in corr_time.points] == [0.4, 0.6]
    assert acc_step.points == ((100.0, 0.2), (200.0, 0.4), (400.0, 0.7))  # NaN dropped
    assert [x for x, _ in acc_time.points] == pytest.approx([6.0, 12.0])
    assert [y for _, y in acc_time.points] == [0.2, 0.4]
    assert "3/4 steps with a valid correlation" in fig.subtitle


def test_search_curves_keep_thresholds_and_stop_markers() -> None:
    fig = _curves()
    corr_step, corr_time, acc_step, acc_time = fig.panels
    assert fig.title == "Proxy task data_50: Met desired correlation"
    assert fig.stopping_state == "Met desired correlation"
    assert corr_step.threshold == corr_time.threshold == 0.65
    assert acc_step.threshold == acc_time.threshold == 0.5
    assert corr_step.y_limits == corr_time.y_limits == (-1.0, 1.0)
    assert acc_step.y_limits is None
    assert corr_step.stop_x == acc_step.stop_x == 325.0
    assert corr_time.stop_x == acc_time.stop_x == pytest.approx(15.0)  # 0.25 h in minutes
    # The marker sits on the curve, interpolated between the valid points around the stop.
    assert corr_step.stop_y == pytest.approx(0.65)
    assert corr_time.stop_y == pytest.approx(0.5)
    assert acc_step.stop_y == pytest.approx(0.4 + 0.3 * 125 / 200)  # across the NaN step
    assert acc_time.stop_y is None  # 15 min is past the last valid time point
    assert fig.stop_step == 325 and fig.stop_time_hrs == 0.25
    assert "stopped at step 325, 15 minutes" in fig.subtitle
    assert "desired correlation 0.65" in fig.subtitle
    assert "desired accuracy 0.5" in fig.subtitle


def test_search_curves_without_thresholds_or_stop() -> None:
    fig = _curves(desired_accuracy=None, stop_step=None, stop_time_hrs=None, stopping_state="")
    assert fig.title == "Proxy task data_50: running"
    assert "not stopped" in fig.subtitle and "desired accuracy" not in fig.subtitle
    for panel in fig.panels:
        assert panel.stop_x is None and panel.stop_y is None
    assert fig.panels[2].threshold is None and fig.panels[0].threshold == 0.65


def test_search_curves_confidence_band_is_optional() -> None:
    assert all(p.band == () for p in _curves().panels)
    fig = _curves(
        stats=_stats(
            accuracy_correlation_ci_low=[None, 0.1, 0.3, 0.5],
            accuracy_correlation_ci_high=[None, 0.7, 0.8, 0.95],
        )
    )
    assert fig.panels[0].band == ((200.0, 0.1, 0.7), (300.0, 0.3, 0.8), (400.0, 0.5, 0.95))
    assert len(fig.panels[1].band) == 2  # no time at step 400
    assert fig.panels[2].band == () and fig.panels[3].band == ()


def test_search_curves_missing_lists_mean_no_points_and_bad_input_is_rejected() -> None:
    fig = data.search_curves_figure(
        "p",
        {"training_steps": [1, 2]},
        desired_correlation=None,
        desired_accuracy=None,
        stop_step=None,
        stop_time_hrs=None,
        stopping_state="",
    )
    assert all(p.points == () for p in fig.panels) and fig.time_unit == "seconds"
    with pytest.raises(UsageError, match="training_steps"):
        _curves(stats={"accuracy_correlation_over_step": []})
    with pytest.raises(UsageError, match="one value per training step"):
        _curves(stats=_stats(median_accuracy_over_step=[0.1]))
    with pytest.raises(UsageError, match="number or None"):
        _curves(stats=_stats(median_accuracy_over_step=["x", 0.1, 0.2, 0.3]))


def test_search_curves_figure_is_frozen() -> None:
    fig = _curves()
    with pytest.raises(dataclasses.FrozenInstanceError):
        fig.title = "x"  # type: ignore[misc]
    hash(fig.panels)


def test_correlation_scatter_keeps_only_complete_pairs_and_formats_the_title() -> None:
    fig = data.correlation_scatter_figure(
        "Proxy vs full accuracy at step 325",
        [0.9, None, 0.7, 0.6, math.nan],
        [0.5, 0.4, None, 0.3, 0.2],
        ["m1", "m2", "m3", "m4", "m5"],
        0.7333,
        0.0123,
        "full-training accuracy",
        "proxy accuracy",
    )
    assert fig.points == (("m1", 0.9, 0.5), ("m4", 0.6, 0.3))
    assert fig.dropped == ("m2", "m3", "m5") and fig.n == 2
    assert fig.subtitle.startswith("Kendall tau-b = 0.73 (p = 0.012, n = 2)")
    assert "3 without a value: m2, m3, m5" in fig.subtitle
    assert fig.x_label == "full-training accuracy" and fig.y_label == "proxy accuracy"
    assert fig.tau == 0.7333 and fig.p_value == 0.0123


def test_correlation_scatter_not_computable_and_tiny_p() -> None:
    none = data.correlation_scatter_figure("t", [0.1], [0.2], ["a"], None, None, "x", "y")
    assert none.subtitle == "Kendall tau-b not computable (n = 1)"
    tiny = data.correlation_scatter_figure(
        "t", [0.1, 0.2], [0.2, 0.3], ["a", "b"], 1.0, 1e-6, "x", "y"
    )
    assert tiny.subtitle == "Kendall tau-b = 1.00 (p < 0.001, n = 2)"
    with pytest.raises(UsageError, match="same length"):
        data.correlation_scatter_figure("t", [0.1], [0.2, 0.3], ["a"], None, None, "x", "y")


def test_proxy_comparison_converts_units_and_marks_the_best() -> None:
    fig = data.proxy_comparison_figure(
        [
            ("data_25", 0.25, "Met desired correlation", True),
            ("data_50", 0.5, "Met desired correlation", False),
            ("data_75", None, "Exceeded training time limit", False),
        ]
    )
    assert fig.time_unit == "minutes"
    assert [b.value for b in fig.bars] == [15.0, 30.0, None]
    assert [b.hours for b in fig.bars] == [0.25, 0.5, None]
    assert fig.bars[2].state == "Exceeded training time limit"
    assert fig.best == "data_25"
    assert fig.subtitle == "best: data_25 · 2/3 with a final training time"
    empty = data.proxy_comparison_figure([])
    assert empty.bars == () and empty.best is None
    assert empty.subtitle.startswith("no successful proxy task")
    with pytest.raises(UsageError, match="rows\\[0\\]"):
        data.proxy_comparison_figure([("only a name",)])  # type: ignore[list-item]


def _scatter() -> data.CorrelationScatterFigure:
    return data.correlation_scatter_figure(
        "Latency", [1.0, 2.0, 3.0], [1.5, None, 3.5], ["a", "b", "c"], 1.0, 0.3, "full", "proxy"
    )


def _comparison() -> data.ProxyComparisonFigure:
    return data.proxy_comparison_figure(
        [("a", 2.0, "Met desired correlation", True), ("b", None, "Failed", False)]
    )


def test_renderers_write_pngs_locally(tmp_path: Path) -> None:
    band = _stats(
        accuracy_correlation_ci_low=[None, 0.1, 0.3, 0.5],
        accuracy_correlation_ci_high=[None, 0.7, 0.8, 0.95],
    )
    plots.render_search_curves(_curves(stats=band), str(tmp_path / "curves.png"))
    plots.render_correlation_scatter(_scatter(), str(tmp_path / "scatter.png"))
    plots.render_proxy_comparison(_comparison(), str(tmp_path / "proxies.png"))
    for name in ("curves.png", "scatter.png", "proxies.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "curves.png",
        "proxies.png",
        "scatter.png",
    ]


def test_renderers_write_pngs_to_memory_urls() -> None:
    base = f"memory://search-plots-{uuid.uuid4().hex}"
    jobs = [
        (plots.render_search_curves, _curves(), f"{base}/curves.png"),
        (plots.render_correlation_scatter, _scatter(), f"{base}/scatter.png"),
        (plots.render_proxy_comparison, _comparison(), f"{base}/proxies.png"),
    ]
    try:
        for render, fig, url in jobs:
            render(fig, url)  # type: ignore[operator]
            written = storage.read_bytes(url)
            assert written is not None and written.startswith(PNG_MAGIC)
    finally:
        for _, _, url in jobs:
            storage.remove(url)


def test_renderers_cope_with_empty_figures(tmp_path: Path) -> None:
    empty_curves = data.search_curves_figure(
        "p",
        {"training_steps": []},
        desired_correlation=None,
        desired_accuracy=None,
        stop_step=None,
        stop_time_hrs=None,
        stopping_state="",
    )
    stopped_no_points = _curves(stats={"training_steps": [1]})
    plots.render_search_curves(empty_curves, str(tmp_path / "a.png"))
    plots.render_search_curves(stopped_no_points, str(tmp_path / "b.png"))
    plots.render_correlation_scatter(
        data.correlation_scatter_figure("t", [], [], [], None, None, "x", "y"),
        str(tmp_path / "c.png"),
    )
    plots.render_proxy_comparison(data.proxy_comparison_figure([]), str(tmp_path / "d.png"))
    plots.render_proxy_comparison(
        data.proxy_comparison_figure([("x", None, "Failed", False)]), str(tmp_path / "e.png")
    )
    for name in "abcde":
        assert (tmp_path / f"{name}.png").read_bytes().startswith(PNG_MAGIC)


def test_search_renderers_do_not_touch_pyplot() -> None:
    def open_figures() -> list[int]:
        pyplot = sys.modules.get("matplotlib.pyplot")
        return [] if pyplot is None else list(pyplot.get_fignums())

    before = open_figures()
    base = f"memory://search-plots-{uuid.uuid4().hex}"
    plots.render_search_curves(_curves(), f"{base}/c.png")
    plots.render_correlation_scatter(_scatter(), f"{base}/s.png")
    plots.render_proxy_comparison(_comparison(), f"{base}/p.png")
    assert open_figures() == before
