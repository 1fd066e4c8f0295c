"""Batch prediction: input grouping, and outputs that overlay their inputs exactly."""

import math

import nibabel as nib
import numpy as np
import pytest
import torch
from torch import nn

from adversarial_seg.config import config_from_mapping
from adversarial_seg.data.io import read_label
from adversarial_seg.data.labels import LabelSet
from adversarial_seg.data.transforms import DataPlan
from adversarial_seg.seg.networks import build_segmentor
from adversarial_seg.seg.predict import BatchPredictor, InputError, collect_inputs
from adversarial_seg.seg.run import TrainedRun

from ..data.conftest import shared_dataset

CPU = torch.device("cpu")
SCHEME = LabelSet.from_mapping({"background": 0, "pz": 1, "tz": 2})


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_channel_files_group_into_cases_and_other_files_are_cases(tmp_path):
    folder = tmp_path / "in"
    for name in ("b_0000.nii.gz", "b_0001.nii.gz", "a.nii.gz", "c_0001.nii.gz", "notes.txt", ".hidden.nii.gz"):
        touch(folder / name)
    extra = touch(tmp_path / "skin.png")
    cases, ignored = collect_inputs([folder, extra])
    assert [(c.case_id, [p.name for p in c.paths]) for c in cases] == [
        ("a", ["a.nii.gz"]), ("b", ["b_0000.nii.gz", "b_0001.nii.gz"]), ("c", ["c_0001.nii.gz"]), ("skin", ["skin.png"]),
    ]  # fmt: skip
    assert ignored == 2  # notes.txt, .hidden.nii.gz
    assert [c.problem for c in cases] == [None, None, "is missing channel file(s) c_0000", None]


def test_an_unsupported_file_named_on_the_command_line_is_a_failed_case(tmp_path):
    cases, _ = collect_inputs([touch(tmp_path / "scan.dcm")])
    assert cases[0].problem.startswith("has an unsupported file ending")


@pytest.mark.parametrize(
    "names, message",
    [(["a.nii.gz", "a.mha"], "case 'a' is given twice"), (["a.nii.gz", "a_0000.nii.gz"], "case 'a' is given twice")],
)
def test_colliding_case_ids_are_refused(tmp_path, names, message):
    with pytest.raises(InputError, match=message):
        collect_inputs([touch(tmp_path / n) for n in names])


def test_a_missing_input_path_is_refused(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        collect_inputs([tmp_path / "nope"])


# ----------------------------------------------------------------------------- exact overlay


class LabelEcho(nn.Module):
    """Returns the class whose z-scored intensity is nearest: on an image whose voxels hold the
    label values 0/1/2 it 'segments' exactly those labels (logits per voxel, so any blending,
    padding or flipping of windows leaves them unchanged)."""

    def __init__(self, mean: float, std: float, num_classes: int = 3):
        super().__init__()
        self.register_buffer("levels", (torch.arange(num_classes, dtype=torch.float32) - mean) / std)

    def forward(self, x):
        return -((x - self.levels.view(1, -1, *([1] * (x.dim() - 2)))) ** 2) * 100.0


def rotation(ax_deg, az_deg):
    ax, az = math.radians(ax_deg), math.radians(az_deg)
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ rx


def affine_of(linear, origin):
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = linear, origin
    return affine


GRIDS = {
    # rotated 20 deg about x and 10 deg about z, anisotropic 0.5 x 0.8 x 3 mm, qform and sform
    "oblique": (affine_of(rotation(20, 10) @ np.diag([0.5, 0.8, 3.0]), [-30, 12, 40]), (1, 1)),
    # voxel axes run S, P, L (not RAS), largest spacing on the first file axis; qform only (sform 0)
    "non_ras": (affine_of(np.array([[0, 0, -0.7], [0, -0.9, 0], [2.5, 0, 0]]), [20, 30, -10]), (1, 0)),
    # LPS-like (x and y reversed), sform only
    "lps": (affine_of(np.diag([-0.6, -0.6, 3.6]), [50, 60, 0]), (0, 2)),
}


def make_run(tmp_path, plan, amp=False):
    config = config_from_mapping({"scheme": "ce", "train": {"amp": amp},
                                  "model": {"segmentor": {"name": "UNet", "channels": [4, 8], "strides": [2]}}})  # fmt: skip
    return TrainedRun(tmp_path / "run", config, plan, [0], None)


def write_volume(path, array, affine, codes):
    image = nib.Nifti1Image(array, affine)
    image.set_qform(affine if codes[0] else None, code=codes[0])
    image.set_sform(affine if codes[1] else None, code=codes[1])
    nib.save(image, path)


@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_a_label_echo_model_reproduces_the_input_labels_on_the_input_grid(tmp_path, grid):
    affine, codes = GRIDS[grid]
    labels = np.random.default_rng(0).integers(0, 3, size=(13, 11, 7)).astype(np.float32)
    write_volume(tmp_path / "case.nii.gz", labels, affine, codes)
    # no data.size / spacing: preprocessing is reorientation and z-scoring, both exactly invertible
    slice_axis = 2  # after reorientation to RAS the axis of largest spacing is axial in every grid
    plan = DataPlan(SCHEME, file_dims=3, model_dims=2, slice_axis=slice_axis, size=None, spacing=None,
                    patch_size=None, in_channels=1)  # fmt: skip
    model = LabelEcho(float(labels.mean()), float(labels.std()))
    predictor = BatchPredictor(make_run(tmp_path, plan), [model], CPU, tmp_path / "out", tta=True)
    cases, _ = collect_inputs([tmp_path / "case.nii.gz"])
    result = predictor.run_batch(cases, report=print)
    assert result.done == ["case"] and not result.failed
    out = nib.load(tmp_path / "out" / "case.nii.gz")
    assert out.shape == labels.shape
    np.testing.assert_allclose(out.affine, affine, atol=1e-5)
    assert (int(out.header["qform_code"]), int(out.header["sform_code"])) == codes
    assert out.get_data_dtype() == np.uint8
    assert (float(out.dataobj.slope), float(out.dataobj.inter)) == (1.0, 0.0)
    np.testing.assert_array_equal(np.asanyarray(out.dataobj), labels.astype(np.uint8))


def test_resized_slices_map_back_to_the_real_promise12_volume(tmp_path):
    """Case00: float64, qform code 1 / sform code 0, LPS voxel order; a 2D model on 64 x 64 slices."""
    volume = shared_dataset("promise12_case00") / "Case00.nii.gz"
    source = nib.load(volume)
    plan = DataPlan(LabelSet.from_mapping({"background": 0, "gland": 1}), file_dims=3, model_dims=2,
                    slice_axis=2, size=(64, 64), spacing=None, patch_size=None, in_channels=1)  # fmt: skip
    torch.manual_seed(0)
    model = build_segmentor("UNet", {"channels": [4, 8], "strides": [2]}, 2, 1, 2).eval()
    predictor = BatchPredictor(make_run(tmp_path, plan), [model], CPU, tmp_path / "out", tta=False)
    cases, _ = collect_inputs([volume])
    result = predictor.run_batch(cases, report=print)
    assert result.done == ["Case00"], result.failed
    out = nib.load(tmp_path / "out" / "Case00.nii.gz")
    assert out.shape == source.shape and out.get_data_dtype() == np.uint8
    np.testing.assert_allclose(out.affine, source.affine, atol=1e-5)
    assert (int(out.header["qform_code"]), int(out.header["sform_code"])) == (1, 0)
    np.testing.assert_allclose(out.header.get_zooms(), source.header.get_zooms(), rtol=1e-6)
    assert set(np.unique(read_label(tmp_path / "out" / "Case00.nii.gz")[0])) <= {0, 1}
