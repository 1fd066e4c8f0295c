"""Offline toy data for the classic GANs: scikit-learn's handwritten digits and a ring of Gaussians.

Digits: the 1,797 bundled 8x8 images (``sklearn.datasets.load_digits``, values 0..16), upsampled
bilinearly to 16x16 or 32x32 and scaled to [-1, 1] (a tanh generator's range). The split is fixed
and stratified by class: 1,257 train / 270 validation / 270 test for ``split_seed`` 0.

Ring: ``modes`` Gaussians of standard deviation ``std`` evenly spaced on a circle of radius
``radius`` (Metz et al. 2017's 2D mixture), where mode collapse is visible and countable.

Example:
    >>> splits = digits_splits(size=16)
    >>> [tuple(splits[k][0].shape) for k in ("train", "val", "test")]
    [(1257, 1, 16, 16), (270, 1, 16, 16), (270, 1, 16, 16)]
    >>> float(splits["train"][0].min()), float(splits["train"][0].max())
    (-1.0, 1.0)
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

Tensor = torch.Tensor

VAL_FRACTION = 0.15
TEST_FRACTION = 0.15


@lru_cache(maxsize=8)
def _digits_splits(size: int, split_seed: int) -> dict[str, tuple[Tensor, Tensor]]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0  # (N, 1, 8, 8) in [0, 1]
    labels = torch.tensor(digits.target, dtype=torch.int64)
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=True).clamp(0, 1)
    images = images * 2.0 - 1.0
    index = np.arange(len(labels))
    n_test = round(TEST_FRACTION * len(index))
    n_val = round(VAL_FRACTION * len(index))
    rest, test = train_test_split(index, test_size=n_test, stratify=digits.target, random_state=split_seed)
    train, val = train_test_split(rest, test_size=n_val, stratify=digits.target[rest], random_state=split_seed)
    return {name: (images[idx], labels[idx]) for name, idx in (("train", train), ("val", val), ("test", test))}


def digits_splits(size: int = 16, split_seed: int = 0) -> dict[str, tuple[Tensor, Tensor]]:
    """``{"train"|"val"|"test": (images (N, 1, size, size) in [-1, 1], labels (N,) int64)}``."""
    return dict(_digits_splits(size, split_seed))


def ring_centers(modes: int = 8, radius: float = 2.0) -> Tensor:
    """(modes, 2) mode centres on the circle, the first at angle 0."""
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def sample_ring(n: int, modes: int = 8, radius: float = 2.0, std: float = 0.02, seed: int = 0) -> tuple[Tensor, Tensor]:
    """``n`` points (n, 2) of the ring mixture and their mode index (n,), from a fixed seed."""
    generator = torch.Generator().manual_seed(seed)
    mode = torch.randint(0, modes, (n,), generator=generator)
    points = ring_centers(modes, radius)[mode] + std * torch.randn(n, 2, generator=generator)
    return points, mode


def ring_splits(modes: int = 8, radius: float = 2.0, std: float = 0.02, samples: int = 5000, seed: int = 0):
    """Train / val / test draws of the ring (test and val: ``samples // 5`` points each)."""
    held_out = max(samples // 5, 50)
    return {
        "train": sample_ring(samples, modes, radius, std, seed=seed * 3),
        "val": sample_ring(held_out, modes, radius, std, seed=seed * 3 + 1),
        "test": sample_ring(held_out, modes, radius, std, seed=seed * 3 + 2),
    }


class TensorPairs(torch.utils.data.Dataset):
    """Items ``{"real": x_i, "label": y_i}`` from two aligned tensors (DataLoader collates dicts)."""

    def __init__(self, real: Tensor, label: Tensor):
        self.real, self.label = real, label

    def __len__(self) -> int:
        return len(self.real)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"real": self.real[i], "label": self.label[i]}
