"""Transform definitions shared by training and inference (one place, so inference can invert them).

Pipeline for one case (MONAI dictionary transforms, keys ``image`` and ``label``):

1. ``LoadCase`` (deterministic): reads the channel files with ``read_image``, resamples channels
   on other grids onto the reference channel's grid (MONAI ``ResampleToMatch``), reads the label
   and maps label values to class indices. ``image``: MetaTensor ``(C, *spatial)`` carrying the
   native affine; ``label``: ``(1, *spatial)`` class indices.
2. ``preprocessing_transforms(plan)`` (deterministic, invertible, cached once):
   volumes: ``Orientationd`` to RAS, then ``Spacingd`` to ``data.spacing`` or ``Resized`` to
   ``data.size``; 2D images: ``Resized`` to ``data.size``; then per-channel z-score.
3. ``patch_transform`` (3D: a random patch for training, the central one for monitoring), then
   ``augmentation_transforms(plan, kinds)`` (random, per training sample): of ``train.augment``,
   ``flip`` (each of ``train.flip_axes``, by default both in-plane axes), ``rotate`` (small,
   in-plane), ``intensity`` (scale and shift).

2D vs 3D switch (``DataPlan``): 2D image files always train in 2D. Volumes train as 2D slices
along ``slice_axis`` unless ``data.size`` has three entries, which means 3D training on patches
of that size (volumes are padded up to it). ``slice_axis`` counts axes after reorientation to RAS
(0 sagittal, 1 coronal, 2 axial); when ``data.slice_axis`` is unset it is the axis with the
largest voxel spacing (ties: the last, i.e. axial).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import (
    CenterSpatialCropd,
    Compose,
    NormalizeIntensityd,
    Orientationd,
    RandCoarseDropoutd,
    RandFlipd,
    RandRotated,
    RandScaleIntensityd,
    RandShiftIntensityd,
    RandSpatialCropd,
    ResampleToMatch,
    Resized,
    ResizeWithPadOrCropd,
    Spacingd,
    SpatialPadd,
    Transform,
)
from monai.utils import MetaKeys, SpaceKeys

from ..config import AUGMENTATIONS, ConfigError
from .io import read_image, read_label
from .labels import LabelSet
from .layouts import CaseRecord

KEYS = ("image", "label")
# Small in-plane rotation (radians, about 15 degrees): prostate and skin images are not rotation-invariant.
MAX_ROTATION = 0.26
# fov: how often, and the smallest kept share of each in-plane extent (160 px at 0.75 mm = 120 mm
# down to 72 mm; the simulated tight scanner of docs/results.md acquires 110 mm).
FOV_PROB, FOV_SHARE = 0.3, 0.6
# Image: Gaussian anti-aliasing before a bilinear downsizing; label: nearest. Inverting a Resized
# reuses its mode, so probabilities go back to the native grid bilinearly (``area`` would replicate
# pixels there and leave blocky boundaries).
RESIZE_MODES = {"mode": ("bilinear", "nearest"), "anti_aliasing": (True, False)}


@dataclass(frozen=True)
class DataPlan:
    """Everything the transforms need, resolved once per dataset from the config and the files.

    ``file_dims``: spatial dims of the image files (2 for PNG, 3 for volumes). ``model_dims``: 2 or
    3, what the network sees. ``slice_axis``: for volumes in 2D, in the RAS-oriented array (else
    None). ``size`` / ``spacing``: from ``data.size`` / ``data.spacing``. ``patch_size``: 3D only.
    ``in_channels``: channels of a case, over all of its channel files. ``context_slices``: 2.5D,
    a 2D model on volumes sees each slice with that many neighbours on either side as extra
    channels (``model_in_channels``). ``normalize_nonzero``: ``data.normalize_nonzero`` (volumes).

    A run stores its plan (``RUN/data_plan.json``, ``to_json`` / ``from_json``) so that
    ``seg-predict`` rebuilds the training transforms without the training data.
    """

    labels: LabelSet
    file_dims: int
    model_dims: int
    slice_axis: int | None
    size: tuple[int, ...] | None
    spacing: tuple[float, ...] | None
    patch_size: tuple[int, ...] | None
    reference_index: int = 0
    in_channels: int = 1
    context_slices: int = 0
    normalize_nonzero: bool = False

    @property
    def model_in_channels(self) -> int:
        """Channels the network takes: each file channel with its ``context_slices`` neighbours on
        either side of a slice (2.5D), so ``in_channels * (2 * context_slices + 1)``."""
        return self.in_channels * (2 * self.context_slices + 1)

    def to_json(self) -> dict:
        body = dataclasses.asdict(self)
        body["labels"] = {"labels": dict(zip(self.labels.names, self.labels.values)),
                          "regions": {k: list(v) for k, v in self.labels.regions.items()},
                          "mask_threshold": self.labels.mask_threshold}  # fmt: skip
        return body

    @classmethod
    def from_json(cls, body: dict) -> DataPlan:
        label_set = LabelSet.from_mapping(**body.get("labels", body.get("scheme")))  # "scheme": runs before the rename
        tuples = {k: None if body[k] is None else tuple(body[k]) for k in ("size", "spacing", "patch_size")}
        rest = {k: v for k, v in body.items() if k not in ("labels", "scheme", *tuples)}
        return cls(labels=label_set, **tuples, **rest)


def ras_spacing(affine: np.ndarray) -> tuple[float, ...]:
    """Voxel spacing (mm) listed along the RAS-reoriented axes (what ``Orientationd('RAS')`` yields)."""
    voxel_spacing = nib.affines.voxel_sizes(affine)
    orientation = nib.orientations.io_orientation(affine)  # row i: world axis of voxel axis i
    spacing = [0.0, 0.0, 0.0]
    for voxel_axis, (world_axis, _) in enumerate(orientation):
        spacing[int(world_axis)] = float(voxel_spacing[voxel_axis])
    return tuple(spacing)


def default_slice_axis(affine: np.ndarray) -> int:
    """The RAS axis with the largest spacing; ties go to the last (axial for isotropic data)."""
    spacing = ras_spacing(affine)
    return max(range(3), key=lambda axis: (round(spacing[axis], 3), axis))


def make_plan(data_cfg, records: list[CaseRecord]) -> DataPlan:
    """Resolve the 2D/3D switch, slice axis and reference channel from config + first case."""
    from .validate import reference_channel_index

    label_set = LabelSet.from_config(data_cfg)
    reference = reference_channel_index(data_cfg, data_cfg.channels)
    first = records[0]
    loaded = [read_image(path)[1] for path in first.image_paths]
    props = loaded[min(reference, len(loaded) - 1)]
    in_channels = sum(p["channels"] for p in loaded)
    file_dims = len(props["spatial_shape"])
    size = tuple(int(s) for s in data_cfg.size) if data_cfg.size else None
    spacing = tuple(float(s) for s in data_cfg.spacing) if data_cfg.spacing else None
    context = data_cfg.context_slices
    if context and (file_dims == 2 or (size is not None and len(size) == 3)):
        kind = "2D images" if file_dims == 2 else "3D patches (data.size has 3 entries)"
        raise ConfigError(
            f"data.context_slices {context}: neighbouring slices exist only for 2D slices of volumes, not for "
            f"{kind}; set data.context_slices to 0"
        )
    if data_cfg.normalize_nonzero and file_dims == 2:
        raise ConfigError(
            "data.normalize_nonzero is for volumes (zero padding of a small field of view); 2D images keep "
            "their black pixels in the z-score: set it to false"
        )
    nonzero = {"normalize_nonzero": data_cfg.normalize_nonzero}
    if file_dims == 2:
        if size is not None and len(size) != 2:
            raise ConfigError(f"data.size {list(size)} must have 2 entries (H, W) for 2D images; fix data.size")
        return DataPlan(label_set, 2, 2, None, size, None, None, reference, in_channels)
    if size is not None and len(size) == 3:
        return DataPlan(label_set, 3, 3, None, None, spacing, size, reference, in_channels, **nonzero)
    if size is not None and len(size) != 2:
        raise ConfigError(f"data.size {list(size)}: give 2 entries (2D slices) or 3 (3D patches)")
    axis = data_cfg.slice_axis if data_cfg.slice_axis is not None else default_slice_axis(props["affine"])
    return DataPlan(
        label_set, 3, 2, int(axis), size, spacing, None, reference, in_channels, data_cfg.context_slices, **nonzero
    )


def context_indices(position: int | torch.Tensor, count: int, context: int) -> torch.Tensor:
    """Slice indices ``position - context .. position + context``, clamped into ``[0, count)``: at the
    first and last slice the edge slice stands in for the missing neighbour.

    >>> context_indices(0, 5, 1).tolist(), context_indices(4, 5, 1).tolist()
    ([0, 0, 1], [3, 4, 4])
    """
    offsets = torch.arange(-context, context + 1)
    return (torch.as_tensor(position).reshape(-1, 1) + offsets).clamp(0, count - 1).squeeze(0)


def slice_with_context(volume: torch.Tensor, axis: int, position: int, context: int) -> torch.Tensor:
    """One slice of ``volume`` (C, *spatial) along spatial ``axis`` with its neighbours as channels:
    (C * (2 * context + 1), *in-plane), channel-major (each channel's slices -context..context)."""
    slab = volume.index_select(1 + axis, context_indices(position, volume.shape[1 + axis], context))
    return slab.movedim(1 + axis, 1).flatten(0, 1)


def volume_with_context(volume: torch.Tensor, axis: int, context: int) -> torch.Tensor:
    """Every slice's ``slice_with_context`` at once: (C, *spatial) -> (C * (2 * context + 1), *spatial),
    so a 2D model sliding along ``axis`` (``SliceInferer``) sees what it saw in training."""
    count = volume.shape[1 + axis]
    shifted = [volume.index_select(1 + axis, context_indices(torch.arange(count), count, context)[:, k])
               for k in range(2 * context + 1)]  # fmt: skip
    return torch.stack(shifted, dim=1).flatten(0, 1)


# --------------------------------------------------------------------------- loading


def case_item(record: CaseRecord) -> dict:
    """The dataset item a ``LoadCase`` reads (plain data, cheap to copy into workers)."""
    return {
        "case": record.case_id,
        "image_paths": [str(p) for p in record.image_paths],
        "label_path": None if record.label_path is None else str(record.label_path),
    }


def _meta_tensor(array: np.ndarray, props: dict) -> MetaTensor:
    return MetaTensor(
        torch.from_numpy(np.ascontiguousarray(array)),
        affine=torch.as_tensor(props["affine"], dtype=torch.float64),
        # Our affines are RAS (io.py converts ITK's LPS at the edge); MONAI reads the space from meta.
        meta={
            "filename_or_obj": props.get("path", ""),
            "spatial_shape": props["spatial_shape"],
            MetaKeys.SPACE: SpaceKeys.RAS,
        },
    )


class LoadCase(Transform):
    """``case_item`` dict -> {"case", "image": (C, *spatial), "label": (1, *spatial) class indices,
    "props": native geometry of the reference channel}. Deterministic: a MONAI ``Transform`` (not
    random), so ``CacheDataset`` caches through it."""

    def __init__(self, plan: DataPlan):
        self.plan = plan
        self._resample = ResampleToMatch(mode="bilinear", padding_mode="border")

    def __call__(self, item: dict) -> dict:
        loaded = [read_image(Path(p)) for p in item["image_paths"]]
        reference = min(self.plan.reference_index, len(loaded) - 1)
        reference_array, reference_props = loaded[reference]
        destination = _meta_tensor(reference_array[:1], reference_props)
        channels = []
        for array, props in loaded:
            tensor = _meta_tensor(array, props)
            on_other_grid = tuple(props["spatial_shape"]) != tuple(reference_props["spatial_shape"]) or not (
                np.allclose(props["affine"], reference_props["affine"], atol=1e-3)
            )
            if on_other_grid and self.plan.file_dims == 3:
                tensor = self._resample(tensor, destination)
            channels.append(torch.as_tensor(tensor))
        image = _meta_tensor(torch.cat(channels).numpy(), reference_props)
        out = {"case": item["case"], "image": image, "props": reference_props}
        if item.get("label_path"):
            label_set = self.plan.labels
            labels, _ = read_label(Path(item["label_path"]), label_set.mask_threshold, label_set.foreground_value)
            out["label"] = _meta_tensor(label_set.to_class_indices(labels)[None].astype(np.float32), reference_props)
        return out


# --------------------------------------------------------------------------- transform definitions


def preprocessing_transforms(plan: DataPlan) -> Compose:
    """Deterministic, invertible preprocessing (keys ``image`` and optional ``label``)."""
    common = {"keys": KEYS, "allow_missing_keys": True}
    steps = []
    if plan.file_dims == 3:
        steps.append(Orientationd(axcodes="RAS", labels=None, **common))
        if plan.spacing is not None:
            steps.append(Spacingd(pixdim=plan.spacing, mode=("bilinear", "nearest"), **common))
        if plan.model_dims == 2 and plan.size is not None:
            in_plane = list(plan.size)
            in_plane.insert(plan.slice_axis, -1)  # -1 keeps the number of slices
            if plan.spacing is not None:  # resampled already: pad or crop to a common in-plane size
                steps.append(ResizeWithPadOrCropd(spatial_size=in_plane, **common))
            else:
                steps.append(Resized(spatial_size=in_plane, **RESIZE_MODES, **common))
        if plan.model_dims == 3:
            steps.append(SpatialPadd(spatial_size=plan.patch_size, **common))
    elif plan.size is not None:
        steps.append(Resized(spatial_size=plan.size, **RESIZE_MODES, **common))
    # z-score per channel; for 8-bit RGB this equals scaling to [0, 1] and then z-scoring. With
    # normalize_nonzero the statistics skip zeros (padding), which stay 0: the mean intensity.
    steps.append(
        NormalizeIntensityd(keys="image", nonzero=plan.normalize_nonzero, channel_wise=True, allow_missing_keys=True)
    )
    return Compose(steps)


def sample_flip_axes(plan: DataPlan, configured: Sequence[int] | None) -> tuple[int, ...]:
    """Spatial axes of a training sample that ``flip`` mirrors (``train.flip_axes``; default both
    in-plane axes, i.e. 0 and 1). A 2D sample of a RAS volume has axes (left-right, anterior-posterior)
    for axial slices; mirroring anterior-posterior swaps where posterior structures lie."""
    if configured is None:
        return (0, 1)
    axes = tuple(sorted(set(int(a) for a in configured)))
    if any(a >= plan.model_dims for a in axes):
        raise ConfigError(
            f"train.flip_axes {list(configured)}: a {plan.model_dims}D training sample has axes "
            f"0..{plan.model_dims - 1}; remove the others"
        )
    return axes


def patch_transform(plan: DataPlan, random: bool) -> Transform | None:
    """How a 3D sample is cut from its (padded) volume: a random ``patch_size`` crop for training,
    the central one for the per-epoch monitor, so every sample of a batch has one size whatever the
    volumes' shapes. None for 2D samples."""
    if plan.model_dims != 3:
        return None
    common = {"keys": KEYS, "allow_missing_keys": True}
    if random:
        return RandSpatialCropd(roi_size=plan.patch_size, random_size=False, **common)
    return CenterSpatialCropd(roi_size=plan.patch_size, **common)


def augmentation_transforms(
    plan: DataPlan, kinds: Sequence[str] = AUGMENTATIONS, flip_axes: Sequence[int] | None = None
) -> Compose:
    """Random training augmentation on one sample: (C, H, W) slices/images or (C, X, Y, Z) patches.

    ``kinds``: which of ``flip``, ``rotate``, ``intensity``, ``fov`` to apply (``train.augment``);
    ``flip_axes``: ``train.flip_axes`` (see ``sample_flip_axes``).
    """
    common = {"keys": KEYS, "allow_missing_keys": True}
    steps = []
    if plan.model_dims == 3:
        rotation = {"range_z": MAX_ROTATION}  # about the axial (superior) axis of the RAS volume
    else:
        rotation = {"range_x": MAX_ROTATION}  # the only angle of a 2D rotation
    if "flip" in kinds:
        steps += [RandFlipd(spatial_axis=axis, prob=0.5, **common) for axis in sample_flip_axes(plan, flip_axes)]
    if "rotate" in kinds:
        steps.append(RandRotated(prob=0.5, mode=("bilinear", "nearest"), padding_mode="zeros", keep_size=True,
                                 **rotation, **common))  # fmt: skip
    if "intensity" in kinds:
        steps += [RandScaleIntensityd(keys="image", factors=0.1, prob=0.5),
                  RandShiftIntensityd(keys="image", offsets=0.1, prob=0.5)]  # fmt: skip
    if "fov" in kinds:
        steps.append(field_of_view_transform(plan))
    return Compose(steps)


def field_of_view_transform(plan: DataPlan) -> Transform:
    """``fov``: with probability FOV_PROB, a scanner's tighter field of view - the sample keeps one
    random box of FOV_SHARE to all of each in-plane extent (every slice of a 3D patch), and image
    and label are 0 outside it, as a small acquisition padded to the training size looks after
    ``data.normalize_nonzero`` (padding 0, label background)."""
    sample = plan.patch_size if plan.model_dims == 3 else plan.size
    if sample is None:
        raise ConfigError("train.augment fov needs a fixed sample size: set data.size")
    in_plane = sample if plan.model_dims == 2 else sample[:2]
    smallest = [max(1, round(FOV_SHARE * n)) for n in in_plane] + list(sample[len(in_plane) :])
    return RandCoarseDropoutd(keys=KEYS, holes=1, spatial_size=smallest, max_spatial_size=list(sample),
                              dropout_holes=False, fill_value=0, prob=FOV_PROB, allow_missing_keys=True)  # fmt: skip
