"""Finished and running runs for the report and dashboard tests (replayed: seconds, no training).

:func:`finished_workflow` runs the replay workflow of ``tests/controllers/test_workflow.py``
through ``proxytask run`` and returns its workflow dir.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proxytask import cli
from tests.controllers.test_workflow import _config as workflow_config

__all__ = ["finished_workflow", "workflow_config"]


def finished_workflow(tmp_path: Path, **changes: Any) -> Path:
    """A finished replayed workflow (recommends the proxy ``good``); its ``Workflow_wf`` dir."""
    path = workflow_config(tmp_path, **changes)
    assert cli.main(["run", str(path)]) == 0
    return tmp_path / "runs" / "Workflow_wf"
