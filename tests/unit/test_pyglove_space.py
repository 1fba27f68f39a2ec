"""PyGlove search spaces (the reference tools' kind): sampled by proxytask, materialised by
``cloud_nas_utils.parse_and_save_nas_params_str`` in the trainer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pg = pytest.importorskip("pyglove")

from proxytask.core.errors import SearchSpaceError, UsageError  # noqa: E402
from proxytask.core.space import load_search_space  # noqa: E402
from proxytask.vertex import cloud_nas_utils  # noqa: E402
from tests.fixtures import pyglove_spaces  # noqa: E402


def test_a_pyglove_space_is_sampled_deterministically_as_json_decisions() -> None:
    space = load_search_space("tests.fixtures.pyglove_spaces:tiny")
    first = space.sample(0, 0)
    assert space.sample(0, 0) == first  # the same on every run
    assert json.loads(json.dumps(first)) == first
    assert set(first) == {"width", "depth", "block.kernel", "block.dropout"}
    assert first["width"] in {"0/4", "1/4", "2/4", "3/4"}
    many = space.sample_many(seed=1, count=20)
    assert len({json.dumps(a, sort_keys=True) for a in many}) > 10


def test_the_trainer_materialises_the_decisions_and_saves_them(tmp_path: Path) -> None:
    space = load_search_space("tests.fixtures.pyglove_spaces:tiny")
    arch = space.sample(3, 1)
    tunable = cloud_nas_utils.parse_and_save_nas_params_str(
        pyglove_spaces.tiny(), json.dumps(arch), str(tmp_path)
    )
    assert tunable.width in (8, 16, 32, 64) and tunable.block.kernel in (3, 5)
    assert 0.0 <= tunable.block.dropout <= 0.5
    saved = tmp_path / "nas_params_str.json"
    assert json.loads(saved.read_text()) == arch
    # a continuation reads the saved file back to the same model
    again = cloud_nas_utils.parse_and_save_nas_params_str(pyglove_spaces.tiny(), str(saved))
    assert again == tunable
    text = cloud_nas_utils.serialize_and_save_tunable_object(tunable, str(tmp_path))
    assert json.loads((tmp_path / "serialized_tunable_object.json").read_text()) == json.loads(text)


def test_a_plain_space_passes_its_json_through(tmp_path: Path) -> None:
    arch = {"width": 16, "depth": 2}
    out = cloud_nas_utils.parse_and_save_nas_params_str(None, json.dumps(arch), str(tmp_path))
    assert out == arch


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("tests.fixtures.pyglove_spaces:fixed", "with at least one decision"),
        ("tests.fixtures.pyglove_spaces:broken", "RuntimeError: no space today"),
    ],
)
def test_a_pyglove_space_that_cannot_be_sampled_is_refused(ref: str, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        load_search_space(ref)


def test_decisions_from_another_space_are_refused() -> None:
    with pytest.raises(UsageError, match="must hold decisions of this search space"):
        cloud_nas_utils.parse_and_save_nas_params_str(
            pyglove_spaces.tiny(), json.dumps({"colour": "1/2"})
        )


def test_the_cli_refuses_an_unsampleable_space_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from proxytask import cli

    code = cli.main(
        [
            "trial",
            "--trainer=python -c pass",
            "--search-space=tests.fixtures.pyglove_spaces:fixed",
            f"--root-output-dir={tmp_path / 'runs'}",
            "--job-name=t",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "with at least one decision" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
