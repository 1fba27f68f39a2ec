"""Fixtures of the executor tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from proxytask.executors.local import LocalExecutor


@pytest.fixture
def executors() -> Iterator[list[LocalExecutor]]:
    """Local executors a test made (with ``make``), closed after it."""
    made: list[LocalExecutor] = []
    yield made
    for executor in made:
        executor.close()
