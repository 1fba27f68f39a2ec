"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright.

The ``browser`` fixture finds the browser (``PROXYTASK_CHROMIUM``, else ``/usr/bin/chromium``),
installs it with ``scripts/install-chromium.sh`` when it is missing (root and apt, as on CI),
and launches it headless through Playwright for Python (the dev extra) without Playwright's own
browser download. Set ``PROXYTASK_SCREENSHOTS=DIR`` to keep the tests' screenshots.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _chromium() -> str:
    given = os.environ.get("PROXYTASK_CHROMIUM")
    if given:
        return given
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if os.access(candidate, os.X_OK):
            return candidate
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install-chromium.sh")],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not shutil.which(lines[-1]):
        pytest.fail(f"Chromium could not be installed: {done.stderr.strip()[-500:]}")
    return lines[-1]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="the browser tests need playwright (the dev extra)"
    )
    executable = _chromium()
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox"], headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """Where the tests save screenshots: ``PROXYTASK_SCREENSHOTS`` or a temp dir."""
    wanted = os.environ.get("PROXYTASK_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder
