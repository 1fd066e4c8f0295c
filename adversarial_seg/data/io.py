"""Image and label I/O that keeps geometry, in the style of nnU-Net's reader/writer.

``read_image`` returns ``(array, props)``; the writers take ``props`` back, so a label map written
for an input lines up with it in any viewer. One geometry convention everywhere (DESIGN.md,
"Volumes"):

* NIfTI (.nii, .nii.gz): nibabel is the source of truth. ``array`` is channel-first
  ``(C, X, Y, Z)`` in nibabel voxel order; ``props["affine"]`` maps voxel indices to RAS mm.
* MHA / MHD / NRRD: read with SimpleITK and converted once, here, into the same RAS convention:
  axes reordered from ITK's numpy ``(Z, Y, X)`` to ``(X, Y, Z)``, and the LPS affine built from
  direction, spacing and origin flipped to RAS. Writing converts back.
* PNG / JPG / BMP: Pillow. ``array`` is ``(C, H, W)`` (grey: C=1, RGB: C=3), spacing ``(1, 1)``,
  an identity affine (pixel units; rows are axis 0, columns axis 1).

``props`` keys: ``format`` (nifti | mha | mhd | nrrd | png | jpg | bmp), ``affine`` (4x4 float64),
``spacing`` (tuple, mm or pixels, one per spatial axis), ``spatial_shape``, ``channels`` (C),
``dtype`` (original on-disk dtype name), ``qform_code`` / ``sform_code`` (NIfTI, else None),
``suffix`` (file ending, e.g. ``.nii.gz``) and ``path``.

Every write is atomic (``adversarial_seg.atomic_files``): a temporary in the target folder, then a rename.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from PIL import Image

from adversarial_seg.atomic_files import atomic_path, temporary_name

# Longest endings first so that ".nii.gz" wins over ".gz".
SUFFIX_FORMATS: dict[str, str] = {
    ".nii.gz": "nifti",
    ".nii": "nifti",
    ".mha": "mha",
    ".mhd": "mhd",
    ".nrrd": "nrrd",
    ".png": "png",
    ".jpg": "jpg",
    ".jpeg": "jpg",
    ".bmp": "bmp",
}
ITK_FORMATS = {"mha", "mhd", "nrrd"}
PIL_FORMATS = {"png", "jpg", "bmp"}
# nibabel's RAS and ITK's LPS differ by the sign of the first two world axes.
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _sitk():
    """SimpleITK, imported on first use: most runs read NIfTI or PNG only, and it is slow to load."""
    import SimpleITK

    return SimpleITK


def split_suffix(path: str | Path) -> tuple[str, str]:
    """``("case_0000", ".nii.gz")`` for ``.../case_0000.nii.gz``; suffix "" when unsupported."""
    name = Path(path).name
    lower = name.lower()
    for suffix in SUFFIX_FORMATS:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], name[-len(suffix) :]
    return name, ""


def format_of(path: str | Path) -> str:
    """The format name of a supported file ending; ValueError naming the file otherwise."""
    _, suffix = split_suffix(path)
    if not suffix:
        raise ValueError(f"{path} has an unsupported file ending; use one of {', '.join(SUFFIX_FORMATS)}")
    return SUFFIX_FORMATS[suffix.lower()]


def label_suffix(props: dict) -> str:
    """File ending for a label map written next to an input with ``props``: the input's own for
    volumes, PNG for 2D images (JPEG is lossy and cannot hold a label map; one ending for all)."""
    return ".png" if props["format"] in PIL_FORMATS else props["suffix"]


# --------------------------------------------------------------------------- reading


def read_image(path: str | Path) -> tuple[np.ndarray, dict]:
    """Read an image as float32 channel-first ``(C, *spatial)`` plus its geometry ``props``."""
    path = Path(path)
    fmt = format_of(path)
    if fmt == "nifti":
        array, props = _read_nifti(path)
    elif fmt in ITK_FORMATS:
        array, props = _read_itk(path)
    else:
        array, props = _read_pil(path)
    props.update(format=fmt, suffix=split_suffix(path)[1], path=str(path))
    if array.ndim == len(props["spatial_shape"]):
        array = array[None]
    else:  # channels are stored last on disk for every format
        array = np.moveaxis(array, -1, 0)
    props["channels"] = int(array.shape[0])
    return np.ascontiguousarray(array, dtype=np.float32), props


def read_label(path: str | Path, threshold: int | None = None, foreground: int = 1) -> tuple[np.ndarray, dict]:
    """Read a label map: int64 array of the spatial shape (no channel axis), plus ``props``.

    ``threshold`` handles masks saved lossy (JPEG): values >= threshold become ``foreground``
    and the rest 0. Without it, non-integer values are an error rather than silently rounded.
    A label file with several identical channels (an RGB-saved grey mask) is accepted.
    """
    array, props = read_image(path)
    if array.shape[0] > 1:
        if not np.all(array == array[:1]):
            raise ValueError(
                f"label file {path} has {array.shape[0]} different channels; save it as one grey-level label map"
            )
    values = array[0]
    if threshold is not None:
        return np.where(values >= threshold, foreground, 0).astype(np.int64), props
    rounded = np.rint(values)
    if not np.array_equal(rounded, values):
        raise ValueError(
            f"label file {path} holds non-integer values; save integer labels, or set "
            "data.mask_threshold for masks saved lossy"
        )
    return rounded.astype(np.int64), props


def _read_nifti(path: Path) -> tuple[np.ndarray, dict]:
    image = nib.load(str(path))
    header = image.header
    # dataobj applies scl_slope / scl_inter; float32 halves memory against get_fdata's float64.
    array = np.asarray(image.dataobj, dtype=np.float32)
    if array.ndim == 5 and array.shape[3] == 1:  # ITK-style vector NIfTI: (X, Y, Z, 1, C)
        array = array[:, :, :, 0, :]
    spatial_ndim = 3 if array.ndim >= 4 else array.ndim
    affine = np.asarray(image.affine, dtype=np.float64)
    props = {
        "affine": affine,
        "spacing": tuple(float(s) for s in nib.affines.voxel_sizes(affine)[:spatial_ndim]),
        "spatial_shape": tuple(int(s) for s in array.shape[:spatial_ndim]),
        "dtype": str(header.get_data_dtype()),
        "qform_code": int(header["qform_code"]),
        "sform_code": int(header["sform_code"]),
    }
    return array, props


def _read_itk(path: Path) -> tuple[np.ndarray, dict]:
    sitk = _sitk()
    image = sitk.ReadImage(str(path))
    ndim = image.GetDimension()
    if ndim not in (2, 3):
        raise ValueError(f"{path} has {ndim} spatial dimensions; only 2D and 3D images are supported")
    array = sitk.GetArrayFromImage(image)  # (Z, Y, X[, C]) for 3D, (Y, X[, C]) for 2D
    spatial_axes = list(range(ndim))[::-1]
    if image.GetNumberOfComponentsPerPixel() > 1:
        array = np.transpose(array, spatial_axes + [ndim])
    else:
        array = np.transpose(array, spatial_axes)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(ndim, ndim)
    spacing = np.asarray(image.GetSpacing(), dtype=np.float64)
    lps = np.eye(4)
    lps[:ndim, :ndim] = direction * spacing[None, :]
    lps[:ndim, 3] = image.GetOrigin()
    props = {
        "affine": _LPS_TO_RAS @ lps,
        "spacing": tuple(float(s) for s in spacing),
        "spatial_shape": tuple(int(s) for s in array.shape[:ndim]),
        "dtype": str(sitk.GetArrayViewFromImage(image).dtype),
        "qform_code": None,
        "sform_code": None,
    }
    return array.astype(np.float32, copy=False), props


def _read_pil(path: Path) -> tuple[np.ndarray, dict]:
    with Image.open(path) as image:
        mode = image.mode
        if mode in ("RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV"):
            image = image.convert("RGB")
        elif mode in ("LA", "1"):
            image = image.convert("L")
        array = np.asarray(image)
    props = {
        "affine": np.eye(4),
        "spacing": (1.0, 1.0),
        "spatial_shape": tuple(int(s) for s in array.shape[:2]),
        "dtype": str(array.dtype),
        "qform_code": None,
        "sform_code": None,
    }
    return array, props


# --------------------------------------------------------------------------- writing


def write_label(path: str | Path, labels: np.ndarray, props: dict) -> Path:
    """Write an integer label map ``labels`` (spatial shape of ``props``) in ``path``'s format.

    uint8, or uint16 when a value exceeds 255; the input's affine, qform/sform codes and spatial
    shape; NIfTI scaling reset to slope 1, intercept 0.
    """
    labels = np.asarray(labels)
    if tuple(labels.shape) != tuple(props["spatial_shape"]):
        raise ValueError(
            f"label map for {path} has shape {labels.shape} but the input grid is "
            f"{tuple(props['spatial_shape'])}; resample predictions to the input grid first"
        )
    if labels.size and (labels.min() < 0 or labels.max() > np.iinfo(np.uint16).max):
        raise ValueError(f"label values for {path} must lie in 0..65535")
    dtype = np.uint8 if labels.size == 0 or labels.max() <= 255 else np.uint16
    return _write(path, labels.astype(dtype)[None], props)


def write_image(path: str | Path, array: np.ndarray, props: dict) -> Path:
    """Write a channel-first image ``(C, *spatial)`` with the geometry in ``props``.

    NIfTI / ITK keep the array's dtype (C > 1: 4D NIfTI or an ITK vector image); PNG / BMP /
    JPG need C of 1 or 3 and values in 0..255 (stored as uint8).
    """
    array = np.asarray(array)
    if tuple(array.shape[1:]) != tuple(props["spatial_shape"]):
        raise ValueError(f"image for {path} has shape {array.shape}, expected (C, *{props['spatial_shape']})")
    return _write(path, array, props)


def _write(path: str | Path, array: np.ndarray, props: dict) -> Path:
    path = Path(path)
    fmt = format_of(path)
    if fmt == "mhd":  # header + separate raw file: write both in a private folder, then move
        _write_mhd(path, array, props)
    else:
        with atomic_path(path) as temporary:
            if fmt == "nifti":
                _write_nifti(temporary, array, props)
            elif fmt in ITK_FORMATS:
                _sitk().WriteImage(_to_itk(array, props), str(temporary), useCompression=True)
            else:
                _write_pil(temporary, array, fmt)
    return path


def _write_nifti(path: Path, array: np.ndarray, props: dict) -> None:
    data = array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)
    affine = np.asarray(props["affine"], dtype=np.float64)
    image = nib.Nifti1Image(data, affine)
    # Inputs read from ITK formats carry no codes: scanner-based (1) is their meaning.
    qform_code = props.get("qform_code")
    sform_code = props.get("sform_code")
    image.set_qform(affine, code=int(1 if qform_code is None else qform_code))
    image.set_sform(affine, code=int(1 if sform_code is None else sform_code))
    image.header.set_slope_inter(1.0, 0.0)
    nib.save(image, str(path))


def _to_itk(array: np.ndarray, props: dict):
    sitk = _sitk()
    ndim = len(props["spatial_shape"])
    reversed_axes = list(range(ndim))[::-1]
    if array.shape[0] == 1:
        image = sitk.GetImageFromArray(np.transpose(array[0], reversed_axes))
    else:
        channels_last = np.moveaxis(array, 0, -1)
        image = sitk.GetImageFromArray(np.transpose(channels_last, reversed_axes + [ndim]), isVector=True)
    lps = _LPS_TO_RAS @ np.asarray(props["affine"], dtype=np.float64)
    linear = lps[:ndim, :ndim]
    spacing = np.linalg.norm(linear, axis=0)
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection([float(v) for v in (linear / spacing[None, :]).ravel()])
    image.SetOrigin([float(v) for v in lps[:ndim, 3]])
    return image


def _write_mhd(path: Path, array: np.ndarray, props: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = path.parent / temporary_name(path.name)  # signed: a killed run's leftover is recognised
    folder.mkdir()
    try:
        _sitk().WriteImage(_to_itk(array, props), str(folder / path.name), useCompression=True)
        header = folder / path.name
        # The data file first, so the header never points at a missing file.
        for written in sorted(folder.iterdir(), key=lambda p: p == header):
            os.replace(written, path.parent / written.name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _write_pil(path: Path, array: np.ndarray, fmt: str) -> None:
    channels = array.shape[0]
    if channels not in (1, 3):
        raise ValueError(f"{path.name}: {fmt} holds 1 (grey) or 3 (RGB) channels, got {channels}")
    data = array[0] if channels == 1 else np.moveaxis(array, 0, -1)
    if data.dtype == np.uint16:
        if channels != 1 or fmt != "png":
            raise ValueError(f"{path.name}: 16-bit values need a grey PNG")
        Image.fromarray(data).save(path, format="PNG")
        return
    if data.min() < 0 or data.max() > 255:
        raise ValueError(f"{path.name}: {fmt} values must lie in 0..255")
    pil_format = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP"}[fmt]
    Image.fromarray(np.rint(data).astype(np.uint8)).save(path, format=pil_format)


def make_props(
    affine: np.ndarray,
    spatial_shape: tuple[int, ...],
    fmt: str = "nifti",
    qform_code: int = 1,
    sform_code: int = 1,
) -> dict[str, Any]:
    """Geometry ``props`` for writing a new image on a given grid (phantoms, tests)."""
    affine = np.asarray(affine, dtype=np.float64)
    ndim = len(spatial_shape)
    return {
        "format": fmt,
        "affine": affine,
        "spacing": tuple(float(s) for s in np.linalg.norm(affine[:3, :ndim], axis=0)),
        "spatial_shape": tuple(int(s) for s in spatial_shape),
        "qform_code": qform_code if fmt == "nifti" else None,
        "sform_code": sform_code if fmt == "nifti" else None,
    }
