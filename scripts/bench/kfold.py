"""Wall time of the PH2 study (configs/ph2.yaml: ce and hybrid, 5 folds, 60 epochs) on this machine.

    python scripts/bench/kfold.py --output DIR [--jobs N] [--threads N] [--set KEY=VALUE ...]

Runs ``seg-train --config configs/ph2.yaml --output DIR`` (with ``--jobs N`` when given: N folds
side by side with the cores split) in a child process and times it from launch to the report.
DIR must not exist yet (the benchmark times a study from scratch and leaves DIR for seg-eval).
Reported: the wall time, and per run the train time and median seconds per epoch read from the
folds' ``log.csv``. Target (issue 18): the study in <= 40 minutes on the 2-core machine.
Nothing else should run meanwhile. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import time
from pathlib import Path

from common import REPO, machine, print_result, require_data


def run_summary(run_dir: Path) -> dict:
    seconds = []
    for log in sorted(run_dir.glob("fold_*/log.csv")):
        with log.open() as handle:
            seconds += [float(row["seconds"]) for row in csv.DictReader(handle)]
    return {"epochs": len(seconds), "train_min": round(sum(seconds) / 60, 1),
            "epoch_s_median": round(statistics.median(seconds), 2) if seconds else None}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    require_data("ph2")
    if args.output.exists():
        raise SystemExit(f"{args.output} exists: give a new folder (the benchmark times a study from scratch)")
    command = ["seg-train", "--config", str(REPO / "configs/ph2.yaml"), "--output", str(args.output), "--no-progress"]
    if args.jobs > 1:
        command += ["--jobs", str(args.jobs)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    for override in args.set:
        command += ["--set", override]
    started = time.perf_counter()
    code = subprocess.call(command)
    wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"{' '.join(command)} exited with {code}")
    runs = {d.name: run_summary(d) for d in sorted(args.output.iterdir()) if list(d.glob("fold_*/log.csv"))}
    print(f"study wall time {wall / 60:.1f} min ({args.jobs} job{'s' * (args.jobs > 1)})")
    print_result(
        {
            "bench": "kfold",
            "command": " ".join(command),
            "jobs": args.jobs,
            "wall_min": round(wall / 60, 1),
            "runs": runs,
            "target": "wall_min <= 40",
            "met": wall / 60 <= 40,
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
