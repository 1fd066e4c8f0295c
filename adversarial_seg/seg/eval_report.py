"""``seg-eval``'s report: one list of blocks, rendered as Markdown (figures as PNG files beside
it, for GitHub) and as one self-contained HTML file (figures embedded as base64, reads offline).

Blocks are tuples: ``("h", level, text)``, ``("p", text)``, ``("table", header, rows)``,
``("image", file name, png bytes, caption)``.
"""

from __future__ import annotations

import base64
import html
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from adversarial_seg import __version__
from adversarial_seg.atomic_files import atomic_write_bytes, check_output_folder
from adversarial_seg.config import SCHEME_WEIGHTS
from adversarial_seg.provenance import read_resolved_config
from adversarial_seg.seg import calibration_report, eval_figures
from adversarial_seg.seg.compare import ZERO_METHOD, format_p
from adversarial_seg.seg.run import short_commits

TABLE_METRICS = ("dsc", "iou", "sensitivity", "specificity", "specificity_in_region", "hd95_mm")
KOHL_METRICS = ("dsc", "sensitivity", "specificity")


def fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def mean_std(stats: dict | None, digits: int = 3) -> str:
    if not stats or stats.get("n", 0) == 0:
        return "n/a"
    if not math.isfinite(stats["std"]):
        return fmt(stats["mean"], digits)
    return f"{fmt(stats['mean'], digits)} ± {fmt(stats['std'], digits)}"


def median_iqr(stats: dict | None, digits: int = 3) -> str:
    if not stats or stats.get("n", 0) == 0:
        return "n/a"
    return f"{fmt(stats['median'], digits)} [{fmt(stats['q25'], digits)}, {fmt(stats['q75'], digits)}]"


def probe_text(probe: dict | None) -> str:
    """The discriminator probe of a run: mean over folds of the last epoch's D AUC [min, max].

    >>> probe_text({"mean": 0.6, "min": 0.55, "max": 0.7, "folds": {"0": 0.55, "1": 0.7}})
    '0.600 [0.550, 0.700]'
    >>> probe_text(None)
    'n/a'
    """
    if not probe:
        return "n/a"
    if len(probe["folds"]) == 1:
        return fmt(probe["mean"])
    return f"{fmt(probe['mean'])} [{fmt(probe['min'])}, {fmt(probe['max'])}]"


def provenance_block(evaluations) -> list:
    rows = []
    for e in evaluations:
        provenance = e.run.provenance
        versions = provenance.get("versions", {})
        folds = e.folds
        rows.append([
            e.name, e.run.config.scheme, str(e.run.config.seed), provenance.get("config_hash", "?")[:12],
            short_commits(e.git_commit), versions.get("adversarial_seg", "?"),
            str(e.run.config.data.root), f"{len(folds)} folds, {sum(len(f['val']) for f in folds)} cases",
            f"{e.train_seconds / 60:.1f} min", probe_text(e.probe), "yes" if e.complete else "NO",
        ])  # fmt: skip
    header = ["run", "scheme", "seed", "config hash", "trained by commit", "version", "dataset", "splits",
              "train time", "D AUC", "complete"]  # fmt: skip
    note = ("D AUC: the discriminator probe, the ROC AUC with which the run's discriminator tells (image, expert "
            "mask) from (image, prediction) on each fold's held-out monitor cases at the last epoch; mean over "
            "folds [min, max]. 0.5 is chance; n/a: the run has no discriminator.")  # fmt: skip
    return [("table", header, rows), ("p", note)]


def class_warnings(name: str, rows: list[dict]) -> list[str]:
    """Sentences for a class the model never predicted, or that no reference holds (one run's rows).

    >>> class_warnings("lesion", [{"class": "lesion", "pred_voxels": 0, "ref_voxels": 5}])
    ["class 'lesion' was never predicted in any of 1 cases (its reference holds voxels in 1): the model did not learn it"]
    """
    rows = [r for r in rows if r["class"] == name]
    predicted = sum(int(r["pred_voxels"]) > 0 for r in rows)
    present = sum(int(r["ref_voxels"]) > 0 for r in rows)
    found = []
    if rows and not present:
        found.append(
            f"class '{name}' is absent from every reference of the {len(rows)} cases: nothing to learn or score"
        )
    elif rows and not predicted:
        found.append(
            f"class '{name}' was never predicted in any of {len(rows)} cases (its reference holds voxels in "
            f"{present}): the model did not learn it"
        )
    return found


def one_structure_per_case(rows: list[dict]) -> bool:
    """True when every non-empty reference of a class is one connected component (an organ such as
    the gland), where "lesion" detection would be the wrong word."""
    counted = [int(r["ref_lesions"]) for r in rows if "ref_lesions" in r and int(r["ref_voxels"]) > 0]
    return bool(counted) and all(n == 1 for n in counted)


def components_text(lesions: dict, organ: bool, lesion_overlap: float) -> str:
    """The connected-component paragraph: lesion wording, or structure wording for an organ."""
    if organ:
        return (
            f"Connected components: the reference is one structure in every case; the prediction overlaps at "
            f"least {lesion_overlap:.0%} of it in {lesions['detected_lesions']} of {lesions['reference_lesions']} "
            f"cases, and has {fmt(lesions['false_positive_lesions_per_case'], 2)} extra components per case "
            "that lie mostly outside it (speckle or fragments; keep-largest-component removes them)."
        )
    return (
        f"Lesions (connected components; detected when the prediction covers at least {lesion_overlap:.0%} of "
        f"a reference lesion, a predicted lesion is false when less than {lesion_overlap:.0%} of it lies in reference "
        f"lesions): {lesions['detected_lesions']} of {lesions['reference_lesions']} detected "
        f"(sensitivity {fmt(lesions['detection_sensitivity'])}), {fmt(lesions['false_positive_lesions_per_case'], 2)} "
        "false-positive lesions per case."
    )


def postprocessing_text(e) -> str:
    """What keep-largest-component does to this run's predictions in seg-predict, with its evidence."""
    decisions = (e.run.postprocessing or {}).get("keep_largest_component")
    if not decisions:
        return ("Post-processing: none decided (not every fold had finished when the run was assembled); "
                "seg-predict applies none.")  # fmt: skip
    on = [name for name, enabled in decisions.items() if enabled]
    off = [name for name, enabled in decisions.items() if not enabled]
    return (
        "Post-processing, decided on the pooled cross-validation predictions and frozen: keep-largest-component is "
        + (f"on for {', '.join(on)}" if on else "off for every class")
        + (f" and off for {', '.join(off)}" if on and off else "")
        + ". seg-predict applies it to new images; the numbers in this report are those of the raw predictions "
        "(report/postprocessing.json holds the evidence)."
    )


def run_blocks(e, lesion_overlap: float) -> list:
    """Everything about one run: statistics per class, lesions, empty references, pictures."""
    blocks: list = [("h", 2, f"Run {e.name}")]
    if e.missing:
        blocks.append(("p", "INCOMPLETE. Missing: " + "; ".join(e.missing) + ". The numbers below cover what exists."))
    summary = e.summary
    label_set = e.run.plan.labels
    warnings = [w for cls in summary for w in class_warnings(cls, e.rows)]
    if warnings:
        blocks.append(("p", "WARNING: " + " ".join(w[0].upper() + w[1:] + "." for w in warnings)))
    blocks.append(("p", postprocessing_text(e)))
    for cls, s in summary.items():
        present = [m for m in TABLE_METRICS if m in s["overall"]]
        blocks.append(("h", 3, f"{e.name}: {cls}"))
        rows = [[f"fold {fold}", str(stats[present[0]]["n"] + stats[present[0]]["n_undefined"]),
                 *[mean_std(stats[m]) for m in present]] for fold, stats in s["fold_statistics"].items()]  # fmt: skip
        rows.append(["overall", str(s["n_cases"]), *[mean_std(s["overall"][m]) for m in present]])
        rows.append(["overall median [IQR]", str(s["n_cases"]), *[median_iqr(s["overall"][m]) for m in present]])
        blocks.append(("table", ["", "cases", *present], rows))
        lesions = s["lesions"]
        empty = s["n_empty_reference"]
        organ = one_structure_per_case([r for r in e.rows if r["class"] == cls])
        blocks.append(("p", (
            components_text(lesions, organ, lesion_overlap)
            + f" Cases with an empty reference: {empty}"
            + (f" (false-positive case rate {fmt(s['false_positive_case_rate'])}, mean false-positive voxels "
               f"{fmt(s['mean_false_positive_voxels_on_empty'], 1)}); DSC, IoU, sensitivity and HD95 are undefined "
               "there and left out of their statistics." if empty else ".")
            + " HD95 uses each case's voxel spacing (for PNG / JPG / BMP images, whose spacing is 1, hd95_mm is in "
              "pixels); an empty prediction of a non-empty reference scores the image diagonal."
        )))  # fmt: skip
        picture = eval_figures.worst_cases(e, cls, label_set.regions[cls])
        if picture:
            blocks.append(
                ("image", f"{e.name}_{cls}_worst.png", picture, f"{e.name}: the three lowest-DSC {cls} cases")
            )
    for fold in range(len(e.folds)):
        curves = eval_figures.training_curves(e.run.run_dir, fold)
        if curves:
            blocks.append(
                ("image", f"{e.name}_fold{fold}_curves.png", curves, f"{e.name} fold {fold}: training curves")
            )
    return blocks


def paired_rows(rows: list[dict], name_key: str = "run") -> list[list[str]]:
    return [[r[name_key], r["class"], r["metric"], str(r["n_pairs"]), fmt(r["mean_difference"], 4),
             fmt(r["median_difference"], 4), format_p(r["p_value"]), format_p(r["p_holm"])] for r in rows]  # fmt: skip


PAIRED_HEADER = ["class", "metric", "pairs", "mean difference", "median difference", "p", "p (Holm)"]


def comparison_blocks(evaluations, comparison: list[dict], seed_spread: dict, scheme_comparison=()) -> list:
    """Kohl-style table (runs x classes x DSC / sensitivity / specificity), p-values, seeds."""
    names = [e.name for e in evaluations]
    summaries = [e.summary for e in evaluations]
    classes = list(summaries[0])
    header = ["run"] + [f"{cls} {m}" for cls in classes for m in KOHL_METRICS]
    rows = [[name] + [mean_std(s.get(cls, {}).get("overall", {}).get(m)) for cls in classes for m in KOHL_METRICS]
            for name, s in zip(names, summaries)]  # fmt: skip
    blocks: list = [("h", 2, "Comparison"), ("p", "Mean ± sample std over cases, each scored once in its validation fold."),
                    ("table", header, rows)]  # fmt: skip
    if seed_spread:
        spread_rows = [[scheme, str(len(block["runs"])), *[
            f"{fmt(block[cls][m]['mean'])} (seed sd {fmt(block[cls][m]['seed_std'])})" for cls in classes for m in KOHL_METRICS
        ]] for scheme, block in seed_spread.items()]  # fmt: skip
        blocks += [("p", "Per scheme over seeds: mean of the runs' means, and the seed-to-seed standard deviation "
                    "of those means (how much of a scheme difference one seed's noise could explain)."),
                   ("table", ["scheme", "seeds"] + header[1:], spread_rows)]  # fmt: skip
    if comparison:
        blocks += [
            ("p", f"Paired per case against {names[0]}: Wilcoxon signed-rank test (two-sided, SciPy zero_method="
                  f"'{ZERO_METHOD}': zero differences dropped), p-values Holm-corrected across the metrics of "
                  "each run and class. Difference = run - first run."),
            ("table", ["run", *PAIRED_HEADER], paired_rows(comparison)),
        ]  # fmt: skip
    if scheme_comparison:
        reference = scheme_comparison[0]
        blocks += [
            ("p", f"Schemes with seeds averaged: each case's value is the mean over a scheme's seeds, then the "
                  f"schemes are paired per case against {evaluations[0].run.config.scheme} "
                  f"({reference['reference_seeds']} seeds), with the same test and correction."),
            ("table", ["scheme", "seeds", *PAIRED_HEADER],
             [[r["run"], str(r["seeds"]), *paired_rows([r])[0][1:]] for r in scheme_comparison]),
        ]  # fmt: skip
    for cls in classes:
        blocks.append(("image", f"distributions_{cls}.png", eval_figures.metric_distributions(evaluations, cls),
                       f"{cls}: per-case metrics, one box per run"))  # fmt: skip
    return blocks


def build_blocks(evaluations, comparison, seed_spread, lesion_overlap: float, scheme_comparison=()) -> list:
    title = evaluations[0].name if len(evaluations) == 1 else ", ".join(e.name for e in evaluations)
    blocks: list = [("h", 1, f"Evaluation: {title}"),
                    ("p", f"adversarial_seg {__version__}, seg-eval: every metric recomputed from the saved "
                          "cross-validation predictions. Tables show mean ± sample standard deviation over cases; "
                          "n/a marks a value that is undefined: no case of that fold has the class in its reference "
                          "(DSC, IoU, sensitivity, HD95 need one), or a single case leaves no spread.")]  # fmt: skip
    blocks += provenance_block(evaluations)
    if len(evaluations) > 1:
        blocks += comparison_blocks(evaluations, comparison, seed_spread, scheme_comparison)
    else:
        blocks += [("image", f"distributions_{cls}.png", eval_figures.metric_distributions(evaluations, cls),
                    f"{cls}: per-case metrics") for cls in evaluations[0].summary]  # fmt: skip
    for e in evaluations:
        blocks += run_blocks(e, lesion_overlap)
    return blocks


def render_markdown(blocks: list, figure_dir: str = "figures") -> tuple[str, dict[str, bytes]]:
    """(Markdown text, {relative path: PNG bytes}) for the figure files it links."""
    lines, files = [], {}
    for block in blocks:
        kind = block[0]
        if kind == "h":
            lines += ["#" * block[1] + " " + block[2], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "table":
            _, header, rows = block
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
            lines.append("")
        elif kind == "image":
            _, name, data, caption = block
            name = figure_file_name(name)
            files[f"{figure_dir}/{name}"] = data
            lines += [f"![{caption}]({figure_dir}/{name})", ""]
    return "\n".join(lines), files


def figure_file_name(name: str) -> str:
    """A figure's file name without folders: a run named by its path (runs from different
    folders) must not become subfolders of figures/.

    >>> figure_file_name("/root/studies/ph2_adv_onehot_fold0_curves.png")
    'root_studies_ph2_adv_onehot_fold0_curves.png'
    """
    return re.sub(r"[^\w.-]+", "_", name).strip("_")


def render_html(blocks: list) -> str:
    """One self-contained HTML page: styles inline, figures as data URIs."""
    body = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            body.append(f"<h{block[1]}>{html.escape(block[2])}</h{block[1]}>")
        elif kind == "p":
            body.append(f"<p>{html.escape(block[1])}</p>")
        elif kind == "table":
            _, header, rows = block
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
            cells = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
        elif kind == "image":
            _, _, data, caption = block
            encoded = base64.b64encode(data).decode()
            body.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{encoded}">'
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>")  # fmt: skip
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0;font-size:0.85em}"
             "td,th{border:1px solid #bbb;padding:3px 6px;text-align:right}th{background:#eee}"
             "img{max-width:100%}figcaption{font-size:0.8em;color:#555}")  # fmt: skip
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>seg-eval report</title>'
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")  # fmt: skip


def write_report(blocks: list, output: Path, formats: set[str], atomic_write) -> list[Path]:
    """Write report.md (+ figures/) and report.html as asked; returns the paths written."""
    written = []
    if "md" in formats:
        text, files = render_markdown(blocks)
        for relative, data in files.items():
            atomic_write(output / relative, data)
        atomic_write(output / "report.md", text.encode())
        written.append(output / "report.md")
    if "html" in formats:
        atomic_write(output / "report.html", render_html(blocks).encode())
        written.append(output / "report.html")
    return written


# --------------------------------------------------------------------------- one call: evaluate, compare, write


@dataclass
class EvaluationReport:
    """What ``evaluate_runs`` computed and wrote."""

    evaluations: list
    output: Path
    written: list[Path]
    comparison: list[dict]

    @property
    def complete(self) -> bool:
        return all(e.complete for e in self.evaluations)

    def headline(self, metric: str = "dsc") -> list[str]:
        """One line per class: each run's mean ± std of ``metric`` and, for the runs after the first,
        the Holm-corrected p of the paired test against it (what a comparison found, in brief)."""
        lines = []
        for cls in self.evaluations[0].summary:
            parts = []
            for e in self.evaluations:
                text = f"{e.name} {mean_std(e.summary.get(cls, {}).get('overall', {}).get(metric))}"
                test = next((r for r in self.comparison if r["run"] == e.name and r["class"] == cls
                             and r["metric"] == metric), None)  # fmt: skip
                parts.append(text + (f" (p {format_p(test['p_holm'])})" if test else ""))
            lines.append(f"{cls} {metric}: " + ", ".join(parts))
        return lines

    def warnings(self) -> list[str]:
        """Classes never predicted or never present, per run."""
        return [f"{e.name}: {w}" for e in self.evaluations for cls in e.summary for w in class_warnings(cls, e.rows)]


def expand_runs(paths: list[Path]) -> list[Path]:
    """A folder of runs (a multi-scheme or multi-seed call's output) stands for the runs in it,
    ordered ce, adversarial, hybrid (then other schemes) and by seed, so the baseline comes first
    and is the reference of the paired tests. Runs named one by one keep the order given.
    RunStateError names a run's config.yaml that cannot be read."""

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


def evaluate_runs(
    paths: list[Path], output: Path | None, formats: set[str], lesion_overlap: float = 0.1
) -> EvaluationReport:
    """seg-eval's work: score every run's saved predictions, compare several runs on their shared
    splits, and write the report (``RUN/report/`` for one run, ``<parent>/comparison/`` for several).
    InputError (nothing written) when a run cannot be read or the runs are not comparable."""
    from adversarial_seg.seg.compare import COMPARED_METRICS, compare_schemes, compare_to_first
    from adversarial_seg.seg.evaluate import check_comparable, evaluate_run, seed_spread

    runs = expand_runs(paths)
    names = [p.name if len(runs) == 1 or p.parent == runs[0].parent else str(p) for p in runs]
    evaluations = [evaluate_run(path, lesion_overlap, name) for path, name in zip(runs, names)]
    if len(evaluations) > 1:
        check_comparable(evaluations)
    output = output or (runs[0] / "report" if len(runs) == 1 else runs[0].parent / "comparison")
    check_output_folder(output)
    comparison = compare_to_first([e.values() for e in evaluations], names, COMPARED_METRICS) if len(runs) > 1 else []
    spread = seed_spread(evaluations)
    schemes = compare_schemes([e.values() for e in evaluations], [e.run.config.scheme for e in evaluations],
                              COMPARED_METRICS)  # fmt: skip
    blocks = build_blocks(evaluations, comparison, spread, lesion_overlap, schemes)
    # calibration and case uncertainty from the saved probabilities (seg.calibration_report)
    calibration = {e.name: calibration_report.evaluate_calibration(e) for e in evaluations}
    blocks += calibration_report.calibration_blocks(evaluations, calibration)
    written = write_report(blocks, output, formats, atomic_write_bytes)
    written += write_tables(evaluations, formats, output, lesion_overlap, comparison, spread, calibration, schemes)
    written += calibration_report.freeze_missing(evaluations, calibration, output)
    return EvaluationReport(evaluations, output, written, comparison)


def print_evaluations(report: EvaluationReport) -> None:
    """Each run's table on stdout; warnings and missing items on stderr."""
    from adversarial_seg.seg.summary import format_table

    for e in report.evaluations:
        print(f"\n{e.name}" + ("" if e.complete else f" (INCOMPLETE: {len(e.missing)} missing)"))
        print(format_table(e.summary))
    print("\nwrote " + ", ".join(str(p) for p in report.written))
    for warning in report.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    for e in report.evaluations:
        for item in e.missing:
            print(f"error: {e.name}: {item}", file=sys.stderr)


def write_tables(
    evaluations,
    formats: set[str],
    output: Path,
    lesion_overlap: float,
    comparison,
    spread,
    calibration=None,
    scheme_comparison=(),
) -> list[Path]:
    """``evaluation.json`` (every statistic, the comparisons, the seed spread, calibration) and
    ``evaluation_cases.csv``."""
    from adversarial_seg.seg.summary import write_cases_csv, write_json

    written = []
    if "json" in formats:
        body = {"runs": {e.name: {"run_dir": str(e.run.run_dir), "scheme": e.run.config.scheme,
                                  "seed": e.run.config.seed, "config_hash": e.run.provenance.get("config_hash"),
                                  "git_commit": e.git_commit,
                                  "dataset": str(e.run.config.data.root), "n_folds": len(e.folds),
                                  "train_seconds": round(e.train_seconds, 1), "complete": e.complete,
                                  "discriminator_probe": e.probe,
                                  "missing": e.missing, "classes": e.summary} for e in evaluations},
                "lesion_overlap": lesion_overlap, "comparison": comparison, "seed_spread": spread,
                "scheme_comparison": list(scheme_comparison)}  # fmt: skip
        if calibration is not None:
            body["calibration"] = calibration
        write_json(body, output / "evaluation.json")
        written.append(output / "evaluation.json")
    if "csv" in formats:
        rows = [{"run": e.name, **r} for e in evaluations for r in e.rows]
        write_cases_csv(rows, output / "evaluation_cases.csv")
        written.append(output / "evaluation_cases.csv")
    return written
