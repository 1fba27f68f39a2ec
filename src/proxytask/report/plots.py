"""Thin matplotlib renderers: draw the data objects of ``report.data`` to PNG files."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from proxytask.core import storage
from proxytask.report.data import (
    CorrelationScatterFigure,
    CurvePanel,
    ProxyComparisonFigure,
    SearchCurvesFigure,
    SelectionFigure,
    StabilityFigure,
    TauComparisonFigure,
    TauRow,
    VarianceFigure,
)

__all__ = [
    "figure_png_bytes",
    "render_correlation_scatter",
    "render_proxy_comparison",
    "render_search_curves",
    "render_selection_figure",
    "render_stability",
    "render_tau_comparison",
    "render_variance_figure",
]

_SUBTITLE_WIDTH = 150
_SELECTION_SUBTITLE_WIDTH = 95


def figure_png_bytes(figure: Figure, dpi: int = 110) -> bytes:
    """Render a ``matplotlib.figure.Figure`` to PNG bytes with the Agg canvas.

    Uses an explicit ``FigureCanvasAgg``, never pyplot, so no global backend or figure
    registry is touched and nothing leaks between calls.
    """
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _no_data(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def _save(figure: Figure, title: str, subtitle: str, width: int | None, path: str) -> None:
    """Title the figure (the subtitle wrapped at ``width``; None: as is) and write the PNG."""
    text = subtitle if width is None else textwrap.fill(subtitle, width)
    figure.suptitle(f"{title}\n{text}" if text else title, fontsize=11)
    storage.write_bytes_atomic(path, figure_png_bytes(figure))


def _curve(ax: Any, xs: Sequence[float], ys: Sequence[float], color: str, label: str) -> None:
    ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.1, color=color, label=label)


def _finish_axes(
    ax: Any, title: str, x_label: str, drawn: bool, empty_text: str, y_label: str = "accuracy"
) -> None:
    """Label an accuracy panel, start x at 0, and show its legend or say it is empty."""
    ax.set_title(title)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_xlim(left=0.0)
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(loc="lower right", fontsize="small")
    else:
        _no_data(ax, empty_text)


def _bar_labels(ax: Any, names: Sequence[str], marked: Sequence[bool], color: str) -> None:
    """One y tick label per bar, top to bottom; the marked ones bold in ``color``."""
    ax.set_yticks(list(range(len(names))))
    ax.set_yticklabels(list(names))
    for label, is_marked in zip(ax.get_yticklabels(), marked, strict=True):
        if is_marked:
            label.set_fontweight("bold")
            label.set_color(color)
    ax.invert_yaxis()


def _highlighted_bar(ax: Any, y: int, value: float, color: str, marked: bool) -> None:
    ax.barh(
        y,
        value,
        color=color,
        edgecolor="black" if marked else color,
        linewidth=1.5 if marked else 0.5,
    )


def render_variance_figure(fig: VarianceFigure, path: str) -> None:
    """Draw a :class:`~proxytask.report.data.VarianceFigure` and write it as a PNG to ``path``.

    Left panel: accuracy vs training pct, each copy with markers, the mean over the copies,
    a shaded min–max band and a ±1 std band. Right panel: accuracy vs cumulative training
    time in ``fig.time_unit``. ``path`` may be a local path or an fsspec URL; the file is
    written atomically through :func:`proxytask.core.storage.write_bytes_atomic`.

    Example::

        render_variance_figure(variance_figure(series, "Variance", cv, sm), "run/variance.png")
    """
    figure = Figure(figsize=(13.0, 5.2), layout="constrained")
    ax_pct, ax_time = figure.subplots(1, 2)
    colors = [f"C{i % 10}" for i in range(len(fig.series))]

    spread = fig.spread
    if spread.pcts:
        mean = list(spread.mean)
        low_std = [m - s for m, s in zip(mean, spread.std, strict=True)]
        high_std = [m + s for m, s in zip(mean, spread.std, strict=True)]
        ax_pct.fill_between(
            spread.pcts, spread.min, spread.max, color="0.5", alpha=0.15, label="min–max"
        )
        ax_pct.fill_between(spread.pcts, low_std, high_std, color="0.3", alpha=0.2, label="±1 std")
        ax_pct.plot(
            spread.pcts, mean, color="black", linestyle="--", linewidth=1.6, label="mean", zorder=5
        )

    drawn_pct = drawn_time = False
    for series, color in zip(fig.series, colors, strict=True):
        if not series.pcts:
            continue
        _curve(ax_pct, series.pcts, series.accuracies, color, series.label)
        drawn_pct = True
        if series.has_time:
            times = [h * fig.time_factor for h in series.training_hours]
            _curve(ax_time, times, series.accuracies, color, series.label)
            drawn_time = True

    metric = fig.metric_label
    _finish_axes(
        ax_pct,
        f"{metric[:1].upper()}{metric[1:]} vs training progress",
        "training progress (%)",
        drawn_pct,
        "no evaluations recorded",
        metric,
    )
    _finish_axes(
        ax_time,
        f"{metric[:1].upper()}{metric[1:]} vs training time",
        f"training time ({fig.time_unit})",
        drawn_time,
        "training time not recorded",
        metric,
    )
    _save(figure, fig.title, fig.subtitle, _SUBTITLE_WIDTH, path)


def _label_points(ax: Any, points: tuple[tuple[str, float, float], ...], color: str) -> None:
    for trial_id, x, y in points:
        ax.annotate(
            trial_id,
            (x, y),
            xytext=(4, 4),
            textcoords="offset points",
            fontsize=7,
            color=color,
        )


def _labelled_scatter(
    ax: Any, points: tuple[tuple[str, float, float], ...], color: str, **style: Any
) -> None:
    """``(label, x, y)`` points as markers (circles unless ``style`` says otherwise), each
    annotated with its label."""
    xs = [x for _, x, _ in points]
    ys = [y for _, _, y in points]
    ax.scatter(xs, ys, color=color, **{"marker": "o", "s": 36, "zorder": 3, **style})
    _label_points(ax, points, color)


def render_selection_figure(fig: SelectionFigure, path: str) -> None:
    """Draw a :class:`~proxytask.report.data.SelectionFigure` and write it as a PNG to ``path``.

    Accuracy on x, latency on y; kept trials as blue circles, those the rule removed as red
    crosses, each labelled with its trial id. Without latency every point sits at y = 0 and
    a note says accuracy alone decided. ``path`` may be a local path or an fsspec URL; the
    file is written atomically through :func:`proxytask.core.storage.write_bytes_atomic`.

    Example::

        render_selection_figure(selection_figure(scores, result, 1, pct), "round/scores.png")
    """
    figure = Figure(figsize=(8.0, 6.0), layout="constrained")
    ax = figure.subplots()
    kept_color, removed_color = "tab:blue", "tab:red"
    if fig.kept:
        _labelled_scatter(ax, fig.kept, kept_color, label=f"kept ({len(fig.kept)})")
    if fig.removed:
        _labelled_scatter(
            ax,
            fig.removed,
            removed_color,
            label=f"removed ({len(fig.removed)})",
            marker="x",
            s=48,
            linewidths=1.6,
            zorder=4,
        )

    ax.set_xlabel(fig.x_label)
    ax.set_ylabel(fig.y_label)
    ax.grid(True, alpha=0.3)
    if fig.kept or fig.removed:
        ax.legend(loc="best", fontsize="small")
        if not fig.has_latency:
            ax.set_yticks([0.0])
            ax.text(
                0.5,
                0.92,
                "no latency recorded: accuracy alone decided",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="0.4",
            )
    else:
        _no_data(ax, "no valid trials this round")

    _save(figure, fig.title, fig.subtitle, _SELECTION_SUBTITLE_WIDTH, path)


# --------------------------------------------------------------------------------------------
# Proxy-task search
# --------------------------------------------------------------------------------------------

_STOP_COLOR = "tab:red"
_THRESHOLD_COLOR = "tab:green"


def _draw_curve_panel(ax: Any, panel: CurvePanel, stopping_state: str) -> None:
    if panel.band:
        ax.fill_between(
            [x for x, _, _ in panel.band],
            [lo for _, lo, _ in panel.band],
            [hi for _, _, hi in panel.band],
            color="tab:blue",
            alpha=0.15,
            label="confidence interval",
        )
    if panel.points:
        ax.plot(
            [x for x, _ in panel.points],
            [y for _, y in panel.points],
            marker="o",
            markersize=3.5,
            linewidth=1.2,
            color="tab:blue",
            label=panel.y_label,
        )
    if panel.threshold is not None:
        label = panel.threshold_label or f"desired {panel.threshold:g}"
        ax.axhline(panel.threshold, color=_THRESHOLD_COLOR, ls="--", lw=1.2, label=label)
    if panel.stop_x is not None:
        label = f"stop: {stopping_state}" if stopping_state else "stop"
        ax.axvline(panel.stop_x, color=_STOP_COLOR, ls=":", lw=1.4, label=label)
        if panel.stop_y is not None:
            ax.plot(
                [panel.stop_x],
                [panel.stop_y],
                marker="*",
                markersize=12,
                color=_STOP_COLOR,
                linestyle="none",
                zorder=5,
            )
    ax.set_title(panel.title, fontsize=10)
    ax.set_xlabel(panel.x_label)
    ax.set_ylabel(panel.y_label)
    if panel.y_limits is not None:
        ax.set_ylim(*panel.y_limits)
    ax.set_xlim(left=0.0)
    ax.grid(True, alpha=0.3)
    if panel.points or panel.threshold is not None or panel.stop_x is not None:
        ax.legend(loc="best", fontsize="x-small")
    if not panel.points:
        _no_data(ax, panel.empty_text)


def render_search_curves(fig: SearchCurvesFigure, path: str) -> None:
    """Draw a :class:`~proxytask.report.data.SearchCurvesFigure` as a 2×2 PNG at ``path``.

    Top: accuracy correlation vs training steps and vs training time (y from -1 to 1, with
    the confidence band when present); bottom: median accuracy vs steps and vs time. Desired
    values are dashed horizontal lines; the stopping point a dotted vertical line with a star
    on the curve. ``path`` may be local or an fsspec URL (written atomically).

    Example::

        render_search_curves(search_curves_figure("data_50", stats, ...), "search/curves.png")
    """
    figure = Figure(figsize=(13.0, 9.0), layout="constrained")
    axes = figure.subplots(2, 2)
    for ax, panel in zip(axes.flat, fig.panels, strict=True):
        _draw_curve_panel(ax, panel, fig.stopping_state)
    _save(figure, fig.title, fig.subtitle, _SUBTITLE_WIDTH, path)


def render_correlation_scatter(fig: CorrelationScatterFigure, path: str) -> None:
    """Draw a :class:`~proxytask.report.data.CorrelationScatterFigure` as a PNG at ``path``.

    One labelled point per model (x: ``fig.x_label``, y: ``fig.y_label``); the title carries
    Kendall tau-b, its p-value and n. ``path`` may be local or an fsspec URL.

    Example::

        render_correlation_scatter(correlation_scatter_figure(...), "search/scatter.png")
    """
    figure = Figure(figsize=(8.0, 6.5), layout="constrained")
    ax = figure.subplots()
    if fig.points:
        _labelled_scatter(ax, fig.points, "tab:blue")
    else:
        _no_data(ax, "no model has both values")
    ax.set_xlabel(fig.x_label)
    ax.set_ylabel(fig.y_label)
    ax.grid(True, alpha=0.3)
    _save(figure, fig.title, fig.subtitle, _SELECTION_SUBTITLE_WIDTH, path)


def render_proxy_comparison(fig: ProxyComparisonFigure, path: str) -> None:
    """Draw a :class:`~proxytask.report.data.ProxyComparisonFigure` as a PNG at ``path``.

    Horizontal bars of each proxy task's final training time (in ``fig.time_unit``), the
    best in green and bold; a proxy without a time gets an empty hatched bar. Each bar is
    annotated with its time and stopping state. ``path`` may be local or an fsspec URL.

    Example::

        render_proxy_comparison(proxy_comparison_figure(rows), "search/proxies.png")
    """
    height = max(3.0, 1.2 + 0.5 * len(fig.bars))
    figure = Figure(figsize=(10.0, height), layout="constrained")
    ax = figure.subplots()
    known = [b.value for b in fig.bars if b.value is not None]
    empty_width = max(known) if known else 1.0
    names = [b.name for b in fig.bars]
    ys = list(range(len(fig.bars)))
    for y, bar in zip(ys, fig.bars, strict=True):
        if bar.value is None:
            ax.barh(y, empty_width, fill=False, hatch="//", edgecolor="0.6", linewidth=0.8)
            ax.text(
                empty_width * 0.02,
                y,
                f"no final time · {bar.state}",
                va="center",
                fontsize=8,
                color="0.3",
            )
            continue
        _highlighted_bar(ax, y, bar.value, "tab:green" if bar.is_best else "tab:blue", bar.is_best)
        text = f"{bar.value:.3g} {fig.time_unit} · {bar.state}" + (" · best" if bar.is_best else "")
        ax.text(
            bar.value,
            y,
            f" {text}",
            va="center",
            fontsize=8,
            fontweight="bold" if bar.is_best else "normal",
        )
    if fig.bars:
        _bar_labels(ax, names, [b.is_best for b in fig.bars], "tab:green")
        ax.set_xlim(0.0, empty_width * 1.6)
    else:
        _no_data(ax, "no proxy tasks yet")
    ax.set_xlabel(f"final training time ({fig.time_unit})")
    ax.grid(True, axis="x", alpha=0.3)
    _save(figure, fig.title, fig.subtitle, None, path)


# --------------------------------------------------------------------------------------------
# Stability of the winner, trained proxies beside zero-training scores
# --------------------------------------------------------------------------------------------

_WINNER_COLOR = "tab:green"
_KIND_STYLE = {  # kind -> (colour, marker)
    "trained proxy": ("tab:blue", "o"),
    "zero-training": ("tab:orange", "s"),
}


def render_stability(fig: StabilityFigure, path: str) -> None:
    """Draw a :class:`~proxytask.report.data.StabilityFigure` as a PNG at ``path``.

    Horizontal bars of each proxy config's share of the resamples won (in %), the observed
    winner in green with a black edge and a bold label; the draws without a winner in hatched
    grey. Each bar is annotated with its share and number of draws. ``path`` may be local or
    an fsspec URL (written atomically).

    Example::

        render_stability(stability_figure(winner_frequencies(...)), "search/stability.png")
    """
    height = max(3.0, 1.6 + 0.5 * len(fig.bars))
    figure = Figure(figsize=(10.0, height), layout="constrained")
    ax = figure.subplots()
    ys = list(range(len(fig.bars)))
    for y, bar in zip(ys, fig.bars, strict=True):
        value = 100.0 * bar.frequency
        if bar.is_no_winner:
            ax.barh(y, value, color="0.85", hatch="//", edgecolor="0.5", linewidth=0.8)
        else:
            color = _WINNER_COLOR if bar.is_observed_winner else "tab:blue"
            _highlighted_bar(ax, y, value, color, bar.is_observed_winner)
        text = f" {value:.1f} % ({bar.wins}/{fig.draws})"
        if bar.is_observed_winner:
            text += " · observed winner"
        weight = "bold" if bar.is_observed_winner else "normal"
        ax.text(value, y, text, va="center", fontsize=8, fontweight=weight)
    if fig.bars:
        names = ["no winner" if b.is_no_winner else b.name for b in fig.bars]
        _bar_labels(ax, names, [b.is_observed_winner for b in fig.bars], _WINNER_COLOR)
    else:
        _no_data(ax, "no proxy configs")
    ax.set_xlim(0.0, 130.0)  # room for the annotations past 100 %
    ax.set_xticks([0, 20, 40, 60, 80, 100])
    ax.set_xlabel(fig.x_label)
    ax.grid(True, axis="x", alpha=0.3)
    _save(figure, fig.title, fig.subtitle, _SELECTION_SUBTITLE_WIDTH, path)


def render_tau_comparison(fig: TauComparisonFigure, path: str) -> None:
    """Draw a :class:`~proxytask.report.data.TauComparisonFigure` as a PNG at ``path``.

    One row per score: its Kendall tau-b as a point with the interval as whiskers, trained
    proxies as blue circles and zero-training scores as orange squares (with a legend); the
    best of each kind gets a star and a bold label. A row without a tau stays, empty, with
    "n/a". The desired correlation is a dashed vertical line, tau = 0 a thin grey one.
    ``path`` may be local or an fsspec URL (written atomically).

    Example::

        render_tau_comparison(tau_comparison_figure(rows, desired_correlation=0.65), "tau.png")
    """
    height = max(3.0, 1.8 + 0.45 * len(fig.rows))
    figure = Figure(figsize=(10.0, height), layout="constrained")
    ax = figure.subplots()
    drawn_kinds: set[str] = set()
    for y, row in enumerate(fig.rows):
        _draw_tau_row(ax, y, row, drawn_kinds)
    if any(r.is_best_of_kind for r in fig.rows):
        ax.plot(
            [],
            [],
            marker="*",
            color="0.5",
            markeredgecolor="black",
            linestyle="none",
            markersize=11,
            label="best of its kind",
        )
    kinds = [r.kind for r in fig.rows]
    for y in range(1, len(kinds)):
        if kinds[y] != kinds[y - 1]:
            ax.axhline(y - 0.5, color="0.6", linewidth=0.8)
    ax.axvline(0.0, color="0.7", linewidth=0.8)
    if fig.desired_correlation is not None:
        ax.axvline(
            fig.desired_correlation,
            color=_THRESHOLD_COLOR,
            linestyle="--",
            linewidth=1.2,
            label=f"desired correlation {fig.desired_correlation:g}",
        )
    _tau_axes(ax, fig)
    _save(figure, fig.title, fig.subtitle, _SELECTION_SUBTITLE_WIDTH, path)


def _draw_tau_row(ax: Any, y: int, row: TauRow, drawn_kinds: set[str]) -> None:
    """One score: its tau with whiskers (a star when best of its kind), or "n/a"."""
    color, marker = _KIND_STYLE.get(row.kind, ("0.3", "o"))
    if row.tau is None:
        ax.text(0.0, y, "n/a", ha="center", va="center", fontsize=8, color="0.4")
        return
    error = None
    if row.ci_low is not None and row.ci_high is not None:
        error = [[max(0.0, row.tau - row.ci_low)], [max(0.0, row.ci_high - row.tau)]]
    ax.errorbar(
        [row.tau],
        [y],
        xerr=error,
        fmt=marker,
        color=color,
        markersize=7,
        capsize=4,
        linewidth=1.4,
        label=row.kind if row.kind not in drawn_kinds else None,
        zorder=3,
    )
    drawn_kinds.add(row.kind)
    if row.is_best_of_kind:
        ax.plot(
            [row.tau],
            [y - 0.32],
            marker="*",
            markersize=11,
            color=color,
            markeredgecolor="black",
            linestyle="none",
            zorder=4,
        )


def _tau_axes(ax: Any, fig: TauComparisonFigure) -> None:
    """The row labels (best bold, n/a grey), the tau axis and the legend outside it."""
    if fig.rows:
        ax.set_yticks(list(range(len(fig.rows))))
        ax.set_yticklabels([f"{r.name}  ({r.label})" for r in fig.rows])
        for label, row in zip(ax.get_yticklabels(), fig.rows, strict=True):
            if row.is_best_of_kind:
                label.set_fontweight("bold")
            if row.tau is None:
                label.set_color("0.45")
        ax.set_ylim(len(fig.rows) - 0.5, -0.7)  # top to bottom, room for the stars
    else:
        _no_data(ax, "no scores to compare")
    ax.set_xlim(-1.0, 1.0)
    ax.set_xlabel(fig.x_label)
    ax.grid(True, axis="x", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:  # the kinds first, outside the axes so no whisker is hidden
        order = sorted(range(len(labels)), key=lambda i: labels[i] not in _KIND_STYLE)
        ax.legend(
            [handles[i] for i in order],
            [labels[i] for i in order],
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize="small",
        )
