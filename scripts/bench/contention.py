"""Four folds side by side on a small machine: the project's thread handling against torch's default.

    python scripts/bench/contention.py [--epochs 3] [--folds 4]

The demo study (configs/demo.yaml: 12 synthetic prostate phantoms, 2D UNet, scheme ce) split
into ``--folds`` folds, every fold started at once, in three ways:

* ``torch_default``: ``seg-train --fold K`` per fold in its own process with ``--threads`` set to
  the machine's cores, which is what torch does by itself (one thread per core in every process);
* ``separate_default``: the same launches without ``--threads`` or OMP_NUM_THREADS, so each
  process takes the project's default (the cores other processes leave free, sampled at start);
* ``jobs``: one ``seg-train --jobs K`` call, which splits the cores between its fold processes.

Each launch writes into its own temporary folder (the demo generates its phantoms there).
Reported: wall seconds until the last fold finished, the median epoch seconds over every fold's
``log.csv``, and the threads each process chose (from its header line). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import REPO, machine, print_result


def base_command(output: Path, epochs: int, folds: int) -> list[str]:
    return ["seg-train", "--config", str(REPO / "configs/demo.yaml"), "--output", str(output), "--no-progress",
            "--set", "schemes=null", "--set", "scheme=ce", "--set", f"train.epochs={epochs}",
            "--set", f"cv.folds={folds}"]  # fmt: skip


def epoch_seconds(folder: Path) -> list[float]:
    seconds = []
    for log in folder.rglob("log.csv"):
        with log.open() as handle:
            seconds += [float(row["seconds"]) for row in csv.DictReader(handle)]
    return seconds


def run_launches(commands: list[list[str]], env: dict) -> tuple[float, list[int], list[str]]:
    started = time.perf_counter()
    processes = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for c in commands]  # fmt: skip
    outputs = [p.communicate()[0] for p in processes]
    wall = time.perf_counter() - started
    failed = [f"{' '.join(c)} exited with {p.returncode}:\n{out[-2000:]}"
              for c, p, out in zip(commands, processes, outputs, strict=True) if p.returncode]  # fmt: skip
    if failed:
        raise SystemExit("\n".join(failed))
    threads = [int(m) for out in outputs for m in re.findall(r"device \w+, (\d+) threads?", out)]
    return wall, threads, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--folds", type=int, default=4)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        modes = {
            "torch_default": [
                [
                    *base_command(Path(tmp) / f"torch_default_{k}", args.epochs, args.folds),
                    "--fold",
                    str(k),
                    "--threads",
                    str(cores),
                ]
                for k in range(args.folds)
            ],  # fmt: skip
            "separate_default": [
                [*base_command(Path(tmp) / f"separate_default_{k}", args.epochs, args.folds), "--fold", str(k)]
                for k in range(args.folds)
            ],
            "jobs": [[*base_command(Path(tmp) / "jobs", args.epochs, args.folds), "--jobs", str(args.folds)]],
        }
        for mode, commands in modes.items():
            wall, threads, _ = run_launches(commands, env)
            seconds = [s for folder in Path(tmp).glob(f"{mode}*") for s in epoch_seconds(folder)]
            results[mode] = {
                "wall_s": round(wall, 1),
                "epoch_s_median": round(statistics.median(seconds), 2),
                "epochs_logged": len(seconds),
                "threads_per_process": threads,
            }
    print(f"| launch ({args.folds} folds at once, {cores} cores) | threads per process | wall s | median s / epoch |")
    print("|---|---|---:|---:|")
    for mode, r in results.items():
        print(f"| {mode} | {r['threads_per_process']} | {r['wall_s']:.1f} | {r['epoch_s_median']:.2f} |")
    print_result(
        {
            "bench": "contention",
            "folds": args.folds,
            "epochs": args.epochs,
            "results": results,
            "torch_default_over_jobs_wall": round(results["torch_default"]["wall_s"] / results["jobs"]["wall_s"], 2),
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
