"""Every validation problem on crafted bad datasets, all listed in one DataError."""

from __future__ import annotations

import json
import time

import nibabel as nib
import numpy as np
import pytest

from adversarial_seg.config import DataConfig
from adversarial_seg.data.errors import DataError
from adversarial_seg.data.validate import validate_dataset

from .conftest import save_png, shared_dataset

PH2_LABELS = {"background": 0, "lesion": 255}


def _rgb(size=(8, 8)):
    return np.full((*size, 3), 120, dtype=np.uint8)


def _mask(size=(8, 8), value=255):
    mask = np.zeros(size, dtype=np.uint8)
    mask[2:5, 2:5] = value
    return mask


def problems_of(data_cfg) -> list[str]:
    with pytest.raises(DataError) as caught:
        validate_dataset(data_cfg)
    return caught.value.problems


def test_clean_dataset_passes(ph2_like):
    records = validate_dataset(DataConfig(root=ph2_like, labels=PH2_LABELS, channels=["r", "g", "b"]))
    assert len(records) == 6


def test_missing_root_is_one_clear_sentence(tmp_path):
    problems = problems_of(DataConfig(root=tmp_path / "nowhere"))
    assert len(problems) == 1 and "nowhere does not exist" in problems[0] and "data.root" in problems[0]


def test_all_png_problems_are_listed_at_once(tmp_path):
    root = tmp_path / "bad"
    save_png(root / "images" / "ok.png", _rgb())
    save_png(root / "masks" / "ok.png", _mask())
    save_png(root / "images" / "orphan.png", _rgb())
    save_png(root / "masks" / "lonely.png", _mask())
    save_png(root / "images" / "dup.png", _rgb())
    save_png(root / "images" / "dup.bmp", _rgb())
    save_png(root / "masks" / "dup.png", _mask())
    save_png(root / "images" / "shape.png", _rgb())
    save_png(root / "masks" / "shape.png", _mask((6, 6)))
    save_png(root / "images" / "values.png", _rgb())
    save_png(root / "masks" / "values.png", _mask(value=7))
    save_png(root / "images" / "grey.png", np.full((8, 8), 50, dtype=np.uint8))
    save_png(root / "masks" / "grey.png", _mask())
    (root / "images" / "empty.png").write_bytes(b"")
    save_png(root / "masks" / "empty.png", _mask())
    (root / "images" / "corrupt.png").write_bytes(b"\x89PNG not really")
    save_png(root / "masks" / "corrupt.png", _mask())

    problems = problems_of(DataConfig(root=root, labels=PH2_LABELS, channels=["r", "g", "b"]))
    expected = {
        "orphan.png has no mask": 1,
        "lonely.png has no image": 1,
        "duplicate case id 'dup'": 1,
        "masks/shape.png does not line up with image": 1,
        "masks/values.png holds values [7] not declared": 1,
        "case 'grey'": 1,
        "empty.png is empty (0 bytes)": 1,
        "corrupt.png cannot be read": 1,
    }
    for fragment, count in expected.items():
        assert sum(fragment in p for p in problems) == count, (fragment, problems)
    assert len(problems) == len(expected)
    assert "has 1 channels but 3 are declared" in next(p for p in problems if "case 'grey'" in p)
    assert all(p.count(";") >= 1 for p in problems)  # every sentence carries its fix


def test_nan_and_geometry_mismatch_in_volumes(tmp_path):
    root = tmp_path / "vol"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    values = np.ones((4, 4, 3), dtype=np.float32)
    values[0, 0, 0], values[1, 1, 1] = np.nan, np.inf
    nib.save(nib.Nifti1Image(values, np.eye(4)), root / "images" / "nan.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3), np.uint8), np.eye(4)), root / "masks" / "nan.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((4, 4, 3), np.float32), np.eye(4)), root / "images" / "geo.nii.gz")
    shifted = np.eye(4)
    shifted[0, 3] = 2.0
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3), np.uint8), shifted), root / "masks" / "geo.nii.gz")
    problems = problems_of(DataConfig(root=root))
    assert len(problems) == 2, problems
    assert any("nan.nii.gz has 2 NaN/Inf voxels" in p for p in problems)
    assert any("geo.nii.gz does not line up" in p and "different affine" in p for p in problems)


def test_channel_count_disagreement_without_declared_channels(ph2_like):
    save_png(ph2_like / "images" / "IMD099.png", np.full((12, 20), 9, dtype=np.uint8))
    save_png(ph2_like / "masks" / "IMD099.png", _mask((12, 20)))
    (ph2_like / "cases.csv").write_text((ph2_like / "cases.csv").read_text() + "IMD099,melanoma\n")
    problems = problems_of(DataConfig(root=ph2_like, labels=PH2_LABELS))
    assert problems == ["case 'IMD099' has 1 channels but most cases have 3; fix the image or declare data.channels"]


def test_msd_paths_leaving_the_root_and_missing_entries(tmp_path):
    root = tmp_path / "task"
    (root / "imagesTr").mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)), tmp_path / "outside.nii.gz")
    (root / "dataset.json").write_text(
        json.dumps(
            {
                "training": [
                    {"image": "../outside.nii.gz", "label": "./labelsTr/a.nii.gz"},
                    {"image": "./imagesTr/b.nii.gz"},
                ]
            }
        )
    )
    problems = problems_of(DataConfig(root=root, layout="msd"))
    assert len(problems) == 3, problems
    assert any("'../outside.nii.gz', which leaves the data root" in p for p in problems)
    assert any("'./labelsTr/a.nii.gz', which does not exist" in p for p in problems)
    assert any("entry 1 needs both" in p for p in problems)


def test_cases_csv_gaps(ph2_like):
    full_table = (ph2_like / "cases.csv").read_text()
    (ph2_like / "cases.csv").write_text("case,diagnosis\nIMD002,melanoma\n")
    problems = problems_of(DataConfig(root=ph2_like, labels=PH2_LABELS, stratify="diagnosis"))
    assert len(problems) == 5 and all("missing from" in p and "cases.csv" in p for p in problems)
    (ph2_like / "cases.csv").write_text(full_table)
    problems = problems_of(DataConfig(root=ph2_like, labels=PH2_LABELS, stratify="site"))
    assert problems == [f"{ph2_like / 'cases.csv'} has no column 'site'; add it or fix data.stratify"]


def test_ph2_validates_quickly():
    root = shared_dataset("ph2")
    start = time.perf_counter()
    records = validate_dataset(DataConfig(root=root, labels=PH2_LABELS, stratify="diagnosis"))
    seconds = time.perf_counter() - start
    assert len(records) == 150
    # Measured 1.9 s on 2 shared CPU cores; the budget is 10 s.
    assert seconds < 10, f"validating PH2 took {seconds:.1f} s"
