"""A run's calibration and case uncertainty from its saved cross-validation probabilities.

``fold_K/predictions/<case>.npz`` (float16 (K, *native spatial), key ``probabilities``) of every
validation case is read once: voxels are sampled for calibration (``calibration.sample_voxels``,
all voxels and those inside the ``metrics.specificity_region`` reference region) and the case's
uncertainty score is computed on every voxel (``uncertainty.case_score``; one model per case in
cross-validation, so entropy only). ``report/calibration.json`` holds the result with the
temperatures fitted on all folds, frozen for ``seg-predict --probabilities``; seg-train writes it
once every fold has finished (beside postprocessing.json), seg-eval when it is missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adversarial_seg.data.io import read_label
from adversarial_seg.data.labels import LabelSet
from adversarial_seg.seg.calibration import (
    DEFAULT_SAMPLES,
    VoxelSample,
    calibrate_cross_validation,
    fill_outside_view,
    sample_voxels,
)
from adversarial_seg.seg.uncertainty import case_score

CALIBRATION = Path("report") / "calibration.json"
CALIBRATION_FIX = "delete it and run seg-eval on the run (without --output) to fit it again"


@dataclass
class SavedProbabilities:
    """What the saved probabilities of a run gave: samples per stratum, case scores, problems."""

    strata: dict[str, dict[str, VoxelSample]] = field(default_factory=dict)
    folds: dict[str, int] = field(default_factory=dict)
    scores: dict[str, dict] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def read_saved_probabilities(
    run_dir: Path, splits: list[dict], label_paths: dict[str, Path], label_set: LabelSet,
    region: str | None, samples: int = DEFAULT_SAMPLES, seed: int = 0,
) -> SavedProbabilities:  # fmt: skip
    """Sample every validation case with a readable ``.npz`` and reference (``label_paths``:
    case -> reference file). A missing, unreadable or misshapen file is named in ``missing``."""
    out = SavedProbabilities(strata={"overall": {}, **({"region": {}} if region else {})})
    for split in splits:
        folder = Path(run_dir) / f"fold_{split['fold']}" / "predictions"
        for case in split["val"]:
            path = folder / f"{case}.npz"
            if not path.is_file() or case not in label_paths:
                continue  # fold not finished or case not in the dataset: seg-eval already names it
            try:
                with np.load(path) as archive:
                    probabilities = archive["probabilities"].astype(np.float32)
                reference, _ = read_label(label_paths[case], label_set.mask_threshold, label_set.foreground_value)
            except Exception as exc:  # any reader's error: a truncated or foreign file
                out.missing.append(f"case {case}: probabilities {path} cannot be read ({exc.__class__.__name__})")
                continue
            if probabilities.shape != (label_set.num_classes, *reference.shape):
                out.missing.append(
                    f"case {case}: probabilities {path} have shape {probabilities.shape}, expected "
                    f"{(label_set.num_classes, *reference.shape)}; run seg-train --resume after deleting the fold's "
                    "fold_done.json to predict it again"
                )
                continue
            probabilities = fill_outside_view(probabilities)  # zeros beyond a data.size crop: background
            target = label_set.to_class_indices(reference)
            out.strata["overall"][case] = sample_voxels(probabilities, target, None, case, samples, seed)
            if region:
                within = np.isin(reference, label_set.regions[region])
                out.strata["region"][case] = sample_voxels(probabilities, target, within, case, samples, seed)
            out.folds[case] = int(split["fold"])
            out.scores[case] = case_score(probabilities)
    return out


def fit_run_calibration(saved: SavedProbabilities, label_set: LabelSet, region: str | None) -> dict | None:
    """``calibrate_cross_validation`` on a run's samples plus the stratum's region name; None without cases."""
    if not saved.folds:
        return None
    regions = label_set.region_class_indices()
    body = calibrate_cross_validation(saved.strata, saved.folds, label_set.names, regions)
    body["region"] = region
    return body


def read_calibration(path: Path, class_names: tuple[str, ...]) -> dict:
    """``report/calibration.json``; RunStateError naming it unless ``temperatures`` maps every
    class of the run to a positive number."""
    from adversarial_seg.seg.run import RunStateError, read_run_json

    body = read_run_json(path)
    temperatures = body.get("temperatures")
    if (
        not isinstance(temperatures, dict)
        or set(temperatures) != set(class_names)
        or not all(isinstance(t, (int, float)) and math.isfinite(t) and t > 0 for t in temperatures.values())
    ):
        raise RunStateError(
            f"{path}: 'temperatures' must map every class of the run ({', '.join(class_names)}) to a positive "
            f"number; {CALIBRATION_FIX}"
        )
    return body


def temperature_vector(calibration: dict, class_names: tuple[str, ...]) -> list[float]:
    """The frozen temperatures in class-index order."""
    return [float(calibration["temperatures"][name]) for name in class_names]


def write_calibration(body: dict, path: Path) -> None:
    """``body`` as JSON (NaN as null), atomically."""
    from adversarial_seg.seg.summary import write_json

    write_json(body, path)
