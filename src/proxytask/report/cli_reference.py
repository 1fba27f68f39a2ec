"""The command-line reference (``docs/cli.md``), rendered from an argparse parser.

``render(parser)`` walks the parser objects themselves (subcommands, their arguments, defaults,
choices, help), never the modules that fill them, so the reference stays true wherever the
option tables live. The output is deterministic: no terminal width, no absolute paths, commands
and options in the order argparse shows them.

Regenerate the project's reference with ``make docs``, which runs::

    python -m proxytask.report.cli_reference > docs/cli.md
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

__all__ = ["main", "render"]

_HEADER = """# Command-line reference

Generated from the argument parser by `python -m proxytask.report.cli_reference` (`make docs`);
do not edit it by hand. Every command also takes `-h`/`--help`. A command with `--config FILE`
also reads its options from that YAML file (keys are the option names); options on the command
line win over the file. What the tools do with them: [guide.md](guide.md).
"""


def render(parser: argparse.ArgumentParser) -> str:
    """The Markdown reference of ``parser`` and of every subcommand it has.

    One section for the program's own options, then one per subcommand in the order it was
    added, each with its description and a table of its arguments: the flags (or the
    positional name), the value it takes, and its help with argparse's ``%(default)s``-style
    placeholders filled in and the default added when the help does not say it. Pure: the
    same parser gives the same text.

    Example::

        text = render(proxytask.cli.build_parser())
    """
    prog = parser.prog
    parts = [_HEADER, _section(prog, parser)]
    parts.extend(_section(f"{prog} {name}", sub, help) for name, sub, help in _subcommands(parser))
    return "\n".join(parts)


def _subcommands(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[str, argparse.ArgumentParser, str | None]]:
    """(name, parser, one-line help) of each subcommand, in the order they were added."""
    for action in parser._actions:  # argparse has no public list of a parser's arguments
        if not isinstance(action, argparse._SubParsersAction):
            continue
        # the one-line helps live on argparse's pseudo-actions, one per subcommand
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        seen: set[int] = set()
        for name, sub in action.choices.items():
            if id(sub) not in seen:  # an alias maps to the same parser
                seen.add(id(sub))
                yield name, sub, helps.get(name)


def _section(title: str, parser: argparse.ArgumentParser, summary: str | None = None) -> str:
    """One command: its description (or one-line help), its subcommands, its arguments."""
    lines = [f"## `{title}`", ""]
    text = parser.description or summary
    if text:
        lines += [_one_line(text), ""]
    commands = [f"| `{name}` | {_cell(help or '')} |" for name, _, help in _subcommands(parser)]
    if commands:
        lines += ["| command | what it does |", "|---|---|", *commands, ""]
    rows = [_row(action, parser.prog) for action in _documented(parser._actions)]
    if rows:
        lines += ["| option | value | meaning |", "|---|---|---|", *rows, ""]
    return "\n".join(lines)


def _documented(actions: Iterable[argparse.Action]) -> Iterator[argparse.Action]:
    """The arguments worth a row: not ``--help``, not subcommand dispatch, not suppressed."""
    for action in actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.help != argparse.SUPPRESS:
            yield action


def _row(action: argparse.Action, prog: str) -> str:
    names = ", ".join(f"`{name}`" for name in action.option_strings) or f"`{_metavar(action)}`"
    cells = (names, _value(action), _help(action, prog) + _default(action))
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _metavar(action: argparse.Action) -> str:
    if isinstance(action.metavar, str):
        return action.metavar
    if isinstance(action.metavar, tuple):
        return " ".join(action.metavar)
    if action.choices is not None:
        return "{" + ",".join(_choices(action.choices)) + "}"
    return action.dest.upper() if action.option_strings else action.dest


def _value(action: argparse.Action) -> str:
    """What follows the flag: nothing for a switch, else the metavar shaped by ``nargs``."""
    if action.nargs == 0:
        return ""
    if not action.option_strings:
        return ""  # a positional: its name is the value
    shown = _metavar(action)
    if action.choices is not None and not isinstance(action.metavar, str):
        shown = "|".join(_choices(action.choices))
    shown = f"`{shown}`"
    nargs = action.nargs
    if nargs == "?":
        return f"[{shown}]"
    if nargs == "*":
        return f"[{shown} ...]"
    if nargs == "+":
        return f"{shown} ..."
    if isinstance(nargs, int) and nargs > 1:
        return " ".join([shown] * nargs)
    return shown


def _choices(choices: Any) -> list[str]:
    """Choices as text; a set has no meaningful order, so it is sorted."""
    values = [str(choice) for choice in choices]
    return sorted(values) if isinstance(choices, (set, frozenset)) else values


def _default(action: argparse.Action) -> str:
    """`` (default: X)`` unless the help already says it or there is none worth saying."""
    default = action.default
    if action.nargs == 0 or default is None or default == argparse.SUPPRESS:
        return ""
    if "default" in (action.help or ""):
        return ""
    return f" (default: {default})"


def _help(action: argparse.Action, prog: str) -> str:
    """The help text with argparse's ``%(name)s`` placeholders filled as ``--help`` would."""
    text = action.help or ""
    if "%" not in text:
        return text
    params = {key: value for key, value in vars(action).items() if value != argparse.SUPPRESS}
    params["prog"] = prog
    if action.choices is not None:
        params["choices"] = ", ".join(_choices(action.choices))
    return text % params


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    """Text safe inside one Markdown table cell: one line, every pipe escaped (GFM unescapes
    ``\\|`` inside code spans too)."""
    return _one_line(text).replace("|", "\\|")


def main(argv: Sequence[str] | None = None) -> int:
    """Print the reference of ``proxytask``'s own parser to stdout."""
    del argv  # no options: the output depends on the parser alone
    from proxytask.cli import build_parser  # the CLI sits above report/: import it late

    print(render(build_parser()), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
