"""seg-eval: k-fold evaluation reports recomputed from a run's saved predictions.

    seg-eval RUN [RUN ...] [--output DIR] [--format md,html,json,csv] [--lesion-overlap 0.1]

One run: per class, per fold and overall statistics, lesion detection, worst cases, training
curves. Several runs on the same splits (schemes and/or seeds): also a comparison table, paired
Wilcoxon tests against the first run with Holm correction, and the seed-to-seed spread.

Exit codes: 0 a complete report; 1 a report was written but a run is incomplete (missing folds,
or cases without a readable prediction, are named in it), or the report could not be written, or
Ctrl-C; 2 nothing was written because the input is wrong (not a run, an unreadable config.yaml or
splits.json, the runs used different splits, a missing dataset, a bad argument).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adversarial_seg.cli.common import EXIT_FAILED, EXIT_OK, UsageError, command_parser, guarded

FORMATS = ("md", "html", "json", "csv")


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("seg-eval", __doc__)
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories written by seg-train")
    parser.add_argument("--output", type=Path,
                        help="report folder (default: RUN/report for one run, <parent>/comparison for several)")  # fmt: skip
    parser.add_argument("--format", default=",".join(FORMATS), help="comma-separated subset of md,html,json,csv")
    parser.add_argument("--lesion-overlap", type=float, default=0.1,
                        help="fraction of a lesion that must be covered to count as detected (default 0.1)")  # fmt: skip
    return parser


INTERRUPTED = "the report files written so far are complete; run seg-eval again for the whole report"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guarded(lambda: evaluate(args), INTERRUPTED)


def evaluate(args: argparse.Namespace) -> int:
    """The command's work; InputError (exit 2) before anything is written, else exit 0 or 1."""
    formats = {f.strip() for f in args.format.split(",") if f.strip()}
    if not formats or not formats <= set(FORMATS):
        raise UsageError(f"--format {args.format!r}: choose from {', '.join(FORMATS)}")
    if not 0 < args.lesion_overlap <= 1:
        raise UsageError(f"--lesion-overlap {args.lesion_overlap}: give a fraction in (0, 1]")
    from adversarial_seg.seg.eval_report import evaluate_runs, print_evaluations

    report = evaluate_runs(args.runs, args.output, formats, args.lesion_overlap)
    print_evaluations(report)
    return EXIT_OK if report.complete else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
