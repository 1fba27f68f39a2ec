"""Winner-stability and tau-comparison figures: their data and their PNGs."""

from __future__ import annotations

import dataclasses
import math
import struct
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from proxytask.core import storage
from proxytask.core.errors import UsageError
from proxytask.report import data, plots
from proxytask.stats.stability import NO_WINNER, StabilityResult

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

ROWS: list[tuple[str, str, float | None, float | None, float | None]] = [
    ("synflow", data.ZERO_TRAINING, 0.42, 0.05, 0.69),
    ("data_25", data.TRAINED_PROXY, 0.71, 0.45, 0.86),
    ("jacob_cov", data.ZERO_TRAINING, None, None, None),
    ("params", data.ZERO_TRAINING, 0.55, None, None),
    ("data_50", data.TRAINED_PROXY, 0.78, 0.55, 0.9),
    ("steps_10pct", data.TRAINED_PROXY, math.nan, 0.1, 0.2),
]


def _png_size(payload: bytes) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    assert payload.startswith(PNG_MAGIC)
    width, height = struct.unpack(">II", payload[16:24])
    return width, height


def _result(**changes: Any) -> StabilityResult:
    base = StabilityResult(
        draws=200,
        seed=0,
        n_models=10,
        rule="confident",
        frequencies={"data_25": 0.62, "data_50": 0.2, "steps_30pct": 0.0, NO_WINNER: 0.18},
        observed_winner="data_25",
        observed_winner_frequency=0.62,
    )
    return dataclasses.replace(base, **changes)


# --------------------------------------------------------------------------------------------
# Tau comparison: data
# --------------------------------------------------------------------------------------------


def test_tau_rows_are_grouped_by_kind_and_sorted_with_none_rows_kept_last() -> None:
    fig = data.tau_comparison_figure(ROWS, desired_correlation=0.65, confidence=0.9)
    assert [(r.name, r.kind) for r in fig.rows] == [
        ("data_50", "trained proxy"),
        ("data_25", "trained proxy"),
        ("steps_10pct", "trained proxy"),
        ("params", "zero-training"),
        ("synflow", "zero-training"),
        ("jacob_cov", "zero-training"),
    ]
    none_rows = [r for r in fig.rows if r.tau is None]
    assert [r.name for r in none_rows] == ["steps_10pct", "jacob_cov"]
    # NaN reads as no tau, and an interval without a tau is dropped
    assert all(r.label == "n/a" and r.ci_low is None and r.ci_high is None for r in none_rows)
    assert fig.x_label == "Kendall tau-b vs full training"
    assert fig.desired_correlation == 0.65


def test_tau_rows_carry_values_labels_and_the_best_of_each_kind() -> None:
    fig = data.tau_comparison_figure(ROWS, desired_correlation=0.65, confidence=0.9)
    by_name = {r.name: r for r in fig.rows}
    assert by_name["data_50"].tau == 0.78
    assert (by_name["data_50"].ci_low, by_name["data_50"].ci_high) == (0.55, 0.9)
    assert by_name["data_50"].label == "0.78 [0.55, 0.90]"
    assert by_name["params"].label == "0.55"  # no interval
    assert [r.name for r in fig.rows if r.is_best_of_kind] == ["data_50", "params"]
    assert fig.best(data.TRAINED_PROXY) == "data_50"
    assert fig.best(data.ZERO_TRAINING) == "params"
    assert fig.subtitle == (
        "best trained proxy: data_50 (0.78) · best zero-training: params (0.55) · "
        "whiskers: 90 % interval · desired correlation 0.65"
    )


def test_tau_ties_go_to_the_first_row_given_and_a_kind_without_tau_has_no_best() -> None:
    fig = data.tau_comparison_figure(
        [
            ("b", data.ZERO_TRAINING, 0.5, None, None),
            ("a", data.ZERO_TRAINING, 0.5, None, None),
            ("t", data.TRAINED_PROXY, None, None, None),
        ]
    )
    assert [r.name for r in fig.rows] == ["t", "b", "a"]
    assert fig.best(data.ZERO_TRAINING) == "b" and fig.best(data.TRAINED_PROXY) is None
    assert "no trained proxy with a tau" in fig.subtitle
    assert "whiskers" not in fig.subtitle and "desired" not in fig.subtitle
    assert fig.desired_correlation is None
    empty = data.tau_comparison_figure([])
    assert empty.rows == () and empty.subtitle == "no rows"


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([("x", "trained", 0.5, None, None)], "kind must be 'trained proxy' or 'zero-training'"),
        ([("x", data.TRAINED_PROXY, 0.5, 0.1, None)], "both ends of the interval or neither"),
        ([("x", data.TRAINED_PROXY, 0.5, 0.7, 0.2)], "must not exceed ci_high"),
        ([("x", data.TRAINED_PROXY, 1.5, None, None)], r"tau must lie in \[-1, 1\]"),
        ([("x", data.TRAINED_PROXY, "high", None, None)], "tau must be a number or None"),
        ([("x", data.TRAINED_PROXY, 0.5)], r"rows\[0\] must be \(name, kind, tau"),
        ("rows", "rows must be a list"),
    ],
)
def test_bad_tau_rows_are_rejected_with_a_fix(rows: Any, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        data.tau_comparison_figure(rows)


def test_tau_figure_is_frozen_and_hashable() -> None:
    fig = data.tau_comparison_figure(ROWS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fig.title = "x"  # type: ignore[misc]
    hash(fig)


# --------------------------------------------------------------------------------------------
# Stability: data
# --------------------------------------------------------------------------------------------


def test_stability_bars_follow_the_result_and_mark_the_observed_winner() -> None:
    fig = data.stability_figure(_result())
    assert [(b.name, b.frequency, b.wins) for b in fig.bars] == [
        ("data_25", 0.62, 124),
        ("data_50", 0.2, 40),
        ("steps_30pct", 0.0, 0),
        (NO_WINNER, 0.18, 36),
    ]
    assert [b.is_observed_winner for b in fig.bars] == [True, False, False, False]
    assert [b.is_no_winner for b in fig.bars] == [False, False, False, True]
    assert fig.draws == 200 and fig.observed_winner == "data_25"
    assert "200 paired resamples" in fig.subtitle
    assert "of the 10 reference models, confident stopping rule, seed 0" in fig.subtitle
    assert "observed winner data_25 wins 62 % of them" in fig.subtitle
    assert "equal final times" not in fig.subtitle
    assert fig.x_label == "share of resamples won (%)"


def test_stability_without_an_observed_winner_and_with_ties() -> None:
    fig = data.stability_figure(
        _result(
            frequencies={"a": 0.1, NO_WINNER: 0.9},
            observed_winner=None,
            observed_winner_frequency=0.9,
            tied_draws=3,
        )
    )
    assert not any(b.is_observed_winner for b in fig.bars)
    assert "no proxy task met its goal on the models as drawn; 90 % of resamples" in fig.subtitle
    assert "3 draws had equal final times, given to the first name" in fig.subtitle


@pytest.mark.parametrize(
    ("result", "match"),
    [
        ("not a result", "must be a StabilityResult"),
        (_result(observed_winner="other"), "observed winner 'other' is not among"),
        (_result(frequencies={"data_25": 1.2, NO_WINNER: 0.0}), "fraction in"),
    ],
)
def test_bad_stability_results_are_rejected(result: Any, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        data.stability_figure(result)


# --------------------------------------------------------------------------------------------
# Renderers
# --------------------------------------------------------------------------------------------


def test_renderers_write_non_empty_pngs_locally(tmp_path: Path) -> None:
    fig = data.tau_comparison_figure(ROWS, desired_correlation=0.65, confidence=0.9)
    plots.render_tau_comparison(fig, str(tmp_path / "tau.png"))
    plots.render_stability(data.stability_figure(_result()), str(tmp_path / "stability.png"))
    for name in ("tau.png", "stability.png"):
        payload = (tmp_path / name).read_bytes()
        assert payload.startswith(PNG_MAGIC) and len(payload) > 5_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stability.png", "tau.png"]


def test_a_row_without_tau_keeps_its_place_in_the_png(tmp_path: Path) -> None:
    rows = [r for r in ROWS if r[2] is not None and not math.isnan(r[2])]
    plots.render_tau_comparison(data.tau_comparison_figure(rows), str(tmp_path / "four.png"))
    plots.render_tau_comparison(data.tau_comparison_figure(ROWS), str(tmp_path / "six.png"))
    four = _png_size((tmp_path / "four.png").read_bytes())
    six = _png_size((tmp_path / "six.png").read_bytes())
    assert six[0] == four[0] and six[1] > four[1]  # one row each taller, none dropped


def test_renderers_write_pngs_to_memory_urls() -> None:
    base = f"memory://tau-figures-{uuid.uuid4().hex}"
    jobs = [
        (plots.render_tau_comparison, data.tau_comparison_figure(ROWS), f"{base}/tau.png"),
        (plots.render_stability, data.stability_figure(_result()), f"{base}/stability.png"),
    ]
    try:
        for render, fig, url in jobs:
            render(fig, url)  # type: ignore[operator]
            written = storage.read_bytes(url)
            assert written is not None and written.startswith(PNG_MAGIC)
    finally:
        for _, _, url in jobs:
            storage.remove(url)


def test_renderers_cope_with_empty_and_degenerate_figures(tmp_path: Path) -> None:
    plots.render_tau_comparison(data.tau_comparison_figure([]), str(tmp_path / "a.png"))
    only_none = data.tau_comparison_figure([("x", data.ZERO_TRAINING, None, None, None)])
    plots.render_tau_comparison(only_none, str(tmp_path / "b.png"))
    no_winner = _result(
        frequencies={"a": 0.0, NO_WINNER: 1.0}, observed_winner=None, observed_winner_frequency=1.0
    )
    plots.render_stability(data.stability_figure(no_winner), str(tmp_path / "c.png"))
    for name in "abc":
        assert (tmp_path / f"{name}.png").read_bytes().startswith(PNG_MAGIC)


def test_renderers_do_not_touch_pyplot() -> None:
    def open_figures() -> list[int]:
        pyplot = sys.modules.get("matplotlib.pyplot")
        return [] if pyplot is None else list(pyplot.get_fignums())

    before = open_figures()
    base = f"memory://tau-figures-{uuid.uuid4().hex}"
    try:
        plots.render_tau_comparison(data.tau_comparison_figure(ROWS), f"{base}/t.png")
        plots.render_stability(data.stability_figure(_result()), f"{base}/s.png")
        assert open_figures() == before
    finally:
        storage.remove(f"{base}/t.png")
        storage.remove(f"{base}/s.png")


def test_a_scatter_says_how_its_interval_was_adjusted() -> None:
    args = ("t", [0.9, 0.8, 0.7], [0.6, 0.5, 0.4], ["a", "b", "c"], 1.0, 0.3, "full", "proxy")
    plain = data.correlation_scatter_figure(*args, interval=(0.2, 0.99, 0.85))
    assert plain.subtitle.endswith("· 85 % interval [0.20, 0.99]")
    noted = data.correlation_scatter_figure(
        *args, interval=(0.2, 0.99, 0.85), interval_note="adjusted for repeated looks"
    )
    assert noted.subtitle.endswith("· 85 % interval adjusted for repeated looks [0.20, 0.99]")
