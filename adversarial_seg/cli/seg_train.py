"""seg-train: patient-grouped k-fold training of a segmentor, adversarial or not.

    seg-train --config configs/ph2.yaml [--output RUN] [--fold K] [--resume]
              [--set key=value ...] [--device auto|cpu|cuda]

Exit codes: 0 success; 2 nothing was done because the input is wrong (config, data,
arguments, run directory); 1 some folds failed (named in the output, the others completed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from adversarial_seg.cli.common import EXIT_FAILED, EXIT_OK, add_device_argument, fail
from adversarial_seg.config import ConfigError, load_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seg-train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path, help="YAML config (see docs/configuration.md)")
    parser.add_argument("--output", type=Path, help="run directory (default: runs/<config name>)")
    parser.add_argument("--fold", type=int, help="run only this fold (0-based), e.g. one job of an array")
    parser.add_argument("--resume", action="store_true", help="continue unfinished folds from their last checkpoint")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.epochs=5 (repeatable)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (log files keep everything)")
    add_device_argument(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imported here so that --help and argument errors answer without loading torch.
    from adversarial_seg.data.errors import DataError
    from adversarial_seg.data.validate import validate_dataset
    from adversarial_seg.provenance import git_commit
    from adversarial_seg.runtime import resolve_device
    from adversarial_seg.seg.cross_validation import resolve_data, run_study
    from adversarial_seg.seg.run import RunStateError
    from adversarial_seg.seg.splits import SplitsError

    git_commit()  # the commit of the code this process runs, recorded in every run it writes
    started = time.perf_counter()
    try:
        config = load_config(args.config, args.overrides)
        output = (args.output or Path("runs") / args.config.stem).resolve()
        device = resolve_device(args.device)
        config = resolve_data(config, output)
        records = validate_dataset(config.data)
    except (ConfigError, DataError, ValueError) as exc:
        return fail(str(exc))
    print(f"seg-train: {len(records)} cases from {config.data.root}, device {device}, output {output}")
    try:
        outcomes = run_study(
            config, output, records, device,
            only_fold=args.fold, resume=args.resume, progress=not args.no_progress and sys.stderr.isatty(),
        )  # fmt: skip
    except (RunStateError, SplitsError) as exc:
        return fail(str(exc))
    failed = [(o.plan.name, f.fold, f.message) for o in outcomes for f in o.failed]
    print(f"\nwall time {time.perf_counter() - started:.0f} s; report in {output}")
    if failed:
        for name, fold, message in failed:
            print(f"error: {name} fold {fold} failed: {message}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
