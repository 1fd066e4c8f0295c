"""Record a finished seg-train output, or a seg-eval comparison, for docs/results.md.

    python scripts/collect_seg_results.py RUN --name ph2 --title "PH2 ..." \
        --command "seg-train --config configs/ph2.yaml --output runs/ph2" [--machine "..."]
    python scripts/collect_seg_results.py RUN/comparison --name ph2_schemes --title "..." \
        --command "seg-eval RUN"

A seg-train output: every run's report/summary.json (RUN itself, or RUN/<scheme>[_seed<N>]/
for a multi-run study) and config.yaml -> docs/results/seg/<name>.json. A seg-eval output
folder (it holds evaluation.json) -> docs/results/eval/<name>.json. Then run
``python scripts/render_results.py`` to re-render docs/results.md.
"""

import argparse
import csv
import json
import re
import statistics
from pathlib import Path

import yaml

from adversarial_seg.seg.eval_report import TABLE_METRICS

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MACHINE = "2-core CPU, 24 GiB, no GPU (the project's build machine)"


def run_dirs(output: Path) -> list[Path]:
    if (output / "report" / "summary.json").is_file():
        return [output]
    return sorted(p.parent.parent for p in output.glob("*/report/summary.json"))


def median_epoch_seconds(run_dir: Path) -> float:
    """Median over every fold's epochs: robust to epochs slowed by other jobs on the machine."""
    seconds = []
    for log in sorted(run_dir.glob("fold_*/log.csv")):
        with open(log, newline="") as handle:
            seconds += [float(row["seconds"]) for row in csv.DictReader(handle)]
    return round(statistics.median(seconds), 3)


def training_runs(output: Path) -> dict:
    """{"runs": [summary + image size, epochs, median s / epoch]} of a finished seg-train output."""
    runs = []
    for run_dir in run_dirs(output):
        summary = json.loads((run_dir / "report" / "summary.json").read_text())
        if not summary["complete"]:
            raise SystemExit(f"{run_dir} is missing folds {summary['folds_missing']}; finish them first")
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        summary["image_size"] = config["data"]["size"]
        summary["epochs"] = config["train"]["epochs"]
        summary["dataset"] = Path(summary["dataset"]).name
        summary["median_epoch_seconds"] = median_epoch_seconds(run_dir)
        runs.append(summary)
    if not runs:
        raise SystemExit(f"no finished run under {output}")
    return {"runs": runs}


def calibration_summary(block: dict) -> dict:
    """The record's share of one run's seg-eval ``calibration`` entry: the temperature(s), ECE and
    Brier before / after per class and voxel set, and each class's Spearman rho of the case score
    with DSC and the mean DSC left after reviewing the 5 most uncertain cases."""
    fitted = block["fitted"]
    metrics = {cls: {where: {when: {m: values[when][m] for m in ("ece", "brier")} for when in ("before", "after")}
                     for where, values in places.items() if values}
               for cls, places in fitted["metrics"].items()}  # fmt: skip
    uncertainty = {}
    for cls, entry in (block.get("uncertainty") or {}).get("classes", {}).items():
        review = {row["k"]: row["mean_dsc"] for row in entry["review"]}
        uncertainty[cls] = {"spearman": entry["spearman"]["rho"], "p": entry["spearman"]["p_value"],
                            "mean_dsc": review.get(0), "mean_dsc_after_review_5": review.get(5)}  # fmt: skip
    fit = fitted.get("fitted_temperatures", fitted["temperatures"])  # absent before the scaling decision
    return {"temperatures": sorted(set(fit.values())), "scaling": (fitted.get("scaling") or {}).get("applied"),
            "n_bins": fitted["n_bins"], "metrics": metrics, "uncertainty": uncertainty}  # fmt: skip


def comparison(folder: Path, allow_incomplete: bool = False) -> dict:
    """The runs' overall statistics, the paired tests and the seed spread of a seg-eval output.

    ``allow_incomplete`` records runs with missing folds (a screening on some folds); the record
    lists each run's finished folds so the page says so."""
    body = json.loads((folder / "evaluation.json").read_text())
    incomplete = [name for name, run in body["runs"].items() if not run["complete"]]
    if incomplete and not allow_incomplete:
        raise SystemExit(f"runs {incomplete} are incomplete; finish them before recording (or pass --partial)")
    runs = {}
    for name, run in body["runs"].items():
        runs[name] = {k: run[k] for k in ("scheme", "seed", "config_hash", "n_folds", "train_seconds")}
        if not run["complete"]:  # seg-eval names each missing fold in a sentence
            runs[name]["missing"] = sorted(
                {int(f) for f in re.findall(r"fold (\d+) has not finished", " ".join(run["missing"]))}
            )
        if (body.get("calibration") or {}).get(name):
            runs[name]["calibration"] = calibration_summary(body["calibration"][name])
        runs[name]["git_commit"] = run.get("git_commit", "unknown")
        runs[name]["dataset"] = Path(run["dataset"]).name
        runs[name]["classes"] = {
            cls: {"n_cases": block["n_cases"], "overall": {m: block["overall"][m] for m in TABLE_METRICS if m in block["overall"]},
                  "lesions": block["lesions"], "n_empty_reference": block["n_empty_reference"]}
            for cls, block in run["classes"].items()
        }  # fmt: skip
    return {"lesion_overlap": body["lesion_overlap"], "runs": runs, "comparison": body["comparison"],
            "seed_spread": body["seed_spread"], "scheme_comparison": body.get("scheme_comparison", [])}  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="a seg-train output, or a seg-eval output folder")
    parser.add_argument("--name", required=True)
    parser.add_argument("--title", required=True)
    parser.add_argument("--command", required=True)
    parser.add_argument("--machine", default=DEFAULT_MACHINE)
    parser.add_argument("--note", default="", help="what a reader must know about how it ran")
    parser.add_argument("--partial", action="store_true", help="record a comparison of runs with missing folds")
    args = parser.parse_args()
    evaluated = (args.output / "evaluation.json").is_file()
    body = comparison(args.output, args.partial) if evaluated else training_runs(args.output)
    record = {"name": args.name, "title": args.title, "command": args.command, "machine": args.machine,
              "note": args.note, **body}  # fmt: skip
    target = REPO / "docs" / "results" / ("eval" if evaluated else "seg") / f"{args.name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
