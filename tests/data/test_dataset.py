"""Training samples, per-epoch seeding, and inference that maps back onto the native grid."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from adversarial_seg.config import ConfigError, DataConfig
from adversarial_seg.data.dataset import (
    build_training_dataset,
    native_label_values,
    prepare_case,
    probabilities_to_native,
    write_prediction,
)
from adversarial_seg.data.io import read_label
from adversarial_seg.data.layouts import discover_cases
from adversarial_seg.data.phantoms import write_prostate_phantoms
from adversarial_seg.data.transforms import (
    DataPlan,
    LoadCase,
    augmentation_transforms,
    case_item,
    default_slice_axis,
    make_plan,
    slice_with_context,
    volume_with_context,
)
from adversarial_seg.data.validate import validate_dataset
from adversarial_seg.gan.trainer import seeded_loader

from .conftest import phantom_config


def one_hot(class_indices: torch.Tensor, classes: int) -> torch.Tensor:
    """(1, *spatial) class indices -> (K, *spatial) probabilities that are exactly 0 or 1."""
    encoded = torch.nn.functional.one_hot(torch.as_tensor(class_indices)[0].long(), classes)
    return encoded.movedim(-1, 0).float()


def test_slice_axis_is_the_largest_spacing_after_reorientation():
    assert default_slice_axis(np.diag([0.6, 0.6, 3.6, 1.0])) == 2
    # Voxel axis 0 is superior with 4 mm spacing: after RAS reorientation it is axis 2.
    affine = np.array([[0, 0.5, 0, 0], [0, 0, 0.5, 0], [4.0, 0, 0, 0], [0, 0, 0, 1]])
    assert default_slice_axis(affine) == 2
    assert default_slice_axis(np.diag([1.0, 1.0, 1.0, 1.0])) == 2  # isotropic: axial


def test_volume_slices_samples_and_seeding(prostate_phantoms):
    data = phantom_config("prostate", prostate_phantoms, size=[48, 48])
    dataset = build_training_dataset(validate_dataset(data), data)
    assert (dataset.plan.model_dims, dataset.plan.slice_axis) == (2, 2)
    assert len(dataset) == 4 * 16  # every slice, tumour-free ones included
    sample = dataset[20]
    assert sample["image"].shape == (2, 48, 48) and sample["image"].dtype == torch.float32
    assert sample["label"].shape == (1, 48, 48) and sample["label"].dtype == torch.int64
    assert sample["case"] == "prostate_001" and type(sample["image"]) is torch.Tensor
    tumour_slices = sum(3 in classes for _, _, classes in dataset.sample_classes())
    assert 0 < tumour_slices < len(dataset) / 2

    first = next(iter(seeded_loader(dataset, 8, seed=7, stream=(1,), epoch=3)))
    again = next(iter(seeded_loader(dataset, 8, seed=7, stream=(1,), epoch=3)))
    later = next(iter(seeded_loader(dataset, 8, seed=7, stream=(1,), epoch=4)))
    assert first["image"].shape == (8, 2, 48, 48) and first["label"].shape == (8, 1, 48, 48)
    assert torch.equal(first["image"], again["image"]) and first["case"] == again["case"]
    assert not torch.equal(first["image"], later["image"])
    assert set(first["label"].unique().tolist()) <= {0, 1, 2, 3}


def test_preprocessing_normalises_each_channel(prostate_phantoms):
    data = phantom_config("prostate", prostate_phantoms)
    dataset = build_training_dataset(discover_cases(data)[:1], data, augment=())
    image = torch.as_tensor(dataset.preprocessed[0]["image"])
    assert image.shape == (2, 96, 96, 16)
    torch.testing.assert_close(image.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-4, rtol=0)
    torch.testing.assert_close(image.std(dim=(1, 2, 3), unbiased=False), torch.ones(2), atol=1e-3, rtol=0)


def test_oblique_lps_volume_inverts_exactly_and_writes_native_geometry(tmp_path):
    root = write_prostate_phantoms(tmp_path / "p", cases=1, seed=2, oblique=True, ras=False)
    data = phantom_config("prostate", root)
    records = validate_dataset(data)
    plan = make_plan(data, records)
    case = prepare_case(records[0], plan)
    labels_in_training = LoadCase(plan)(case_item(records[0]))
    preprocess = case.preprocess
    training_label = preprocess({"label": labels_in_training["label"]})["label"]
    assert case.image.shape[1:] == training_label.shape[1:]
    # An LPS file becomes RAS: the preprocessed array is the native one flipped in x and y.
    native_labels, native_props = read_label(records[0].label_path)
    np.testing.assert_array_equal(np.asarray(training_label[0]), native_labels[::-1, ::-1])

    probabilities = one_hot(training_label, 4)
    native = probabilities_to_native(probabilities, case)
    assert native.shape == (4, 96, 96, 16)
    np.testing.assert_array_equal(native_label_values(native, case), native_labels)
    out = tmp_path / f"pred/{case.case_id}{case.suffix}"
    write_prediction(out, native, case)
    written = nib.load(out)
    np.testing.assert_allclose(written.affine, native_props["affine"], atol=1e-5)
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), native_labels)


def test_resized_2d_images_map_back_to_native_size(ph2_like, tmp_path):
    data = DataConfig(root=ph2_like, labels={"background": 0, "lesion": 255}, size=[32, 32])
    records = validate_dataset(data)
    dataset = build_training_dataset(records, data)
    assert dataset[0]["image"].shape == (3, 32, 32) and len(dataset) == 6
    case = prepare_case(records[0], dataset.plan)
    label = torch.as_tensor(dataset.preprocessed[0]["label"])
    # a model's output is a plain tensor without MONAI's metadata
    native = probabilities_to_native(one_hot(label, 2).as_tensor(), case)
    assert native.shape == (2, 12, 20)
    reference, _ = read_label(records[0].label_path)
    np.testing.assert_array_equal(native_label_values(native, case), reference)  # 0/255 again
    write_prediction(tmp_path / f"{case.case_id}{case.suffix}", native, case)
    np.testing.assert_array_equal(read_label(tmp_path / "IMD002.png")[0], reference)


def test_channel_on_another_grid_is_resampled_onto_the_reference(tmp_path):
    """ADC holds a linear function of world x; after resampling it must equal that function on
    the T2 grid (linear interpolation reproduces a linear function exactly inside the grid)."""
    root = tmp_path / "nn"
    t2_affine = np.diag([1.0, 1.0, 3.0, 1.0])
    adc_affine = np.diag([2.0, 2.0, 3.0, 1.0])
    adc_affine[:3, 3] = [0.5, 0.5, 0.0]  # voxel centres of a 2x coarser grid over the same field
    x_world = (np.arange(4) * 2.0 + 0.5)[:, None, None] * np.ones((4, 4, 3))
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    nib.save(nib.Nifti1Image(np.ones((8, 8, 3), np.float32), t2_affine), root / "imagesTr/c_0000.nii.gz")
    nib.save(nib.Nifti1Image(x_world.astype(np.float32), adc_affine), root / "imagesTr/c_0001.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 3), np.uint8), t2_affine), root / "labelsTr/c.nii.gz")
    data = DataConfig(root=root, layout="nnunet", channels=["T2", "ADC"], reference_channel="T2")
    records = validate_dataset(data)
    loaded = LoadCase(make_plan(data, records))(case_item(records[0]))
    adc_on_t2 = np.asarray(loaded["image"][1])
    assert adc_on_t2.shape == (8, 8, 3)
    expected = np.arange(8, dtype=np.float32)  # world x of the T2 voxel centres
    np.testing.assert_allclose(adc_on_t2[1:7, 3, 1], expected[1:7], atol=1e-4)


def test_three_d_patches_when_size_has_three_entries(prostate_phantoms):
    data = phantom_config("prostate", prostate_phantoms, size=[32, 32, 8], spacing=[1.2, 1.2, 3.6])
    dataset = build_training_dataset(discover_cases(data)[:2], data)
    assert dataset.plan.model_dims == 3 and len(dataset) == 2
    volume = dataset.preprocessed[0]["image"]
    assert volume.shape[1] in (48, 49) and volume.shape[3] == 16  # 96 x 0.6 mm at 1.2 mm
    np.testing.assert_allclose(np.linalg.norm(np.asarray(volume.affine)[:3, :3], axis=0), (1.2, 1.2, 3.6), atol=1e-5)
    sample = dataset[0]
    assert sample["image"].shape == (2, 32, 32, 8) and sample["label"].shape == (1, 32, 32, 8)


def test_context_slices_clamp_at_the_edges_and_match_the_whole_volume_version():
    # Slice k of channel c holds the value 10 * c + k, so every output channel names its slice.
    volume = (10 * torch.arange(2.0)[:, None, None, None] + torch.arange(5.0)).expand(2, 3, 3, 5).clone()
    first = slice_with_context(volume, axis=2, position=0, context=1)
    last = slice_with_context(volume, axis=2, position=4, context=1)
    assert first.shape == (6, 3, 3)
    assert first[:, 0, 0].tolist() == [0, 0, 1, 10, 10, 11]  # channel-major; the edge slice repeats
    assert last[:, 0, 0].tolist() == [3, 4, 4, 13, 14, 14]
    whole = volume_with_context(volume, axis=2, context=2)
    assert whole.shape == (10, 3, 3, 5)
    for k in range(5):
        assert torch.equal(whole[..., k], slice_with_context(volume, 2, k, 2))


def test_context_slices_widen_the_samples_and_the_model_input(prostate_phantoms):
    data = phantom_config("prostate", prostate_phantoms, size=[48, 48], context_slices=1)
    records = validate_dataset(data)
    dataset = build_training_dataset(records[:2], data, augment=())
    assert dataset.plan.in_channels == 2 and dataset.plan.model_in_channels == 6
    sample = dataset[5]  # case 0, slice 5: T2 slices 4, 5, 6 then ADC slices 4, 5, 6
    volume = dataset.preprocessed[0]["image"].as_tensor()
    assert sample["image"].shape == (6, 48, 48)
    assert torch.equal(sample["image"][1], volume[0, :, :, 5]) and torch.equal(sample["image"][5], volume[1, :, :, 6])
    # The plan round-trips through data_plan.json; plans written before the key read as 0.
    assert DataPlan.from_json(dataset.plan.to_json()).context_slices == 1
    body = dataset.plan.to_json()
    body.pop("context_slices")
    assert DataPlan.from_json(body).model_in_channels == 2


def test_context_slices_are_refused_for_2d_images_and_3d_patches(prostate_phantoms, skin_phantoms):
    for data in (
        phantom_config("skin", skin_phantoms, context_slices=1),
        phantom_config("prostate", prostate_phantoms, size=[32, 32, 8], context_slices=1),
    ):
        with pytest.raises(ConfigError, match="data.context_slices 1: neighbouring slices exist only"):
            make_plan(data, discover_cases(data))


def test_flip_axes_choose_what_the_flip_augmentation_mirrors(prostate_phantoms):
    data = phantom_config("prostate", prostate_phantoms, size=[48, 48])
    plan = make_plan(data, discover_cases(data))
    ramp = torch.arange(48.0)
    sample = {"image": (ramp[:, None] * 100 + ramp[None, :])[None].clone()}  # value 100 * row + column
    for axes, may_flip in (([0], {0}), ([1], {1}), (None, {0, 1})):
        flips = augmentation_transforms(plan, ("flip",), axes)
        seen = set()
        for seed in range(12):
            flips.set_random_state(seed=seed)
            out = flips(dict(sample))["image"][0]
            seen |= {0} if out[0, 0] >= 4700 else set()  # row 47 came first
            seen |= {1} if out[0, 0] % 100 == 47 else set()  # column 47 came first
        assert seen == may_flip
    with pytest.raises(ConfigError, match=r"train.flip_axes \[2\]: a 2D training sample has axes 0..1"):
        augmentation_transforms(plan, ("flip",), [2])


def test_epoch_samples_keep_every_foreground_slice_and_a_seeded_share_of_the_empty_ones(prostate_phantoms):
    data = phantom_config("prostate", prostate_phantoms, size=[48, 48])
    dataset = build_training_dataset(validate_dataset(data)[:2], data, augment=("flip",))
    classes = dataset.sample_classes()
    empty = [i for i, (_, _, present) in enumerate(classes) if present == (0,)]
    assert 0 < len(empty) < len(dataset)
    assert dataset.epoch_samples(1.0, seed=0) is dataset
    none = dataset.epoch_samples(0.0, seed=0)
    assert sorted(none.indices) == [i for i in range(len(dataset)) if i not in empty]
    half = dataset.epoch_samples(0.5, seed=0)
    kept = set(half.indices) & set(empty)
    assert len(kept) == round(0.5 * len(empty)) and set(none.indices) <= set(half.indices)
    assert half.indices == dataset.epoch_samples(0.5, seed=0).indices  # seeded
    assert half.indices != dataset.epoch_samples(0.5, seed=1).indices  # drawn anew per epoch seed
    # The loader seeds the augmentation through the subset exactly as through the whole dataset.
    first = next(iter(seeded_loader(half, 4, seed=7, stream=(0,), epoch=2)))
    again = next(iter(seeded_loader(dataset.epoch_samples(0.5, seed=0), 4, seed=7, stream=(0,), epoch=2)))
    assert torch.equal(first["image"], again["image"])


def test_epoch_samples_repeat_a_small_training_set_to_the_whole_folds_length(prostate_phantoms):
    """train.fraction 0.4 gives repeat 2.5: every sample twice and half of them a third time."""
    data = phantom_config("prostate", prostate_phantoms, size=[48, 48])
    dataset = build_training_dataset(validate_dataset(data)[:1], data, augment=())
    n = len(dataset)
    epoch = dataset.epoch_samples(1.0, seed=0, repeat=2.5)
    counts = np.bincount(epoch.indices, minlength=n)
    assert len(epoch) == round(2.5 * n) and counts.min() >= 2 and counts.max() <= 3
    assert (counts == 3).sum() == round(2.5 * n) - 2 * n
    assert epoch.indices == dataset.epoch_samples(1.0, seed=0, repeat=2.5).indices
    assert epoch.indices != dataset.epoch_samples(1.0, seed=1, repeat=2.5).indices
    foreground = set(dataset.epoch_samples(0.0, seed=0).indices)
    assert set(dataset.epoch_samples(0.0, seed=0, repeat=2).indices) == foreground  # both rules at once
    assert len(dataset.epoch_samples(0.0, seed=0, repeat=2)) == 2 * len(foreground)


def test_three_d_samples_are_patches_with_or_without_augmentation(tmp_path):
    """Volumes of different depths (6 and 9 slices) give patch-sized samples that batch together:
    random patches for training (also with train.augment false), the central patch for the monitor."""
    root = tmp_path / "mixed"
    write_prostate_phantoms(root, cases=1, seed=1, size=(40, 40, 6))
    deeper = write_prostate_phantoms(tmp_path / "deeper", cases=1, seed=2, size=(40, 40, 9))
    for folder in ("imagesTr", "labelsTr"):
        for path in (deeper / folder).iterdir():
            path.rename(root / folder / path.name.replace("prostate_000", "prostate_009"))
    rows = (root / "cases.csv").read_text().splitlines()
    (root / "cases.csv").write_text("\n".join([*rows, rows[1].replace("prostate_000", "prostate_009")]) + "\n")
    data = phantom_config("prostate", root, size=[32, 32, 4])
    records = validate_dataset(data)
    depths = {r.case_id: nib.load(r.image_paths[0]).shape[2] for r in records}
    assert sorted(depths.values()) == [6, 9]
    for random_patches in (True, False):
        dataset = build_training_dataset(records, data, augment=(), random_patches=random_patches)
        batch = next(iter(seeded_loader(dataset, 2, seed=0, stream=(0,), epoch=0, shuffle=False)))
        assert batch["image"].shape == (2, 2, 32, 32, 4) and batch["label"].shape == (2, 1, 32, 32, 4)
    volume = dataset.preprocessed[0]["image"].as_tensor()
    x0, y0, z0 = ((s - p) // 2 for s, p in zip(volume.shape[1:], (32, 32, 4)))
    assert torch.equal(dataset[0]["image"], volume[:, x0 : x0 + 32, y0 : y0 + 32, z0 : z0 + 4])


def test_normalize_nonzero_leaves_padding_out_of_the_z_score(prostate_phantoms):
    """96 x 96 phantom slices padded to 128 x 128: with data.normalize_nonzero the padding stays 0 and
    the 96 x 96 interior alone has mean 0 and std 1; without it the padding enters the statistics,
    so the interior's mean moves above 0 (the padding is darker than the phantom's mean)."""
    spacing = list(nib.load(sorted((prostate_phantoms / "imagesTr").glob("*_0000.nii.gz"))[0]).header.get_zooms())
    interiors = {}
    for nonzero in (False, True):
        data = phantom_config(
            "prostate", prostate_phantoms, spacing=spacing, size=[128, 128], normalize_nonzero=nonzero
        )
        dataset = build_training_dataset(discover_cases(data)[:1], data, augment=())
        assert dataset.plan.normalize_nonzero is nonzero
        image = torch.as_tensor(dataset.preprocessed[0]["image"])
        assert image.shape == (2, 128, 128, 16)
        interior = image[:, 16:112, 16:112]
        border = torch.ones(image.shape[1:3], dtype=torch.bool)
        border[16:112, 16:112] = False
        if nonzero:
            assert torch.count_nonzero(image[:, border]) == 0
            torch.testing.assert_close(interior.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-4, rtol=0)
            torch.testing.assert_close(interior.std(dim=(1, 2, 3), unbiased=False), torch.ones(2), atol=1e-3, rtol=0)
        interiors[nonzero] = interior.mean(dim=(1, 2, 3))
    assert (interiors[False] > 0.1).all()


def test_normalize_nonzero_is_refused_for_2d_images(skin_phantoms):
    data = phantom_config("skin", skin_phantoms, normalize_nonzero=True)
    with pytest.raises(ConfigError, match="data.normalize_nonzero is for volumes"):
        make_plan(data, discover_cases(data))


def test_fov_augmentation_keeps_one_box_of_image_and_label(prostate_phantoms):
    """train.augment fov: outside one box of 60 to 100 % of each in-plane extent, image and label are
    0 (the same box for both and for every channel); it fires in about FOV_PROB of the samples."""
    from adversarial_seg.data.transforms import FOV_PROB, FOV_SHARE

    data = phantom_config("prostate", prostate_phantoms, size=[50, 40])
    plan = make_plan(data, discover_cases(data))
    fov = augmentation_transforms(plan, ("fov",))
    fov.set_random_state(seed=0)
    fired = 0
    for _ in range(200):
        out = fov({"image": torch.full((2, 50, 40), 3.0), "label": torch.ones(1, 50, 40)})
        kept = out["image"][0] != 0
        assert torch.equal(kept, out["image"][1] != 0) and torch.equal(kept, out["label"][0] != 0)
        rows, cols = kept.any(1).nonzero(), kept.any(0).nonzero()
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert int(kept.sum()) == height * width  # one box
        assert round(FOV_SHARE * 50) <= height <= 50 and round(FOV_SHARE * 40) <= width <= 40
        fired += int(kept.sum()) < 50 * 40
    assert abs(fired / 200 - FOV_PROB) < 0.1
    with pytest.raises(ConfigError, match="train.augment fov needs a fixed sample size"):
        augmentation_transforms(make_plan(phantom_config("prostate", prostate_phantoms), discover_cases(data)), ["fov"])
