"""Score one predicted label map against its reference file: the one way seg-train, seg-eval and
seg-predict turn a prediction into ``cases.csv`` rows (DESIGN.md, "Statistics")."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adversarial_seg.data.io import read_label
from adversarial_seg.data.labels import LabelSet
from adversarial_seg.data.validate import geometry_mismatch
from adversarial_seg.seg.metrics import case_rows


class ReferenceMismatch(ValueError):
    """The reference label map does not lie on the prediction's grid."""


def score_prediction(
    prediction: np.ndarray,
    prediction_props: dict,
    reference_path: str | Path,
    label_set: LabelSet,
    specificity_region: str | None = None,
    *,
    case: str,
    patient: str = "",
    fold: int | str = "",
    lesion_overlap: float | None = None,
) -> list[dict]:
    """Rows (one per region of ``label_set``) for a label-value map on the grid ``prediction_props``.

    The reference is read with the dataset's mask threshold; HD95 uses its spacing (mm). A
    reference on another grid raises ``ReferenceMismatch`` naming the file; nothing is resampled.
    """
    reference, reference_props = read_label(reference_path, label_set.mask_threshold, label_set.foreground_value)
    mismatch = geometry_mismatch(prediction_props, reference_props)
    if mismatch:
        raise ReferenceMismatch(f"reference {reference_path} does not line up with the prediction ({mismatch})")
    within = label_set.regions[specificity_region] if specificity_region else None
    return case_rows(
        prediction, reference, label_set.regions, reference_props["spacing"], case=case, patient=patient,
        fold=fold, specificity_within=within, lesion_overlap=lesion_overlap,
    )  # fmt: skip
