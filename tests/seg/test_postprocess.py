"""Keep-largest-component: the operation, and the decision taken on pooled CV predictions."""

import numpy as np
import pytest

from adversarial_seg.data.labels import LabelSet
from adversarial_seg.seg.postprocess import apply_postprocessing, decide_postprocessing, keep_largest_component

SCHEME = LabelSet.from_mapping({"background": 0, "lesion": 255})


def test_largest_component_counts_diagonal_neighbours_and_keeps_other_classes():
    classes = np.array([
        [1, 0, 0, 0, 2],
        [0, 1, 0, 0, 2],
        [0, 0, 0, 0, 0],
        [1, 1, 1, 0, 1],
    ])  # fmt: skip
    # class 1: {(0,0),(1,1)} joined diagonally (2 voxels), {(3,0..2)} (3 voxels), {(3,4)} (1 voxel)
    out = keep_largest_component(classes, 1)
    assert out.tolist() == [
        [0, 0, 0, 0, 2],
        [0, 0, 0, 0, 2],
        [0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0],
    ]
    assert classes[0, 0] == 1  # the input is not modified


def test_largest_component_in_3d_and_with_a_single_component():
    volume = np.zeros((4, 4, 4), dtype=np.int64)
    volume[0, 0, 0] = volume[1, 1, 1] = 1  # corner neighbours: one component in 26-connectivity
    volume[3, 3, 3] = 1
    assert keep_largest_component(volume, 1).sum() == 2
    np.testing.assert_array_equal(keep_largest_component(volume, 2), volume)


def test_applied_on_label_values_with_a_nonzero_background():
    scheme = LabelSet.from_mapping({"background": 7, "gland": 1})
    values = np.array([[1, 1, 7, 1]])
    decisions = {"keep_largest_component": {"gland": True}}
    assert apply_postprocessing(values, scheme, decisions).tolist() == [[1, 1, 7, 7]]
    assert apply_postprocessing(values, scheme, {"keep_largest_component": {"gland": False}}).tolist() == [[1, 1, 7, 1]]
    assert apply_postprocessing(values, scheme, None) is values


def _case(pred_blobs, ref_blobs, shape=(10, 10)):
    pred, ref = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
    for r, c, h, w in pred_blobs:
        pred[r : r + h, c : c + w] = 255
    for r, c, h, w in ref_blobs:
        ref[r : r + h, c : c + w] = 255
    return pred, ref


def test_enabled_when_it_raises_the_pooled_mean_dsc():
    # case 1: 4x4 lesion found plus a 1x2 false blob: DSC 32/34 -> 1 with LCC
    # case 2: perfect single blob: 1 either way
    cases = [_case([(0, 0, 4, 4), (8, 8, 1, 2)], [(0, 0, 4, 4)]), _case([(2, 2, 3, 3)], [(2, 2, 3, 3)])]
    decision = decide_postprocessing(lambda: iter(cases), SCHEME)
    assert decision["keep_largest_component"] == {"lesion": True}
    evidence = decision["evidence"]["lesion"]
    assert evidence["mean_dsc_without"] == pytest.approx((32 / 34 + 1) / 2)
    assert evidence["mean_dsc_with"] == pytest.approx(1.0)
    assert decision["n_cases"] == 2


def test_left_off_when_the_reference_has_several_components():
    # two true 2x2 lesions both found: LCC drops one (DSC 1 -> 8/12)
    cases = [_case([(0, 0, 2, 2), (6, 6, 2, 2)], [(0, 0, 2, 2), (6, 6, 2, 2)])]
    decision = decide_postprocessing(lambda: iter(cases), SCHEME)
    assert decision["keep_largest_component"] == {"lesion": False}
    assert decision["evidence"]["lesion"]["mean_dsc_with"] == pytest.approx(8 / 12)


def test_no_scored_case_leaves_it_off():
    empty = np.zeros((4, 4), np.int64)
    decision = decide_postprocessing(lambda: iter([(empty, empty)]), SCHEME)
    assert decision["keep_largest_component"] == {"lesion": False}
