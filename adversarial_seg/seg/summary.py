"""Per-case rows -> per-fold and pooled summaries (DESIGN.md, "Statistics").

"overall" pools all cases, each scored once in its validation fold: mean ± sample standard
deviation (ddof = 1) over cases; per-fold means are reported beside it. Undefined values
(NaN, e.g. DSC on an empty reference) are left out of means and counted.

Example:
    >>> rows = [{"class": "lesion", "fold": 0, "dsc": 0.8, "pred_voxels": 5, "ref_voxels": 9},
    ...         {"class": "lesion", "fold": 1, "dsc": 0.6, "pred_voxels": 3, "ref_voxels": 4}]
    >>> s = summarise(rows, metrics=("dsc",))["lesion"]
    >>> round(s["overall"]["dsc"]["mean"], 3), round(s["overall"]["dsc"]["std"], 4)
    (0.7, 0.1414)
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from adversarial_seg.atomic_files import atomic_write_bytes
from adversarial_seg.seg.metrics import CASE_COLUMNS

SUMMARY_METRICS = ("dsc", "iou", "sensitivity", "specificity", "specificity_in_region", "hd95_mm")


def describe(values: Iterable[float]) -> dict:
    """mean, sample std (ddof 1), median, quartiles q25 / q75 (numpy's linear interpolation) and
    n of the finite values; n_undefined counts the NaNs."""
    values = np.asarray(list(values), dtype=float)
    finite = values[np.isfinite(values)]
    n = int(finite.size)
    q25, median, q75 = np.percentile(finite, [25, 50, 75]) if n else (math.nan,) * 3
    return {
        "mean": float(finite.mean()) if n else math.nan,
        "std": float(finite.std(ddof=1)) if n > 1 else math.nan,
        "median": float(median),
        "q25": float(q25),
        "q75": float(q75),
        "n": n,
        "n_undefined": int(values.size - n),
    }


def summarise(rows: Sequence[dict], metrics: Sequence[str] = SUMMARY_METRICS) -> dict:
    """{class: {"overall": {metric: describe}, "folds": {fold: {metric: mean}}, empty-reference counts}}."""
    summary: dict = {}
    for name in dict.fromkeys(r["class"] for r in rows):
        class_rows = [r for r in rows if r["class"] == name]
        present = [m for m in metrics if any(m in r for r in class_rows)]
        empty = [r for r in class_rows if int(r["ref_voxels"]) == 0]
        folds = {}
        for fold in sorted({r["fold"] for r in class_rows}, key=str):
            fold_rows = [r for r in class_rows if r["fold"] == fold]
            folds[str(fold)] = {m: describe(float(r[m]) for r in fold_rows)["mean"] for m in present}
            folds[str(fold)]["n_cases"] = len(fold_rows)
        summary[name] = {
            "n_cases": len(class_rows),
            "overall": {m: describe(float(r[m]) for r in class_rows) for m in present},
            "folds": folds,
            "n_empty_reference": len(empty),
            "false_positive_case_rate": (
                sum(int(r["pred_voxels"]) > 0 for r in empty) / len(empty) if empty else math.nan
            ),
            "mean_false_positive_voxels_on_empty": (
                float(np.mean([int(r["pred_voxels"]) for r in empty])) if empty else math.nan
            ),
        }
    return summary


def write_cases_csv(rows: Sequence[dict], path: Path) -> None:
    """``cases.csv`` with the contract's columns first (then optional ones), atomically."""
    extra = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in CASE_COLUMNS]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CASE_COLUMNS + extra, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_bytes(path, text.getvalue().encode())


def read_cases_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key, value in row.items():
            if key not in ("case", "patient", "class", "fold") and value != "":
                row[key] = float(value)
    return rows


def write_json(obj, path: Path) -> None:
    """JSON with NaN written as null, atomically."""
    atomic_write_bytes(path, (json.dumps(_nan_to_none(obj), indent=1) + "\n").encode())


def _nan_to_none(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def format_table(summary: dict, metrics: Sequence[str] = ("dsc", "sensitivity", "specificity")) -> str:
    """Terminal / Markdown table: one row per class and fold plus the pooled row, mean ± std."""
    header = ["class", "fold", "cases", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def cell(mean, std=None):
        if mean is None or not math.isfinite(mean):
            return "n/a"
        return f"{mean:.3f}" if std is None or not math.isfinite(std) else f"{mean:.3f} ± {std:.3f}"

    for name, s in summary.items():
        for fold, means in s["folds"].items():
            cells = [cell(means.get(m)) for m in metrics]
            lines.append(f"| {name} | {fold} | {means['n_cases']} | " + " | ".join(cells) + " |")
        overall = [
            cell(s["overall"][m]["mean"], s["overall"][m]["std"]) if m in s["overall"] else "n/a" for m in metrics
        ]
        lines.append(f"| {name} | overall | {s['n_cases']} | " + " | ".join(overall) + " |")
    return "\n".join(lines)
