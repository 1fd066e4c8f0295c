"""Record a seg-eval comparison for docs/results.md.

    python scripts/collect_eval_results.py DIR --name ph2_schemes --title "PH2 ..." \
        --command "seg-eval runs/ph2_schemes" [--machine "..."] [--note "..."]

DIR is a seg-eval output folder holding evaluation.json (seg-eval's default for several runs is
<parent>/comparison). Writes docs/results/eval/<name>.json; then run
``python scripts/render_results.py``.
"""

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MACHINE = "2-core CPU, 24 GiB, no GPU (the project's build machine)"
KEPT = ("dsc", "sensitivity", "specificity", "specificity_in_region", "hd95_mm")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--title", required=True)
    parser.add_argument("--command", required=True)
    parser.add_argument("--machine", default=DEFAULT_MACHINE)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    body = json.loads((args.folder / "evaluation.json").read_text())
    incomplete = [name for name, run in body["runs"].items() if not run["complete"]]
    if incomplete:
        raise SystemExit(f"runs {incomplete} are incomplete; finish them before recording")
    runs = {}
    for name, run in body["runs"].items():
        classes = {
            cls: {"n_cases": block["n_cases"], "overall": {m: block["overall"][m] for m in KEPT if m in block["overall"]},
                  "lesions": block["lesions"], "n_empty_reference": block["n_empty_reference"]}
            for cls, block in run["classes"].items()
        }  # fmt: skip
        runs[name] = {k: run[k] for k in ("scheme", "seed", "config_hash", "n_folds", "train_seconds")}
        runs[name]["dataset"] = Path(run["dataset"]).name
        runs[name]["classes"] = classes
    record = {"name": args.name, "title": args.title, "command": args.command, "machine": args.machine,
              "note": args.note, "lesion_overlap": body["lesion_overlap"], "runs": runs,
              "comparison": body["comparison"], "seed_spread": body["seed_spread"]}  # fmt: skip
    target = REPO / "docs" / "results" / "eval" / f"{args.name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
