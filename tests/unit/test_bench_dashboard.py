"""bench/dashboard_overhead.py: its table from recorded runs (the runs themselves take minutes)."""

from __future__ import annotations

from bench.dashboard_overhead import markdown


def test_the_table_compares_watched_and_unwatched_runs() -> None:
    runs = [
        {"watched": False, "wall_secs": 20.0, "cpu_secs": 18.0},
        {"watched": False, "wall_secs": 22.0, "cpu_secs": 18.5},
        {"watched": True, "wall_secs": 23.1, "cpu_secs": 18.2, "dashboard_cpu_secs": 4.0,
         "page_p50_secs": 0.05, "page_p95_secs": 0.2},
    ]  # fmt: skip
    text = markdown({"machine": {"cpu": "X", "cores": 2}, "poll_secs": 0.5, "runs": runs})
    assert "| alone | 21.0 | 18.2 | — | — |" in text
    assert "| dashboard open | 23.1 | 18.2 | 4.0 | 0.05 / 0.20 |" in text
    assert "took +10 % wall time" in text
