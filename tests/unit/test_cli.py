"""The command line: help, config files, and one clear line with exit 2 for bad input."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from proxytask import cli

FAKE_SPACE = "tests.fixtures.spaces:tiny"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _trial_args(tmp_path: Path, **over: str) -> list[str]:
    base = {
        "trainer": f"{sys.executable} -c pass",
        "search-space": FAKE_SPACE,
        "root-output-dir": str(tmp_path / "runs"),
        "job-name": "job1",
    }
    base.update(over)
    args = ["trial"]
    for key, value in base.items():
        args.append(f"--{key}={value}")
    return args


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "trial" in out and "status" in out


@pytest.mark.parametrize(
    "command",
    ["trial", "variance", "select-models", "latency-worker", "search", "run", "status"],
)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: proxytask " + command)
    if command == "select-models":
        assert "at 100 %)" in out  # a literal % in a help text


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"search-space": "no_such_module_xyz:fn"}, "--search-space must name an importable"),
        ({"search-space": "tests.fixtures.spaces:missing"}, "must name a function"),
        ({"search-space": "tests.fixtures.spaces"}, "must look like 'package.module:function'"),
        ({"search-space": "tests.fixtures.spaces:not_json"}, "JSON-serialisable"),
        ({"search-space": "tests.fixtures.spaces:not_a_dict"}, "must return a dict"),
        ({"search-space": "tests.fixtures.spaces:raises"}, "must return an architecture"),
        ({"job-name": "bad name!"}, "--job-name must be"),
        ({"trainer": "python 'unbalanced"}, "balanced quotes"),
        ({"trainer": "/no/such/program --x"}, "must start with a program that exists"),
        ({"max-parallel-trials": "0"}, "--max-parallel-trials must be a whole number >= 1"),
        ({"max-parallel-trials": "2.5"}, "--max-parallel-trials must be a whole number"),
        ({"gpus-per-trial": "-1"}, "--gpus-per-trial must be a finite number >= 0"),
        ({"architecture": "{not json"}, "architecture must be a JSON object"),
        ({"executor": "replay"}, "--replay-table must be given"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], over: dict[str, str], message: str
) -> None:
    code, out, err = _run(_trial_args(tmp_path, **over), capsys)
    assert code == 2, (out, err)
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_bad_trainer_args(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run([*_trial_args(tmp_path), "--trainer-args", "novalue"], capsys)
    assert code == 2 and "KEY=VALUE" in err
    assert not (tmp_path / "runs").exists()


def test_missing_required_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["trial", "--trainer=python"], capsys)
    assert code == 2 and "--search-space must be given" in err


def test_unknown_choice_from_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["trial", "--executor", "kubernetes"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_config_file_and_flags_win(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"trainer: {sys.executable} -c pass\nsearch_space: {FAKE_SPACE}\n"
        f"root-output-dir: {tmp_path / 'runs'}\njob-name: from_file\nmax-parallel-trials: 0\n"
    )
    code, _, err = _run(["trial", "--config", str(config)], capsys)
    assert code == 2 and "config key 'max-parallel-trials' must be a whole number >= 1" in err
    from proxytask.cli import TRIAL_COMMAND_OPTIONS, build_parser
    from proxytask.core.options import resolve_options

    args = build_parser().parse_args(
        ["trial", "--config", str(config), "--max-parallel-trials", "3", "--job-name", "flag"]
    )
    values = resolve_options(args, TRIAL_COMMAND_OPTIONS, str(config))
    assert values["max_parallel_trials"] == 3 and values["job_name"] == "flag"
    assert values["executor"] == "local"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("jobname: x\n", "config key 'jobname'"),
        ("- a\n- b\n", "must hold a mapping"),
        ("a: [\n", "must be valid YAML"),
        ("executor: slurm\n", "must be one of local, replay"),
        ("seed: true\n", "must be a whole number"),
    ],
)
def test_bad_config_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(content)
    code, _, err = _run([*_trial_args(tmp_path), "--config", str(config)], capsys)
    assert code == 2 and message in err, err
    assert not (tmp_path / "runs").exists()


def test_unknown_key_suggests_the_close_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("job_nam: x\n")
    _, _, err = _run([*_trial_args(tmp_path), "--config", str(config)], capsys)
    assert "Did you mean 'job-name'?" in err


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run([*_trial_args(tmp_path), "--config", str(tmp_path / "no.yaml")], capsys)
    assert code == 2 and "--config must name an existing file" in err


def test_status_of_a_missing_or_foreign_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["status", str(tmp_path / "nope")], capsys)[0] == 2
    (tmp_path / "foreign").mkdir()
    code, _, err = _run(["status", str(tmp_path / "foreign")], capsys)
    assert code == 2 and "must be a proxytask controller dir" in err


def test_console_script_prints_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run(
        [sys.executable, "-m", "proxytask.cli", *_trial_args(tmp_path, **{"job-name": "a b"})],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("proxytask: error: --job-name must be")


def test_the_command_table_is_the_parser() -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == [c.name for c in cli.COMMANDS]
    for command in cli.COMMANDS:
        dests = {a.dest for a in sub.choices[command.name]._actions}
        assert {o.dest for o in command.options} <= dests


def test_the_latency_worker_module_runs_the_cli_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from proxytask.controllers import latency

    code = latency.main(["--controller-dir", str(tmp_path / "none"), "--latency-command", "ls"])
    assert code == 2
    assert capsys.readouterr().err.startswith(
        "proxytask: error: --controller-dir must be an existing controller dir"
    )


def test_the_stopping_rule_choices_are_the_registered_rules() -> None:
    from proxytask.controllers.command_options import SEARCH_OPTIONS
    from proxytask.stats.stopping import STOPPING_RULES

    (option,) = [o for o in SEARCH_OPTIONS if o.name == "stopping-rule"]
    assert option.choices is not None and set(option.choices) == set(STOPPING_RULES)
