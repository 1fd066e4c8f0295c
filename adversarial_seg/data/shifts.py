"""Simulated scanner shifts: another hospital's field of view, spacing, intensity scale and noise.

Pure functions on ``(array, props)`` as ``io.read_image`` / ``io.read_label`` return them: an
image is ``(C, *spatial)`` float32, a label map ``(*spatial)`` integers; the last
``len(props["spatial_shape"])`` axes of an array are spatial, leading axes pass through. A
geometric shift returns new ``props`` whose affine maps every voxel of the new grid to the world
point (RAS mm) it samples, so ``io.write_image`` / ``io.write_label`` write a copy that overlays
the original in any viewer. Labels take the same geometric change with nearest-neighbour
sampling; intensity shifts apply to images only.

"In-plane" means the voxel axes other than the slice axis, the voxel axis with the largest
spacing (the 3-4 mm one of an axial prostate T2; ties: the last). A 2D image is all in-plane.

Example:
    >>> import numpy as np
    >>> props = {"affine": np.diag([0.5, 0.5, 3.0, 1.0]), "spatial_shape": (8, 8, 2), "spacing": (0.5, 0.5, 3.0)}
    >>> cropped, new = crop_field_of_view(np.zeros((1, 8, 8, 2), np.float32), props, field_mm=2.0)
    >>> cropped.shape, new["affine"][:3, 3].tolist()
    ((1, 4, 4, 2), [1.0, 1.0, 0.0])
"""

from __future__ import annotations

from collections.abc import Sequence

import nibabel as nib
import numpy as np
from scipy import ndimage

SHIFT_KINDS = ("crop", "resample", "intensity", "noise")


def slice_axis_of(props: dict) -> int | None:
    """The voxel axis with the largest spacing of a 3D grid (ties: the last), None for a 2D grid."""
    if len(props["spatial_shape"]) < 3:
        return None
    spacing = grid_spacing(props["affine"], len(props["spatial_shape"]))
    return int(len(spacing) - 1 - np.argmax(spacing[::-1]))


def in_plane_axes(props: dict, slice_axis: int | None = None) -> tuple[int, ...]:
    """Spatial voxel axes (0-based, of the spatial axes) other than ``slice_axis`` (default: ``slice_axis_of``)."""
    ndim = len(props["spatial_shape"])
    axis = slice_axis_of(props) if slice_axis is None else slice_axis
    return tuple(a for a in range(ndim) if a != axis)


def grid_spacing(affine: np.ndarray, ndim: int) -> np.ndarray:
    """Voxel sizes (mm) of the first ``ndim`` voxel axes of a 4x4 affine (its column norms)."""
    return np.asarray(nib.affines.voxel_sizes(np.asarray(affine, dtype=np.float64))[:ndim], dtype=np.float64)


def regrid_props(props: dict, voxel_to_old: np.ndarray, spatial_shape: Sequence[int]) -> dict:
    """A copy of ``props`` for a new grid whose voxel ``v`` is old voxel ``voxel_to_old @ v``.

    ``voxel_to_old``: 4x4 (homogeneous, spatial axes first; 2D grids embed in 3D). The new affine is
    ``old affine @ voxel_to_old``; ``path`` is dropped (the copy is not that file).
    """
    ndim = len(spatial_shape)
    affine = np.asarray(props["affine"], dtype=np.float64) @ voxel_to_old
    new = {key: value for key, value in props.items() if key != "path"}
    new.update(
        affine=affine,
        spacing=tuple(float(s) for s in grid_spacing(affine, ndim)),
        spatial_shape=tuple(int(s) for s in spatial_shape),
    )
    return new


def _spatial_check(array: np.ndarray, props: dict) -> int:
    """Number of leading (channel) axes; ValueError when the array's trailing axes are not the grid."""
    ndim = len(props["spatial_shape"])
    if tuple(array.shape[array.ndim - ndim :]) != tuple(props["spatial_shape"]):
        raise ValueError(
            f"array of shape {array.shape} does not end in the grid's spatial shape {tuple(props['spatial_shape'])}; "
            "pass the image (C, *spatial) or label (*spatial) read with these props"
        )
    return array.ndim - ndim


def crop_field_of_view(
    array: np.ndarray, props: dict, field_mm: float, slice_axis: int | None = None
) -> tuple[np.ndarray, dict]:
    """Crop the in-plane axes to about ``field_mm`` mm around the volume centre (a tight scanner FOV).

    Each in-plane axis keeps ``round(field_mm / spacing)`` voxels (all of them when the field is
    smaller than that), centred; the slice axis is untouched. The affine's origin moves to the first
    kept voxel, so every kept voxel keeps its world coordinates. Returns (cropped array, new props).
    """
    lead = _spatial_check(array, props)
    shape = list(props["spatial_shape"])
    spacing = grid_spacing(props["affine"], len(shape))
    start = [0] * len(shape)
    for axis in in_plane_axes(props, slice_axis):
        keep = min(shape[axis], max(1, int(round(field_mm / spacing[axis]))))
        start[axis] = (shape[axis] - keep) // 2
        shape[axis] = keep
    index = (slice(None),) * lead + tuple(slice(s, s + n) for s, n in zip(start, shape, strict=True))
    shift = np.eye(4)
    shift[: len(start), 3] = start
    return np.ascontiguousarray(array[index]), regrid_props(props, shift, shape)


def resample_in_plane(
    array: np.ndarray, props: dict, spacing_mm: float, order: int, slice_axis: int | None = None
) -> tuple[np.ndarray, dict]:
    """Resample the in-plane axes to ``spacing_mm`` mm, keeping the field of view and the slices.

    ``order``: 1 (linear) for images, 0 (nearest) for label maps. An axis of ``n`` voxels at ``s`` mm
    gets ``round(n * s / spacing_mm)`` voxels, centred on the same world point, so its extent
    (voxel edges) is kept to within half a new voxel; the direction cosines are kept. Values
    outside the old grid take the nearest edge voxel. Returns (resampled array, new props); the
    array keeps its dtype.
    """
    if order not in (0, 1):
        raise ValueError(f"order {order} is not 0 (nearest, for labels) or 1 (linear, for images)")
    lead = _spatial_check(array, props)
    old_shape = list(props["spatial_shape"])
    spacing = grid_spacing(props["affine"], len(old_shape))
    ratio = np.ones(len(old_shape))  # old voxels per new voxel, per axis
    new_shape = list(old_shape)
    for axis in in_plane_axes(props, slice_axis):
        new_shape[axis] = max(1, int(round(old_shape[axis] * spacing[axis] / spacing_mm)))
        ratio[axis] = spacing_mm / spacing[axis]
    # new voxel i samples old voxel index offset + ratio * i; centres of both grids coincide
    offset = (np.asarray(old_shape) - 1) / 2 - ratio * (np.asarray(new_shape) - 1) / 2
    voxel_to_old = np.eye(4)
    voxel_to_old[: len(old_shape), : len(old_shape)] = np.diag(ratio)
    voxel_to_old[: len(old_shape), 3] = offset
    flat = array.reshape((-1, *old_shape))
    out = np.stack(
        [
            ndimage.affine_transform(
                channel, ratio, offset=offset, output_shape=tuple(new_shape), order=order, mode="nearest"
            )
            for channel in flat
        ]
    )
    return out.reshape((*array.shape[:lead], *new_shape)), regrid_props(props, voxel_to_old, new_shape)


def scale_intensity(image: np.ndarray, gain: float, offset: float = 0.0) -> np.ndarray:
    """``gain * image + offset`` in float32 (another scanner's intensity range; exact, no clipping)."""
    return (np.asarray(image, dtype=np.float32) * np.float32(gain) + np.float32(offset)).astype(np.float32)


def noise_sigma(image: np.ndarray, fraction: float) -> float:
    """Noise standard deviation ``fraction`` x the image's 99th intensity percentile.

    The percentile stands for the brightest tissue (BrainWeb states MR noise as a percentage of it);
    unlike the maximum it ignores a few hot voxels.
    """
    return float(fraction * np.percentile(np.asarray(image, dtype=np.float64), 99))


def add_noise(image: np.ndarray, fraction: float, seed: int, rician: bool = True) -> np.ndarray:
    """``image`` plus noise of standard deviation ``noise_sigma(image, fraction)``, seeded.

    ``rician``: the magnitude ``sqrt((x + n1)^2 + n2^2)`` of a complex signal with Gaussian noise
    ``n1, n2`` on both parts, as MR magnitude images have (non-negative; about Gaussian of that
    sigma where the signal is well above it); otherwise ``x + n1``. float32, same shape.
    """
    image = np.asarray(image, dtype=np.float32)
    sigma = noise_sigma(image, fraction)
    rng = np.random.default_rng(seed)
    real = image + rng.normal(0.0, sigma, image.shape).astype(np.float32)
    if not rician:
        return real
    imaginary = rng.normal(0.0, sigma, image.shape).astype(np.float32)
    return np.sqrt(real * real + imaginary * imaginary).astype(np.float32)


def check_steps(steps: Sequence[dict]) -> None:
    """ValueError naming the first step whose ``kind`` is not one of ``SHIFT_KINDS``."""
    for step in steps:
        if step.get("kind") not in SHIFT_KINDS:
            raise ValueError(f"shift step {step} has kind {step.get('kind')!r}; use one of {', '.join(SHIFT_KINDS)}")


def apply_shift(
    image: np.ndarray, label: np.ndarray | None, props: dict, steps: Sequence[dict], seed: int
) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Apply ``steps`` in order to an image ``(C, *spatial)`` and its label map ``(*spatial)`` (or None).

    Steps (dicts): ``{"kind": "crop", "field_mm": 110}``, ``{"kind": "resample", "spacing_mm": 0.9}``
    (image linear, label nearest), ``{"kind": "intensity", "gain": 4, "offset": 0}`` and
    ``{"kind": "noise", "fraction": 0.05, "rician": true}`` (image only, seeded by ``seed`` and the
    step's position). The slice axis is taken from the original grid once, so a resampling that
    makes the in-plane spacing the largest cannot turn the volume. Returns (image, label, props).
    """
    check_steps(steps)
    slice_axis = slice_axis_of(props)
    for position, step in enumerate(steps):
        kind = step["kind"]
        if kind == "crop":
            if label is not None:
                label, _ = crop_field_of_view(label, props, step["field_mm"], slice_axis)
            image, props = crop_field_of_view(image, props, step["field_mm"], slice_axis)
        elif kind == "resample":
            if label is not None:
                label, _ = resample_in_plane(label, props, step["spacing_mm"], 0, slice_axis)
            image, props = resample_in_plane(np.asarray(image, np.float32), props, step["spacing_mm"], 1, slice_axis)
        elif kind == "intensity":
            image = scale_intensity(image, step.get("gain", 1.0), step.get("offset", 0.0))
        else:
            image = add_noise(image, step["fraction"], seed + position, rician=step.get("rician", True))
    return np.asarray(image, dtype=np.float32), label, props
