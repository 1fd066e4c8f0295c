"""Paired data for image-to-image GANs: PH2 lesion masks and their dermoscopy images (pix2pix),
or the images and their downsampled copies (srgan, ``low_resolution``).

The cases are read from ``data.ph2.root`` as PH2 lays them out (``cases.csv`` with ``case`` and
``diagnosis`` columns, ``images/<case>.png`` RGB, ``masks/<case>.png`` 0 / 255; read here with PIL
because the GAN core builds on no segmentation module) and resized to ``data.ph2.size`` (rows, columns;
PH2's images are about 574 x 765, so the default 96 x 128 keeps their 3:4 shape): images
bilinearly with anti-aliasing, masks by nearest neighbour. Both are scaled to [-1, 1], the range
of a tanh generator: the image channels from 0..255, the mask from {0, 1}. The split is by case,
stratified by diagnosis with ``data.split_seed``: 70 % train, 15 % validation, 15 % test (106 / 22
/ 22 of PH2's 150).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from adversarial_seg.errors import InputError

Tensor = torch.Tensor

VAL_FRACTION = 0.15
TEST_FRACTION = 0.15


def split_cases(case_ids: list[str], strata: list[str], seed: int) -> dict[str, list[str]]:
    """Train / val / test case ids, stratified where every stratum can give each split a case."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(case_ids))
    n_test = max(1, round(TEST_FRACTION * len(index)))
    n_val = max(1, round(VAL_FRACTION * len(index)))
    strata_array = np.asarray(strata)

    def stratify(idx):
        _, counts = np.unique(strata_array[idx], return_counts=True)
        return strata_array[idx] if counts.min() >= 3 else None

    rest, test = train_test_split(index, test_size=n_test, stratify=stratify(index), random_state=seed)
    train, val = train_test_split(rest, test_size=n_val, stratify=stratify(rest), random_state=seed)
    return {name: [case_ids[i] for i in sorted(idx)] for name, idx in (("train", train), ("val", val), ("test", test))}


class PairedDataError(InputError):
    """A PH2 folder that cannot be read as pairs; the message names the file and the fix."""


def read_ph2_cases(root: Path) -> list[tuple[str, str, Path, Path]]:
    """(case, diagnosis, image path, mask path) for every row of ``root/cases.csv``."""
    table = root / "cases.csv"
    if not table.is_file():
        raise PairedDataError(f"{table} is missing: data.ph2.root must be a PH2 folder (cases.csv, images/, masks/)")
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"case", "diagnosis"} <= set(rows[0]):
        raise PairedDataError(f"{table} needs the columns case and diagnosis, one row per case")
    cases = []
    for row in rows:
        image, mask = root / "images" / f"{row['case']}.png", root / "masks" / f"{row['case']}.png"
        for path in (image, mask):
            if not path.is_file():
                raise PairedDataError(f"{path} is missing (case {row['case']} of {table}); restore it or drop its row")
        cases.append((row["case"], row["diagnosis"], image, mask))
    return cases


def _resized(array: np.ndarray, size: tuple[int, int], mode: str) -> Tensor:
    tensor = torch.from_numpy(array.astype(np.float32))
    tensor = tensor[None, None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)[None]
    if mode == "nearest":
        return F.interpolate(tensor, size=size, mode="nearest")
    return F.interpolate(tensor, size=size, mode="bilinear", antialias=True, align_corners=False)


@lru_cache(maxsize=4)
def _ph2_pairs(root: str, size: tuple[int, int], split_seed: int) -> dict:
    from PIL import Image

    cases = read_ph2_cases(Path(root))
    images, masks = [], []
    for _, _, image_path, mask_path in cases:
        with Image.open(image_path) as image, Image.open(mask_path) as mask:
            rgb, grey = np.asarray(image.convert("RGB")), np.asarray(mask.convert("L"))
        images.append(_resized(rgb, size, "bilinear"))
        masks.append(_resized((grey > 127).astype(np.float32), size, "nearest"))
    images_t = (torch.cat(images) / 127.5 - 1.0).clamp(-1, 1)
    masks_t = torch.cat(masks) * 2.0 - 1.0
    ids = [c[0] for c in cases]
    splits = split_cases(ids, [c[1] for c in cases], split_seed)
    position = {case: i for i, case in enumerate(ids)}
    out = {}
    for name, chosen in splits.items():
        idx = torch.tensor([position[c] for c in chosen])
        out[name] = (images_t[idx], masks_t[idx], chosen)
    return out


def low_resolution(images: Tensor, scale: int) -> Tensor:
    """Images downsampled ``scale`` times (bicubic with anti-aliasing), srgan's source, in [-1, 1].

    >>> tuple(low_resolution(torch.zeros(2, 3, 96, 128), 4).shape)
    (2, 3, 24, 32)
    """
    size = (images.shape[-2] // scale, images.shape[-1] // scale)
    return F.interpolate(images, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(-1, 1)


def ph2_pairs(root: str | Path, size=(96, 128), split_seed: int = 0) -> dict[str, tuple[Tensor, Tensor, list[str]]]:
    """``{"train"|"val"|"test": (images (N, 3, H, W), masks (N, 1, H, W), case ids)}``, all in [-1, 1]."""
    return dict(_ph2_pairs(str(Path(root).expanduser().resolve()), tuple(size), split_seed))
