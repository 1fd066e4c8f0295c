"""Simulated scanner shifts (data/shifts.py), checked by hand on small synthetic volumes: a crop keeps
world coordinates, a resampled label block keeps its world extent, intensity scaling is exact and
noise is seeded and of the stated size."""

import nibabel as nib
import numpy as np
import pytest

from adversarial_seg.data import shifts
from adversarial_seg.data.io import make_props, read_image, read_label, write_image, write_label


def oblique_props(shape=(40, 30, 5), spacing=(0.6, 0.6, 3.5)) -> dict:
    """An LPS-like oblique grid (rotated about the first axis, flipped x), as the prostate volumes have."""
    angle = np.deg2rad(10)
    rotation = np.array([[-1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    affine = nib.affines.from_matvec(rotation @ np.diag(spacing), [92.9, 78.0, -92.5])
    return make_props(affine, shape)


def world(props: dict, index) -> np.ndarray:
    return nib.affines.apply_affine(props["affine"], np.asarray(index, dtype=np.float64))


def test_slice_axis_is_the_coarsest_voxel_axis():
    assert shifts.slice_axis_of(oblique_props()) == 2
    assert shifts.slice_axis_of(make_props(np.diag([3.0, 0.5, 0.5, 1]), (4, 8, 8))) == 0
    assert shifts.slice_axis_of(make_props(np.eye(4), (8, 8))) is None
    assert shifts.in_plane_axes(make_props(np.eye(4), (8, 8))) == (0, 1)


def test_crop_keeps_world_coordinates_of_every_kept_voxel():
    props = oblique_props()
    image = np.random.default_rng(0).random((1, *props["spatial_shape"])).astype(np.float32)
    cropped, new = shifts.crop_field_of_view(image, props, field_mm=12.0)
    # 12 mm / 0.6 mm = 20 voxels in-plane, centred: start (40 - 20) // 2 = 10 and (30 - 20) // 2 = 5
    assert cropped.shape == (1, 20, 20, 5) and new["spatial_shape"] == (20, 20, 5)
    assert np.array_equal(cropped, image[:, 10:30, 5:25, :])
    for index in [(0, 0, 0), (19, 19, 4), (7, 3, 2)]:
        old_index = np.add(index, (10, 5, 0))
        assert np.allclose(world(new, index), world(props, old_index), atol=1e-9)
    assert new["spacing"] == pytest.approx(props["spacing"])
    assert (new["qform_code"], new["sform_code"]) == (props["qform_code"], props["sform_code"])


def test_crop_wider_than_the_volume_keeps_it_whole_and_the_label_follows():
    props = oblique_props()
    label = np.zeros(props["spatial_shape"], dtype=np.int64)
    label[18:22, 14:16, 1:3] = 2
    same, new = shifts.crop_field_of_view(label, props, field_mm=500.0)
    assert np.array_equal(same, label) and np.allclose(new["affine"], props["affine"])
    image = np.zeros((1, *props["spatial_shape"]), np.float32)
    _, cropped_label, cropped = shifts.apply_shift(image, label, props, [{"kind": "crop", "field_mm": 12.0}], 0)
    assert cropped_label.shape == cropped["spatial_shape"] and cropped_label.sum() == label.sum()


def label_extent_mm(label: np.ndarray, props: dict, axis: int) -> tuple[float, float]:
    """World extent (voxel edges) of a label's foreground along one voxel axis, as signed distance
    from the world origin along that axis's direction (diagonal grids only)."""
    indices = np.nonzero(label)[axis]
    spacing = props["affine"][axis, axis]
    origin = props["affine"][axis, 3]
    return origin + (indices.min() - 0.5) * spacing, origin + (indices.max() + 0.5) * spacing


@pytest.mark.parametrize("target", [0.4, 0.9])
def test_resampled_label_block_keeps_its_world_extent(target):
    props = make_props(np.diag([0.6, 0.6, 3.0, 1.0]), (50, 40, 3))
    label = np.zeros(props["spatial_shape"], dtype=np.int64)
    label[12:30, 20:33, 1] = 1  # 10.8 mm x 7.8 mm
    resampled, new = shifts.resample_in_plane(label, props, target, order=0)
    assert new["spacing"] == pytest.approx((target, target, 3.0))
    assert new["spatial_shape"] == (round(50 * 0.6 / target), round(40 * 0.6 / target), 3)
    assert resampled.dtype == label.dtype and set(np.unique(resampled)) == {0, 1}
    for axis in (0, 1):
        before, after = label_extent_mm(label, props, axis), label_extent_mm(resampled, new, axis)
        assert np.allclose(after, before, atol=target / 2 + 1e-9), (axis, before, after)
    # the grid's centre is the same world point, and the slices are untouched
    assert np.allclose(world(new, (np.array(new["spatial_shape"]) - 1) / 2),
                       world(props, (np.array(props["spatial_shape"]) - 1) / 2))  # fmt: skip
    assert np.array_equal(np.unique(np.nonzero(resampled)[2]), [1])


def test_linear_resampling_of_a_ramp_is_exact_inside_the_grid():
    """A linear ramp in world x is reproduced by linear interpolation at every interior new voxel."""
    props = oblique_props(shape=(30, 20, 2))
    x = np.arange(30, dtype=np.float32)[:, None, None] * np.ones((1, 20, 2), np.float32)
    resampled, new = shifts.resample_in_plane(x[None], props, 0.45, order=1)
    old_index = nib.affines.apply_affine(np.linalg.inv(props["affine"]) @ new["affine"], np.zeros(3))
    expected = old_index[0] + np.arange(new["spatial_shape"][0]) * 0.45 / 0.6
    inside = (expected >= 0) & (expected <= 29)
    assert np.allclose(resampled[0, inside, 5, 1], expected[inside], atol=1e-4)
    # oblique directions are kept: only the column lengths change
    directions = new["affine"][:3, :3] / np.linalg.norm(new["affine"][:3, :3], axis=0)
    assert np.allclose(directions, props["affine"][:3, :3] / np.linalg.norm(props["affine"][:3, :3], axis=0))


def test_resampling_refuses_an_order_other_than_nearest_or_linear():
    with pytest.raises(ValueError, match="order 3"):
        shifts.resample_in_plane(np.zeros((4, 4)), make_props(np.eye(4), (4, 4)), 0.5, order=3)


def test_intensity_scale_is_exact():
    image = np.array([[[0.0, 1.0], [250.0, 1486.0]]], dtype=np.float32)
    assert np.array_equal(shifts.scale_intensity(image, 4.0), image * 4)
    assert np.array_equal(shifts.scale_intensity(image, 0.25, 100.0), image * 0.25 + 100)
    assert shifts.scale_intensity(image, 4.0).dtype == np.float32


@pytest.mark.parametrize("rician", [True, False])
def test_noise_is_seeded_and_of_the_stated_size(rician):
    image = np.full((1, 200, 200, 3), 1000.0, dtype=np.float32)
    noisy = shifts.add_noise(image, 0.05, seed=7, rician=rician)
    assert shifts.noise_sigma(image, 0.05) == pytest.approx(50.0)
    # at 20 sigma above zero a Rician magnitude is Gaussian to 0.1 %: std 50, mean 1000 + 50^2 / 2000
    assert np.std(noisy - image) == pytest.approx(50.0, rel=0.02)
    assert np.mean(noisy) == pytest.approx(1000.0 + (1.25 if rician else 0.0), abs=0.5)
    assert np.array_equal(noisy, shifts.add_noise(image, 0.05, seed=7, rician=rician))
    assert not np.array_equal(noisy, shifts.add_noise(image, 0.05, seed=8, rician=rician))
    if rician:
        assert noisy.min() >= 0  # a magnitude image


def test_apply_shift_combines_steps_and_names_an_unknown_kind():
    props = oblique_props()
    image = np.full((1, *props["spatial_shape"]), 100.0, np.float32)
    label = np.zeros(props["spatial_shape"], dtype=np.int64)
    label[15:25, 10:20, 2] = 1
    steps = [{"kind": "crop", "field_mm": 15.0}, {"kind": "resample", "spacing_mm": 0.9},
             {"kind": "intensity", "gain": 4.0, "offset": 10.0}]  # fmt: skip
    shifted, shifted_label, new = shifts.apply_shift(image, label, props, steps, seed=0)
    # 15 mm / 0.6 mm = 25 voxels -> 25 * 0.6 / 0.9 = 16.7 -> 17 voxels in-plane
    assert shifted.shape == (1, 17, 17, 5) and shifted_label.shape == (17, 17, 5)
    assert np.allclose(shifted, 410.0) and new["spacing"] == pytest.approx((0.9, 0.9, 3.5))
    with pytest.raises(ValueError, match="'blur'"):
        shifts.apply_shift(image, label, props, [{"kind": "blur"}], seed=0)


def test_a_shifted_copy_written_and_read_back_overlays_the_original(tmp_path):
    """Through io's writer and reader the shifted grid survives: a world point lands on the same label."""
    props = oblique_props()
    label = np.zeros(props["spatial_shape"], dtype=np.int64)
    label[16:24, 11:19, 2] = 2
    image = np.random.default_rng(1).random((1, *props["spatial_shape"])).astype(np.float32) * 1000
    steps = [{"kind": "crop", "field_mm": 14.0}, {"kind": "resample", "spacing_mm": 0.3}]
    shifted, shifted_label, new = shifts.apply_shift(image, label, props, steps, seed=0)
    write_image(tmp_path / "c_0000.nii.gz", shifted, new)
    write_label(tmp_path / "c.nii.gz", shifted_label, new)
    read_back, read_props = read_image(tmp_path / "c_0000.nii.gz")
    labels_back, _ = read_label(tmp_path / "c.nii.gz")
    assert np.array_equal(read_back, shifted) and np.array_equal(labels_back, shifted_label)
    assert np.allclose(read_props["affine"], new["affine"], atol=1e-4)
    centre = world(props, (19.5, 14.5, 2))  # the middle of the label block
    index = np.rint(nib.affines.apply_affine(np.linalg.inv(read_props["affine"]), centre)).astype(int)
    assert labels_back[tuple(index)] == 2
