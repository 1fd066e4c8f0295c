"""Keep-largest-connected-component per class, enabled only where cross-validation shows it helps.

The decision follows nnU-Net's rule, taken once per run on the pooled cross-validation
predictions (DESIGN.md, "Model selection") and then frozen in ``report/postprocessing.json``:
for each foreground class in turn, keep only its largest component (26-/8-connected; removed
voxels become background) and enable that when the mean DSC over the cases, of the regions the
class belongs to, rises. ``seg-predict`` applies the stored decisions.

Example (class 1 = lesion):
    >>> labels = np.array([[1, 1, 0, 1]])
    >>> keep_largest_component(labels, 1).tolist()
    [[1, 1, 0, 0]]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from scipy import ndimage

from adversarial_seg.data.labels import LabelSet
from adversarial_seg.seg.metrics import confusion_counts, dsc


def keep_largest_component(classes: np.ndarray, class_index: int) -> np.ndarray:
    """A copy of the class-index map with all but the largest component of ``class_index`` set to 0."""
    mask = classes == class_index
    components, count = ndimage.label(mask, structure=np.ones((3,) * mask.ndim, dtype=bool))
    if count <= 1:
        return classes.copy()
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    out = classes.copy()
    out[mask & (components != int(sizes.argmax()))] = 0
    return out


def apply_postprocessing(label_values: np.ndarray, label_set: LabelSet, decisions: dict | None) -> np.ndarray:
    """Label values with the enabled keep-largest-component steps applied (``decisions`` from the run)."""
    enabled = [name for name, on in ((decisions or {}).get("keep_largest_component") or {}).items() if on]
    if not enabled:
        return label_values
    classes = label_set.to_class_indices(label_values)
    for name in enabled:
        classes = keep_largest_component(classes, label_set.names.index(name))
    return label_set.to_label_values(classes)


def _region_dscs(prediction: np.ndarray, reference: np.ndarray, label_set: LabelSet, regions: list[str]) -> list[float]:
    """DSC of each of ``regions``; a region empty in the reference is left out."""
    predicted, expected = label_set.region_masks(prediction), label_set.region_masks(reference)
    scores = [dsc(confusion_counts(predicted[region], expected[region])) for region in regions]
    return [s for s in scores if not np.isnan(s)]


def decide_postprocessing(
    load_cases: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]], label_set: LabelSet
) -> dict:
    """Decisions and their evidence from every cross-validation case.

    ``load_cases()`` yields (prediction, reference) label-value maps, one case at a time; it is
    called once per foreground class, so memory holds one case, not the dataset.
    """
    decisions: dict[str, bool] = {}
    evidence, n_cases = {}, 0
    for index, name in enumerate(label_set.names[1:], start=1):
        regions = [region for region, values in label_set.regions.items() if label_set.values[index] in values]
        without, with_ = [], []
        n_cases = 0
        for prediction, reference in load_cases():
            current = apply_postprocessing(prediction, label_set, {"keep_largest_component": decisions})
            candidate = label_set.to_label_values(keep_largest_component(label_set.to_class_indices(current), index))
            without += _region_dscs(current, reference, label_set, regions)
            with_ += _region_dscs(candidate, reference, label_set, regions)
            n_cases += 1
        before = float(np.mean(without)) if without else float("nan")
        after = float(np.mean(with_)) if with_ else float("nan")
        decisions[name] = bool(after > before)  # NaN (no scored case) compares False: leave it off
        evidence[name] = {"regions": regions, "mean_dsc_without": before, "mean_dsc_with": after}
    return {"keep_largest_component": decisions, "evidence": evidence, "n_cases": n_cases}
