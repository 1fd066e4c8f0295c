"""Segmentation results for docs/results.md, from committed study records (never typed by hand).

A study record (``docs/results/seg/<name>.json``) is made by ``scripts/collect_seg_results.py``
from a finished ``seg-train`` output: the command, the machine, and each run's
``report/summary.json`` with its image size, epochs and training time. A comparison record
(``docs/results/eval/<name>.json``) is made by ``scripts/collect_seg_results.py`` from a
``seg-eval`` report. ``render_seg_results`` turns records into Markdown; it computes nothing but
formatting and the time ratio to ce.
"""

from __future__ import annotations

import json
from pathlib import Path

from adversarial_seg.seg.compare import format_p
from adversarial_seg.seg.run import short_commits

METRICS = (("dsc", "DSC"), ("sensitivity", "sensitivity"), ("specificity", "specificity"))
# Beside Kohl et al.'s layout: the distance metric and the specificity that is not near 1 by construction.
EXTRA_METRICS = (("hd95_mm", "HD95 (mm)"), ("specificity_in_region", "specificity in region"))


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
        f"Command: `{record['command']}` (commit `{short_commits(first['git_commit'])}`, config hash per run below). "
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
            lines += [
                "",
                f"{empty} cases have an empty reference for {name}; they are left out of DSC and sensitivity.",
            ]
        lines.append("")
    return lines


def render_comparison(record: dict) -> list[str]:
    """A seg-eval record: Kohl et al.'s table layout, paired tests, seed spread."""
    runs = record["runs"]
    first = next(iter(runs.values()))
    classes = list(first["classes"])
    lines = [f"### {record['title']}", "",
             f"Command: `{record['command']}`. Machine: {record['machine']}. Dataset `{first['dataset']}`, "
             f"{first['n_folds']} folds, {first['classes'][classes[0]]['n_cases']} cases; every number recomputed "
             "by seg-eval from the runs' saved predictions."]  # fmt: skip
    if record.get("note"):
        lines += ["", record["note"]]
    lines += ["", "Mean ± sample std over cases, each scored once in its validation fold.", ""]
    header = ["run", "scheme", "seed"] + [f"{cls} {label}" for cls in classes for _, label in METRICS]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, run in runs.items():
        cells = [name, run["scheme"], str(run["seed"])]
        cells += [_mean_std(run["classes"][cls]["overall"].get(m)) for cls in classes for m, _ in METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    extra = [(m, label) for m, label in EXTRA_METRICS if any(m in r["classes"][c]["overall"] for r in runs.values()
                                                             for c in classes)]  # fmt: skip
    if extra:
        header = ["run"] + [f"{cls} {label}" for cls in classes for _, label in extra]
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for name, run in runs.items():
            cells = [_mean_std(run["classes"][cls]["overall"].get(m)) for cls in classes for m, _ in extra]
            lines.append("| " + " | ".join([name, *cells]) + " |")
    partial = {name: run["missing"] for name, run in runs.items() if run.get("missing")}
    if partial:
        lines += ["", "Incomplete runs (a screening on some folds; the others were not trained): "
                  + "; ".join(f"`{n}` lacks folds {', '.join(map(str, m))}" for n, m in partial.items())
                  + ". Paired tests use the cases both runs scored."]  # fmt: skip
    lines += ["", "How each run was trained (the commit whose code trained its folds, read from each fold's "
              "fold_done.json; \"unknown\" where none was recorded: folds finished before commits were recorded per "
              "fold, or code run outside a git checkout):", "",
              "| run | config hash | trained by commit | train time |", "|---|---|---|---|"]  # fmt: skip
    for name, run in runs.items():
        commit = short_commits(run["git_commit"])
        lines.append(f"| {name} | `{run['config_hash'][:12]}` | {commit} | {run['train_seconds'] / 60:.1f} min |")
    lines.append("")
    lesion_rows = [(name, cls, run["classes"][cls]["lesions"]) for name, run in runs.items() for cls in classes]
    lines += [f"Lesion detection (a reference lesion counts as detected when the prediction covers at least "
              f"{record['lesion_overlap']:.0%} of it):", "",
              "| run | class | lesions detected | detection sensitivity | false-positive lesions / case |",
              "|---|---|---|---|---|"]  # fmt: skip
    for name, cls, les in lesion_rows:
        sens = "n/a" if les["detection_sensitivity"] is None else f"{les['detection_sensitivity']:.3f}"
        lines.append(f"| {name} | {cls} | {les['detected_lesions']} / {les['reference_lesions']} | {sens} | "
                     f"{les['false_positive_lesions_per_case']:.2f} |")  # fmt: skip
    lines.append("")
    shown = [r for r in record["comparison"] if r["metric"] in dict(METRICS + EXTRA_METRICS)]
    if shown:
        reference = next(iter(runs))
        lines += [f"Paired per case against `{reference}` (Wilcoxon signed-rank, two-sided, zero differences "
                  "dropped; p Holm-corrected over the six compared metrics of each run and class):", "",
                  "| run | class | metric | cases | mean difference | p | p (Holm) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in shown:
            lines.append(f"| {r['run']} | {r['class']} | {r['metric']} | {r['n_pairs']} | "
                         f"{r['mean_difference']:+.4f} | {format_p(r['p_value'])} | {format_p(r['p_holm'])} |")  # fmt: skip
        lines.append("")
    if record["seed_spread"]:
        lines += ["Per scheme over seeds: mean of the runs' means (seed-to-seed std of those means):", "",
                  "| scheme | seeds | " + " | ".join(f"{cls} {label}" for cls in classes for _, label in METRICS) + " |",
                  "|---|---|" + "---|" * (len(classes) * len(METRICS))]  # fmt: skip
        for scheme, block in record["seed_spread"].items():
            cells = [
                f"{block[cls][m]['mean']:.3f} ({block[cls][m]['seed_std']:.3f})" for cls in classes for m, _ in METRICS
            ]
            lines.append(f"| {scheme} | {len(block['runs'])} | " + " | ".join(cells) + " |")
        lines.append("")
    shown_metrics = {*dict(METRICS + EXTRA_METRICS), "false_positive_lesions"}
    schemes = [r for r in record.get("scheme_comparison", []) if r["metric"] in shown_metrics]
    if schemes:
        reference = schemes[0]
        lines += [f"Per scheme with seeds averaged per case (each case's value is the mean over the scheme's seeds; "
                  f"paired against `{next(iter(runs.values()))['scheme']}` over its {reference['reference_seeds']} "
                  "seeds, same test and correction):", "",
                  "| scheme | seeds | class | metric | cases | mean difference | p | p (Holm) |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in schemes:
            lines.append(f"| {r['run']} | {r['seeds']} | {r['class']} | {r['metric']} | {r['n_pairs']} | "
                         f"{r['mean_difference']:+.4f} | {format_p(r['p_value'])} | {format_p(r['p_holm'])} |")  # fmt: skip
        lines.append("")
    lines += render_calibration(runs)
    return lines


def _number(value: float | None) -> str:
    """Four decimals; "n/a" where seg-eval could not compute it (an "after" needs other folds)."""
    return "n/a" if value is None else f"{value:.4f}"


def render_calibration(runs: dict) -> list[str]:
    """seg-eval's calibration summary per run: ECE / Brier before and after temperature scaling (the
    after fitted without each case's fold), and how the case uncertainty ranks DSC."""
    calibrated = {name: run["calibration"] for name, run in runs.items() if run.get("calibration")}
    if not calibrated:
        return []
    bins = next(iter(calibrated.values()))["n_bins"]
    lines = [f"Calibration of the saved probabilities (ECE with {bins} equal-mass bins and Brier score, each class "
             "against the rest; \"region\": voxels inside the reference `metrics.specificity_region`; \"after\": "
             "temperature scaling fitted without the case's own fold; T is the temperature fitted on all folds, "
             "frozen for seg-predict only where it lowered the cross-validated ECE):", "",
             "| run | T | class | voxels | ECE before | ECE after | Brier before | Brier after |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, block in calibrated.items():
        temperature = ", ".join(f"{t:.3f}" for t in block["temperatures"] if t is not None) or "n/a"
        if block.get("scaling"):  # records made before the scaling decision lack it
            temperature += " (applied)" if block["scaling"] == "temperature" else " (not applied: frozen T 1)"
        for cls, places in block["metrics"].items():
            for where, m in places.items():
                cells = [_number(m[when][key]) for key in ("ece", "brier") for when in ("before", "after")]
                lines.append(f"| {name} | {temperature} | {cls} | {where} | " + " | ".join(cells) + " |")
    ranked = [(name, cls, u) for name, block in calibrated.items() for cls, u in block["uncertainty"].items()]
    if ranked:
        lines += ["", "Case uncertainty (mean entropy inside the predicted foreground) against DSC: Spearman rho, and "
                  "the mean DSC of the cases left after the 5 most uncertain are reviewed:", "",
                  "| run | class | Spearman rho | p | mean DSC, all | mean DSC, 5 reviewed |", "|---|---|---|---|---|---|"]  # fmt: skip
        for name, cls, u in ranked:
            after = "n/a" if u["mean_dsc_after_review_5"] is None else f"{u['mean_dsc_after_review_5']:.3f}"
            lines.append(f"| {name} | {cls} | {u['spearman']:+.3f} | {format_p(u['p'])} | {u['mean_dsc']:.3f} | "
                         f"{after} |")  # fmt: skip
    return lines + [""]


def render_seg_results(json_paths) -> str:
    """Markdown for every study record in ``json_paths`` (sorted by file name)."""
    lines: list[str] = []
    for path in sorted(Path(p) for p in json_paths):
        record = json.loads(path.read_text())
        lines += render_comparison(record) if "comparison" in record else render_study(record)
    return "\n".join(lines).rstrip() + "\n"
