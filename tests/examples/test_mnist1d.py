"""The MNIST-1D example: data cache, search space, model, trainer contract, shared latency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

torch = pytest.importorskip("torch")
pytest.importorskip("mnist1d")

from examples.mnist1d import data, model, proxies, search_space  # noqa: E402
from examples.mnist1d import trainer as m1d  # noqa: E402

from proxytask.core.errors import UsageError  # noqa: E402
from proxytask.core.space import load_search_space  # noqa: E402
from proxytask.trainer import contract as pt  # noqa: E402

TRAINER = REPO / "examples" / "mnist1d" / "trainer.py"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated dataset for the module's tests (generating takes a few seconds)."""
    folder = tmp_path_factory.mktemp("mnist1d-data")
    old = os.environ.get(data.ENV_DATA_DIR)
    os.environ[data.ENV_DATA_DIR] = str(folder)
    data.load_split()
    yield folder
    if old is None:
        os.environ.pop(data.ENV_DATA_DIR, None)
    else:
        os.environ[data.ENV_DATA_DIR] = old


def _tiny(job: Path | str, *extra: str) -> list[str]:
    return [f"--job-dir={job}", "--total_steps=8", "--eval_every_steps=4", "--latency_runs=2",
            *extra]  # fmt: skip


def _run(
    job: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TRAINER), f"--job-dir={job}", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


# ---- data -----------------------------------------------------------------------------------


def test_split_is_the_packages_default_dataset_and_is_cached(data_dir: Path) -> None:
    split = data.load_split()
    assert split.train_x.shape == (4000, 40) and split.val_x.shape == (8000, 40)
    assert split.train_x.dtype == np.float32 and split.train_y.dtype == np.int64
    assert sorted(np.unique(split.val_y)) == list(range(10))
    assert (data_dir / "mnist1d-v2.npz").is_file()
    again = data.load_split()  # read back from the cache: the same arrays
    assert np.array_equal(again.train_x, split.train_x)
    assert np.array_equal(again.val_y, split.val_y)


def test_a_damaged_cache_is_regenerated(data_dir: Path, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv(data.ENV_DATA_DIR, str(tmp_path))
    (tmp_path / "mnist1d-v2.npz").write_bytes(b"not an npz")
    split = data.load_split()
    assert split.train_x.shape == (4000, 40)
    monkeypatch.setenv(data.ENV_DATA_DIR, str(data_dir))
    assert np.array_equal(split.train_x, data.load_split().train_x)


def test_signals_resample_to_the_proxy_length(data_dir: Path) -> None:
    split = data.load_split()
    full = data.to_tensor(split.val_x[:5], 40)
    short = data.to_tensor(split.val_x[:5], 20)
    assert full.shape == (5, 1, 40) and short.shape == (5, 1, 20)
    assert torch.equal(full[:, 0], torch.from_numpy(split.val_x[:5]))
    assert torch.allclose(short[:, :, 0], full[:, :, 0])  # the ends are kept
    assert torch.allclose(short[:, :, -1], full[:, :, -1])


# ---- search space and model -----------------------------------------------------------------


def test_sample_is_deterministic_json_and_valid() -> None:
    first = [search_space.sample(np.random.default_rng([0, i])) for i in range(20)]
    again = [search_space.sample(np.random.default_rng([0, i])) for i in range(20)]
    assert first == again
    for arch in first:
        assert json.loads(json.dumps(arch)) == arch
        assert search_space.validate(arch) == arch
    space = load_search_space("examples.mnist1d.search_space:sample")
    drawn = space.sample_many(seed=3, count=4)
    assert drawn == space.sample_many(seed=3, count=4)
    assert all(search_space.validate(arch) == arch for arch in drawn)


def test_space_spans_tiny_to_wide_models() -> None:
    params = [
        model.count_params(model.build_model(search_space.sample(np.random.default_rng(i))))
        for i in range(60)
    ]
    assert min(params) < 1_000 and max(params) > 15_000


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: a.update(stem_kernel=4), "`stem_kernel` must be odd"),
        (lambda a: a["stages"][1].update(kernel=0), "`stages[1].kernel` must be an integer"),
        (lambda a: a["stages"][2].update(width=True), "`stages[2].width` must be an integer"),
        (lambda a: a["stages"].pop(), "`stages` must be a list of 3 stages"),
        (lambda a: a.update(extra=1), "must have exactly the keys"),
        (lambda a: a["stages"][0].pop("repeats"), "`stages[0]` must have exactly the keys"),
    ],
)
def test_validate_names_the_bad_field(mutate: Any, message: str) -> None:
    arch = search_space.baseline()
    mutate(arch)
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        search_space.validate(arch)


@pytest.mark.parametrize("length", [20, 30, 40])
def test_model_and_its_scaled_down_versions_run(length: int) -> None:
    arch = search_space.baseline()
    full = model.build_model(arch)
    small = model.build_model(arch, width_multiplier=0.5, depth_multiplier=0.5)
    x = torch.zeros(3, 1, length)
    assert full(x).shape == small(x).shape == (3, 10)
    assert model.count_params(small) < model.count_params(full)
    assert model.estimate_macs(arch, length, 0.5) < model.estimate_macs(arch, length)


def test_proxy_generator_reduces_something_in_every_config() -> None:
    configs = proxies.generate({"total_steps": 1000, "seq_length": 40})
    names = [c.name for c in configs]
    assert len(set(names)) == len(names)
    assert {"data25", "len20", "width0.5", "data25_len20"} <= set(names)
    for c in configs:
        args = c.trainer_args
        assert (
            args.get("train_data_pct", 100) < 100
            or args.get("seq_length", 40) < 40
            or args.get("width_multiplier", 1.0) < 1.0
        )
    assert [c.name for c in proxies.generate({"seq_length": 20})].count("len20") == 0
    assert [c.name for c in proxies.demo({})] == list(proxies.DEMO_NAMES)


# ---- trainer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--seq_length=4", "--seq_length: must be >= 8"),
        ("--train_data_pct=0", "--train_data_pct: must be > 0"),
        ("--lr_schedule=linear", "--lr_schedule: must be one of"),
        ("--nas_params_str={}", "must have exactly the keys"),
    ],
)
def test_bad_flags_exit_2_with_one_line(tmp_path: Path, flag: str, message: str) -> None:
    args = _tiny(tmp_path / "t", "--baseline")[1:]
    if flag.startswith("--nas_params_str"):
        args.remove("--baseline")
    proc = _run(tmp_path / "t", *args, flag)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_trial_follows_the_contract_and_continues(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROXYTASK_CACHE_DIR", str(tmp_path / "cache"))
    first = tmp_path / "search" / "1"
    first.mkdir(parents=True)
    (first / "DESIRED_TRAINING_PCT.json").write_text(json.dumps({"desired_training_pct": 50}))
    assert m1d.main(_tiny(first, "--baseline")) == 0  # stops when told, after step 3 of 8
    metrics = pt.read_trial_training_metrics(str(first))
    assert metrics is not None and metrics.has_latency
    assert [p.training_step for p in metrics.training_accuracy_over_steps] == [3]
    final = json.loads((first / "FINAL_METRICS.json").read_text())
    assert {"accuracy", "latency_ms", "params", "zero_cost.synflow"} <= set(final)
    assert json.loads((first / "nas_params_str.json").read_text()) == search_space.baseline()

    monkeypatch.setenv("CLOUD_ML_TRIAL_ID", "1")
    flags = [f"--retrain_search_job_dir={tmp_path / 'search'}", "--retrain_search_job_trials=1",
             "--retrain_use_search_job_checkpoint=true"]  # fmt: skip
    later = tmp_path / "later"
    longer = [f"--job-dir={later}", "--total_steps=16", "--latency_runs=2", *flags]
    assert m1d.main(longer) == 2  # another step budget cannot continue this schedule
    assert m1d.main(_tiny(later, *flags)) == 0
    metrics = pt.read_trial_training_metrics(str(later))
    assert metrics is not None
    assert [p.training_step for p in metrics.training_accuracy_over_steps] == [7]
    again = json.loads((later / "FINAL_METRICS.json").read_text())
    assert "zero_cost.synflow" not in again  # scores are for a freshly initialised model
    assert again["latency_ms"] == final["latency_ms"]  # the same model: the cached latency


def test_latency_is_measured_once_per_model_and_shared(
    data_dir: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("PROXYTASK_CACHE_DIR", str(tmp_path / "cache"))
    arch = json.dumps(search_space.baseline())
    assert m1d.main(_tiny(tmp_path / "a", f"--nas_params_str={arch}")) == 0
    # another run of the same model on less data reuses the measurement ...
    assert m1d.main(_tiny(tmp_path / "b", f"--nas_params_str={arch}", "--train_data_pct=25")) == 0
    # ... a narrower model is another model: measured anew
    assert m1d.main(_tiny(tmp_path / "c", "--baseline", "--width_multiplier=0.5")) == 0
    lat = {k: pt.read_trial_training_metrics(str(tmp_path / k)).latency for k in "abc"}
    assert lat["a"] == lat["b"] and lat["c"] != lat["a"]
    assert len(list((tmp_path / "cache" / "latency").glob("*.json"))) == 2
