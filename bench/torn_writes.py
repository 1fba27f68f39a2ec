"""Torn writes: does a reader of a state or metrics file ever see a partial file?

One writer process rewrites a JSON file through ``proxytask.core.storage.write_json_atomic``
(the way every controller state, metrics and signal file is written) while reader processes
read it through ``storage.read_json`` as fast as they can. Every version the writer puts
there carries its own checksum over its payload, and the payloads vary in size (1-400 KB,
the size of controller states with hundreds of trials). A read is:

- ``whole``: valid JSON whose checksum matches: a complete version;
- ``missing``: no file (readers start counting once the first version is there, so any
  missing read is a moment without the file: a failure of the atomic replace);
- ``torn``: anything else: a JSON error, a wrong checksum, a mix of two versions.

Run on local disk, and on S3 (the moto server of ``tests/s3_server.py``, started here on
127.0.0.1 with fake credentials)::

    .venv/bin/python bench/torn_writes.py                 # both, >= 10,000 reads each
    .venv/bin/python bench/torn_writes.py --where local --reads 2000 --out /tmp/tw

Writes ``torn_writes.json`` and ``torn_writes.md`` under ``--out`` (default
``bench/results``). The test is ``tests/unit/test_bench_torn_writes.py``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: `bench.` imports need the repository root
    sys.path.insert(0, str(REPO))

from bench.moto import moto_s3, python_env  # noqa: E402

BUCKET = "proxytask-torn-writes"

_WRITER = textwrap.dedent(
    """
    import hashlib, json, random, sys, time
    from proxytask.core import storage
    url, stop = sys.argv[1], sys.argv[2]
    rng = random.Random(0)
    n = 0
    while not storage.exists(stop):
        n += 1
        pad = "x" * rng.randint(1_000, 400_000)
        body = f"{n}:{pad}"
        storage.write_json_atomic(url, {"n": n, "pad": pad,
                                        "sha": hashlib.sha256(body.encode()).hexdigest()})
    print(n)
    """
)

_READER = textwrap.dedent(
    """
    import hashlib, json, sys
    from proxytask.core import storage
    url, reads = sys.argv[1], int(sys.argv[2])
    counts = {"whole": 0, "missing": 0, "torn": 0}
    versions = set()
    while storage.read_json(url) is None:  # the writer's first version: then start counting
        pass
    for _ in range(reads):
        try:
            data = storage.read_json(url)
        except Exception as exc:
            counts["torn"] += 1
            continue
        if data is None:
            counts["missing"] += 1
            continue
        body = f"{data.get('n')}:{data.get('pad')}"
        if hashlib.sha256(body.encode()).hexdigest() == data.get("sha"):
            counts["whole"] += 1
            versions.add(data["n"])
        else:
            counts["torn"] += 1
    counts["versions_seen"] = len(versions)
    print(json.dumps(counts))
    """
)


def measure(url: str, stop: str, reads: int, readers: int, env: dict[str, str]) -> dict[str, Any]:
    """Race one writer against ``readers`` readers of ``reads`` reads each at ``url``."""
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, url, stop], env=env, stdout=subprocess.PIPE, text=True
    )
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _READER, url, str(reads)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(readers)
    ]
    totals: dict[str, int] = {"whole": 0, "missing": 0, "torn": 0, "versions_seen": 0}
    for proc in procs:
        out, _ = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"a reader failed with exit code {proc.returncode}")
        for key, value in json.loads(out).items():
            totals[key] += value
    wall = time.perf_counter() - started
    subprocess.run(
        [sys.executable, "-c", "import sys; from proxytask.core import storage; "
         "storage.write_json_atomic(sys.argv[1], {})", stop],
        env=env, check=True,
    )  # fmt: skip
    out, _ = writer.communicate(timeout=300)
    return {
        "reads": readers * reads,
        "readers": readers,
        **totals,
        "writes": int(out.strip() or 0),
        "wall_secs": round(wall, 1),
    }


def run_local(reads: int, readers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="torn-writes-") as tmp:
        url = str(Path(tmp) / "state.json")
        return {
            "where": "local disk",
            **measure(url, str(Path(tmp) / "STOP"), reads, readers, python_env()),
        }


def run_s3(reads: int, readers: int) -> dict[str, Any]:
    """Start the moto server on 127.0.0.1, make a bucket, and measure there."""
    with moto_s3(BUCKET) as env:
        url, stop = f"s3://{BUCKET}/run/state.json", f"s3://{BUCKET}/run/STOP"
        return {"where": "S3 (moto on 127.0.0.1)", **measure(url, stop, reads, readers, env)}


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Machine: {results['machine']}; {results['date']}.",
        "",
        "| where | reads (readers) | whole | missing | torn | "
        "versions seen (summed over readers) | writes | wall (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results["runs"]:
        lines.append(
            f"| {row['where']} | {row['reads']} ({row['readers']}) | {row['whole']} | "
            f"{row['missing']} | {row['torn']} | {row['versions_seen']} | {row['writes']} | "
            f"{row['wall_secs']} |"
        )
    return "\n".join(lines) + "\n"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--where", choices=("local", "s3", "both"), default="both")
    parser.add_argument("--reads", type=int, default=5000, help="reads per reader")
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    runs = []
    if args.where in ("local", "both"):
        runs.append(run_local(args.reads, args.readers))
        print(json.dumps(runs[-1]), flush=True)
    if args.where in ("s3", "both"):
        runs.append(run_s3(args.reads, args.readers))
        print(json.dumps(runs[-1]), flush=True)
    results = {
        "machine": _cpu(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "runs": runs,
        "check": "sha256 over each version's payload, written inside it",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "torn_writes.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "torn_writes.md").write_text(markdown(results))
    print(markdown(results))
    return 0 if all(r["torn"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
