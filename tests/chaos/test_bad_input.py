"""The bad-input corpus: every command and file format, given input it must refuse.

Each case must end in exactly one line on stderr that names what was wrong, exit code 2, no
traceback, and nothing written or changed under the test's dir. The option cases are derived
from the commands' own option tables: every value an option's parser refuses, given on the
command line and in a ``--config`` file; the file cases cover configs, workflow files, replay
tables, state files and paths. ``test_the_corpus_is_large_enough`` keeps the count honest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from proxytask import cli
from proxytask.controllers.command_options import (
    SEARCH_OPTIONS,
    SELECTION_OPTIONS,
    TRIAL_COMMAND_OPTIONS,
    VARIANCE_OPTIONS,
)
from proxytask.core.options import Option

FAKE = f"{sys.executable} -m proxytask.testing.fake_trainer"
SPACE = "tests.fixtures.spaces:tiny"
# values tried on every option; those its parser refuses are cases
NOT_UTF8 = b"a: \xff\xfe"
CANDIDATES = ("-1", "-0.5", "0", "1.5", "101", "abc", "nan", "inf", "maybe", "", "2.0")


def _base(command: str, root: Path) -> list[str]:
    """Arguments that make ``command`` otherwise acceptable up to its option checks."""
    common = [f"--trainer={FAKE}", f"--search-space={SPACE}", f"--root-output-dir={root}"]
    if command == "search":  # a selection dir (read after the options are checked)
        return ["search", f"--trainer={FAKE}", f"--root-output-dir={root}", "--job-name=s",
                f"--model-selection-dir={root / 'selection'}",
                "--proxy-task-config-generator=tests.fixtures.proxy_generators:good_only",
                ]  # fmt: skip
    return [command, *common, f"--job-name={command.replace('-', '_')}"]


def _refused(option: Option) -> list[str]:
    """The candidate values ``option``'s parser refuses (or its choices exclude)."""
    out = []
    for value in CANDIDATES:
        if option.choices is not None:
            if value not in option.choices:
                out.append(value)
            continue
        try:
            option.parse(value)
        except (ValueError, TypeError):
            out.append(value)
    return out


COMMAND_OPTIONS = {
    "variance": VARIANCE_OPTIONS,
    "select-models": SELECTION_OPTIONS,
    "search": SEARCH_OPTIONS,
    "trial": TRIAL_COMMAND_OPTIONS,
}
SKIP = {"trainer", "search-space", "root-output-dir", "job-name", "trainer-args", "config"}


def _option_cases() -> list[tuple[str, str, str, str]]:
    cases = []
    for command, options in COMMAND_OPTIONS.items():
        for option in options:
            if option.name in SKIP or option.bare or option.many:
                continue
            in_base = f"--{option.name}=" in " ".join(_base(command, Path("/r")))
            for value in _refused(option)[:3]:
                for where in ("flag", "config"):
                    # a flag wins over the config file; "" in a config file means "not given"
                    if where == "config" and (in_base or value == ""):
                        continue
                    cases.append((command, option.name, value, where))
    return cases


OPTION_CASES = _option_cases()


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        for p in sorted(root.rglob("*"))
    }


def _refuses(argv: list[str], root: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``argv``; assert exit 2, one stderr line, nothing changed under ``root``."""
    before = _snapshot(root)
    capsys.readouterr()
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own refusals (a choice, a missing value)
        code = exc.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert _snapshot(root) == before, "the refused command wrote or changed files"
    return lines[0]


@pytest.mark.parametrize(("command", "option", "value", "where"), OPTION_CASES)
def test_a_bad_option_value_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, option: str, value: str,
    where: str,
) -> None:  # fmt: skip
    root = tmp_path / "runs"
    root.mkdir()
    argv = _base(command, root)
    if where == "flag":
        argv.append(f"--{option}={value}")
    else:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({option: value}))
        argv.append(f"--config={config}")
    line = _refuses(argv, tmp_path, capsys)
    assert option in line, line


# ---- files and paths ---------------------------------------------------------------------------


def _write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _table(**changes: object) -> str:
    table: dict[str, object] = {
        "format": "proxytask-replay-table",
        "version": 1,
        "curves": [
            {
                "curve_id": "w",
                "match": {"nas_params": {"width": 999}},
                "total_steps": 100,
                "points": [[99, 0.5, 1.0]],
            }
        ],
    }
    table.update(changes)
    return json.dumps(table)


def _workflow(root: Path, **changes: object) -> str:
    data: dict[str, object] = {
        "trainer": FAKE,
        "search-space": SPACE,
        "root-output-dir": str(root),
        "job-name": "wf",
        "search": {"proxy-task-config-generator": "tests.fixtures.proxy_generators:good_only"},
    }
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return yaml.safe_dump(data)


def _state_dir(t: Path, kind: str, state_file: str, state: str, info: str | None = None) -> Path:
    cdir = t / "runs" / f"{kind}_x_20260101_000000"
    _write(
        cdir / "CONTROLLER_INFO.json",
        info
        if info is not None
        else json.dumps({"version": 1, "kind": kind, "options": {"trainer": FAKE}}),
    )
    _write(cdir / state_file, state)
    return cdir


Case = Callable[[Path], list[str]]


def _run(t: Path, **changes: object) -> list[str]:
    """``proxytask run`` of a workflow file in ``t`` with ``changes`` (see :func:`_workflow`)."""
    return ["run", str(_write(t / "w.yaml", _workflow(t / "runs", **changes)))]


def _trial(t: Path, *extra: str) -> list[str]:
    return ["trial", f"--trainer={FAKE}", f"--search-space={SPACE}",
            f"--root-output-dir={t / 'runs'}", "--job-name=t", *extra]  # fmt: skip


def _replay(t: Path, table: str | bytes, name: str = "table.json") -> list[str]:
    path = _write(t / name, table)
    return ["trial", "--trainer=replay", "--executor=replay", f"--replay-table={path}",
            f"--search-space={SPACE}", f"--root-output-dir={t / 'runs'}",
            "--job-name=r"]  # fmt: skip


def _variance(t: Path, *extra: str) -> list[str]:
    return ["variance", f"--trainer={FAKE}", f"--search-space={SPACE}",
            f"--root-output-dir={t / 'runs'}", "--job-name=v", *extra]  # fmt: skip


FILE_CASES: dict[str, Case] = {
    # config files
    "config not UTF-8": lambda t: ["variance", "--config=" + str(_write(t / "c.yaml", NOT_UTF8))],
    "config not YAML": lambda t: ["variance", f"--config={_write(t / 'c.yaml', 'a: [1')}"],
    "config a list": lambda t: ["variance", f"--config={_write(t / 'c.yaml', '- 1')}"],
    "config unknown key": lambda t: _variance(t, f"--config={_write(t / 'c.yaml', 'sead: 1')}"),
    "config missing": lambda t: ["variance", f"--config={t / 'nope.yaml'}"],
    "config a folder": lambda t: ["variance", f"--config={(t / 'd').mkdir() or t / 'd'}"],
    "config empty mapping value": lambda t: _variance(
        t, f"--config={_write(t / 'c.yaml', 'num-copies: {}')}"
    ),
    # workflow files
    "workflow not UTF-8": lambda t: ["run", str(_write(t / "w.yaml", b"job-name: " + NOT_UTF8))],
    "workflow not YAML": lambda t: ["run", str(_write(t / "w.yaml", "job-name: [x"))],
    "workflow missing": lambda t: ["run", str(t / "nope.yaml")],
    "workflow a folder": lambda t: ["run", str((t / "d").mkdir() or t / "d")],
    "workflow no job name": lambda t: _run(t, **{"job-name": None}),
    "workflow negative seed": lambda t: _run(t, seed=-1),
    "workflow unknown stage key": lambda t: _run(t, variance={"num-copy": 3}),
    "workflow stage not a mapping": lambda t: _run(t, variance=[1, 2]),
    "workflow missing replay table": lambda t: _run(
        t, trainer="replay", executor="replay", **{"replay-table": str(t / "x.json")}
    ),
    "workflow too few reference models": lambda t: _run(
        t, **{"model-selection": {"start-num-models": 6, "final-num-models": 4}}
    ),
    "workflow bad max-parallel": lambda t: _run(t, **{"max-parallel-trials": 0}),
    # replay tables
    "replay table not UTF-8": lambda t: _replay(t, b"\xff\xfe{}"),
    "replay table not JSON": lambda t: _replay(t, "{"),
    "replay table wrong format": lambda t: _replay(t, _table(format="other")),
    "replay table newer version": lambda t: _replay(t, _table(version=99)),
    "replay table no curves key": lambda t: _replay(
        t, json.dumps({"format": "proxytask-replay-table", "version": 1})
    ),
    "replay table curves not a list": lambda t: _replay(t, _table(curves={})),
    "replay table no matching curve": lambda t: _replay(t, _table()),
    "replay table missing": lambda t: [
        *_replay(t, "{}")[:3],
        f"--replay-table={t / 'no.json'}",
        *_replay(t, "{}")[4:],
    ],
    "replay table bad csv": lambda t: _replay(t, "a,b\n1", name="table.csv"),
    # trainers, spaces, generators, architectures
    "trainer missing program": lambda t: (
        [*_trial(t)[:1], "--trainer=/no/such/python", *_trial(t)[2:]]
    ),
    "trainer a folder": lambda t: [*_trial(t)[:1], f"--trainer={t}", *_trial(t)[2:]],
    "trainer empty": lambda t: [*_trial(t)[:1], "--trainer=", *_trial(t)[2:]],
    "trainer entry malformed": lambda t: _trial(t, "--trainer-entry=nocolon"),
    "search space missing module": lambda t: _trial(t, "--search-space=no.such.mod:fn"),
    "search space not callable": lambda t: _trial(t, "--search-space=tests.fixtures.spaces:nope"),
    "search space malformed": lambda t: _trial(t, "--search-space=justaname"),
    "architecture not JSON": lambda t: _trial(t, "--architecture={width"),
    "architecture a list": lambda t: _trial(t, "--architecture=[1, 2]"),
    "architecture file missing": lambda t: _trial(t, f"--architecture={t / 'a.json'}"),
    "trainer args without =": lambda t: _trial(t, "--trainer-args", "novalue"),
    "trainer args empty key": lambda t: _trial(t, "--trainer-args", "=1"),
    "copy seed flag with =": lambda t: _variance(t, "--copy-seed-flag=a=b"),
    "copy seed flag with dashes": lambda t: _variance(t, "--copy-seed-flag=--seed"),
    "gpus without a GPU": lambda t: _variance(t, "--gpus-per-trial=1"),
    "gpus 1.5": lambda t: _variance(t, "--gpus-per-trial=1.5"),
    "job name with slash": lambda t: [*_variance(t)[:-1], "--job-name=a/b"],
    "job name empty": lambda t: [*_variance(t)[:-1], "--job-name="],
    "executor unknown": lambda t: _variance(t, "--executor=cloud"),
    # output and resume paths
    "root under a file": lambda t: (
        [*_variance(t)[:3], f"--root-output-dir={_write(t / 'f', 'x')}/sub", "--job-name=v"]
    ),
    "root is a file": lambda t: (
        [*_variance(t)[:3], f"--root-output-dir={_write(t / 'f', 'x')}", "--job-name=v"]
    ),
    "root in /proc": lambda t: (
        [*_variance(t)[:3], "--root-output-dir=/proc/proxytask-x", "--job-name=v"]
    ),
    "resume dir missing": lambda t: ["variance", f"--previous-variance-dir={t / 'nope'}"],
    "resume dir a file": lambda t: ["variance", f"--previous-variance-dir={_write(t / 'f', 'x')}"],
    "resume dir not a controller dir": lambda t: ["variance", f"--previous-variance-dir={t}"],
    "resume the wrong kind": lambda t: [
        "variance",
        "--previous-variance-dir="
        + str(_state_dir(t, "Search_controller", "search_state.json", '{"version": 1}')),
    ],
    "resume a torn state": lambda t: [
        "variance",
        "--previous-variance-dir="
        + str(_state_dir(t, "Variance_Measurement", "measurement_state.json", '{"tri')),
    ],
    "resume trials of the wrong type": lambda t: [
        "variance",
        "--previous-variance-dir="
        + str(
            _state_dir(
                t, "Variance_Measurement", "measurement_state.json", '{"version": 1, "trials": 5}'
            )
        ),
    ],
    "resume a trial record without fields": lambda t: [
        "variance",
        "--previous-variance-dir="
        + str(
            _state_dir(
                t,
                "Variance_Measurement",
                "measurement_state.json",
                '{"version": 1, "trials": [{"job": "x"}]}',
            )
        ),
    ],
    "resume a newer state version": lambda t: [
        "variance",
        "--previous-variance-dir="
        + str(
            _state_dir(
                t, "Variance_Measurement", "measurement_state.json", '{"version": 99, "trials": []}'
            )
        ),
    ],
    "resume a torn controller info": lambda t: [
        "variance",
        "--previous-variance-dir="
        + str(_state_dir(t, "Variance_Measurement", "measurement_state.json", "{}", info="{")),
    ],
    "search without a selection dir": lambda t: [
        "search",
        f"--trainer={FAKE}",
        f"--root-output-dir={t / 'runs'}",
        "--job-name=s",
        "--proxy-task-config-generator=tests.fixtures.proxy_generators:good_only",
        f"--model-selection-dir={t / 'nope'}",
    ],
    "search with a variance dir as the selection": lambda t: [
        "search",
        f"--trainer={FAKE}",
        f"--root-output-dir={t / 'runs'}",
        "--job-name=s",
        "--proxy-task-config-generator=tests.fixtures.proxy_generators:good_only",
        "--model-selection-dir="
        + str(_state_dir(t, "Variance_Measurement", "measurement_state.json", "{}")),
    ],
    # read-only commands
    "status missing": lambda t: ["status", str(t / "nope")],
    "status a file": lambda t: ["status", str(_write(t / "f", "x"))],
    "status an unrelated dir": lambda t: ["status", str(t)],
    "report missing": lambda t: ["report", str(t / "nope")],
    "report a file": lambda t: ["report", str(_write(t / "f", "x"))],
    "report an unrelated dir": lambda t: ["report", str(t)],
}


@pytest.mark.parametrize("name", sorted(FILE_CASES))
def test_a_bad_file_or_path_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    argv = FILE_CASES[name](tmp_path)
    _refuses(argv, tmp_path, capsys)


def test_the_corpus_is_large_enough() -> None:
    assert len(OPTION_CASES) + len(FILE_CASES) >= 150, len(OPTION_CASES) + len(FILE_CASES)


# ---- a read-only or full file system (tmpfs mounts: root only) ------------------------------


def _mount_tmpfs(where: Path, options: str) -> bool:
    """Mount a tmpfs at ``where`` with ``options``; False when this process may not mount."""
    import os
    import subprocess

    if os.geteuid() != 0:
        return False
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
    )
    return done.returncode == 0


@contextlib.contextmanager
def mounted_small_disks(where: Path) -> Iterator[dict[str, Path]]:
    """A read-only file system and a full one (32 KiB, filled), mounted under ``where``;
    ``{}`` when this process may not mount (not root). Unmounted on exit."""
    import subprocess

    disks = {"read-only": where / "ro", "full": where / "full"}
    if not _mount_tmpfs(disks["read-only"], "ro,size=1m"):
        yield {}
        return
    try:
        assert _mount_tmpfs(disks["full"], "size=32k")
        with contextlib.suppress(OSError), open(disks["full"] / "fill", "wb") as handle:
            handle.write(b"\0" * 64 * 1024)  # full: that is the point
        yield disks
    finally:
        for path in disks.values():
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def small_disks(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """:func:`mounted_small_disks` under ``tmp_path``; the test is skipped when not root."""
    with mounted_small_disks(tmp_path) as disks:
        if not disks:
            pytest.skip("mounting a tmpfs needs root (the bad-input corpus's disk cases)")
        yield disks


def _disk_case(command: str, root: Path, t: Path) -> list[str]:
    if command == "run":
        return ["run", str(_write(t / "w.yaml", _workflow(root)))]
    if command == "trial":
        return [*_trial(t)[:3], f"--root-output-dir={root}", "--job-name=t"]
    return [command, f"--trainer={FAKE}", f"--search-space={SPACE}", f"--root-output-dir={root}",
            "--job-name=d"]  # fmt: skip


DISK_CASES = [
    (command, disk)
    for command in ("variance", "select-models", "trial", "run")
    for disk in ("read-only", "full")
]


@pytest.mark.parametrize(("command", "disk"), DISK_CASES)
def test_a_read_only_or_full_disk_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    small_disks: dict[str, Path],
    command: str,
    disk: str,
) -> None:
    root = small_disks[disk] / "runs"
    line = _refuses(_disk_case(command, root, tmp_path), tmp_path, capsys)
    reason = "Read-only file system" if disk == "read-only" else "No space left on device"
    assert reason in line and "root-output-dir" in line, line
    assert not root.exists()  # nothing left behind on that disk


@pytest.mark.s3
@pytest.mark.parametrize("command", ["variance", "trial", "run"])
def test_a_missing_s3_bucket_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], s3_root: str, command: str
) -> None:
    root = "s3://proxytask-no-such-bucket/runs"
    placeholder = tmp_path / "placeholder"  # replaced by the URL below; never written
    argv = [a.replace(str(placeholder), root) for a in _disk_case(command, placeholder, tmp_path)]
    if command == "run":
        (tmp_path / "w.yaml").write_text(_workflow(placeholder).replace(str(placeholder), root))
    assert any(root in a for a in argv) or command == "run"
    line = _refuses(argv, tmp_path, capsys)
    assert "bucket" in line and "must exist" in line and "proxytask-no-such-bucket" in line
