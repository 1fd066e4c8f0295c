"""Axial T2 slices of two sites of a prostate dataset (``data.sites``): unpaired for CycleGAN, and for
SRGAN the slices of both sites, each paired with its downsampled copy (``experiment.load_data``).

The cases are read from ``data.sites.root`` in the nnU-Net raw layout (``imagesTr/<case>_0000.nii.gz``,
the T2 channel) with ``cases.csv`` naming each case's site in ``data.sites.column`` (``grid`` for
../shared/data/prostate_zonal: ``320px`` and ``384px``). Each volume goes through the same geometry
as seg-train's 2D slices (``data/transforms.py``): reoriented to RAS, resampled in-plane to
``data.sites.spacing`` mm (slices kept), centre-cropped or zero-padded to ``data.sites.size``; then its
intensities are mapped to [-1, 1] between the volume's 0.5th and 99.5th percentiles (clipped), and
it is cut into axial slices.

Split: each site's cases fall into ``data.sites.folds`` folds (scikit-learn ``KFold``, shuffled with
``data.split_seed``); fold ``data.sites.fold`` is held out and is both the validation and the test
split (CycleGAN selects nothing: the last epoch's generators are the model). Translating the held-out
cases with a run trained on the other folds never shows G a case it is scored on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from adversarial_seg.errors import InputError

Tensor = torch.Tensor
PERCENTILES = (0.5, 99.5)


class SiteDataError(InputError):
    """A sites folder that cannot be read; the message names the file or key and the fix."""


@dataclass(frozen=True)
class SiteVolume:
    """One case on the common grid: ``image`` (1, H, W, Z) MetaTensor in the scanner's intensities,
    its affine in ``image.affine``, and the intensities that map to -1 and 1."""

    case: str
    image: Tensor
    low: float
    high: float

    def unit_slices(self) -> Tensor:
        """(Z, 1, H, W) in [-1, 1]."""
        return to_unit(self.image.as_tensor(), self.low, self.high)[0].permute(2, 0, 1)[:, None].float()


def to_unit(image: Tensor, low: float, high: float) -> Tensor:
    """Intensities to [-1, 1] between ``low`` and ``high``, clipped (``from_unit`` inverts it inside the range).

    >>> to_unit(torch.tensor([0.0, 5.0, 10.0, 20.0]), 0.0, 10.0).tolist()
    [-1.0, 0.0, 1.0, 1.0]
    """
    return ((image - low) / max(high - low, 1e-6) * 2 - 1).clamp(-1, 1)


def from_unit(unit: Tensor, low: float, high: float) -> Tensor:
    """[-1, 1] back to intensities (a translated slice written in the scanner's scale)."""
    return low + (unit + 1) / 2 * (high - low)


class SiteCase(NamedTuple):
    case: str
    patient: str  # cases.csv's patient column where it has one, else the case
    path: Path  # the T2 volume


def read_sites(root: Path, column: str) -> dict[str, list[SiteCase]]:
    """``{site: [SiteCase, ...]}`` from ``root/cases.csv`` (cases in file order)."""
    table = root / "cases.csv"
    if not table.is_file():
        raise SiteDataError(f"{table} is missing: data.sites.root must hold cases.csv and imagesTr/ (nnU-Net raw)")
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"case", column} <= set(rows[0]):
        raise SiteDataError(f"{table} needs the columns case and {column} (data.sites.column), one row per case")
    sites: dict[str, list[SiteCase]] = {}
    for row in rows:
        path = root / "imagesTr" / f"{row['case']}_0000.nii.gz"
        if not path.is_file():
            raise SiteDataError(f"{path} is missing (case {row['case']} of {table}); restore it or drop its row")
        sites.setdefault(row[column], []).append(SiteCase(row["case"], row.get("patient") or row["case"], path))
    return sites


def site_geometry(path: Path, spacing: float, size: tuple[int, int], mode: str = "bilinear") -> Tensor:
    """``path`` (an image, or with ``mode`` "nearest" a label map) on the common grid: (1, H, W, Z) MetaTensor
    in RAS, ``spacing`` mm in-plane, ``size`` in-plane, whose ``affine`` places it in the scanner's space."""
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Orientationd, ResizeWithPadOrCropd, Spacingd

    geometry = Compose(
        [
            LoadImaged(keys="image", image_only=True),
            EnsureChannelFirstd(keys="image"),
            Orientationd(keys="image", axcodes="RAS", labels=None),
            Spacingd(keys="image", pixdim=(spacing, spacing, 0), mode=mode),  # 0 keeps the slices
            ResizeWithPadOrCropd(keys="image", spatial_size=(*size, -1)),
        ]
    )
    return geometry({"image": str(path)})["image"].float()


def load_site_volume(case: str, path: Path, spacing: float, size: tuple[int, int]) -> SiteVolume:
    """``path`` on the common grid with its intensity percentiles."""
    image = site_geometry(path, spacing, size)
    low, high = np.percentile(image.as_tensor().numpy(), PERCENTILES)
    return SiteVolume(case, image, float(low), float(high))


def fold_split(cases: list[SiteCase], folds: int, fold: int, seed: int) -> tuple[list[str], list[str]]:
    """(training cases, held-out cases): ``fold`` of a shuffled ``folds``-fold split of the cases' patients
    (a patient's cases stay together)."""
    from sklearn.model_selection import KFold

    patients = sorted({c.patient for c in cases})
    if len(patients) < folds:
        raise SiteDataError(f"a site has {len(patients)} patients, fewer than data.sites.folds {folds}; lower it")
    _, held_out = list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(patients))[fold]
    held = {patients[i] for i in held_out}
    return [c.case for c in cases if c.patient not in held], [c.case for c in cases if c.patient in held]


@lru_cache(maxsize=2)
def _site_splits(root: str, column: str, a: tuple, b: tuple, spacing: float, size: tuple, folds: int, fold: int,
                 seed: int) -> dict:  # fmt: skip
    sites = read_sites(Path(root), column)
    out = {"splits": {}, "cases": {}}
    per_domain = {}
    for domain, names in (("a", a), ("b", b)):
        missing = [name for name in names if name not in sites]
        if missing:
            raise SiteDataError(
                f"data.sites.{domain}: {', '.join(missing)} not in column {column} of {root}/cases.csv "
                f"(its sites: {', '.join(sorted(sites))})"
            )
        cases = [entry for name in names for entry in sites[name]]
        train, held_out = fold_split(cases, folds, fold, seed)
        paths = {c.case: c.path for c in cases}
        per_domain[domain] = {}
        for split, chosen in (("train", train), ("held_out", held_out)):
            volumes = [load_site_volume(c, paths[c], spacing, size) for c in chosen]
            of_slice = [v.case for v in volumes for _ in range(v.image.shape[-1])]
            per_domain[domain][split] = (torch.cat([v.unit_slices() for v in volumes]), chosen, of_slice)
    out["slice_cases"] = {}
    for split, source in (("train", "train"), ("val", "held_out"), ("test", "held_out")):
        out["splits"][split] = (per_domain["b"][source][0], per_domain["a"][source][0])
        out["cases"][split] = {"a": per_domain["a"][source][1], "b": per_domain["b"][source][1]}
        out["slice_cases"][split] = {"a": per_domain["a"][source][2], "b": per_domain["b"][source][2]}
    return out


def site_splits(sites, split_seed: int = 0) -> dict:
    """``{"splits": {"train"|"val"|"test": (B slices (N_b, 1, H, W), A slices (N_a, 1, H, W))}, "cases": ...,
    "slice_cases": ...}`` for a ``data.sites`` section (per split and domain: the case ids, and the case of
    each slice); B (the target domain) first, as ``real`` is in paired data."""
    root = str(Path(sites.root).expanduser().resolve())
    return _site_splits(root, sites.column, tuple(sites.a), tuple(sites.b), sites.spacing, tuple(sites.size),
                        sites.folds, sites.fold, split_seed)  # fmt: skip


class UnpairedImages(torch.utils.data.Dataset):
    """Items ``{"real": b_j, "label": a_i}`` from two unaligned sets: ``max(len)`` items, item k takes
    ``a[k % len(a)]`` and ``b[k % len(b)]``. The loader's shuffle of k makes each batch a random draw of
    the longer set and of the shorter one (repeated to the same length); which a meets which b does not
    matter to CycleGAN, whose losses are per domain."""

    def __init__(self, b: Tensor, a: Tensor):
        self.b, self.a = b, a

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, k: int) -> dict[str, Tensor]:
        if not 0 <= k < len(self):  # else a plain ``for`` over it would never end
            raise IndexError(k)
        return {"real": self.b[k % len(self.b)], "label": self.a[k % len(self.a)]}
