"""Thin matplotlib renderers: draw the data objects of ``report.data`` to PNG files."""

from __future__ import annotations

import io
import textwrap
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from proxytask import storage
from proxytask.report.data import SelectionFigure, VarianceFigure

__all__ = ["figure_png_bytes", "render_selection_figure", "render_variance_figure"]

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


def render_variance_figure(fig: VarianceFigure, path: str) -> None:
    """Draw a :class:`~proxytask.report.data.VarianceFigure` and write it as a PNG to ``path``.

    Left panel: accuracy vs training pct, each copy with markers, the mean over the copies,
    a shaded min–max band and a ±1 std band. Right panel: accuracy vs cumulative training
    time in ``fig.time_unit``. ``path`` may be a local path or an fsspec URL; the file is
    written atomically through :func:`proxytask.storage.write_bytes_atomic`.

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
        ax_pct.plot(
            series.pcts,
            series.accuracies,
            marker="o",
            markersize=3.5,
            linewidth=1.1,
            color=color,
            label=series.label,
        )
        drawn_pct = True
        if series.has_time:
            times = [h * fig.time_factor for h in series.training_hours]
            ax_time.plot(
                times,
                series.accuracies,
                marker="o",
                markersize=3.5,
                linewidth=1.1,
                color=color,
                label=series.label,
            )
            drawn_time = True

    ax_pct.set_title("Accuracy vs training progress")
    ax_pct.set_xlabel("training progress (%)")
    ax_pct.set_ylabel("accuracy")
    ax_pct.set_xlim(left=0.0)
    ax_pct.grid(True, alpha=0.3)
    if drawn_pct:
        ax_pct.legend(loc="lower right", fontsize="small")
    else:
        _no_data(ax_pct, "no evaluations recorded")

    ax_time.set_title("Accuracy vs training time")
    ax_time.set_xlabel(f"training time ({fig.time_unit})")
    ax_time.set_ylabel("accuracy")
    ax_time.set_xlim(left=0.0)
    ax_time.grid(True, alpha=0.3)
    if drawn_time:
        ax_time.legend(loc="lower right", fontsize="small")
    else:
        _no_data(ax_time, "training time not recorded")

    subtitle = textwrap.fill(fig.subtitle, _SUBTITLE_WIDTH)
    figure.suptitle(f"{fig.title}\n{subtitle}" if subtitle else fig.title, fontsize=11)
    storage.write_bytes_atomic(path, figure_png_bytes(figure))


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


def render_selection_figure(fig: SelectionFigure, path: str) -> None:
    """Draw a :class:`~proxytask.report.data.SelectionFigure` and write it as a PNG to ``path``.

    Accuracy on x, latency on y; kept trials as blue circles, those the rule removed as red
    crosses, each labelled with its trial id. Without latency every point sits at y = 0 and
    a note says accuracy alone decided. ``path`` may be a local path or an fsspec URL; the
    file is written atomically through :func:`proxytask.storage.write_bytes_atomic`.

    Example::

        render_selection_figure(selection_figure(scores, result, 1, pct), "round/scores.png")
    """
    figure = Figure(figsize=(8.0, 6.0), layout="constrained")
    ax = figure.subplots()
    kept_color, removed_color = "tab:blue", "tab:red"
    if fig.kept:
        ax.scatter(
            [x for _, x, _ in fig.kept],
            [y for _, _, y in fig.kept],
            marker="o",
            s=36,
            color=kept_color,
            label=f"kept ({len(fig.kept)})",
            zorder=3,
        )
        _label_points(ax, fig.kept, kept_color)
    if fig.removed:
        ax.scatter(
            [x for _, x, _ in fig.removed],
            [y for _, _, y in fig.removed],
            marker="x",
            s=48,
            linewidths=1.6,
            color=removed_color,
            label=f"removed ({len(fig.removed)})",
            zorder=4,
        )
        _label_points(ax, fig.removed, removed_color)

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

    subtitle = textwrap.fill(fig.subtitle, _SELECTION_SUBTITLE_WIDTH)
    figure.suptitle(f"{fig.title}\n{subtitle}" if subtitle else fig.title, fontsize=11)
    storage.write_bytes_atomic(path, figure_png_bytes(figure))
