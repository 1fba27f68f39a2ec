"""Shared pytest fixtures: each plugin module below starts one kind of test service."""

from typing import Any

pytest_plugins = [
    "tests.s3_server",
    "tests.gcs_server",
    "tests.ray_cluster",
]


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """With pytest-xdist (``make test`` runs 2 workers, ``--dist loadgroup``), every Ray test
    runs on one worker, so one local Ray cluster serves them all."""
    import pytest

    for item in items:
        if item.get_closest_marker("ray") is not None:
            item.add_marker(pytest.mark.xdist_group("ray"))
