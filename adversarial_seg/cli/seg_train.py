"""seg-train: patient-grouped k-fold training of a segmentor, adversarial or not.

    seg-train --config configs/ph2.yaml [--output RUN] [--fold K] [--resume]
              [--set key=value ...] [--device auto|cpu|cuda] [--threads N]

Exit codes: 0 success; 2 nothing was done because the input is wrong (config, data,
arguments, run directory); 1 some folds failed (named in the output, the others completed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from adversarial_seg.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_device_argument,
    add_override_argument,
    add_progress_argument,
    command_parser,
    guarded,
    show_progress,
)


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("seg-train", __doc__)
    parser.add_argument("--config", required=True, type=Path, help="YAML config (see docs/configuration.md)")
    parser.add_argument("--output", type=Path, help="run directory (default: runs/<config name>)")
    parser.add_argument("--fold", type=int, help="run only this fold (0-based), e.g. one job of an array")
    parser.add_argument("--resume", action="store_true", help="continue unfinished folds from their last checkpoint")
    add_override_argument(parser)
    add_progress_argument(parser)
    add_device_argument(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    output = (args.output or Path("runs") / args.config.stem).resolve()
    return guarded(
        lambda: train(args, output),
        f"finished folds and each fold's last epoch are kept in {output}; continue with the same command and --resume",
    )


def train(args: argparse.Namespace, output: Path) -> int:
    # Imported here so that --help and argument errors answer without loading torch.
    from adversarial_seg.config import load_config
    from adversarial_seg.provenance import git_commit
    from adversarial_seg.runtime import resolve_device, set_threads
    from adversarial_seg.seg.study import prepare_study, run_study

    git_commit()  # the commit of the code this process runs, recorded in every run it writes
    started = time.perf_counter()
    config = load_config(args.config, args.overrides)
    device = resolve_device(args.device)
    threads = set_threads(args.threads)
    study = prepare_study(config, output, resume=args.resume, only_fold=args.fold)
    for warning in study.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"seg-train: {len(study.records)} cases from {study.config.data.root}, device {device}, {threads}, "
        f"output {output}"
    )
    outcomes = run_study(study, device, progress=show_progress(args))
    failed = [f"{o.spec.name} fold {f.fold} failed: {f.message}" for o in outcomes for f in o.failed]
    failed += [f"{o.spec.name} report failed: {o.report_error}" for o in outcomes if o.report_error]
    complete = all(o.summary is not None and o.summary["complete"] for o in outcomes)
    report = write_report(output) if complete and not failed else None
    print(f"\nwall time {time.perf_counter() - started:.0f} s")
    print(next_steps(study, output, report))
    for line in failed:
        print(f"error: {line}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def write_report(output: Path):
    """seg-eval's report of the finished study (the same code as ``seg-eval RUN``)."""
    from adversarial_seg.cli.seg_eval import FORMATS
    from adversarial_seg.seg.eval_report import evaluate_runs

    print("\nwriting the report (seg-eval) ...")
    report = evaluate_runs([output], None, set(FORMATS))
    if len(report.evaluations) > 1:
        print(f"paired per case against {report.evaluations[0].name} (Wilcoxon, Holm-corrected p):")
        print("\n".join(f"  {line}" for line in report.headline()))
    for warning in report.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    return report


def next_steps(study, output: Path, report) -> str:
    """What to look at and run next, with this run's real paths."""
    model = study.runs[-1].run_dir
    lines = []
    if report is not None:
        lines.append(f"  open {report.output / 'report.html'}   # the report (report.md beside it)")
        lines.append(f"  seg-eval {output}            # the report again, e.g. with --lesion-overlap 0.25")
    else:
        lines.append(f"not every fold finished; continue with the same command and --resume, then: seg-eval {output}")
    lines.append(f"  seg-predict --model {model} --input IMAGES --output FOLDER   # label maps for new images")
    return "\n".join(["next:", *lines])


if __name__ == "__main__":
    sys.exit(main())
