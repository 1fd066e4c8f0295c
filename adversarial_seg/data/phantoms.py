"""Synthetic phantom datasets written as REAL dataset folders, read by the same reader as user data.

Two kinds (``data.synthetic.kind``):

* ``prostate``: nnU-Net raw layout (``data.layout: nnunet``)::

      root/imagesTr/prostate_000_0000.nii.gz   T2 (float32 NIfTI)
      root/imagesTr/prostate_000_0001.nii.gz   ADC (float32 NIfTI, optionally on another grid)
      root/labelsTr/prostate_000.nii.gz        uint8: 0 background, 1 PZ, 2 TZ, 3 lesion
      root/dataset.json                        channel_names, labels, file_ending
      root/cases.csv                           case, patient, lesion_slices

  Anisotropic voxels (default 0.6 x 0.6 x 3.6 mm), optional oblique affine and non-RAS voxel
  order, multiplicative bias field and Rician noise, a textured pelvic background with
  periprostatic fat. One lesion per case spans 3-6 of 16 slices, so about 28% of slices carry
  tumour and most are tumour-free (Kohl et al. 2017 had 188 tumour vs 475 tumour-free slices).
  Two of every three cases share a patient, so grouped splits matter.

* ``skin``: folder layout (``data.layout: folder``)::

      root/images/skin_000.png    RGB dermoscopy-like image
      root/masks/skin_000.png     0 / 255 lesion mask
      root/cases.csv              case, diagnosis (common_nevus / atypical_nevus / melanoma)

  Irregular lesion borders, colour variation with pale margins, hairs, vignetting (dark
  aperture corners) and ruler marks.

``phantom_data_config(kind, root)`` gives the ``data:`` mapping that reads them back.
Everything is deterministic given ``seed`` and fast (12 prostate cases in about a second).
"""

from __future__ import annotations

import csv
import io as _io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from adversarial_seg.atomic_files import atomic_path

from .io import make_props, write_image, write_label

PROSTATE_LABELS = {"background": 0, "pz": 1, "tz": 2, "lesion": 3}
PROSTATE_REGIONS = {"gland": [1, 2, 3], "lesion": [3]}
SKIN_LABELS = {"background": 0, "lesion": 255}
DIAGNOSES = ("common_nevus", "atypical_nevus", "melanoma")


def phantom_data_config(kind: str, root: str | Path) -> dict:
    """The ``data:`` config mapping that reads phantoms written by this module at ``root``."""
    if kind == "prostate":
        return {
            "root": str(root),
            "layout": "nnunet",
            "group": {"column": "patient"},
            "labels": dict(PROSTATE_LABELS),
            "regions": {k: list(v) for k, v in PROSTATE_REGIONS.items()},
            "channels": ["T2", "ADC"],
            "reference_channel": "T2",
        }
    if kind == "skin":
        return {
            "root": str(root),
            "layout": "folder",
            "stratify": "diagnosis",
            "labels": dict(SKIN_LABELS),
            "channels": ["red", "green", "blue"],
        }
    raise ValueError(f"unknown phantom kind {kind!r}; use prostate or skin")


def write_phantoms(synthetic_cfg, root: str | Path) -> dict:
    """Write the phantoms a ``SyntheticConfig`` asks for; return the ``data:`` mapping to read them."""
    kwargs = {"cases": synthetic_cfg.cases, "seed": synthetic_cfg.seed}
    if synthetic_cfg.size:
        kwargs["size"] = tuple(synthetic_cfg.size)
    writer = write_prostate_phantoms if synthetic_cfg.kind == "prostate" else write_skin_phantoms
    writer(root, **kwargs)
    return phantom_data_config(synthetic_cfg.kind, root)


# --------------------------------------------------------------------------- shared helpers


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma) -> np.ndarray:
    """Zero-mean, unit-std smooth random field (white noise low-passed by a Gaussian)."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-12)


def _wobbly_radius(rng: np.random.Generator, angle: np.ndarray, amount: float, orders=range(2, 8)):
    """1 + a sum of random angular harmonics: an irregular border as a function of angle."""
    radius = np.ones_like(angle)
    for order in orders:
        radius += amount / order * rng.uniform(0.5, 1.0) * np.cos(order * angle + rng.uniform(0, 2 * np.pi))
    return radius


def _write_csv(path: Path, rows: list[dict]) -> None:
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as temporary:
        temporary.write_text(buffer.getvalue())


def _write_json(path: Path, content: dict) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(content, indent=2) + "\n")


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold on a histogram: the cut maximising between-class variance.

    A baseline: the phantoms must not be separable by it (see tests/data/test_phantoms.py).
    """
    counts, edges = np.histogram(np.asarray(values, dtype=np.float64).ravel(), bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(counts * centres)
    mean_low = sum_low / np.maximum(weight_low, 1)
    mean_high = (sum_low[-1] - sum_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(edges[1:][np.argmax(between)])


# --------------------------------------------------------------------------- prostate


def _rotation(degrees_x: float, degrees_z: float) -> np.ndarray:
    ax, az = np.deg2rad(degrees_x), np.deg2rad(degrees_z)
    about_x = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    about_z = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return about_z @ about_x


def _grid_affine(shape, spacing, rotation: np.ndarray) -> np.ndarray:
    """Voxel index -> world mm for a grid centred on the world origin (patient frame rotated)."""
    spacing = np.asarray(spacing, dtype=np.float64)
    centre_mm = (np.asarray(shape) - 1) / 2 * spacing
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(spacing)
    affine[:3, 3] = -rotation @ centre_mm
    return affine


def _patient_coordinates(shape, spacing) -> tuple[np.ndarray, ...]:
    """mm coordinates of voxel centres in the (unrotated) patient frame, centred at 0."""
    axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing)]
    return np.meshgrid(*axes, indexing="ij")


def _prostate_anatomy(rng: np.random.Generator) -> dict:
    """Random shape parameters of one case (mm, patient frame: x right-left, y anterior, z superior)."""
    gland_axes = np.array([rng.uniform(16, 21), rng.uniform(12, 16), rng.uniform(15, 20)])
    gland_centre = np.array([rng.uniform(-3, 3), rng.uniform(-2, 3), rng.uniform(-3, 3)])
    side = rng.choice([-1.0, 1.0])
    return {
        "gland_centre": gland_centre,
        "gland_axes": gland_axes,
        "tz_centre": gland_centre + [0, 0.3 * gland_axes[1], 0],
        "tz_axes": gland_axes * [0.6, 0.55, 0.75],
        "lesion_centre": gland_centre + [side * 0.45 * gland_axes[0], -0.5 * gland_axes[1], rng.uniform(-6, 6)],
        "lesion_axes": np.array([rng.uniform(4, 7.5), rng.uniform(3, 5.5), 0.0]),
        "lesion_slices": int(rng.integers(3, 7)),
        "harmonic_seed": int(rng.integers(2**31)),
    }


def _ellipsoid_radius(coords, centre, axes) -> np.ndarray:
    return np.sqrt(sum(((c - m) / a) ** 2 for c, m, a in zip(coords, centre, axes)))


def _prostate_labels(coords, anatomy: dict, slice_mm: float) -> np.ndarray:
    """Label map on a grid given by patient-frame ``coords``: 0 bg, 1 PZ, 2 TZ, 3 lesion."""
    x, y, z = coords
    shape_rng = np.random.default_rng(anatomy["harmonic_seed"])
    angle = np.arctan2(y - anatomy["gland_centre"][1], x - anatomy["gland_centre"][0])
    gland_border = _wobbly_radius(shape_rng, angle, 0.12) + 0.03 * np.sin(z / 4.0)
    gland = _ellipsoid_radius(coords, anatomy["gland_centre"], anatomy["gland_axes"]) < gland_border
    tz_border = _wobbly_radius(shape_rng, angle, 0.2)
    tz = gland & (_ellipsoid_radius(coords, anatomy["tz_centre"], anatomy["tz_axes"]) < tz_border)
    lesion_axes = anatomy["lesion_axes"].copy()
    # Half the slab thickness in mm: the lesion spans ``lesion_slices`` slices of this grid.
    lesion_axes[2] = anatomy["lesion_slices"] * slice_mm / 2
    lesion_angle = np.arctan2(y - anatomy["lesion_centre"][1], x - anatomy["lesion_centre"][0])
    in_plane = np.sqrt(
        ((x - anatomy["lesion_centre"][0]) / lesion_axes[0]) ** 2
        + ((y - anatomy["lesion_centre"][1]) / lesion_axes[1]) ** 2
    )
    in_slab = np.abs(z - anatomy["lesion_centre"][2]) < lesion_axes[2]
    lesion = gland & in_slab & (in_plane < _wobbly_radius(shape_rng, lesion_angle, 0.35))
    labels = np.where(gland, 1, 0).astype(np.uint8)
    labels[tz] = 2
    labels[lesion] = 3
    return labels


def _prostate_channel(rng, coords, labels, spacing, kind: str) -> np.ndarray:
    """T2- or ADC-like intensities (float32) for a label map on its grid."""
    shape = labels.shape
    in_plane_sigma = [4.0 / spacing[0], 4.0 / spacing[1], 0.6]
    fine_sigma = [1.2 / spacing[0], 1.2 / spacing[1], 0.3]
    texture = _smooth_noise(rng, shape, fine_sigma)
    tissue = _smooth_noise(rng, shape, in_plane_sigma)
    gland = labels > 0
    # Periprostatic fat: a bright shell just outside the gland that Otsu lumps with it.
    distance_mm = ndimage.distance_transform_edt(~gland, sampling=spacing)
    fat = (distance_mm > 0) & (distance_mm < rng.uniform(2.0, 4.0))
    if kind == "T2":
        means = {0: 0.45, 1: 0.78, 2: 0.5, 3: 0.3}
        image = 0.45 + 0.22 * tissue
        image[fat] = 0.8 + 0.05 * tissue[fat]
        image[np.abs(coords[1] + 26) < 3] = 0.15  # rectal wall band, posterior
    else:  # ADC: lesion restricted (dark), PZ bright, TZ intermediate, background mixed
        means = {0: 0.6, 1: 0.85, 2: 0.6, 3: 0.3}
        image = 0.6 + 0.25 * tissue
    for value in (1, 2, 3):
        region = labels == value
        image[region] = means[value] + 0.08 * tissue[region]
    tz_nodules = (labels == 2) & (texture > 0.8)
    image[tz_nodules] -= 0.15  # BPH nodules: dark blobs that mimic lesions
    image = image + 0.07 * texture
    image = ndimage.gaussian_filter(image, [0.6, 0.6, 0.0])  # partial volume at borders
    # Multiplicative bias field: smooth, about +-25% across the field of view.
    x, y, z = coords
    extent = max(np.abs(x).max(), np.abs(y).max(), 1.0)
    gradient = rng.uniform(-0.25, 0.25, size=3)
    bias = np.exp(gradient[0] * x / extent + gradient[1] * y / extent + gradient[2] * z / max(np.abs(z).max(), 1.0))
    image = image * bias
    sigma = 0.05 if kind == "T2" else 0.08
    noisy = np.sqrt((image + sigma * rng.standard_normal(shape)) ** 2 + (sigma * rng.standard_normal(shape)) ** 2)
    scale = 1000.0 if kind == "T2" else 1500.0  # ADC in 1e-6 mm^2/s-like units
    return (scale * noisy).astype(np.float32)


def _flip_to_lps(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Same world content, voxel axes x and y reversed (an LPS-ordered file)."""
    shape = array.shape
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    flip[0, 3], flip[1, 3] = shape[0] - 1, shape[1] - 1
    return np.ascontiguousarray(array[::-1, ::-1]), affine @ flip


def write_prostate_phantoms(
    root: str | Path,
    cases: int = 12,
    seed: int = 0,
    size: tuple[int, int, int] = (96, 96, 16),
    spacing: tuple[float, float, float] = (0.6, 0.6, 3.6),
    oblique: bool = False,
    ras: bool = True,
    adc_grid_differs: bool = False,
) -> Path:
    """Write ``cases`` prostate-MRI-like cases in nnU-Net raw layout under ``root``; return root.

    ``size``: T2 grid (X, Y, Z) voxels; ``spacing`` in mm. ``oblique``: the grid is rotated
    (12 deg about x, 8 deg about z) in world space. ``ras=False``: voxel order x and y reversed
    (LPS-like file, same world content). ``adc_grid_differs``: ADC on a half-resolution in-plane
    grid (same field of view), to be resampled onto the T2 grid.
    """
    root = Path(root)
    rotation = _rotation(12.0, 8.0) if oblique else np.eye(3)
    size, spacing = tuple(int(s) for s in size), tuple(float(s) for s in spacing)
    adc_size, adc_spacing = size, spacing
    if adc_grid_differs:
        adc_size = (size[0] // 2, size[1] // 2, size[2])
        adc_spacing = (spacing[0] * size[0] / adc_size[0], spacing[1] * size[1] / adc_size[1], spacing[2])
    rows = []
    for index in range(cases):
        case = f"prostate_{index:03d}"
        rng = np.random.default_rng([seed, index])
        anatomy = _prostate_anatomy(rng)
        grids = {"T2": (size, spacing), "ADC": (adc_size, adc_spacing)}
        label_map = None
        for channel, (kind, (grid_shape, grid_spacing)) in enumerate(grids.items()):
            coords = _patient_coordinates(grid_shape, grid_spacing)
            labels = _prostate_labels(coords, anatomy, spacing[2])
            image = _prostate_channel(rng, coords, labels, grid_spacing, kind)
            affine = _grid_affine(grid_shape, grid_spacing, rotation)
            if kind == "T2":
                label_map, label_affine = labels, affine
            if not ras:
                image, affine = _flip_to_lps(image, affine)
            write_image(
                root / "imagesTr" / f"{case}_{channel:04d}.nii.gz", image[None], make_props(affine, image.shape)
            )
        if not ras:
            label_map, label_affine = _flip_to_lps(label_map, label_affine)
        write_label(root / "labelsTr" / f"{case}.nii.gz", label_map, make_props(label_affine, label_map.shape))
        lesion_slices = int(np.any(label_map == 3, axis=(0, 1)).sum())
        rows.append({"case": case, "patient": f"patient_{(2 * index) // 3:03d}", "lesion_slices": lesion_slices})
    _write_csv(root / "cases.csv", rows)
    _write_json(
        root / "dataset.json",
        {
            "name": "prostate_phantoms",
            "description": "synthetic prostate MRI phantoms (adversarial_seg)",
            "channel_names": {"0": "T2", "1": "ADC"},
            "labels": PROSTATE_LABELS,
            "numTraining": cases,
            "file_ending": ".nii.gz",
            "seed": seed,
        },
    )
    return root


# --------------------------------------------------------------------------- skin


def _skin_case(rng: np.random.Generator, size: tuple[int, int], diagnosis: str) -> tuple[np.ndarray, np.ndarray]:
    """One RGB uint8 image (H, W, 3) and its boolean lesion mask (H, W)."""
    height, width = size
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    scale = min(height, width)
    irregularity = {"common_nevus": 0.12, "atypical_nevus": 0.3, "melanoma": 0.5}[diagnosis]
    centre = np.array([height / 2, width / 2]) + rng.uniform(-0.12, 0.12, 2) * scale
    radius = rng.uniform(0.2, 0.34) * scale
    angle = np.arctan2(rows - centre[0], cols - centre[1])
    distance = np.hypot(rows - centre[0], cols - centre[1]) / radius
    border = _wobbly_radius(rng, angle, irregularity)
    mask = distance < border

    skin = np.array([rng.uniform(200, 235), rng.uniform(150, 185), rng.uniform(130, 165)])
    lesion = {"common_nevus": [165, 115, 90], "atypical_nevus": [135, 90, 70], "melanoma": [95, 60, 50]}[diagnosis]
    lesion = np.array(lesion) + rng.uniform(-15, 15, 3)
    blotches = _smooth_noise(rng, size, scale / 12)
    # How "lesion-like" each pixel is: fades towards the border (pale margin) and varies inside.
    depth = np.clip((border - distance) / 0.45, 0, 1) ** 0.7
    depth = np.clip(depth * (0.8 + 0.35 * blotches), 0, 1.2) * mask
    colour = skin[None, None] * (1 - depth[..., None]) + lesion[None, None] * depth[..., None]
    if diagnosis != "common_nevus":  # blue-grey regression areas
        regression = (blotches < -1.0) & mask
        colour[regression] = colour[regression] * 0.5 + np.array([150, 150, 170]) * 0.5
    colour += 10 * _smooth_noise(rng, size, scale / 6)[..., None]  # skin tone variation
    colour += 4 * rng.standard_normal(colour.shape)

    image = Image.fromarray(np.clip(colour, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(0, 9))):  # hairs: dark quadratic curves across the field
        start, control, end = rng.uniform([0, 0], [width, height], size=(3, 2))
        t = np.linspace(0, 1, 40)[:, None]
        points = (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end
        draw.line(
            [tuple(p) for p in points],
            fill=tuple(int(v) for v in rng.uniform(20, 60, 3)),
            width=int(rng.integers(1, 3)),
        )
    if rng.random() < 0.6:  # ruler: a line with ticks along the top or bottom edge
        y = int(rng.integers(2, 6)) if rng.random() < 0.5 else height - int(rng.integers(3, 7))
        direction = 1 if y < height / 2 else -1
        draw.line([(0, y), (width, y)], fill=(30, 30, 30), width=1)
        for tick, x in enumerate(range(int(rng.integers(0, 4)), width, 4)):
            length = 6 if tick % 5 == 0 else 3
            draw.line([(x, y), (x, y + direction * length)], fill=(30, 30, 30), width=1)
    array = np.asarray(image).astype(np.float64)
    # Vignetting: the dermatoscope's round aperture darkens the corners, sometimes to black.
    corner = np.hypot((rows - height / 2) / (height / 2), (cols - width / 2) / (width / 2)) / np.sqrt(2)
    strength = rng.uniform(0.3, 0.95)
    array *= np.clip(1 - strength * np.clip((corner - 0.55) / 0.45, 0, 1) ** 1.5, 0, 1)[..., None]
    return np.clip(array, 0, 255).astype(np.uint8), mask


def write_skin_phantoms(root: str | Path, cases: int = 12, seed: int = 0, size: tuple[int, int] = (96, 128)) -> Path:
    """Write ``cases`` dermoscopy-like RGB PNG cases in folder layout under ``root``; return root.

    ``size``: spatial shape (H, W) as ``read_image`` returns it (default 96 rows x 128 columns).
    Diagnoses cycle 2:2:1 (common : atypical : melanoma), like PH2's 80:80:40.
    """
    root = Path(root)
    size = (int(size[0]), int(size[1]))
    cycle = ("common_nevus", "atypical_nevus", "common_nevus", "atypical_nevus", "melanoma")
    rows = []
    for index in range(cases):
        case = f"skin_{index:03d}"
        diagnosis = cycle[index % len(cycle)]
        image, mask = _skin_case(np.random.default_rng([seed, index]), size, diagnosis)
        props = make_props(np.eye(4), size, fmt="png")
        write_image(root / "images" / f"{case}.png", np.moveaxis(image, -1, 0), props)
        write_label(root / "masks" / f"{case}.png", mask.astype(np.uint8) * 255, props)
        rows.append({"case": case, "diagnosis": diagnosis})
    _write_csv(root / "cases.csv", rows)
    return root
