"""Built-in proxy-task generators (SPEC §4.1) and the sharded-data helpers."""

from __future__ import annotations

from typing import Any

import pytest

from proxytask.core.errors import ConfigError
from proxytask.core.proxies import (
    ProxyTaskConfig,
    data_and_scale,
    data_pct_generator,
    load_proxy_task_configs,
    model_scale,
    model_scale_generator,
    product_generator,
    select_shards,
    shard_fraction_arg,
    training_data_pct,
)


def _summary(configs: list[ProxyTaskConfig]) -> list[tuple[str, dict[str, Any]]]:
    return [(c.name, dict(c.trainer_args)) for c in configs]


def test_data_pct_generator_names_and_args() -> None:
    gen = data_pct_generator((25, 50), arg="pct")
    assert _summary(gen({"lr": "0.1"})) == [
        ("data25", {"lr": "0.1", "pct": 25}),
        ("data50", {"lr": "0.1", "pct": 50}),
    ]
    assert [c.name for c in data_pct_generator((12.5,))({})] == ["data12.5"]


@pytest.mark.parametrize("pcts", [(100,), (0,), (-5,), (50, 150), (), (True,), ("50",), (50, 50)])
def test_data_pct_generator_rejects_bad_values(pcts: tuple[Any, ...]) -> None:
    with pytest.raises(ConfigError, match="data_pct_generator pcts must"):
        data_pct_generator(pcts)


def test_data_pct_100_message_explains() -> None:
    with pytest.raises(ConfigError, match="never 100: that is full training"):
        data_pct_generator((50, 100))


def test_training_data_pct_ready_made() -> None:
    configs = training_data_pct({"lr": 0.1})
    assert [c.name for c in configs] == ["data25", "data50", "data75", "data95"]
    assert [c.trainer_args["train_data_pct"] for c in configs] == [25, 50, 75, 95]
    assert all(c.trainer_args["lr"] == 0.1 for c in configs)


def test_load_ready_made_by_reference() -> None:
    configs = load_proxy_task_configs("proxytask.proxies:training_data_pct", {"lr": "0.1"})
    assert [c.name for c in configs] == ["data25", "data50", "data75", "data95"]
    assert configs[1].trainer_args == {"lr": "0.1", "train_data_pct": 50}
    names = [c.name for c in load_proxy_task_configs("proxytask.proxies:data_and_scale", {})]
    assert names == ["data25_width0.5", "data50_width0.5"]


def test_model_scale_generator_single_reductions() -> None:
    gen = model_scale_generator((0.5,), (0.25,), (12, 16, 20), width_arg="w", depth_arg="d")
    assert _summary(gen({"image_size": "16", "lr": 1})) == [
        ("width0.5", {"image_size": "16", "lr": 1, "w": 0.5}),
        ("depth0.25", {"image_size": "16", "lr": 1, "d": 0.25}),
        ("img12", {"image_size": 12, "lr": 1}),  # 16 and 20 are not below the baseline's 16
    ]
    # Without an image_size in the baseline every given size is used.
    assert [c.name for c in gen({})] == ["width0.5", "depth0.25", "img12", "img16", "img20"]


def test_model_scale_generator_all_sizes_skipped_is_an_error() -> None:
    gen = model_scale_generator((), (), (32,))
    with pytest.raises(ConfigError, match="must be below the baseline image_size 16"):
        gen({"image_size": 16})
    with pytest.raises(ConfigError, match="baseline image_size must be a positive integer"):
        gen({"image_size": "big"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": (1.0,)}, r"width multipliers must be in \(0, 1\)"),
        ({"width": (0,)}, r"width multipliers must be in \(0, 1\)"),
        ({"depth": (1.5,)}, r"depth multipliers must be in \(0, 1\)"),
        ({"depth": (0.5, 0.5)}, "must not repeat"),
        ({"image_size": (0,)}, "image_size must be positive integers"),
        ({"image_size": (12.5,)}, "image_size must be positive integers"),
        ({"width": (), "depth": (), "image_size": ()}, "at least one width, depth or image_size"),
        ({"width_arg": ""}, "width_arg must be a non-empty trainer flag name"),
    ],
)
def test_model_scale_generator_rejects_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        model_scale_generator(**kwargs)


def test_model_scale_ready_made_with_and_without_image_size() -> None:
    assert _summary(model_scale({"image_size": 225})) == [
        ("width0.5", {"image_size": 225, "width_multiplier": 0.5}),
        ("width0.75", {"image_size": 225, "width_multiplier": 0.75}),
        ("depth0.5", {"image_size": 225, "depth_multiplier": 0.5}),
        ("img168", {"image_size": 168}),  # 225 * 3 / 4 = 168.75, rounded down
    ]
    assert [c.name for c in model_scale({"lr": 0.1})] == ["width0.5", "width0.75", "depth0.5"]


def test_product_generator_names_and_merged_args() -> None:
    gen = product_generator(data_pct_generator((25, 50)), model_scale_generator((0.5,), (), (12,)))
    assert _summary(gen({"image_size": 16, "lr": 0.1})) == [
        (
            "data25_width0.5",
            {"image_size": 16, "lr": 0.1, "train_data_pct": 25, "width_multiplier": 0.5},
        ),
        ("data25_img12", {"image_size": 12, "lr": 0.1, "train_data_pct": 25}),
        (
            "data50_width0.5",
            {"image_size": 16, "lr": 0.1, "train_data_pct": 50, "width_multiplier": 0.5},
        ),
        ("data50_img12", {"image_size": 12, "lr": 0.1, "train_data_pct": 50}),
    ]


def test_product_generator_conflict_and_bad_arguments() -> None:
    gen = product_generator(data_pct_generator((50,)), data_pct_generator((25,)))
    with pytest.raises(ConfigError, match="'train_data_pct' = 50 from 'data50' and 25"):
        gen({})
    with pytest.raises(ConfigError, match="at least one generator"):
        product_generator()
    with pytest.raises(ConfigError, match="must be generator functions"):
        product_generator(data_pct_generator(), 3)  # type: ignore[arg-type]


def test_data_and_scale_ready_made() -> None:
    configs = data_and_scale({"image_size": 224})
    assert _summary(configs) == [
        ("data25_width0.5", {"image_size": 224, "train_data_pct": 25, "width_multiplier": 0.5}),
        ("data25_img168", {"image_size": 168, "train_data_pct": 25}),
        ("data50_width0.5", {"image_size": 224, "train_data_pct": 50, "width_multiplier": 0.5}),
        ("data50_img168", {"image_size": 168, "train_data_pct": 50}),
    ]


SHARDS = [f"shard-{i:02d}" for i in range(20)]


def test_select_shards_is_deterministic_per_seed_and_keeps_order() -> None:
    a = select_shards(SHARDS, 0.25, seed=7)
    assert a == select_shards(SHARDS, 0.25, seed=7)
    assert len(a) == 5
    assert a == sorted(a, key=SHARDS.index)
    assert len({tuple(select_shards(SHARDS, 0.25, seed=s)) for s in range(10)}) > 1


def test_select_shards_is_not_the_first_shards() -> None:
    assert any(select_shards(SHARDS, 0.5, seed=s) != SHARDS[:10] for s in range(5))


@pytest.mark.parametrize(("n", "fraction"), [(10, 0.3), (20, 0.05), (4, 0.75), (3, 1 / 3)])
def test_select_shards_exact_fraction(n: int, fraction: float) -> None:
    picked = select_shards([f"s{i}" for i in range(n)], fraction, seed=1)
    assert len(picked) / n == pytest.approx(fraction, abs=1e-9)


def test_select_shards_non_representable_fraction() -> None:
    shards = [f"s{i}" for i in range(10)]
    with pytest.raises(
        ConfigError,
        match=r"fraction 0\.33 of 10 shards is not representable; "
        r"use 0\.3 or 0\.4, or give a shard count divisible",
    ):
        select_shards(shards, 0.33, seed=0)
    with pytest.raises(ConfigError, match=r"use 0\.1, or"):
        select_shards(shards, 0.04, seed=0)


@pytest.mark.parametrize(
    ("shards", "fraction", "message"),
    [
        ([], 0.5, "must be non-empty"),
        (["a", "b", "a", "c"], 0.5, "must be distinct"),
        ("abcd", 0.5, "must be a list of paths"),
        (["a", "b"], 1.0, r"fraction must be in \(0, 1\)"),
        (["a", "b"], 0.0, r"fraction must be in \(0, 1\)"),
    ],
)
def test_select_shards_rejects_bad_input(shards: Any, fraction: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        select_shards(shards, fraction, seed=0)


def test_shard_fraction_arg_formats_selected_paths() -> None:
    value = shard_fraction_arg("gs://b/train-{index:05d}-of-{num:05d}", 8, 0.25, seed=3)
    all_paths = [f"gs://b/train-{i:05d}-of-00008" for i in range(8)]
    assert value.split(",") == select_shards(all_paths, 0.25, seed=3)
    assert len(value.split(",")) == 2
    with pytest.raises(ConfigError, match="must contain"):
        shard_fraction_arg("gs://b/train", 8, 0.25, seed=3)
    with pytest.raises(ConfigError, match=r"only \{index\} and \{num\}"):
        shard_fraction_arg("gs://b/{index}-{other}", 8, 0.25, seed=3)
    with pytest.raises(ConfigError, match="num_shards must be a positive integer"):
        shard_fraction_arg("gs://b/{index}", 0, 0.25, seed=3)


def test_the_public_paths_users_write_stay_valid() -> None:
    import proxytask
    import proxytask.proxies
    import proxytask.trainer
    from proxytask.core import proxies
    from proxytask.trainer import contract

    assert proxytask.proxies.training_data_pct is proxies.training_data_pct
    assert proxytask.ProxyTaskConfig is proxies.ProxyTaskConfig
    assert proxytask.trainer.get_stop_training is contract.get_stop_training
    assert set(contract.__all__) <= set(dir(proxytask.trainer))
