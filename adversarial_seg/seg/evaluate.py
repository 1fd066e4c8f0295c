"""``seg-eval``'s numbers: every metric recomputed from a run's saved predictions.

For each fold of ``splits.json`` and each of its validation cases, the label map the run saved in
``fold_K/predictions/`` is scored against the reference label map in the dataset named by the
run's ``config.yaml`` (``seg.metrics.case_rows``, lesion detection included). Nothing is
retrained and nothing is taken from the run's own report. A fold that has not finished or a case
without a prediction is listed in ``missing``; the evaluation covers what exists and says it is
incomplete.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from adversarial_seg.data.io import read_label
from adversarial_seg.data.layouts import discover_cases
from adversarial_seg.seg.run import FOLD_DONE, RunStateError, TrainedRun, case_file, fold_done, open_run, trained_by
from adversarial_seg.seg.scoring import ReferenceMismatch, score_prediction
from adversarial_seg.seg.splits import SplitsError, read_splits, scored_folds
from adversarial_seg.seg.summary import SUMMARY_METRICS, describe, summarise

LESION_COLUMNS = ("ref_lesions", "detected_lesions", "pred_lesions", "false_positive_lesions")


@dataclass
class RunEvaluation:
    """One run's recomputed rows and statistics."""

    run: TrainedRun
    name: str
    folds: list[dict]
    records: dict = field(default_factory=dict)  # case -> CaseRecord (image and reference paths)
    prediction_paths: dict[str, Path] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    done: list[dict] = field(default_factory=list)  # the finished folds' fold_done.json
    probe: dict | None = None  # last-epoch discriminator AUC per fold (``last_epoch_probe``); None without D

    @property
    def train_seconds(self) -> float:
        return sum(d.get("seconds", 0.0) for d in self.done)

    @property
    def git_commit(self) -> str:
        """The commit(s) whose code trained the finished folds."""
        return trained_by(self.done)

    @property
    def complete(self) -> bool:
        return not self.missing

    @cached_property
    def summary(self) -> dict:
        """Per class: ``summarise`` (overall and per-fold means), per-fold full statistics, lesions."""
        classes = summarise(self.rows)
        for name, block in classes.items():
            class_rows = [r for r in self.rows if r["class"] == name]
            present = [m for m in SUMMARY_METRICS if m in class_rows[0]]
            block["fold_statistics"] = {
                str(fold): {m: describe(r[m] for r in class_rows if r["fold"] == fold) for m in present}
                for fold in sorted({r["fold"] for r in class_rows})
            }
            block["lesions"] = lesion_summary(class_rows)
        return classes

    def values(self) -> dict[str, dict[str, dict[str, float]]]:
        """class -> metric -> case -> value (the pairs of a comparison)."""
        out: dict = {}
        for row in self.rows:
            for metric in (*SUMMARY_METRICS, "false_positive_lesions"):
                if metric in row:
                    out.setdefault(row["class"], {}).setdefault(metric, {})[row["case"]] = float(row[metric])
        return out


def lesion_summary(rows: list[dict]) -> dict:
    """Pooled lesion-level detection sensitivity and false-positive lesions per case."""
    reference = sum(int(r["ref_lesions"]) for r in rows)
    detected = sum(int(r["detected_lesions"]) for r in rows)
    return {
        "reference_lesions": reference,
        "detected_lesions": detected,
        "detection_sensitivity": detected / reference if reference else float("nan"),
        "false_positive_lesions_per_case": float(np.mean([int(r["false_positive_lesions"]) for r in rows])),
        "cases": len(rows),
    }


def last_epoch_probe(run_dir: Path, folds: list[int]) -> dict | None:
    """The discriminator probe of each fold's last epoch (``d_auc`` in ``fold_K/log.csv``), with its
    mean, min and max over folds: ``{"folds": {"0": 0.61, ...}, "mean", "min", "max", "epoch"}``.
    None when no fold logged one (a run without a discriminator, or trained before the probe)."""
    values, epochs = {}, set()
    for fold in folds:
        path = Path(run_dir) / f"fold_{fold}" / "log.csv"
        try:
            rows = list(csv.DictReader(path.read_text().splitlines())) if path.is_file() else []
        except (OSError, UnicodeDecodeError, csv.Error):  # the log is a diagnostic: an unreadable one is left out
            rows = []
        if rows and rows[-1].get("d_auc") not in (None, ""):
            try:
                value = float(rows[-1]["d_auc"])
            except ValueError:
                continue
            if math.isfinite(value):
                values[str(fold)] = value
                epochs.add(rows[-1].get("epoch"))
    if not values:
        return None
    numbers = list(values.values())
    epoch = epochs.pop() if len(epochs) == 1 else None
    return {"folds": values, "mean": float(np.mean(numbers)), "min": min(numbers), "max": max(numbers),
            "epoch": int(epoch) if epoch and epoch.isdigit() else None}  # fmt: skip


def read_run_splits(path: Path) -> list[dict]:
    """A run's ``splits.json``: folds numbered 0, 1, ... with lists of case names; SplitsError naming it."""
    if not path.is_file():
        raise RunStateError(f"{path.parent} has no splits.json; it is not a finished seg-train run")
    folds = read_splits(path)
    for number, split in enumerate(folds):
        names = all(isinstance(x, list) and all(isinstance(c, str) for c in x) for x in (split["train"], split["val"]))
        if split.get("fold") != number or not names:
            raise SplitsError(
                f'{path}: fold entry {number} must be {{"fold": {number}, "train": [cases], "val": [cases]}}; '
                "restore the file from a copy of the run"
            )
    return folds


def _prediction_problem(path: Path, exc: BaseException) -> str:
    """Why a saved prediction cannot be scored, with the file and the fix (one line of ``missing``)."""
    text = str(exc).strip().splitlines()
    reason = f"{exc.__class__.__name__}: {text[0]}" if text else exc.__class__.__name__
    return (
        f"prediction {path} cannot be read ({reason}); it is truncated or corrupt: delete the fold's "
        "fold_done.json and run seg-train --resume to predict the fold again"
    )


def evaluate_run(run_dir: Path, lesion_overlap: float = 0.1, name: str | None = None) -> RunEvaluation:
    """Score every saved validation prediction of a run; RunStateError when it cannot be read.

    A prediction or reference that cannot be read is a missing item (named), not an error: the
    rest is still evaluated.
    """
    run = open_run(run_dir)
    folds = read_run_splits(run.run_dir / "splits.json")
    data = run.config.data
    if data.root is None or not Path(data.root).is_dir():
        raise RunStateError(
            f"the run's dataset {data.root} is not there; seg-eval reads the reference labels from it "
            "(move it back, or edit data.root in the run's config.yaml)"
        )
    domain = run.config.domain
    records = {r.case_id: r for r in discover_cases(data, domain.column if domain else None)}
    folds = scored_folds(run.config, folds, records)  # cross-site runs: the target site's cases
    evaluation = RunEvaluation(run, name or run.run_dir.name, folds, records)
    for split in folds:
        fold_dir = run.run_dir / f"fold_{split['fold']}"
        done = fold_done(fold_dir)
        if done is None:
            evaluation.missing.append(f"fold {split['fold']} has not finished ({fold_dir / FOLD_DONE} is missing)")
            continue
        evaluation.done.append(done)
        for case in split["val"]:
            path = case_file(fold_dir / "predictions", case)
            record = records.get(case)
            if path is None or record is None:
                where = (
                    f"no prediction in {fold_dir / 'predictions'}"
                    if path is None
                    else f"not in the dataset {data.root}"
                )
                evaluation.missing.append(f"case {case} (fold {split['fold']}): {where}")
                continue
            try:
                prediction, props = read_label(path)
            except Exception as exc:  # any reader's error (nibabel, SimpleITK, Pillow): a damaged file
                evaluation.missing.append(f"case {case} (fold {split['fold']}): {_prediction_problem(path, exc)}")
                continue
            try:
                evaluation.rows += score_prediction(
                    prediction, props, record.label_path, run.plan.labels, run.config.metrics.specificity_region,
                    case=case, patient=record.patient, fold=split["fold"], lesion_overlap=lesion_overlap,
                )  # fmt: skip
            except ReferenceMismatch as exc:
                evaluation.missing.append(f"case {case} (fold {split['fold']}): {exc}")
                continue
            evaluation.prediction_paths[case] = path
    evaluation.probe = last_epoch_probe(run.run_dir, [int(d["fold"]) for d in evaluation.done if "fold" in d])
    return evaluation


def check_comparable(evaluations: list[RunEvaluation]) -> None:
    """Runs compared case by case must share the splits: RunStateError naming the first difference."""
    first = evaluations[0]
    reference = {f["fold"]: sorted(f["val"]) for f in first.folds}
    for other in evaluations[1:]:
        folds = {f["fold"]: sorted(f["val"]) for f in other.folds}
        if set(folds) != set(reference):
            raise RunStateError(
                f"runs {first.name} and {other.name} have different folds ({sorted(reference)} vs {sorted(folds)}); "
                "compare runs trained on one splits.json (cv.splits_file)"
            )
        for fold, cases in reference.items():
            if folds[fold] != cases:
                raise RunStateError(
                    f"runs {first.name} and {other.name} used different splits (fold {fold} has other validation "
                    "cases); compare runs trained on one splits.json (cv.splits_file)"
                )


def seed_spread(evaluations: list[RunEvaluation], metrics=("dsc", "sensitivity", "specificity")) -> dict:
    """Schemes run with several seeds: mean of the runs' means and the seed-to-seed std of them."""
    by_scheme: dict[str, list[RunEvaluation]] = {}
    for e in evaluations:
        by_scheme.setdefault(e.run.config.scheme, []).append(e)
    spread = {}
    for scheme, runs in by_scheme.items():
        if len({r.run.config.seed for r in runs}) < 2:
            continue
        summaries = [r.summary for r in runs]
        block: dict = {"runs": [r.name for r in runs]}
        for cls in summaries[0]:
            block[cls] = {}
            for metric in metrics:
                means = [
                    s[cls]["overall"][metric]["mean"] for s in summaries if metric in s.get(cls, {}).get("overall", {})
                ]
                block[cls][metric] = {
                    "mean": float(np.mean(means)) if means else float("nan"),
                    "seed_std": float(np.std(means, ddof=1)) if len(means) > 1 else float("nan"),
                }
        spread[scheme] = block
    return spread
