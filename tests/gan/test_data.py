"""Toy data: a fixed, disjoint, stratified digits split; the ring's modes."""

import math

import torch

from adversarial_seg.gan.data import digits_splits, ring_centers, sample_ring


def test_digits_split_is_fixed_disjoint_and_stratified():
    a, b = digits_splits(16), digits_splits(16)
    assert all(torch.equal(a[k][0], b[k][0]) for k in a)
    sizes = {k: len(v[1]) for k, v in a.items()}
    assert sizes == {"train": 1257, "val": 270, "test": 270}
    rows = {k: {tuple(x.flatten().tolist()) for x in v[0]} for k, v in digits_splits(8).items()}
    assert not (rows["train"] & rows["test"]) and not (rows["val"] & rows["test"])
    counts = torch.bincount(a["test"][1], minlength=10)
    assert counts.min() >= 26 and counts.max() <= 28  # 10% of each class, roughly 27


def test_upsampling_keeps_the_8x8_pixels_at_the_corners():
    small, big = digits_splits(8)["train"][0], digits_splits(32)["train"][0]
    assert big.shape[-1] == 32 and torch.allclose(small[:, :, 0, 0], big[:, :, 0, 0])
    assert torch.allclose(small[:, :, -1, -1], big[:, :, -1, -1])


def test_ring_points_sit_on_their_modes():
    centres = ring_centers(8, 2.0)
    assert torch.allclose(centres.norm(dim=1), torch.full((8,), 2.0))
    assert math.isclose(float(torch.atan2(centres[2, 1], centres[2, 0])), math.pi / 2, abs_tol=1e-6)
    points, mode = sample_ring(4000, 8, 2.0, 0.02, seed=1)
    distance = (points - centres[mode]).norm(dim=1)
    assert float(distance.max()) < 0.02 * 6 and torch.bincount(mode).min() > 400
