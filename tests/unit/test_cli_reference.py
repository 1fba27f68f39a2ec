"""docs/cli.md is generated from the parser and must match it; render() on a tiny parser."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from proxytask.cli import build_parser
from proxytask.report.cli_reference import main, render

CLI_MD = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _tiny_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tiny", description="A tiny   tool\nfor tests.")
    parser.add_argument("--version", action="version", version="tiny 1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    go = sub.add_parser("go", help="go somewhere | fast", description="Go somewhere.")
    go.add_argument("target", metavar="TARGET", help="where to go")
    go.add_argument("--speed", type=float, default=1.5, metavar="S", help="how fast")
    go.add_argument("--mode", choices=("walk", "run"), default="walk", help="how (%(choices)s)")
    go.add_argument("--tags", nargs="+", metavar="TAG", help="labels; 100%% optional")
    go.add_argument("--dry-run", action="store_true", help="print only (%(prog)s)")
    go.add_argument("--hidden", help=argparse.SUPPRESS)
    sub.add_parser("stop", help="stop")
    return parser


def test_render_tiny_parser_lists_commands_options_defaults_and_choices() -> None:
    text = render(_tiny_parser())

    assert text.startswith("# Command-line reference\n")
    assert "## `tiny`\n\nA tiny tool for tests.\n" in text
    assert "| `go` | go somewhere \\| fast |" in text
    assert "| `stop` | stop |" in text
    assert "| `--version` |  | show program's version number and exit |" in text
    assert "## `tiny go`\n\nGo somewhere.\n" in text
    assert "| `TARGET` |  | where to go |" in text
    assert "| `--speed` | `S` | how fast (default: 1.5) |" in text
    assert "| `--mode` | `walk\\|run` | how (walk, run) (default: walk) |" in text
    assert "| `--tags` | `TAG` ... | labels; 100% optional |" in text
    assert "| `--dry-run` |  | print only (tiny go) |" in text
    assert "--hidden" not in text and "--help" not in text.split("\n## ")[1]
    # a subcommand without a description shows its one-line help
    assert "## `tiny stop`\n\nstop\n" in text
    assert text.index("## `tiny go`") < text.index("## `tiny stop`")


def test_render_is_deterministic_whatever_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    narrow = render(build_parser())
    monkeypatch.setenv("COLUMNS", "250")
    wide = render(build_parser())

    assert narrow == wide
    assert str(Path.cwd()) not in narrow and str(Path.home()) not in narrow


def test_render_covers_every_subcommand_of_the_cli() -> None:
    text = render(build_parser())

    for command in ("trial", "variance", "select-models", "latency-worker", "search", "run"):
        assert f"## `proxytask {command}`" in text
    assert "| `--stopping-rule` | `point\\|confident" in text  # any rules added after them


def test_docs_cli_md_is_up_to_date() -> None:
    expected = render(build_parser())
    actual = CLI_MD.read_text(encoding="utf-8") if CLI_MD.exists() else ""

    assert actual == expected, (
        "docs/cli.md is out of date with the command-line parser: run `make docs` (or "
        "`python -m proxytask.report.cli_reference > docs/cli.md`) and commit the result."
    )


def test_main_prints_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert main() == 0
    assert capsys.readouterr().out == render(build_parser())
