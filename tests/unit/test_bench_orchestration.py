"""bench/orchestration.py: what it counts as spent, the demo's training share, its tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench import orchestration

from proxytask.trainer import contract as pt


def _trial(tdir: Path, secs_per_eval: float, evals: int, start: int = 0) -> None:
    """A trial dir whose curve has ``evals`` evaluations of 10 steps from ``start``."""
    for k in range(start, start + evals):
        pt.update_trial_training_accuracy_metric(
            str(tdir), 0.5 + 0.01 * k, 10 * k, 10 * k + 9, secs_per_eval, 100
        )


def test_spent_counts_each_models_cumulative_time_once(tmp_path: Path) -> None:
    # model 1 of config a: stage 1 (2 evaluations), stage 2 continues its copied curve
    _trial(tmp_path / "jobs" / "proxy_a" / "1", 5.0, 2)
    stage2 = tmp_path / "jobs" / "proxy_a@stage2" / "1"
    _trial(stage2, 5.0, 3)  # the copied two and one more: 15 s in all
    _trial(tmp_path / "jobs" / "proxy_a" / "2", 5.0, 2)
    _trial(tmp_path / "jobs" / "proxy_b" / "1", 1.0, 4)
    assert orchestration._spent(tmp_path) == {"a": pytest.approx(25.0), "b": pytest.approx(4.0)}


def test_evidence_is_every_configs_models_trained_to_where_its_end_was_decided(
    tmp_path: Path,
) -> None:
    from proxytask.core import layout
    from proxytask.executors.replay import ReplayTable

    archs = [{"w": 1}, {"w": 2}]
    curves = [
        {
            "curve_id": f"{proxy}-{i}",
            "match": {"nas_params": arch, "trainer_args": {"proxy": proxy}},
            "total_steps": 40,
            "latency": 1.0,
            # an evaluation every 10 steps, each cycle taking 2 s (a) or 1 s (b)
            "points": [[10 * k - 1, 0.5, 2.0 if proxy == "a" else 1.0] for k in range(1, 5)],
        }
        for proxy in ("a", "b")
        for i, arch in enumerate(archs)
    ]
    table = ReplayTable.from_dict(
        {"format": "proxytask-replay-table", "version": 1, "curves": curves}
    )
    selection = tmp_path / "selection"
    models = []
    for i, arch in enumerate(archs):
        tdir = selection / "jobs" / str(i)
        pt.save_nas_params(str(tdir), json.dumps(arch))
        models.append({"trial_dir": str(tdir)})
    (selection / layout.REFERENCE_MODELS).write_text(json.dumps({"reference_models": models}))
    search = tmp_path / "search"
    search.mkdir()
    state = {
        "proxy_tasks_map": {
            "a": {"proxy_task_stats": {"decided_at_training_step": 19}},  # 2 evaluations
            "b": {"proxy_task_stats": {"decided_at_training_step": None}},  # ran to the end
        },
        "config_args": {"a": {"proxy": "a"}, "b": {"proxy": "b"}},
    }
    (search / "SEARCH_CONTROLLER_STATE.json").write_text(json.dumps(state))
    # a: 2 models x 2 evaluations x 2 s; b: 2 models x 4 evaluations x 1 s
    assert orchestration._evidence(table, search, selection) == pytest.approx(16.0)


def test_the_filesystem_note_names_a_mount() -> None:
    assert orchestration.filesystem_note(Path("/proc")) == "proc"


def test_the_demos_training_share_counts_continuations_by_their_own_time(
    tmp_path: Path,
) -> None:
    stage = tmp_path / "Search_controller_x"
    first, second = stage / "jobs" / "p" / "1", stage / "jobs" / "p@stage2" / "1"
    _trial(first, 10.0, 2)
    _trial(second, 10.0, 3)  # 30 s recorded, 20 of them copied from the first stage
    stage.mkdir(parents=True, exist_ok=True)
    records = [
        {"job": "p", "number": 1, "trial_dir": str(first), "copy_metrics_from": None},
        {"job": "p@stage2", "number": 1, "trial_dir": str(second), "copy_metrics_from": str(first)},
    ]
    (stage / "SEARCH_CONTROLLER_STATE.json").write_text(json.dumps({"trials": records}))
    # the executor ran the first 24 s and the second 12 s (the events the tracker logs)
    events = [
        {"event": "trial_launched", "trial": "p/1", "time": 0.0},
        {"event": "trial_ended", "trial": "p/1", "time": 25.0, "ran_from": 1.0, "ran_to": 25.0},
        {"event": "trial_ended", "trial": "p@stage2/1", "ran_from": 30.0, "ran_to": 42.0},
    ]
    (stage / "events.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n{torn")
    result = orchestration.part_demo(tmp_path, demo_secs=20.0, slots=2)
    assert result["trials"] == 2
    assert result["training_secs"] == pytest.approx(30.0)
    assert result["non_training_share"] == pytest.approx(0.25)
    assert result["trial_process_secs"] == pytest.approx(36.0)
    assert result["non_training_share_of_trial_time"] == pytest.approx(1 - 30.0 / 36.0, abs=1e-3)


def test_the_tables_show_every_part() -> None:
    results = {
        "machine": {"cpu": "CPU", "cores": 2},
        "date": "2026-11-28",
        "search": {
            "rows": [
                {
                    "curves": "digits",
                    "policy": "default",
                    "winner": "img12",
                    "deciding_step": 599,
                    "tau_at_stop": 0.7,
                    "spent_secs": 100.0,
                    "oracle_secs": 80.0,
                    "vs_oracle": 1.25,
                    "evidence_secs": 90.0,
                    "vs_evidence": 1.11,
                    "vs_reference": 0.4,
                    "states": {"img12": "Met desired correlation"},
                }
            ]
        },
        "trials": {
            "trials": 100,
            "trial_secs": 2.0,
            "ideal_secs": 100.0,
            "bare_processes_secs": 120.0,
            "proxytask_trial_secs": 130.0,
            "proxytask_trial_warm_secs": 105.0,
            "overhead_bare": 0.2,
            "overhead_plain": 0.3,
            "overhead_warm": 0.05,
        },
        "start": {
            "trials": 3,
            "plain_median_secs": 2.2,
            "warm_median_secs": 0.25,
            "warm_after_first_median_secs": 0.25,
        },
        "replay": {"digits_workflow_secs": 40.0, "nasbench201_workflow_secs": 100.0},
        "steps": {
            "rows": [
                {
                    "trials": 100,
                    "steps": 50,
                    "p50_secs": 0.01,
                    "p95_secs": 0.02,
                    "max_secs": 0.5,
                    "cpu_per_step_secs": 0.01,
                    "wall_secs": 3.0,
                }
            ]
        },
        "stops": {
            "rows": [
                {
                    "reports": "apart",
                    "watch": True,
                    "trials": 16,
                    "p50_secs": 0.004,
                    "p95_secs": 0.02,
                    "max_secs": 0.03,
                },
            ]
        },
        "demo": {
            "wall_secs": 200.0,
            "trials": 175,
            "training_secs": 300.0,
            "slot_secs": 400.0,
            "non_training_share": 0.25,
        },
    }
    text = orchestration.markdown(results)
    row = "| digits | default | img12 (599, 0.7) | 100.0 | 80.0 | 1.25 | 90.0 | 1.11 | 0.4 |"
    assert row in text
    assert "| `proxytask trial --trainer-entry` (warm) | 105.0 | +5 % |" in text
    assert "warm worker: median 0.25 s" in text
    assert "digits (recorded curves): 40.0 s" in text
    assert "| 100 | 50 | 0.01 | 0.02 | 0.5 | 0.01 | 3.0 |" in text
    assert "non-training share 25 %" in text
    assert "| apart | yes | 16 | 0.004 | 0.02 | 0.03 |" in text


def test_the_stop_probe_sees_a_stop_the_loop_posts(tmp_path: Path) -> None:
    # two probes reporting 0.3 s apart, the loop with its file watch: both see their stop
    latencies = orchestration._stop_latencies(tmp_path, 2, 0.3, watch=True)
    assert len(latencies) == 2 and all(lat >= 0 for lat in latencies)
