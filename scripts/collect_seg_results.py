"""Record a finished seg-train output as a study for docs/results.md.

    python scripts/collect_seg_results.py RUN --name ph2 --title "PH2 ..." \
        --command "seg-train --config configs/ph2.yaml --output runs/ph2" [--machine "..."]

Reads every run's report/summary.json (RUN itself, or RUN/<scheme>[_seed<N>]/ for a
multi-run study) and config.yaml, and writes docs/results/seg/<name>.json. Then run
``python scripts/render_results.py`` to re-render docs/results.md.
"""

import argparse
import csv
import json
import statistics
from pathlib import Path

import yaml

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--title", required=True)
    parser.add_argument("--command", required=True)
    parser.add_argument("--machine", default=DEFAULT_MACHINE)
    parser.add_argument("--note", default="", help="what a reader must know about how it ran")
    args = parser.parse_args()
    runs = []
    for run_dir in run_dirs(args.output):
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
        raise SystemExit(f"no finished run under {args.output}")
    record = {"name": args.name, "title": args.title, "command": args.command, "machine": args.machine,
              "note": args.note, "runs": runs}  # fmt: skip
    target = REPO / "docs" / "results" / "seg" / f"{args.name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
