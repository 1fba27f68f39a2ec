"""The trainer of bench/orchestration.py's ``stops`` part: report once, then wait for the stop.

``python bench/stop_probe.py --job-dir=DIR --delay_secs=S``: sleeps S seconds, reports one
accuracy through the trainer contract, then checks the stop signals every 2 ms (a trainer's
cycle boundary, made as short as can be so the check adds nothing) and writes
``stop_probe.json`` with the wall-clock times it reported and saw the stop.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from proxytask.trainer import contract as pt


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--job-dir", "--job_dir", dest="job_dir", required=True)
    parser.add_argument("--delay_secs", type=float, default=1.0)
    args, _ = parser.parse_known_args(argv)
    time.sleep(args.delay_secs)
    reported = time.time()
    pt.update_trial_training_accuracy_metric(args.job_dir, 0.5, 0, 9, 0.1, 1000)
    deadline = time.monotonic() + 60.0
    while not pt.get_stop_training(args.job_dir, 9, 1000):
        if time.monotonic() > deadline:
            return 1
        time.sleep(0.002)
    seen = time.time()
    with open(os.path.join(args.job_dir, "stop_probe.json"), "w", encoding="utf-8") as handle:
        json.dump({"reported": reported, "seen": seen}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
