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

from adversarial_seg.cli.common import EXIT_FAILED, EXIT_OK, UsageError, guarded

FORMATS = ("md", "html", "json", "csv")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seg-eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories written by seg-train")
    parser.add_argument("--output", type=Path,
                        help="report folder (default: RUN/report for one run, <parent>/comparison for several)")  # fmt: skip
    parser.add_argument("--format", default=",".join(FORMATS), help="comma-separated subset of md,html,json,csv")
    parser.add_argument("--lesion-overlap", type=float, default=0.1,
                        help="fraction of a lesion that must be covered to count as detected (default 0.1)")  # fmt: skip
    return parser


def expand(paths: list[Path]) -> list[Path]:
    """A folder of runs (a multi-scheme or multi-seed call's output) stands for the runs in it,
    ordered ce, adversarial, hybrid (then other schemes) and by seed, so the baseline comes first
    and is the reference of the paired tests. Runs named one by one keep the order given.
    RunStateError names a run's config.yaml that cannot be read."""
    from adversarial_seg.config import SCHEME_WEIGHTS
    from adversarial_seg.provenance import read_resolved_config

    def order(run: Path):
        mapping, _ = read_resolved_config(run / "config.yaml")
        scheme, seed = mapping.get("scheme", ""), mapping.get("seed")
        rank = list(SCHEME_WEIGHTS).index(scheme) if scheme in SCHEME_WEIGHTS else len(SCHEME_WEIGHTS)
        return rank, seed if isinstance(seed, int) else 0, run.name

    runs = []
    for path in paths:
        inner = sorted((p.parent for p in path.glob("*/config.yaml")), key=order)
        runs += [path] if (path / "config.yaml").is_file() or not inner else inner
    return runs


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
    from adversarial_seg.atomic_files import atomic_write_bytes
    from adversarial_seg.seg.compare import COMPARED_METRICS, compare_to_first
    from adversarial_seg.seg.eval_report import build_blocks, write_report
    from adversarial_seg.seg.evaluate import check_comparable, evaluate_run, seed_spread
    from adversarial_seg.seg.summary import format_table

    runs = expand(args.runs)
    names = [p.name if len(runs) == 1 or p.parent == runs[0].parent else str(p) for p in runs]
    evaluations = [evaluate_run(path, args.lesion_overlap, name) for path, name in zip(runs, names)]
    if len(evaluations) > 1:
        check_comparable(evaluations)
    output = args.output or (runs[0] / "report" if len(runs) == 1 else runs[0].parent / "comparison")
    check_output(output)
    comparison = compare_to_first([e.values() for e in evaluations], names, COMPARED_METRICS) if len(runs) > 1 else []
    spread = seed_spread(evaluations)
    blocks = build_blocks(evaluations, comparison, spread, args.lesion_overlap)
    written = write_report(blocks, output, formats, atomic_write_bytes)
    written += write_tables(evaluations, formats, output, args.lesion_overlap, comparison, spread)
    for e in evaluations:
        print(f"\n{e.name}" + ("" if e.complete else f" (INCOMPLETE: {len(e.missing)} missing)"))
        print(format_table(e.summary))
    print("\nwrote " + ", ".join(str(p) for p in written))
    incomplete = [e for e in evaluations if not e.complete]
    for e in incomplete:
        for item in e.missing:
            print(f"error: {e.name}: {item}", file=sys.stderr)
    return EXIT_FAILED if incomplete else EXIT_OK


def check_output(output: Path) -> None:
    """UsageError (exit 2, nothing written) for a report folder that is a file or lies under one."""
    existing = next(p for p in (output.absolute(), *output.absolute().parents) if p.exists() or p == p.parent)
    if existing == output.absolute() and not existing.is_dir():
        raise UsageError(f"--output {output} is a file; pass a folder for the report")
    if not existing.is_dir():
        raise UsageError(f"report folder {output}: {existing} is a file, not a folder; pass another --output")


def write_tables(evaluations, formats: set[str], output: Path, lesion_overlap: float, comparison, spread) -> list[Path]:
    """``evaluation.json`` (every statistic, the comparisons, the seed spread) and ``evaluation_cases.csv``."""
    from adversarial_seg.seg.summary import write_cases_csv, write_json

    written = []
    if "json" in formats:
        body = {"runs": {e.name: {"run_dir": str(e.run.run_dir), "scheme": e.run.config.scheme,
                                  "seed": e.run.config.seed, "config_hash": e.run.provenance.get("config_hash"),
                                  "git_commit": e.git_commit,
                                  "dataset": str(e.run.config.data.root), "n_folds": len(e.folds),
                                  "train_seconds": round(e.train_seconds, 1), "complete": e.complete,
                                  "missing": e.missing, "classes": e.summary} for e in evaluations},
                "lesion_overlap": lesion_overlap, "comparison": comparison, "seed_spread": spread}  # fmt: skip
        write_json(body, output / "evaluation.json")
        written.append(output / "evaluation.json")
    if "csv" in formats:
        rows = [{"run": e.name, **r} for e in evaluations for r in e.rows]
        write_cases_csv(rows, output / "evaluation_cases.csv")
        written.append(output / "evaluation_cases.csv")
    return written


if __name__ == "__main__":
    sys.exit(main())
