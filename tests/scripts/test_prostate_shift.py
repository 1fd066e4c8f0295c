"""scripts/prostate_shift.py: its input checks, and an end-to-end run on a
tiny run trained on two real zone volumes for one epoch (skipped without ../shared/data)."""

import importlib.util
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from adversarial_seg.cli.seg_train import main as train
from adversarial_seg.errors import InputError

from ..data.conftest import link_zonal_cases

REPO = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("prostate_shift", REPO / "scripts" / "prostate_shift.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shift_script = load_script()


def test_shift_names_are_checked():
    assert shift_script.parse_shifts("gain4, fov110") == ["fov110", "gain4"]  # catalogue order
    assert shift_script.parse_shifts("all") == list(shift_script.SHIFTS)
    with pytest.raises(InputError, match=r"unknown shift\(s\) \['blur'\]"):
        shift_script.parse_shifts("fov110,blur")


@pytest.fixture(scope="module")
def tiny_real_run(tmp_path_factory):
    """configs/prostate.yaml with a tiny network, 1 epoch, 2 folds on Case00 (320 px) and Case31 (384 px),
    linked in place (nothing copied out of ../shared)."""
    base = tmp_path_factory.mktemp("shift")
    root = base / "zonal"
    cases = {"Case00": "320px", "Case31": "384px"}
    link_zonal_cases(root, cases)
    small = [f"data.root={root}", "scheme=ce", "data.stratify=null", "cv.folds=2", "train.epochs=1",
             "train.batch_size=8", "data.spacing=[1.5, 1.5, 0]", "data.size=[128, 128]",
             "model.segmentor={name: UNet, channels: [8, 16, 32], strides: [2, 2], num_res_units: 0}"]  # fmt: skip
    overrides = [item for s in small for item in ("--set", s)]
    run = base / "run"
    assert (
        train(["--config", str(REPO / "configs/prostate.yaml"), "--output", str(run), *overrides, "--no-progress"]) == 0
    )
    return run, root


@pytest.mark.slow
def test_shift_study_on_two_real_volumes(tiny_real_run, tmp_path, capsys):
    """Every fold's validation case is shifted, predicted by its own fold model and scored: copies overlay
    the originals in world coordinates, predictions lie on the copies' grids, the table and the last JSON
    line hold every shift and region."""
    run, root = tiny_real_run
    out = tmp_path / "out"
    shifts = ["fov110", "noise5", "spacing0.9", "combined"]
    before = sorted(p.name for p in root.rglob("*"))
    code = shift_script.main(
        [str(run), "--output", str(out), "--shifts", ",".join(shifts), "--no-tta", "--no-progress"]
    )
    assert code == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (last["cases"], last["shifts"], last["failed"]) == (2, shifts, 0)
    summary = json.loads((out / "shifts.json").read_text())
    assert {(r["shift"], r["region"]) for r in summary["table"]} == {
        (s, g) for s in shifts for g in ("pz", "tz", "gland")
    }
    assert all(r["cases"] == 2 for r in summary["table"])
    splits = json.loads((run / "splits.json").read_text())
    fold_of = {case: split["fold"] for split in splits for case in split["val"]}
    assert {(p["case"], p["fold"]) for p in summary["pairs"]} == set(fold_of.items())  # each by its own fold
    for case in ("Case00", "Case31"):
        original = nib.load(root / "imagesTr" / f"{case}_0000.nii.gz")
        cropped = nib.load(out / "fov110" / "images" / f"{case}_0000.nii.gz")
        spacing = nib.affines.voxel_sizes(original.affine)[0]
        start = (original.shape[0] - round(110 / spacing)) // 2
        assert cropped.shape[2] == original.shape[2] and cropped.shape[0] == round(110 / spacing)
        assert np.allclose(
            cropped.affine[:3, 3], nib.affines.apply_affine(original.affine, [start, start, 0]), atol=1e-3
        )
        for shift in shifts:
            image = nib.load(out / shift / "images" / f"{case}_0000.nii.gz")
            for folder in ("labels", "predictions"):
                other = nib.load(out / shift / folder / f"{case}.nii.gz")
                assert other.shape == image.shape and np.allclose(other.affine, image.affine, atol=1e-4)
        resampled = nib.load(out / "spacing0.9" / "images" / f"{case}_0000.nii.gz")
        assert np.allclose(nib.affines.voxel_sizes(resampled.affine)[:2], 0.9, atol=1e-4)
        assert (out / "original" / "predictions" / f"{case}.nii.gz").is_file()
    assert sorted(p.name for p in root.rglob("*")) == before  # nothing written into the dataset
    assert (out / "shifts.md").read_text().count("\n") == 2 + 3 * len(shifts)


@pytest.mark.slow
def test_an_output_inside_the_run_is_refused(tiny_real_run, capsys):
    run, _ = tiny_real_run
    assert shift_script.main([str(run), "--output", str(run / "shifted"), "--shifts", "gain4"]) == 2
    assert "overlaps the run" in capsys.readouterr().err
    assert not (run / "shifted").exists()
