"""Paired data for image-to-image GANs: PH2 lesion masks and their dermoscopy images.

The cases are read with the segmentation data layer (``layout: folder``, the file checks and
messages of seg-train) from ``data.ph2.root`` and resized to ``data.ph2.size`` (rows, columns;
PH2's images are about 574 x 765, so the default 96 x 128 keeps their 3:4 shape): images
bilinearly with anti-aliasing, masks by nearest neighbour. Both are scaled to [-1, 1], the range
of a tanh generator: the image channels from 0..255, the mask from {0, 1}. The split is by case,
stratified by diagnosis with ``data.split_seed``: 70 % train, 15 % validation, 15 % test (105 / 22
/ 23 of PH2's 150).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

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


@lru_cache(maxsize=4)
def _ph2_pairs(root: str, size: tuple[int, int], split_seed: int) -> dict:
    from adversarial_seg.config import config_from_mapping
    from adversarial_seg.data.io import read_image, read_label
    from adversarial_seg.data.validate import validate_dataset

    data_cfg = config_from_mapping(
        {
            "data": {
                "root": root,
                "layout": "folder",
                "labels": {"background": 0, "lesion": 255},
                "stratify": "diagnosis",
            }
        },
        source="data.ph2",
    ).data
    records = validate_dataset(data_cfg)
    images, masks = [], []
    for record in records:
        image = torch.from_numpy(read_image(record.image_paths[0])[0])[None]  # (1, 3, H, W), 0..255
        mask = torch.from_numpy((read_label(record.label_path)[0] > 0).astype(np.float32))[None, None]
        images.append(F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False))
        masks.append(F.interpolate(mask, size=size, mode="nearest"))
    images_t = (torch.cat(images) / 127.5 - 1.0).clamp(-1, 1)
    masks_t = torch.cat(masks) * 2.0 - 1.0
    ids = [r.case_id for r in records]
    splits = split_cases(ids, [r.stratum or "" for r in records], split_seed)
    position = {case: i for i, case in enumerate(ids)}
    out = {}
    for name, cases in splits.items():
        idx = torch.tensor([position[c] for c in cases])
        out[name] = (images_t[idx], masks_t[idx], cases)
    return out


def ph2_pairs(root: str | Path, size=(96, 128), split_seed: int = 0) -> dict[str, tuple[Tensor, Tensor, list[str]]]:
    """``{"train"|"val"|"test": (images (N, 3, H, W), masks (N, 1, H, W), case ids)}``, all in [-1, 1]."""
    return dict(_ph2_pairs(str(Path(root).expanduser().resolve()), tuple(size), split_seed))
