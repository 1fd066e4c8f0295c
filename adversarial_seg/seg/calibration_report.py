"""seg-eval's Calibration section: ECE / Brier before and after temperature scaling, reliability
diagrams, and how well a case's uncertainty points at its low DSC (Spearman, review curve).

Everything comes from the runs' saved cross-validation probabilities (``seg.calibration_run``);
``evaluation.json`` gets the same numbers under ``calibration``.
"""

from __future__ import annotations

import math
from pathlib import Path

from adversarial_seg.plots import figure_png, plt
from adversarial_seg.seg.calibration import DEFAULT_SAMPLES
from adversarial_seg.seg.calibration_run import (
    CALIBRATION,
    fit_run_calibration,
    read_saved_probabilities,
    write_calibration,
)
from adversarial_seg.seg.uncertainty import uncertainty_summary

SCORE = "mean_entropy_foreground"
STRATUM_NAMES = {"overall": "all voxels", "region": "in region"}
REVIEW_ROWS = 11  # k = 0 .. 10 in the table; the figure shows every k


def evaluate_calibration(evaluation) -> dict:
    """Calibration and uncertainty of one ``RunEvaluation`` (its scored cases only)."""
    run = evaluation.run
    label_set = run.plan.labels
    region = run.config.metrics.specificity_region
    labels = {case: evaluation.records[case].label_path for case in evaluation.prediction_paths}
    saved = read_saved_probabilities(run.run_dir, evaluation.folds, labels, label_set, region)
    fitted = fit_run_calibration(saved, label_set, region)
    dsc = {}
    for row in evaluation.rows:
        dsc.setdefault(row["class"], {})[row["case"]] = float(row["dsc"])
    scores = {case: s[SCORE] for case, s in saved.scores.items()}
    return {
        "fitted": fitted,
        "frozen": (run.calibration or {}).get("temperatures"),
        "samples_per_case": DEFAULT_SAMPLES,
        "missing": saved.missing,
        "uncertainty": {
            "score": SCORE,
            "cases": saved.scores,
            "classes": uncertainty_summary(scores, dsc) if scores else {},
        },  # fmt: skip
    }


def freeze_missing(evaluations, results: dict, output: Path) -> list[Path]:
    """Write the temperatures of a complete run that has no ``report/calibration.json``: into the
    run when the report goes to its ``report/`` folder, else beside the report as
    ``<run>_calibration.json`` (seg-eval --output leaves the run untouched). Returns the paths."""
    written = []
    for e in evaluations:
        body = results[e.name]["fitted"]
        if body is None or e.run.calibration is not None or not e.complete:
            continue
        path = e.run.run_dir / CALIBRATION
        if Path(output).resolve() != path.parent.resolve():
            path = Path(output) / f"{e.run.run_dir.name}_calibration.json"
        write_calibration(body, path)
        written.append(path)
    return written


def scaling_sentence(fitted: dict) -> str:
    """``calibration.json``'s scaling decision in a few words (empty for bodies written before it)."""
    scaling = fitted.get("scaling")
    if not scaling:
        return ""
    change = f"mean ECE {_fmt(scaling['mean_ece_before'])} -> {_fmt(scaling['mean_ece_after'])}"
    where = STRATUM_NAMES[scaling["stratum"]]
    verb = "applied" if scaling["applied"] == "temperature" else "not applied"
    return f"{verb} ({change}, {where})"


def _fmt(value, digits: int = 4) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def reliability_figure(name: str, fitted: dict) -> bytes:
    """One panel per class: observed frequency against mean confidence per equal-mass bin, before
    and after scaling, for all voxels and inside the region."""
    classes = list(fitted["metrics"])
    fig, axes = plt.subplots(1, len(classes), figsize=(3.3 * len(classes), 3.4), squeeze=False)
    for ax, cls in zip(axes[0], classes):
        ax.plot([0, 1], [0, 1], color="0.7", lw=1)
        for stratum, block in fitted["metrics"][cls].items():
            for when, style in (("before", "o-"), ("after", "s--")):
                bins = block[when]["reliability"]
                if bins:
                    label = f"{STRATUM_NAMES[stratum]}, {when} (ECE {_fmt(block[when]['ece'], 3)})"
                    ax.plot(bins["mean_confidence"], bins["observed_frequency"], style, ms=3, lw=1, label=label)
        ax.set_title(f"{name}: {cls}", fontsize=9)
        ax.set_xlabel("mean confidence (bin)", fontsize=8)
        ax.set_ylabel("observed frequency", fontsize=8)
        ax.set_xlim(0, 1), ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return figure_png(fig)


def review_figure(name: str, classes: dict) -> bytes:
    """Mean DSC of the cases left after reviewing the k most uncertain, per class, with the oracle."""
    fig, axes = plt.subplots(1, len(classes), figsize=(3.3 * len(classes), 3.2), squeeze=False)
    for ax, (cls, block) in zip(axes[0], classes.items()):
        for key, label in (("review", "most uncertain first"), ("oracle", "lowest DSC first (oracle)")):
            ax.plot([p["k"] for p in block[key]], [p["mean_dsc"] for p in block[key]], marker=".", label=label)
        rho = block["spearman"]["rho"]
        ax.set_title(f"{name}: {cls} (Spearman {_fmt(rho, 2)})", fontsize=9)
        ax.set_xlabel("cases reviewed (k)", fontsize=8)
        ax.set_ylabel("mean DSC of the rest", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return figure_png(fig)


def calibration_blocks(evaluations, results: dict) -> list:
    """The report's Calibration section (tables for every run side by side, figures per run)."""
    blocks: list = [("h", 2, "Calibration"), ("p", (
        "Voxel class probabilities of the saved cross-validation predictions, one class against the rest (a "
        "class's probability is the sum over the label values it unites). ECE: expected calibration error with "
        "15 equal-mass bins; Brier: mean squared difference of probability and reference. Voxels are subsampled "
        f"with a fixed seed ({DEFAULT_SAMPLES} per case among all voxels and as many inside the reference region, "
        "metrics.specificity_region), each weighted by the voxels it stands for. 'after': temperature scaling, one "
        "temperature for all classes on log(probabilities) fitted on all voxels, each case scaled with the temperature "
        "fitted on the other folds only, so the change is honest (n/a with a single finished fold). Inside the region, the class that is the region "
        "itself has only positive voxels: its ECE there is the probability mass the model misses (1 - mean "
        "confidence), which no temperature fitted for the whole image removes. The temperatures fitted on all folds are frozen in "
        "report/calibration.json; seg-predict --probabilities applies them, and its label maps stay the argmax of "
        "the uncalibrated probabilities."
    ))]  # fmt: skip
    rows, temperatures = [], []
    for e in evaluations:
        fitted = results[e.name]["fitted"]
        if fitted is None:
            continue
        region = fitted.get("region")
        for cls, strata in fitted["metrics"].items():
            for stratum, block in strata.items():
                where = STRATUM_NAMES[stratum] + (f" ({region})" if stratum == "region" else "")
                rows.append((cls, stratum, e.name, [cls, where, e.name, _fmt(block["before"]["ece"]),
                             _fmt(block["after"]["ece"]), _fmt(block["before"]["brier"]), _fmt(block["after"]["brier"]),
                             f"{block['voxels']:.0f}"]))  # fmt: skip
        frozen = results[e.name]["frozen"] or fitted["temperatures"]
        fit = fitted.get("fitted_temperatures", fitted["temperatures"])  # absent before the scaling decision
        temperatures.append([e.name, *[f"{fit[n]:.3f}" for n in fitted["classes"]], scaling_sentence(fitted),
                             ", ".join(f"{frozen[n]:.3f}" for n in fitted["classes"]),
                             _fmt(fitted["argmax_changed_fraction"], 5),
                             "report/calibration.json" if results[e.name]["frozen"] else "fitted now"])  # fmt: skip
    if not rows:
        return blocks + [("p", "No run has saved probabilities (fold_K/predictions/<case>.npz) to calibrate.")]
    order = {e.name: i for i, e in enumerate(evaluations)}
    rows.sort(key=lambda r: (r[0], r[1], order[r[2]]))  # runs side by side within a class and stratum
    header = ["class", "voxels", "run", "ECE before", "ECE after", "Brier before", "Brier after", "voxels counted"]
    blocks.append(("table", header, [r[3] for r in rows]))
    names = next(results[e.name]["fitted"]["classes"] for e in evaluations if results[e.name]["fitted"])
    blocks.append(("p", "Fitted temperatures (T > 1 softens over-confident probabilities); they are frozen for "
                        "seg-predict only when they lowered the mean cross-validated ECE of the scored classes (inside "
                        "the region when one is set), else the frozen T is 1; 'argmax changed': the share of sampled "
                        "voxels whose most probable class the fitted temperatures would change."))  # fmt: skip
    header = ["run", *[f"fitted T {n}" for n in names], "decision", "frozen T", "argmax changed", "source"]
    blocks.append(("table", header, temperatures))
    for e in evaluations:
        fitted = results[e.name]["fitted"]
        if fitted is not None:
            blocks.append(("image", f"{e.name}_reliability.png", reliability_figure(e.name, fitted),
                           f"{e.name}: reliability diagrams (equal-mass bins) before and after temperature scaling"))  # fmt: skip
        for item in results[e.name]["missing"]:
            blocks.append(("p", f"{e.name}: left out of calibration: {item}"))
    return blocks + uncertainty_blocks(evaluations, results)


def uncertainty_blocks(evaluations, results: dict) -> list:
    """Spearman of the case score with DSC, and the review-the-k-most-uncertain curve."""
    blocks: list = [("h", 3, "Uncertainty: which cases to review"), ("p", (
        "Case score: the mean voxel entropy (nats) of the saved probabilities inside the predicted foreground (one "
        "model per case in cross-validation, so entropy only; seg-predict --uncertainty adds the fold models' and "
        "mirror passes' mutual information). A useful score correlates negatively with DSC (Spearman's rho over "
        "cases). Review curve: the mean DSC of the cases left after a reader reviews the k most uncertain; the "
        "oracle removes the lowest-DSC cases first, the best any score could do."
    ))]  # fmt: skip
    rows, curves = [], {}
    for e in evaluations:
        classes = results[e.name]["uncertainty"]["classes"]
        for cls, block in classes.items():
            s = block["spearman"]
            rows.append([e.name, cls, _fmt(s["rho"], 3), _fmt(s["p_value"], 4), str(s["n"])])
            curves[(e.name, cls)] = block
    if not rows:
        return blocks
    blocks.append(("table", ["run", "class", "Spearman rho (score, DSC)", "p", "cases"], rows))
    keys = list(curves)
    n = max(len(b["review"]) for b in curves.values())
    table = []
    for k in range(min(n, REVIEW_ROWS)):
        cells = []
        for key in keys:
            review, oracle = curves[key]["review"], curves[key]["oracle"]
            cells.append(
                f"{_fmt(review[k]['mean_dsc'], 3)} / {_fmt(oracle[k]['mean_dsc'], 3)}" if k < len(review) else ""
            )
        table.append([str(k), *cells])
    blocks.append(("p", "Mean DSC of the remaining cases after reviewing k: by uncertainty / oracle."))
    blocks.append(("table", ["k", *[f"{run} {cls}" for run, cls in keys]], table))
    for e in evaluations:
        classes = results[e.name]["uncertainty"]["classes"]
        if classes:
            blocks.append(("image", f"{e.name}_review.png", review_figure(e.name, classes),
                           f"{e.name}: mean DSC of the cases left after reviewing the k most uncertain"))  # fmt: skip
    return blocks
