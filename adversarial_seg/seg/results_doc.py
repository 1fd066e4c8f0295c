"""Segmentation results for docs/results.md, from committed study records (never typed by hand).

A study record (``docs/results/seg/<name>.json``) is made by ``scripts/collect_seg_results.py``
from a finished ``seg-train`` output: the command, the machine, and each run's
``report/summary.json`` with its image size, epochs and training time. ``render_seg_results``
turns records into Markdown; it computes nothing but formatting and the time ratio to ce.
"""

from __future__ import annotations

import json
from pathlib import Path

METRICS = (("dsc", "DSC"), ("sensitivity", "sensitivity"), ("specificity", "specificity"))


def _mean_std(stats: dict | None) -> str:
    if not stats or stats.get("mean") is None:
        return "n/a"
    if stats.get("std") is None:
        return f"{stats['mean']:.3f}"
    return f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def _fold_means(folds: dict, metric: str) -> str:
    values = [folds[k].get(metric) for k in sorted(folds, key=int)]
    return ", ".join("n/a" if v is None else f"{v:.3f}" for v in values)


def render_study(record: dict) -> list[str]:
    runs = record["runs"]
    first = runs[0]
    lines = [f"### {record['title']}", ""]
    lines.append(
        f"Command: `{record['command']}` (commit `{first['git_commit'][:12]}`, config hash per run below). "
        f"Machine: {record['machine']}. Image size {first['image_size']}, {first['epochs']} epochs, "
        f"{len(first['folds_finished'])} folds, {first['n_cases']} cases."
    )
    if record.get("note"):
        lines += ["", record["note"]]
    lines.append("")
    # Time is compared per epoch (median over all folds' epochs): robust to other jobs on the machine.
    ce_epoch = next((r["median_epoch_seconds"] for r in runs if r["scheme"] == "ce"), None)
    for name in first["classes"]:
        lines += [f"**{name}** (mean ± sample std over cases, each scored once in its validation fold)", ""]
        header = ["run", *(label for _, label in METRICS), "DSC per fold", "train time", "s / epoch (median)",
                  "epoch time / ce", "config"]  # fmt: skip
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for run in runs:
            summary = run["classes"][name]
            cells = [run["run"]] + [_mean_std(summary["overall"].get(m)) for m, _ in METRICS]
            cells.append(_fold_means(summary["folds"], "dsc"))
            cells.append(f"{run['train_seconds'] / 60:.1f} min")
            cells.append(f"{run['median_epoch_seconds']:.2f}")
            cells.append(f"{run['median_epoch_seconds'] / ce_epoch:.2f}" if ce_epoch else "–")
            cells.append(f"`{run['config_hash']}`")
            lines.append("| " + " | ".join(cells) + " |")
        empty = summary.get("n_empty_reference", 0)
        if empty:
            lines += ["", f"{empty} cases have an empty reference for {name}; they are left out of DSC and sensitivity."]
        lines.append("")
    return lines


def render_seg_results(json_paths) -> str:
    """Markdown for every study record in ``json_paths`` (sorted by file name)."""
    lines: list[str] = []
    for path in sorted(Path(p) for p in json_paths):
        lines += render_study(json.loads(path.read_text()))
    return "\n".join(lines).rstrip() + "\n"
