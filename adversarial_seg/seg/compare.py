"""Paired comparisons of runs on the same cases (DESIGN.md, "Statistics").

Runs are compared case by case (not fold by fold) against the first run: for each class and
metric, the cases scored in both runs form pairs; the Wilcoxon signed-rank test (SciPy,
two-sided, ``zero_method="wilcox"``: pairs with a zero difference are dropped, as in Wilcoxon's
original test) gives a p-value, and Holm's step-down correction adjusts the p-values of one
comparison (run vs first run, one class) across its metrics. Schemes trained with several
seeds are also compared with each case's value averaged over the seeds first
(``compare_schemes``): one pair per case, with less of one seed's noise in it.

Example:
    >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03])]
    [0.03, 0.06, 0.06]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import wilcoxon

ZERO_METHOD = "wilcox"
# The metrics of one (run, class) comparison: Holm's correction runs over these.
COMPARED_METRICS = ("dsc", "iou", "sensitivity", "specificity", "hd95_mm", "false_positive_lesions")


def format_p(value) -> str:
    """A p-value for a table: three decimals, or two significant digits below 0.001 (so 8.7e-11
    and 0.0004 stay distinguishable); None / NaN (no pairs left) as "n/a"."""
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order; NaNs stay NaN and are not counted."""
    indexed = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    m = len(indexed)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(indexed)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def paired_test(first: dict[str, float], other: dict[str, float]) -> dict:
    """Wilcoxon signed-rank on the cases both runs define (finite values); differences other - first."""
    cases = sorted(c for c in first if c in other and np.isfinite(first[c]) and np.isfinite(other[c]))
    differences = np.array([other[c] - first[c] for c in cases], dtype=float)
    result = {
        "n_pairs": len(cases),
        "mean_difference": float(differences.mean()) if cases else math.nan,
        "median_difference": float(np.median(differences)) if cases else math.nan,
        "n_zero_differences": int(np.count_nonzero(differences == 0)),
        "p_value": math.nan,
    }
    if np.count_nonzero(differences) > 0:
        result["p_value"] = float(wilcoxon(differences, zero_method=ZERO_METHOD).pvalue)
    return result


def compare_to_first(per_run: list[dict[str, dict[str, dict[str, float]]]], names: list[str],
                     metrics: Sequence[str]) -> list[dict]:  # fmt: skip
    """Rows ``{run, class, metric, n_pairs, mean_difference, median_difference, p_value, p_holm}``.

    ``per_run[i][class][metric]`` maps case -> value for run ``names[i]``; the first run is the
    reference. Holm's correction runs over the metrics of one (run, class).
    """
    rows = []
    for name, values in zip(names[1:], per_run[1:]):
        for cls, first_metrics in per_run[0].items():
            block = []
            for metric in metrics:
                if metric in first_metrics and metric in values.get(cls, {}):
                    test = paired_test(first_metrics[metric], values[cls][metric])
                    block.append({"run": name, "class": cls, "metric": metric, **test})
            for row, adjusted in zip(block, holm([r["p_value"] for r in block])):
                row["p_holm"] = adjusted
            rows += block
    return rows


def seed_averaged(per_run: list[dict[str, dict[str, dict[str, float]]]], schemes: list[str]) -> dict:
    """``{scheme: {class: {metric: {case: mean over the scheme's runs}}}}``, schemes in first-seen
    order; a case counts only where every run of the scheme has a finite value."""
    grouped: dict[str, list] = {}
    for scheme, values in zip(schemes, per_run, strict=True):
        grouped.setdefault(scheme, []).append(values)
    averaged: dict = {}
    for scheme, runs in grouped.items():
        averaged[scheme] = {}
        for cls, metrics in runs[0].items():
            averaged[scheme][cls] = {}
            for metric in metrics:
                tables = [run.get(cls, {}).get(metric, {}) for run in runs]
                cases = [c for c in tables[0] if all(c in t and np.isfinite(t[c]) for t in tables)]
                averaged[scheme][cls][metric] = {c: float(np.mean([t[c] for t in tables])) for c in cases}
    return averaged


def compare_schemes(per_run: list[dict[str, dict[str, dict[str, float]]]], schemes: list[str],
                    metrics: Sequence[str]) -> list[dict]:  # fmt: skip
    """``compare_to_first`` on ``seed_averaged`` values: each scheme against the first run's scheme,
    rows named by scheme with their ``seeds`` (runs averaged). Empty unless there are two schemes
    or more and one of them has several runs (otherwise it would repeat the run comparison)."""
    if len(set(schemes)) < 2 or len(set(schemes)) == len(schemes):
        return []
    averaged = seed_averaged(per_run, schemes)
    names = list(averaged)
    rows = compare_to_first([averaged[name] for name in names], names, metrics)
    for row in rows:
        row["seeds"] = schemes.count(row["run"])
        row["reference_seeds"] = schemes.count(names[0])
    return rows
