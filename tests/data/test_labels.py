"""Label values <-> class indices, regions for scoring (hand-computed)."""

from __future__ import annotations

import numpy as np
import pytest

from adversarial_seg.config import DataConfig
from adversarial_seg.data.labels import LabelSet


def test_ph2_values_map_to_contiguous_classes_and_back():
    scheme = LabelSet.from_config(DataConfig(labels={"lesion": 255, "background": 0}))
    assert scheme.names == ("background", "lesion") and scheme.values == (0, 255)
    mask = np.array([[0, 255], [255, 0]])
    classes = scheme.to_class_indices(mask)
    assert classes.tolist() == [[0, 1], [1, 0]] and classes.dtype == np.int64
    np.testing.assert_array_equal(scheme.to_label_values(classes), mask)
    assert scheme.regions == {"lesion": (255,)}  # default: one region per non-background label


def test_prostate158_regions_are_unions_of_label_values():
    scheme = LabelSet.from_config(
        DataConfig(labels={"background": 0, "gland": 1, "tumour": 2}, regions={"gland": [1, 2], "tumour": [2]})
    )
    label_map = np.array([0, 1, 2, 2, 1, 0])
    masks = scheme.region_masks(label_map)
    assert masks["gland"].tolist() == [False, True, True, True, True, False]
    assert masks["tumour"].tolist() == [False, False, True, True, False, False]
    assert scheme.region_class_indices() == {"gland": [1, 2], "tumour": [2]}


def test_background_first_even_when_not_named_or_not_lowest():
    scheme = LabelSet.from_mapping({"tz": 2, "pz": 1, "none": 0})
    assert scheme.values == (0, 1, 2) and scheme.names[0] == "none"
    scheme = LabelSet.from_mapping({"lesion": 1, "background": 5})
    assert scheme.values == (5, 1)
    assert scheme.to_class_indices(np.array([1, 5])).tolist() == [1, 0]


def test_undeclared_values_are_refused():
    scheme = LabelSet.from_mapping({"background": 0, "lesion": 255})
    assert scheme.undeclared_values(np.array([0, 3, 255, 7])) == [3, 7]
    with pytest.raises(ValueError, match=r"\[3\]"):
        scheme.to_class_indices(np.array([0, 3]))
    with pytest.raises(ValueError, match="does not declare"):
        LabelSet.from_mapping({"background": 0, "lesion": 1}, {"lesion": [1, 2]})


def test_threshold_foreground_is_the_declared_lesion_value():
    scheme = LabelSet.from_config(DataConfig(labels={"background": 0, "lesion": 255}, mask_threshold=128))
    assert (scheme.mask_threshold, scheme.foreground_value) == (128, 255)
