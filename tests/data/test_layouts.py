"""Layouts -> CaseRecords, with patients and strata (fixtures shaped like ../shared/data)."""

from __future__ import annotations

import json
from collections import Counter

import nibabel as nib
import numpy as np
import pytest

from adversarial_seg.config import DataConfig
from adversarial_seg.data.errors import DataError
from adversarial_seg.data.layouts import discover_cases


def test_folder_layout_patient_from_stem_regex(prostate158_like):
    records = discover_cases(DataConfig(root=prostate158_like, group={"regex": r"^(\d+)_"}))
    assert len(records) == 10
    assert [r.case_id for r in records][:3] == ["10002_12", "10002_9", "10003_14"]
    assert records[0].label_path.parent.name == "labels"
    per_patient = Counter(r.patient for r in records)
    assert sorted(per_patient.values()) == [1, 1, 2, 2, 2, 2]  # 4 patients have two slices
    assert per_patient["10011"] == 2


def test_default_patient_is_the_case(prostate158_like):
    records = discover_cases(DataConfig(root=prostate158_like))
    assert all(r.patient == r.case_id for r in records) and all(r.stratum is None for r in records)


def test_folder_layout_strata_from_cases_csv(ph2_like):
    records = discover_cases(DataConfig(root=ph2_like, stratify="diagnosis"))
    assert [r.stratum for r in records[:3]] == ["common_nevus", "atypical_nevus", "melanoma"]
    assert records[0].image_paths[0].name == "IMD002.png" and records[0].label_path.parent.name == "masks"


def test_patient_from_cases_csv_column(ph2_like):
    (ph2_like / "cases.csv").write_text(
        "case,diagnosis,patient\n" + "".join(f"IMD{i + 2:03d},melanoma,P{i // 3}\n" for i in range(6))
    )
    records = discover_cases(DataConfig(root=ph2_like, group={"column": "patient"}))
    assert [r.patient for r in records] == ["P0", "P0", "P0", "P1", "P1", "P1"]


def _nifti(path, shape, value=0.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.full(shape, value, dtype=np.float32), np.eye(4)), path)


def test_msd_layout_reads_dataset_json(tmp_path):
    for case in ("prostate_00", "prostate_01"):
        _nifti(tmp_path / "imagesTr" / f"{case}.nii.gz", (4, 4, 2, 2))
        _nifti(tmp_path / "labelsTr" / f"{case}.nii.gz", (4, 4, 2))
    (tmp_path / "imagesTr" / "._prostate_00.nii.gz").write_bytes(b"macOS junk")  # ignored
    (tmp_path / "dataset.json").write_text(
        json.dumps(
            {
                "modality": {"0": "T2", "1": "ADC"},
                "labels": {"0": "background", "1": "PZ", "2": "TZ"},
                "training": [
                    {"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"}
                    for c in ("prostate_01", "prostate_00")
                ],
            }
        )
    )
    records = discover_cases(DataConfig(root=tmp_path, layout="msd"))
    assert [r.case_id for r in records] == ["prostate_00", "prostate_01"]
    assert records[0].image_paths == [(tmp_path / "imagesTr" / "prostate_00.nii.gz").resolve()]


def test_nnunet_layout_groups_channel_files(tmp_path):
    for case in ("case_a", "case_b"):
        for channel in (0, 1):
            _nifti(tmp_path / "imagesTr" / f"{case}_{channel:04d}.nii.gz", (4, 4, 2))
        _nifti(tmp_path / "labelsTr" / f"{case}.nii.gz", (4, 4, 2))
    records = discover_cases(DataConfig(root=tmp_path, layout="nnunet"))
    assert [r.case_id for r in records] == ["case_a", "case_b"]
    assert [p.name for p in records[1].image_paths] == ["case_b_0000.nii.gz", "case_b_0001.nii.gz"]


def test_folder_layout_with_channel_files(tmp_path):
    for channel in (0, 1):
        _nifti(tmp_path / "images" / f"c1_{channel:04d}.nii.gz", (4, 4, 2))
    _nifti(tmp_path / "masks" / "c1.nii.gz", (4, 4, 2))
    records = discover_cases(DataConfig(root=tmp_path))
    assert [r.case_id for r in records] == ["c1"] and len(records[0].image_paths) == 2


def test_regex_that_does_not_match_is_a_problem(prostate158_like):
    with pytest.raises(DataError, match="does not match data.group regex"):
        discover_cases(DataConfig(root=prostate158_like, group={"regex": r"^patient(\d+)"}))


def test_the_msd_prostate_config_reads_a_task05_shaped_folder(tmp_path):
    """configs/prostate_msd.yaml on a Decathlon-shaped fixture: 4D T2 + ADC files, zones 1 / 2."""
    from adversarial_seg.config import load_config
    from adversarial_seg.data.transforms import make_plan
    from adversarial_seg.data.validate import validate_dataset

    label = np.zeros((8, 8, 3), dtype=np.float32)
    label[2:6, 2:6] = 2
    label[2:6, 5:6] = 1
    for case in ("prostate_00", "prostate_01"):
        _nifti(tmp_path / "imagesTr" / f"{case}.nii.gz", (8, 8, 3, 2), value=1.0)
        (tmp_path / "labelsTr").mkdir(exist_ok=True)
        nib.save(nib.Nifti1Image(label, np.eye(4)), tmp_path / "labelsTr" / f"{case}.nii.gz")
    training = [
        {"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in ("prostate_00", "prostate_01")
    ]
    (tmp_path / "dataset.json").write_text(json.dumps({"modality": {"0": "T2", "1": "ADC"}, "training": training}))
    config = load_config("configs/prostate_msd.yaml", [f"data.root={tmp_path}"])
    records = validate_dataset(config.data)
    plan = make_plan(config.data, records)
    assert [r.case_id for r in records] == ["prostate_00", "prostate_01"]
    assert (plan.in_channels, plan.file_dims, plan.model_dims) == (2, 3, 2)
    assert list(plan.labels.names) == ["background", "pz", "tz"] and list(plan.labels.regions["gland"]) == [1, 2]
