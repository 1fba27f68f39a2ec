"""Search-space sampling and proxy-task config loading."""

from __future__ import annotations

import pytest

from proxytask import ProxyTaskConfig
from proxytask.core.errors import ConfigError, SearchSpaceError
from proxytask.core.proxies import load_proxy_task_configs
from proxytask.core.space import load_search_space


def test_sampling_is_deterministic_per_seed_and_index() -> None:
    space = load_search_space("tests.fixtures.spaces:tiny")
    a = space.sample_many(seed=3, count=20)
    b = space.sample_many(seed=3, count=20)
    assert a == b
    assert space.sample_many(seed=3, count=5, start=15) == a[15:]
    assert a != space.sample_many(seed=4, count=20)
    assert len({(x["width"], x["depth"]) for x in a}) > 3


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        ("tests.fixtures.spaces:not_json", SearchSpaceError, "JSON-serialisable"),
        ("tests.fixtures.spaces:nope", SearchSpaceError, "must name a function"),
        ("nowhere.at.all:fn", SearchSpaceError, "importable module"),
        ("a:b:c", SearchSpaceError, "must look like"),
    ],
)
def test_bad_spaces(ref: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        load_search_space(ref).sample(0)


def test_proxy_config_validation() -> None:
    cfg = ProxyTaskConfig("data50", {"train_data_pct": 50})
    assert cfg.docker_args_map == {"train_data_pct": 50}
    with pytest.raises(ConfigError, match=r"ProxyTaskConfig\.name"):
        ProxyTaskConfig("bad name", {})
    with pytest.raises(ConfigError, match="trainer_args must be a dict"):
        ProxyTaskConfig("x", [1])  # type: ignore[arg-type]


def test_generator_loading_errors() -> None:
    with pytest.raises(ConfigError, match="non-empty list"):
        load_proxy_task_configs("tests.fixtures.generators:empty", {})
    with pytest.raises(ConfigError, match="must be unique"):
        load_proxy_task_configs("tests.fixtures.generators:duplicates", {})
    with pytest.raises(ConfigError, match="ProxyTaskConfig items"):
        load_proxy_task_configs("tests.fixtures.generators:dicts", {})
    got = load_proxy_task_configs("tests.fixtures.generators:two", {"lr": 0.1})
    assert [c.name for c in got] == ["a", "b"] and got[0].trainer_args["lr"] == 0.1
