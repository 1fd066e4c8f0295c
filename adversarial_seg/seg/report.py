"""A run's report from its finished folds: ``report/cases.csv``, ``report/summary.json`` and, once
every fold has finished, the frozen post-processing decision (``report/postprocessing.json``) and the
frozen temperatures (``report/calibration.json``, ``seg.calibration_run``)."""

from __future__ import annotations

import json

from adversarial_seg.data.io import read_label
from adversarial_seg.data.labels import LabelSet
from adversarial_seg.data.layouts import CaseRecord
from adversarial_seg.seg.calibration_run import (
    CALIBRATION,
    fit_run_calibration,
    read_saved_probabilities,
    write_calibration,
)
from adversarial_seg.seg.postprocess import decide_postprocessing
from adversarial_seg.seg.run import POSTPROCESSING, RunSpec, RunStateError, case_file, fold_done, trained_by
from adversarial_seg.seg.splits import scored_folds
from adversarial_seg.seg.summary import read_cases_csv, summarise, write_cases_csv, write_json


def pooled_predictions(spec: RunSpec, folds: list[dict], records: dict[str, CaseRecord], label_set: LabelSet):
    """(prediction, reference) label-value maps of every cross-validation case, one at a time."""
    for split in folds:
        predictions = spec.run_dir / f"fold_{split['fold']}" / "predictions"
        for case in split["val"]:
            path = case_file(predictions, case)
            if path is None:
                raise RunStateError(f"{predictions} has no prediction for case {case}; delete the fold's "
                                    "fold_done.json and run seg-train --resume to predict it again")  # fmt: skip
            reference, _ = read_label(records[case].label_path, label_set.mask_threshold, label_set.foreground_value)
            yield read_label(path)[0], reference


def freeze_calibration(spec: RunSpec, folds: list[dict], records: dict[str, CaseRecord], label_set: LabelSet) -> None:
    """Temperatures fitted on every fold's saved probabilities, frozen in ``report/calibration.json``."""
    region = spec.config.metrics.specificity_region
    labels = {case: record.label_path for case, record in records.items()}
    saved = read_saved_probabilities(spec.run_dir, folds, labels, label_set, region)
    body = fit_run_calibration(saved, label_set, region)
    if body is not None:
        write_calibration(body, spec.run_dir / CALIBRATION)


def assemble_report(
    spec: RunSpec, folds: list[dict], records: dict[str, CaseRecord], label_set: LabelSet
) -> dict | None:
    """``report/cases.csv`` and ``report/summary.json`` from every finished fold; once all folds
    have finished, the post-processing decisions (``report/postprocessing.json``, then frozen)."""
    folds = scored_folds(spec.config, folds, records)  # cross-site runs score the target site only
    rows, finished, missing, done = [], [], [], []
    for fold in range(len(folds)):
        fold_dir = spec.run_dir / f"fold_{fold}"
        record = fold_done(fold_dir)
        if record is not None:
            rows += read_cases_csv(fold_dir / "cases.csv")
            done.append(record)
            finished.append(fold)
        else:
            missing.append(fold)
    if not rows:
        return None
    for row in rows:
        row["fold"] = int(row["fold"])
    report_dir = spec.run_dir / "report"
    write_cases_csv(rows, report_dir / "cases.csv")
    summary = {
        "run": spec.name,
        "scheme": spec.config.scheme,
        "seed": spec.config.seed,
        "weights": dict(zip(("w_sup", "w_adv"), spec.config.loss_weights())),
        "dataset": str(spec.config.data.root),
        "config_hash": spec.config.digest(),
        "git_commit": trained_by(done),  # the code that trained the folds, not the one assembling this
        "folds_finished": finished,
        "folds_missing": missing,
        "complete": not missing,
        "n_cases": len({r["case"] for r in rows}),
        "train_seconds": round(sum(d.get("seconds", 0.0) for d in done), 1),
        "classes": summarise(rows),
    }
    post_path = spec.run_dir / POSTPROCESSING
    if not missing and not post_path.is_file():
        write_json(
            decide_postprocessing(lambda: pooled_predictions(spec, folds, records, label_set), label_set), post_path
        )
    if post_path.is_file():
        summary["postprocessing"] = json.loads(post_path.read_text())
    if not missing and not (spec.run_dir / CALIBRATION).is_file():
        freeze_calibration(spec, folds, records, label_set)
    write_json(summary, report_dir / "summary.json")
    return summary
