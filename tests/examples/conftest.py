"""One run of the NAS-Bench-201 example workflow, shared by the tests that read it.

Three test modules read the same accuracy run of ``examples/nasbench201/workflow.yaml``
(about 30 s each on 2 cores); they share this one. Tests must not change its dir, except
``test_running_the_workflow_again_keeps_the_live_decision``, which runs it again in place and
checks that the answer stays exactly the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxytask import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "nasbench201"


@dataclasses.dataclass(frozen=True)
class WorkflowRun:
    """A finished run: its workflow file, its workflow dir, and what ``proxytask run`` printed."""

    config: Path
    wdir: Path
    out: str


def nasbench201_config(tmp_path: Path, table: Path, mode: str | None = None) -> Path:
    """The example's workflow file with its output under ``tmp_path`` and the given table."""
    data: dict[str, Any] = yaml.safe_load((EXAMPLE / "workflow.yaml").read_text())
    data["root-output-dir"] = str(tmp_path / "runs")
    data["replay-table"] = str(table)
    if mode is not None:
        data["metric-mode"] = mode
    path = tmp_path / "workflow.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="session")
def nasbench201_run(tmp_path_factory: pytest.TempPathFactory) -> WorkflowRun:
    tmp = tmp_path_factory.mktemp("nasbench201")
    config = nasbench201_config(tmp, EXAMPLE / "curves.json")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["run", str(config)])
    assert code == 0, out.getvalue()[-3000:]
    return WorkflowRun(config, tmp / "runs" / "Workflow_nasbench201", out.getvalue())
