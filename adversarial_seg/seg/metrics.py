"""Per-case, per-class segmentation metrics from confusion counts (DESIGN.md, "Statistics").

Pure functions in nnU-Net's style: masks -> counts (tp, fp, fn, tn) -> metrics. DSC,
sensitivity and specificity all come from the same counts.

Rules for empty masks (stated once, used everywhere):
- reference empty: DSC, IoU, sensitivity and HD95 are undefined (NaN) and left out of means;
  the case's false-positive voxels (``pred_voxels``) are reported instead.
- reference non-empty, prediction empty: DSC = IoU = sensitivity = 0 and HD95 is the image
  diagonal in mm, the largest distance the image can hold.
- specificity is NaN only when the image has no reference-negative voxel.

Example:
    >>> import numpy as np
    >>> ref = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    >>> pred = np.array([1, 1, 0, 1, 0, 0, 0, 0], bool)
    >>> c = confusion_counts(pred, ref)
    >>> (c.tp, c.fp, c.fn, c.tn), round(dsc(c), 4), round(specificity(c), 4)
    ((2, 1, 1, 4), 0.6667, 0.8)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from monai.metrics import compute_hausdorff_distance
from scipy import ndimage

CASE_COLUMNS = [
    "case", "patient", "fold", "class", "dsc", "iou", "sensitivity", "specificity", "hd95_mm",
    "tp", "fp", "fn", "tn", "ref_voxels", "pred_voxels",
]  # fmt: skip
NAN = float("nan")


@dataclass(frozen=True)
class Counts:
    tp: int
    fp: int
    fn: int
    tn: int


def confusion_counts(pred: np.ndarray, ref: np.ndarray, within: np.ndarray | None = None) -> Counts:
    """Voxel counts of boolean masks of equal shape, optionally only inside ``within``."""
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    pred, ref = pred.astype(bool), ref.astype(bool)
    if within is not None:
        pred, ref = pred[within], ref[within]
    tp = int(np.count_nonzero(pred & ref))
    fp = int(np.count_nonzero(pred & ~ref))
    fn = int(np.count_nonzero(~pred & ref))
    return Counts(tp, fp, fn, int(pred.size) - tp - fp - fn)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else NAN


def dsc(c: Counts) -> float:
    """2TP / (2TP + FP + FN); NaN when the reference is empty."""
    return _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn) if c.tp + c.fn > 0 else NAN


def iou(c: Counts) -> float:
    """TP / (TP + FP + FN); NaN when the reference is empty."""
    return _ratio(c.tp, c.tp + c.fp + c.fn) if c.tp + c.fn > 0 else NAN


def sensitivity(c: Counts) -> float:
    """TP / (TP + FN); NaN when the reference is empty."""
    return _ratio(c.tp, c.tp + c.fn)


def specificity(c: Counts) -> float:
    """TN / (TN + FP); NaN when there is no reference-negative voxel."""
    return _ratio(c.tn, c.tn + c.fp)


def hd95_mm(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]) -> float:
    """HD95 in mm: max of the two directed 95th-percentile surface distances (MONAI's definition),
    with voxel ``spacing``; the rules for empty masks are this module's.
    """
    pred, ref = pred.astype(bool), ref.astype(bool)
    if not ref.any():
        return NAN
    if not pred.any():
        return float(math.sqrt(sum((n * s) ** 2 for n, s in zip(ref.shape, spacing))))
    with warnings.catch_warnings():  # MONAI 1.5+ warns about its own internal argument
        warnings.simplefilter("ignore", FutureWarning)
        distance = compute_hausdorff_distance(
            torch.from_numpy(pred)[None, None], torch.from_numpy(ref)[None, None],
            percentile=95, spacing=[float(s) for s in spacing],
        )  # fmt: skip
    return float(distance)


def lesion_detection(pred: np.ndarray, ref: np.ndarray, min_overlap: float = 0.1) -> dict[str, int]:
    """Lesion-level counts: lesions are connected components (8-connected in 2D, 26 in 3D).

    A reference lesion is detected when the prediction covers at least ``min_overlap`` of its
    voxels; a predicted lesion is a false positive when less than ``min_overlap`` of its voxels
    lie inside reference lesions (so one huge blob over everything is not a free detection).

    Example (one lesion found, one missed, one false blob):
        >>> ref = np.array([[1, 1, 0, 0, 0, 1]], bool)
        >>> pred = np.array([[1, 0, 0, 1, 0, 0]], bool)
        >>> lesion_detection(pred, ref, 0.5)
        {'ref_lesions': 2, 'detected_lesions': 1, 'pred_lesions': 2, 'false_positive_lesions': 1}
    """
    pred, ref = pred.astype(bool), ref.astype(bool)
    structure = np.ones((3,) * pred.ndim, dtype=bool)
    ref_components, n_ref = ndimage.label(ref, structure=structure)
    pred_components, n_pred = ndimage.label(pred, structure=structure)
    ref_sizes = np.bincount(ref_components.ravel(), minlength=n_ref + 1)[1:]
    covered = np.bincount(ref_components[pred], minlength=n_ref + 1)[1:]
    pred_sizes = np.bincount(pred_components.ravel(), minlength=n_pred + 1)[1:]
    inside = np.bincount(pred_components[ref], minlength=n_pred + 1)[1:]
    return {
        "ref_lesions": int(n_ref),
        "detected_lesions": int(np.count_nonzero(covered >= min_overlap * ref_sizes)),
        "pred_lesions": int(n_pred),
        "false_positive_lesions": int(np.count_nonzero(inside < min_overlap * pred_sizes)),
    }


def case_rows(
    pred_labels: np.ndarray,
    ref_labels: np.ndarray,
    regions: dict[str, Sequence[int]],
    spacing: Sequence[float],
    case: str,
    patient: str = "",
    fold: int | str = "",
    specificity_within: Sequence[int] | None = None,
    lesion_overlap: float | None = None,
) -> list[dict]:
    """One row per region (``CASE_COLUMNS``) for a label-value map and its reference.

    ``regions`` maps a class name to the label values it unites (``gland: [1, 2]``).
    ``specificity_within``: label values of the reference defining the region inside which
    ``specificity_in_region`` is also reported (DESIGN.md, ``metrics.specificity_region``).
    ``lesion_overlap``: when set, the ``lesion_detection`` counts are added to each row.
    """
    within = np.isin(ref_labels, list(specificity_within)) if specificity_within is not None else None
    rows = []
    for name, values in regions.items():
        pred = np.isin(pred_labels, list(values))
        ref = np.isin(ref_labels, list(values))
        counts = confusion_counts(pred, ref)
        row = {
            "case": case, "patient": patient, "fold": fold, "class": name,
            "dsc": dsc(counts), "iou": iou(counts), "sensitivity": sensitivity(counts),
            "specificity": specificity(counts), "hd95_mm": hd95_mm(pred, ref, spacing),
            "tp": counts.tp, "fp": counts.fp, "fn": counts.fn, "tn": counts.tn,
            "ref_voxels": counts.tp + counts.fn, "pred_voxels": counts.tp + counts.fp,
        }  # fmt: skip
        if within is not None:
            row["specificity_in_region"] = specificity(confusion_counts(pred, ref, within))
        if lesion_overlap is not None:
            row.update(lesion_detection(pred, ref, lesion_overlap))
        rows.append(row)
    return rows
