"""The real datasets in ../shared/data load in place (skipped with a message where absent)."""

from __future__ import annotations

from collections import Counter

import nibabel as nib
import numpy as np

from adversarial_seg.config import DataConfig
from adversarial_seg.data.io import read_image, read_label, write_label
from adversarial_seg.data.labels import LabelSet
from adversarial_seg.data.layouts import discover_cases
from adversarial_seg.data.validate import validate_dataset

from .conftest import shared_dataset


def test_ph2_loads_with_strata():
    root = shared_dataset("ph2")
    # Layout only: test_validate.py::test_ph2_validates_quickly opens every file already.
    records = discover_cases(DataConfig(root=root, stratify="diagnosis"))
    assert len(records) == 150
    assert Counter(r.stratum for r in records) == {"common_nevus": 60, "atypical_nevus": 60, "melanoma": 30}
    image, props = read_image(records[0].image_paths[0])
    assert image.shape == (3, 572, 765) and props["spatial_shape"] == (572, 765)


def test_prostate158_slices_group_by_patient_and_score_regions():
    root = shared_dataset("prostate158_slices")
    data = DataConfig(
        root=root,
        group={"regex": r"^(\d+)_"},
        labels={"background": 0, "gland": 1, "tumour": 2},
        regions={"gland": [1, 2], "tumour": [2]},
    )
    records = validate_dataset(data)
    assert len(records) == 36
    assert sorted(Counter(r.patient for r in records).values(), reverse=True)[:5] == [2, 2, 2, 2, 1]
    labels, _ = read_label(records[0].label_path)
    regions = LabelSet.from_config(data).region_masks(labels)
    assert regions["tumour"].sum() > 0  # every slice of this set carries tumour
    assert np.all(regions["gland"][regions["tumour"]])  # tumour lies inside the gland region


def test_promise12_float64_qform_only_round_trip(tmp_path):
    root = shared_dataset("promise12_case00")
    image, props = read_image(root / "Case00.nii.gz")
    assert image.shape == (1, 128, 128, 64) and image.dtype == np.float32
    assert (props["dtype"], props["qform_code"], props["sform_code"]) == ("float64", 1, 0)
    labels, label_props = read_label(root / "Case00_segmentation.nii.gz")
    np.testing.assert_allclose(label_props["affine"], props["affine"])
    write_label(tmp_path / "Case00.nii.gz", labels, props)
    written = nib.load(tmp_path / "Case00.nii.gz")
    assert (int(written.header["qform_code"]), int(written.header["sform_code"])) == (1, 0)
    np.testing.assert_allclose(written.affine, nib.load(root / "Case00.nii.gz").affine, atol=1e-6)
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), labels)
    assert written.get_data_dtype() == np.uint8
    large, large_props = read_label(root / "Case00_large_segmentation.nii.gz")
    assert large.shape == (512, 512, 47) and large_props["spatial_shape"] == (512, 512, 47)
