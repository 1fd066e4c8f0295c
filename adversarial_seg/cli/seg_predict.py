"""seg-predict: label maps for image files from a trained run, overlaying the inputs exactly.

    seg-predict --model RUN --input PATH [PATH ...] --output DIR [--folds all|0,2]
                [--tta | --no-tta] [--probabilities] [--uncertainty] [--labels REFS] [--overwrite]
                [--device auto|cpu|cuda] [--threads N]

Exit codes: 0 every case predicted (or skipped: its output exists); 2 nothing was done because
the input is wrong (run directory, checkpoints, arguments, missing input paths, an --output that
is a file or holds the inputs); 1 some cases failed or could not be scored against --labels (each
named with its reason, the others completed), the output folder could not be written, or Ctrl-C.
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
    add_progress_argument,
    command_parser,
    guarded,
    show_progress,
)


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("seg-predict", __doc__)
    parser.add_argument("--model", required=True, type=Path, help="a single-scheme run directory written by seg-train")
    parser.add_argument("--input", required=True, nargs="+", type=Path,
                        help="image files or folders of them (case_0000.nii.gz-style channel files are grouped)")  # fmt: skip
    parser.add_argument("--output", required=True, type=Path, help="folder for the label maps")
    parser.add_argument("--folds", default="all", help="fold models to average: 'all' finished folds, or e.g. 0,2")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=True,
                        help="mirror test-time augmentation (default on; --no-tta is faster)")  # fmt: skip
    parser.add_argument(
        "--probabilities", action="store_true",
        help="also write DIR/<case>.npz (float16 class probabilities; calibrated when the run has report/calibration.json)",
    )  # fmt: skip
    parser.add_argument(
        "--uncertainty", action="store_true",
        help="also write entropy and mutual-information maps into DIR/uncertainty/ and a score per case into "
        "DIR/uncertainty.csv",
    )  # fmt: skip
    parser.add_argument(
        "--labels", type=Path, help="folder of reference label maps <case>.<ending>: writes DIR/metrics.csv"
    )
    parser.add_argument("--overwrite", action="store_true", help="predict cases whose outputs already exist")
    add_progress_argument(parser)
    add_device_argument(parser)
    return parser


INTERRUPTED = (
    "the label maps written so far are complete; run the same command again to predict the rest "
    "(cases whose outputs exist are skipped)"
)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guarded(lambda: predict(args), INTERRUPTED)


def predict(args: argparse.Namespace) -> int:
    """The command's work; InputError (exit 2) before anything is written, else exit 0 or 1."""
    # Imported here so that --help and argument errors answer without loading torch.
    from tqdm.auto import tqdm

    from adversarial_seg.seg.predict import BatchPredictor

    started = time.perf_counter()
    run, folds, device, cases, ignored, models = prepare(args)
    post = [name for name, on in ((run.postprocessing or {}).get("keep_largest_component") or {}).items() if on]
    print(
        f"seg-predict: {len(cases)} case(s), {len(folds)} fold model(s) {folds} of {run.run_dir}, "
        f"TTA {'on' if args.tta else 'off'}, keep-largest-component {post or 'off'}, device {device}, "
        f"{args.thread_note}" + (f"; {ignored} other folder entries ignored" if ignored else "")
    )
    if run.postprocessing is None:
        print("note: the run has no post-processing decision (not every fold finished); none applied")
    if args.probabilities:
        print(calibration_note(run))
    predictor = BatchPredictor(
        run, models, device, args.output, tta=args.tta, probabilities=args.probabilities,
        overwrite=args.overwrite, labels=args.labels,
        folds_label="ensemble" if len(folds) > 1 else f"model {folds[0]}", uncertainty=args.uncertainty,
    )  # fmt: skip
    args.output.mkdir(parents=True, exist_ok=True)  # only now: a bad run or checkpoint leaves it untouched
    show = show_progress(args)
    with tqdm(total=len(cases), desc="cases", unit="case", disable=not show) as bar:
        result = predictor.run_batch(cases, report=tqdm.write if show else print, progress=bar)
    per_case = (
        f"{sum(result.seconds) / len(result.seconds):.1f} s per predicted case"
        if result.seconds
        else "no case predicted"
    )
    print(
        f"done {len(result.done)}, skipped {len(result.skipped)} (output exists; --overwrite to redo), "
        f"failed {len(result.failed)}; {per_case}; wall {time.perf_counter() - started:.0f} s; output {args.output}"
    )
    write_metrics(result, run, folds, args)
    if result.uncertainty_rows:
        from adversarial_seg.seg.predict import write_uncertainty_csv

        write_uncertainty_csv(result.uncertainty_rows, args.output / "uncertainty.csv")
        print(f"uncertainty maps in {args.output / 'uncertainty'}, case scores in {args.output / 'uncertainty.csv'}")
    return report_failures(result, args.labels)


def calibration_note(run) -> str:
    """What --probabilities writes: calibrated with the run's frozen temperatures, or raw."""
    if run.calibration is None:
        return ("probabilities: uncalibrated (the run has no report/calibration.json; seg-eval on the run "
                "fits it)")  # fmt: skip
    temperatures = ", ".join(f"{name} {t:.3g}" for name, t in run.calibration["temperatures"].items())
    return (f"probabilities: calibrated with {run.run_dir / 'report' / 'calibration.json'} (temperatures "
            f"{temperatures}); label maps stay the argmax of the uncalibrated probabilities")  # fmt: skip


def prepare(args: argparse.Namespace):
    """Everything checked and loaded before the output folder is touched: the run, the folds, the
    device, the input cases and the fold models. InputError (exit 2) names what is wrong."""
    from adversarial_seg.runtime import resolve_device, set_threads
    from adversarial_seg.seg.predict import check_output, collect_inputs
    from adversarial_seg.seg.run import open_run, parse_folds

    if args.labels is not None and not args.labels.is_dir():
        raise UsageError(f"--labels {args.labels} is not a folder; pass the folder of reference label maps")
    check_output(args.output, args.input, args.labels)
    run = open_run(args.model)
    folds = parse_folds(args.folds, run)
    device = resolve_device(args.device)
    args.thread_note = set_threads(args.threads)
    cases, ignored = collect_inputs(args.input)
    models = run.load_models(folds, device)
    return run, folds, device, cases, ignored, models


def write_metrics(result, run, folds: list[int], args: argparse.Namespace) -> None:
    """``--labels``: DIR/metrics.csv, DIR/metrics_summary.json and the summary table of the scored cases."""
    from adversarial_seg.seg.predict import training_cases
    from adversarial_seg.seg.summary import format_table, summarise, write_cases_csv, write_json

    if not result.metric_rows:
        return
    write_cases_csv(result.metric_rows, args.output / "metrics.csv")
    seen = sorted({r["case"] for r in result.metric_rows} & training_cases(run, folds))
    summary = {"model": str(run.run_dir), "folds": folds, "tta": args.tta, "scored_training_cases": seen,
               "classes": summarise(result.metric_rows)}  # fmt: skip
    write_json(summary, args.output / "metrics_summary.json")
    print(format_table(summary["classes"]))
    if seen:
        print(
            f"warning: {len(seen)} of the scored cases ({', '.join(seen[:5])}{', ...' if len(seen) > 5 else ''}) "
            f"were training cases of the fold models used, so their scores are optimistic; score cases the run "
            f"never saw, or use seg-eval {run.run_dir} for the cross-validation estimate",
            file=sys.stderr,
        )


def report_failures(result, labels: Path | None) -> int:
    """One ``error:`` line per failed or unscored case; exit 1 when there is any (they are failed items)."""
    for _, line in result.failed + result.unscored:
        print(f"error: {line}", file=sys.stderr)
    if result.unscored and not result.metric_rows:
        print(
            f"error: no case was scored against --labels {labels}; give reference label maps named like the "
            "inputs (<case>.<ending>) on the same grid",
            file=sys.stderr,
        )
    return EXIT_FAILED if result.failed or result.unscored else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
