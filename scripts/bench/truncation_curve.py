"""The truncation trick's curve for a trained biggan run: fidelity against diversity as the threshold moves.

    python scripts/bench/truncation_curve.py RUN [--thresholds 0.25 0.5 1 1.5 2 none] [--samples 1000] [--output FILE]

Loads RUN's config and checkpoint (the moving-average generator), and at each threshold draws
``--samples`` digits, an equal number per class, from fixed noise with every z entry beyond the
threshold redrawn (``none``: no truncation). Per threshold, on the test split: ``class_accuracy``
(fidelity to the class asked for, by the shipped classifier), the classifier score, the Frechet
distance and ``spread_ratio`` (mean pairwise distance of the samples over that of real test digits:
diversity). Prints a Markdown table, then one JSON line last; ``--output`` also writes that JSON to FILE
(``kind`` truncation: ``scripts/bench/gan_results.py --result NAME=FILE`` records it for the docs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from common import machine, print_result

from adversarial_seg.atomic_files import atomic_write_bytes
from adversarial_seg.gan.config import gan_config_from_mapping
from adversarial_seg.gan.experiment import Evaluator, load_data
from adversarial_seg.gan.variants import build_task
from adversarial_seg.provenance import read_resolved_config


def threshold(text: str) -> float | None:
    return None if text == "none" else float(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--thresholds", nargs="+", type=threshold, default=[0.25, 0.5, 1.0, 1.5, 2.0, None])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--output", type=Path, help="also write the result JSON here")
    args = parser.parse_args()
    config = gan_config_from_mapping(read_resolved_config(args.run / "config.yaml")[0])
    if config.variant != "biggan":
        raise SystemExit(f"{args.run} is a {config.variant} run; the truncation trick is biggan's")
    data = load_data(config)
    task = build_task(config, data["shape"], data["classes"])
    modules = torch.load(args.run / "checkpoint_last.pt", map_location="cpu", weights_only=True)["modules"]
    for name, module in task.modules().items():
        module.load_state_dict(modules[name])
    evaluator = Evaluator(config, data)
    rows = []
    for value in args.thresholds:
        task.truncation = value
        metrics = evaluator.labelled_metrics(task, args.samples, "truncation", "test")
        rows.append({"threshold": value, **metrics})
    print("| threshold | class accuracy | classifier score | Frechet distance | spread ratio |")
    print("|---|---|---|---|---|")
    for r in rows:
        label = "none" if r["threshold"] is None else f"{r['threshold']:g}"
        print(f"| {label} | {r['class_accuracy']:.3f} | {r['classifier_score']:.2f} | {r['frechet_distance']:.1f} | "
              f"{r['spread_ratio']:.3f} |")  # fmt: skip
    result = {"kind": "truncation", "bench": "truncation_curve", "run": str(args.run), "config_hash": config.digest(),
              "seed": config.seed, "samples": args.samples, "rows": rows, "machine": machine()}  # fmt: skip
    if args.output is not None:
        atomic_write_bytes(args.output, (json.dumps(result, indent=1) + "\n").encode())
    print_result(result)


if __name__ == "__main__":
    main()
