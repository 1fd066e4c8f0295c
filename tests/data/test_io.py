"""Reader/writer round trips: array AND geometry, for every format."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from adversarial_seg.data.io import (
    label_suffix,
    make_props,
    read_image,
    read_label,
    split_suffix,
    write_image,
    write_label,
)


def oblique_lps_affine() -> np.ndarray:
    """Voxel -> RAS mm: x runs to the Left, y Posterior (non-RAS), rotated 20 deg about z."""
    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([-0.5, -0.75, 3.0])
    affine[:3, 3] = [12.0, -7.5, 30.25]
    return affine


def test_split_suffix_handles_double_endings():
    assert split_suffix("a/case_0000.nii.gz") == ("case_0000", ".nii.gz")
    assert split_suffix("IMD002.PNG") == ("IMD002", ".PNG")
    assert split_suffix("notes.txt") == ("notes.txt", "")


def test_nifti_oblique_non_ras_round_trip(tmp_path):
    affine = oblique_lps_affine()
    values = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    image = nib.Nifti1Image(values, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=2)
    nib.save(image, tmp_path / "t2.nii.gz")

    array, props = read_image(tmp_path / "t2.nii.gz")
    assert array.shape == (1, 4, 5, 6) and array.dtype == np.float32
    assert array[0, 3, 4, 5] == values[3, 4, 5]  # voxel order is nibabel's (X, Y, Z)
    np.testing.assert_allclose(props["affine"], affine, atol=1e-5)
    np.testing.assert_allclose(props["spacing"], (0.5, 0.75, 3.0), atol=1e-6)
    assert (props["qform_code"], props["sform_code"], props["format"], props["dtype"]) == (1, 2, "nifti", "int16")

    labels = (values % 3).astype(np.int64)
    write_label(tmp_path / "out.nii.gz", labels, props)
    written = nib.load(tmp_path / "out.nii.gz")
    assert written.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), labels)
    np.testing.assert_allclose(written.affine, affine, atol=1e-5)
    assert int(written.header["qform_code"]) == 1 and int(written.header["sform_code"]) == 2
    raw_header = nib.Nifti1Header.from_fileobj(gzip.open(tmp_path / "out.nii.gz"))
    assert (float(raw_header["scl_slope"]), float(raw_header["scl_inter"])) == (1.0, 0.0)


def test_four_d_nifti_gives_channels_first(tmp_path):
    data = np.zeros((3, 4, 5, 2), dtype=np.float32)
    data[..., 1] = 7.0
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "mc.nii")
    array, props = read_image(tmp_path / "mc.nii")
    assert array.shape == (2, 3, 4, 5) and props["channels"] == 2
    assert props["spatial_shape"] == (3, 4, 5)
    assert array[0].max() == 0 and array[1].min() == 7.0


def test_uint16_label_when_values_exceed_255(tmp_path):
    props = make_props(np.eye(4), (2, 2, 1))
    write_label(tmp_path / "big.nii.gz", np.array([[[0], [300]], [[1], [2]]]), props)
    written = nib.load(tmp_path / "big.nii.gz")
    assert written.get_data_dtype() == np.uint16
    assert np.asanyarray(written.dataobj)[0, 1, 0] == 300


@pytest.mark.parametrize("suffix", [".mha", ".nrrd", ".mhd"])
def test_itk_formats_are_converted_to_ras_once(tmp_path, suffix):
    # ITK: arrays are (Z, Y, X); direction, spacing, origin in LPS.
    values = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)  # Z=2, Y=3, X=4
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((2.0, 3.0, 4.0))
    image.SetOrigin((10.0, 20.0, 30.0))
    sitk.WriteImage(image, str(tmp_path / f"img{suffix}"))

    array, props = read_image(tmp_path / f"img{suffix}")
    assert array.shape == (1, 4, 3, 2)
    assert array[0, 3, 1, 0] == values[0, 1, 3]
    # Hand-computed: LPS diag(2,3,4) at (10,20,30) is RAS diag(-2,-3,4) at (-10,-20,30).
    expected = np.array([[-2, 0, 0, -10], [0, -3, 0, -20], [0, 0, 4, 30], [0, 0, 0, 1]], dtype=float)
    np.testing.assert_allclose(props["affine"], expected)
    assert props["spacing"] == (2.0, 3.0, 4.0) and props["format"] == suffix[1:]

    # nibabel reading the same image as NIfTI (written by ITK) agrees on the affine.
    sitk.WriteImage(image, str(tmp_path / "same.nii.gz"))
    np.testing.assert_allclose(nib.load(tmp_path / "same.nii.gz").affine, expected, atol=1e-6)

    labels = (array[0] % 2).astype(np.int64)
    write_label(tmp_path / f"out{suffix}", labels, props)
    back, back_props = read_label(tmp_path / f"out{suffix}")
    np.testing.assert_array_equal(back, labels)
    np.testing.assert_allclose(back_props["affine"], expected)
    written = sitk.ReadImage(str(tmp_path / f"out{suffix}"))
    assert written.GetOrigin() == (10.0, 20.0, 30.0) and written.GetPixelID() == sitk.sitkUInt8


def test_itk_oblique_geometry_survives_nifti_and_mha(tmp_path):
    affine = oblique_lps_affine()
    props = make_props(affine, (4, 5, 6))
    values = np.random.default_rng(0).integers(0, 4, size=(4, 5, 6))
    write_label(tmp_path / "a.mha", values, props)
    array, mha_props = read_label(tmp_path / "a.mha")
    np.testing.assert_array_equal(array, values)
    np.testing.assert_allclose(mha_props["affine"], affine, atol=1e-6)
    # Same world point for the same voxel, whichever library reads it.
    itk_point = sitk.ReadImage(str(tmp_path / "a.mha")).TransformIndexToPhysicalPoint((3, 1, 2))
    ras_point = affine @ [3, 1, 2, 1]
    np.testing.assert_allclose([-itk_point[0], -itk_point[1], itk_point[2]], ras_point[:3], atol=1e-6)


def test_png_grey_and_rgb(tmp_path):
    rgb = np.zeros((5, 7, 3), dtype=np.uint8)
    rgb[1, 2] = (10, 20, 30)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    array, props = read_image(tmp_path / "rgb.png")
    assert array.shape == (3, 5, 7)
    assert array[:, 1, 2].tolist() == [10, 20, 30]
    assert props["spatial_shape"] == (5, 7) and props["spacing"] == (1.0, 1.0)

    Image.fromarray(rgb[..., 0]).convert("L").save(tmp_path / "grey.bmp")
    grey, grey_props = read_image(tmp_path / "grey.bmp")
    assert grey.shape == (1, 5, 7) and grey_props["format"] == "bmp"

    mask = np.zeros((5, 7), dtype=np.int64)
    mask[2:4, 1:3] = 255
    write_label(tmp_path / "mask.png", mask, props)
    assert Image.open(tmp_path / "mask.png").mode == "L"
    back, _ = read_label(tmp_path / "mask.png")
    np.testing.assert_array_equal(back, mask)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_jpeg_labels_are_written_as_png_and_lossy_masks_thresholded(tmp_path):
    mask = np.zeros((16, 16), dtype=np.uint8)
    mask[4:12, 4:12] = 255
    Image.fromarray(mask).save(tmp_path / "mask.jpg", quality=60)
    raw, _ = read_label(tmp_path / "mask.jpg")
    assert set(np.unique(raw)) - {0, 255}  # JPEG ringing: values validation will refuse
    labels, props = read_label(tmp_path / "mask.jpg", threshold=128, foreground=255)
    assert set(np.unique(labels)) == {0, 255}
    assert abs(int((labels == 255).sum()) - 64) <= 4
    assert label_suffix(props) == ".png"


def test_non_integer_label_values_are_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.full((2, 2, 2), 0.5, dtype=np.float32), np.eye(4)), tmp_path / "f.nii.gz")
    with pytest.raises(ValueError, match="non-integer"):
        read_label(tmp_path / "f.nii.gz")


def test_write_label_refuses_wrong_shape(tmp_path):
    props = make_props(np.eye(4), (4, 4, 2))
    with pytest.raises(ValueError, match="resample predictions"):
        write_label(tmp_path / "x.nii.gz", np.zeros((4, 4, 3), dtype=int), props)
    assert not (tmp_path / "x.nii.gz").exists()


def test_write_image_multichannel_nifti_and_rgb_png(tmp_path):
    volume = np.random.default_rng(1).random((2, 3, 4, 5)).astype(np.float32)
    write_image(tmp_path / "v.nii.gz", volume, make_props(np.eye(4), (3, 4, 5)))
    back, _ = read_image(tmp_path / "v.nii.gz")
    np.testing.assert_allclose(back, volume)
    rgb = np.random.default_rng(2).integers(0, 256, size=(3, 6, 8))
    write_image(tmp_path / "c.png", rgb, make_props(np.eye(4), (6, 8), fmt="png"))
    np.testing.assert_array_equal(read_image(tmp_path / "c.png")[0], rgb)
