"""Share of a training epoch spent waiting for data, on PH2 and on prostate_zonal at their configs.

    python scripts/bench/data_wait.py [--datasets ph2 prostate_zonal] [--epochs 2] [--threads 2] [--set KEY=VALUE ...]

Runs the real ``seg-train`` (``--fold 0``, scheme ce, ``--set train.epochs=N``) in this process on
``configs/ph2.yaml`` and ``configs/prostate.yaml`` with the loader seg-train builds wrapped so that
every ``next()`` is timed: the wait is the time the training loop spends in the loader (decoding,
augmentation, collation, as ``train.num_workers`` arranges them), the epoch is the whole training
epoch (``Trainer.train_epoch``, validation excluded). The first epoch also pays one-off costs
(MONAI caches, allocator warm-up), so the share is reported for the last epoch and for all.
Output goes to a temporary folder. Target (issue 18): wait <= 10 % of the epoch.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import REPO, machine, print_result, require_data

import adversarial_seg.seg.fold as fold_module
from adversarial_seg.cli import seg_train
from adversarial_seg.gan.trainer import Trainer

CONFIGS = {"ph2": "configs/ph2.yaml", "prostate_zonal": "configs/prostate.yaml"}


class TimedLoader:
    """Iterates a loader and adds the seconds spent fetching each batch to ``waits[-1]``."""

    def __init__(self, loader, waits: list[float]):
        self.loader = loader
        self.waits = waits

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        iterator = iter(self.loader)
        while True:
            started = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                self.waits[-1] += time.perf_counter() - started
                return
            self.waits[-1] += time.perf_counter() - started
            yield batch


def measure(name: str, epochs: int, threads: int, overrides: list[str] = ()) -> dict:
    require_data(name)
    waits: list[float] = []
    epoch_seconds: list[float] = []
    original_loader, original_epoch = fold_module.seeded_loader, Trainer.train_epoch

    def timed_loader(*args, **kwargs):
        waits.append(0.0)
        return TimedLoader(original_loader(*args, **kwargs), waits)

    def timed_epoch(self, epoch):
        started = time.perf_counter()
        result = original_epoch(self, epoch)
        epoch_seconds.append(time.perf_counter() - started)
        return result

    fold_module.seeded_loader, Trainer.train_epoch = timed_loader, timed_epoch
    try:
        with tempfile.TemporaryDirectory() as tmp:
            argv = ["--config", str(REPO / CONFIGS[name]), "--output", str(Path(tmp) / name), "--fold", "0",
                    "--set", "schemes=null", "--set", "scheme=ce", "--set", f"train.epochs={epochs}",
                    "--no-progress", "--threads", str(threads)]  # fmt: skip
            argv += [item for override in overrides for item in ("--set", override)]
            code = seg_train.main(argv)
    finally:
        fold_module.seeded_loader, Trainer.train_epoch = original_loader, original_epoch
    if code != 0 or len(waits) != epochs:
        raise SystemExit(f"seg-train on {name} exited with {code} after {len(waits)} epochs")
    return {
        "epoch_s": [round(s, 3) for s in epoch_seconds],
        "wait_s": [round(w, 3) for w in waits],
        "wait_share_last": round(waits[-1] / epoch_seconds[-1], 4),
        "wait_share_all": round(sum(waits) / sum(epoch_seconds), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a config override, e.g. train.num_workers=1"
    )
    args = parser.parse_args()
    results = {name: measure(name, args.epochs, args.threads, args.set) for name in args.datasets}
    print("| data | epoch s (last) | wait s (last) | wait share (last) | wait share (all epochs) |")
    print("|---|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['epoch_s'][-1]:.2f} | {r['wait_s'][-1]:.2f} | {r['wait_share_last']:.1%} | "
              f"{r['wait_share_all']:.1%} |")  # fmt: skip
    print_result(
        {
            "bench": "data_wait",
            "threads": args.threads,
            "epochs": args.epochs,
            "overrides": args.set,
            "results": results,
            "target": "wait_share_last <= 0.10",
            "met": all(r["wait_share_last"] <= 0.10 for r in results.values()),
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
