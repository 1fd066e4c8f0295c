"""Metrics from counts, with the stated rules for empty masks; HD95 with anisotropic spacing."""

import math

import numpy as np
import pytest

from adversarial_seg.seg.metrics import (
    CASE_COLUMNS,
    case_rows,
    confusion_counts,
    dsc,
    hd95_mm,
    iou,
    lesion_detection,
    sensitivity,
    specificity,
)


def test_counts_and_metrics_hand_computed():
    ref = np.zeros((4, 5), bool)
    ref[1:3, 1:4] = True  # 6 voxels
    pred = np.zeros((4, 5), bool)
    pred[1:3, 2:5] = True  # 6 voxels, 4 overlap
    c = confusion_counts(pred, ref)
    assert (c.tp, c.fp, c.fn, c.tn) == (4, 2, 2, 12)
    assert dsc(c) == pytest.approx(8 / 12)
    assert iou(c) == pytest.approx(4 / 8)
    assert sensitivity(c) == pytest.approx(4 / 6)
    assert specificity(c) == pytest.approx(12 / 14)


def test_empty_reference_leaves_overlap_metrics_undefined():
    ref = np.zeros((3, 3), bool)
    pred = np.zeros((3, 3), bool)
    pred[0, 0] = True
    c = confusion_counts(pred, ref)
    assert math.isnan(dsc(c)) and math.isnan(iou(c)) and math.isnan(sensitivity(c))
    assert specificity(c) == pytest.approx(8 / 9)
    assert math.isnan(hd95_mm(pred, ref, (1, 1)))


def test_empty_prediction_scores_zero_and_worst_distance():
    ref = np.zeros((6, 8), bool)
    ref[2:4, 2:4] = True
    pred = np.zeros_like(ref)
    c = confusion_counts(pred, ref)
    assert dsc(c) == 0 and sensitivity(c) == 0
    assert hd95_mm(pred, ref, (0.5, 2.0)) == pytest.approx(math.hypot(6 * 0.5, 8 * 2.0))


def test_hd95_uses_anisotropic_spacing():
    # the same 4x4 square shifted by 2 voxels along axis 0: every boundary distance is 2 voxels
    a = np.zeros((12, 12), bool)
    a[2:6, 2:6] = True
    b = np.zeros_like(a)
    b[4:8, 2:6] = True
    assert hd95_mm(a, b, (1.0, 1.0)) == pytest.approx(2.0)
    assert hd95_mm(a, b, (3.0, 1.0)) == pytest.approx(6.0)  # 2 voxels of 3 mm
    assert hd95_mm(a, b, (1.0, 3.0)) == pytest.approx(2.0)  # the shift is not along axis 1


def test_case_rows_regions_union_label_values():
    ref = np.array([[0, 1, 1, 2], [0, 0, 1, 2]])
    pred = np.array([[0, 1, 2, 2], [0, 1, 1, 0]])
    rows = case_rows(pred, ref, {"gland": [1, 2], "tumour": [2]}, (1, 1), "c1", "p1", 0, specificity_within=[1, 2])
    gland, tumour = rows
    assert list(gland)[: len(CASE_COLUMNS)] == CASE_COLUMNS
    # gland: ref {1,2} = 5 voxels, pred {1,2} = 5 voxels, overlap 4
    assert (gland["tp"], gland["fp"], gland["fn"], gland["tn"]) == (4, 1, 1, 2)
    # tumour: ref 2 = (0,3),(1,3); pred 2 = (0,2),(0,3): tp 1, fp 1, fn 1
    assert (tumour["tp"], tumour["fp"], tumour["fn"]) == (1, 1, 1)
    assert tumour["dsc"] == pytest.approx(0.5)
    # inside the gland reference (5 voxels, 2 of them tumour): tn 2, fp 1 -> 2/3
    assert tumour["specificity_in_region"] == pytest.approx(2 / 3)


def test_lesion_detection_counts_components_in_3d():
    ref = np.zeros((6, 6, 4), bool)
    ref[0:2, 0:2, 0:2] = True  # lesion A, 8 voxels
    ref[4:6, 4:6, 2:4] = True  # lesion B, 8 voxels
    pred = np.zeros_like(ref)
    pred[0, 0, 0] = True  # covers 1/8 of A
    pred[3, 0, 3] = True  # a false blob
    assert lesion_detection(pred, ref, 0.1) == {
        "ref_lesions": 2, "detected_lesions": 1, "pred_lesions": 2, "false_positive_lesions": 1,
    }  # fmt: skip
    assert lesion_detection(pred, ref, 0.2)["detected_lesions"] == 0  # 1/8 < 0.2
    # one blob over the whole image covers both lesions, but only 16/144 of it is lesion
    everything = np.ones_like(ref)
    assert lesion_detection(everything, ref, 0.1) == {
        "ref_lesions": 2, "detected_lesions": 2, "pred_lesions": 1, "false_positive_lesions": 0,
    }  # fmt: skip
    assert lesion_detection(everything, ref, 0.2)["false_positive_lesions"] == 1


def test_case_rows_add_lesion_counts_when_asked():
    ref = np.array([[0, 1, 0, 1]])
    rows = case_rows(ref, ref, {"lesion": [1]}, (1, 1), "c", lesion_overlap=0.5)
    assert (rows[0]["ref_lesions"], rows[0]["detected_lesions"], rows[0]["false_positive_lesions"]) == (2, 2, 0)
    assert "ref_lesions" not in case_rows(ref, ref, {"lesion": [1]}, (1, 1), "c")[0]
