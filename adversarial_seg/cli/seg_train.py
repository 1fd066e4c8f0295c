"""seg-train: patient-grouped k-fold training of a segmentor, adversarial or not.

    seg-train --config configs/ph2.yaml [--output RUN] [--fold K | --jobs N] [--resume]
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
    UsageError,
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
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="train N folds at once, each in its own process (--threads each; default the cores / N)",
    )
    parser.add_argument("--no-report", action="store_true", help=argparse.SUPPRESS)  # a --jobs child's fold only
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
    from adversarial_seg import distributed
    from adversarial_seg.config import load_config
    from adversarial_seg.provenance import git_commit
    from adversarial_seg.runtime import resolve_device, set_threads
    from adversarial_seg.seg.study import prepare_study, run_study

    if args.jobs < 1 or (args.jobs > 1 and args.fold is not None):
        raise UsageError(f"--jobs {args.jobs}: give a whole number of at least 1, and not together with --fold")
    git_commit()  # the commit of the code this process runs, recorded in every run it writes
    started = time.perf_counter()
    config = load_config(args.config, args.overrides)
    device = resolve_device(args.device)
    threads = set_threads(args.threads)
    distributed.init_from_env(device.type)
    if distributed.world_size() > 1 and args.jobs > 1:
        raise UsageError("--jobs runs folds side by side on one machine; under torchrun leave it out")
    if not distributed.is_main():  # torchrun: rank 0 prepares (and writes phantoms) first, then the others
        distributed.barrier()
    study = prepare_study(config, output, resume=args.resume, only_fold=args.fold)
    if distributed.is_main():
        distributed.barrier()
    else:
        return train_rank(study, device)
    for warning in study.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    ranks = f", {distributed.world_size()} processes (torchrun)" if distributed.world_size() > 1 else ""
    print(
        f"seg-train: {len(study.records)} cases from {study.config.data.root}, device {device}, {threads}{ranks}, "
        f"output {output}"
    )
    if args.jobs > 1:
        failed_jobs = run_fold_jobs(args, study, output)
        if failed_jobs:
            for line in failed_jobs:
                print(f"error: {line}", file=sys.stderr)
            return EXIT_FAILED
    outcomes = run_study(study, device, progress=show_progress(args))  # after --jobs: every fold is done
    failed = [f"{o.spec.name} fold {f.fold} failed: {f.message}" for o in outcomes for f in o.failed]
    failed += [f"{o.spec.name} report failed: {o.report_error}" for o in outcomes if o.report_error]
    complete = all(o.summary is not None and o.summary["complete"] for o in outcomes)
    report = write_report(output) if complete and not failed and not args.no_report else None
    print(f"\nwall time {time.perf_counter() - started:.0f} s")
    print(next_steps(study, output, report))
    for line in failed:
        print(f"error: {line}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def train_rank(study, device) -> int:
    """A torchrun process other than rank 0: trains its shard of every fold, writes and prints nothing."""
    from adversarial_seg.seg.study import run_study

    outcomes = run_study(study, device, progress=False, print_fn=lambda *_: None)
    return EXIT_FAILED if any(o.failed for o in outcomes) else EXIT_OK


def run_fold_jobs(args: argparse.Namespace, study, output: Path) -> list[str]:
    """``--jobs N``: each unfinished fold in its own ``seg-train --fold K`` process, N at a time,
    with the threads split between them; returns a line per failed job (their folds keep their
    checkpoints). The shared files are written first, here, so the jobs never race on them."""
    import subprocess
    import time

    from adversarial_seg.runtime import cpu_cores
    from adversarial_seg.seg.study import pending_folds, write_study_files

    queue = pending_folds(study)
    jobs = min(args.jobs, len(queue))
    if not queue:
        return []
    threads = args.threads or max(1, cpu_cores() // jobs)
    write_study_files(study)
    command = [sys.executable, "-m", "adversarial_seg.cli.seg_train", "--config", str(args.config),
               "--output", str(output), "--device", args.device, "--threads", str(threads),
               "--no-progress", "--no-report", *(["--resume"] if args.resume else [])]  # fmt: skip
    for assignment in args.overrides:
        command += ["--set", assignment]
    print(f"seg-train: folds {queue} in {jobs} parallel jobs, {threads} thread{'s' * (threads > 1)} each")
    running, failed = {}, []
    while queue or running:
        while queue and len(running) < jobs:
            fold = queue.pop(0)
            running[fold] = subprocess.Popen([*command, "--fold", str(fold)])
        time.sleep(0.5)
        for fold, process in list(running.items()):
            if process.poll() is not None:
                del running[fold]
                if process.returncode != 0:
                    failed.append(f"the job of fold {fold} exited with {process.returncode} (its lines above say why)")
    return failed


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
