"""Generative metrics: hand-computed values, the closed form of the Fréchet distance, the shipped classifier."""

import json
import math

import numpy as np
import pytest
import torch

from adversarial_seg.gan.metrics import (
    CLASSIFIER_RECORD,
    CLASSIFIER_WEIGHTS,
    classifier_score,
    file_sha256,
    frechet_distance,
    parzen_evaluation,
    parzen_log_likelihood,
    ring_metrics,
)


def test_frechet_distance_of_diagonal_gaussians_equals_closed_form():
    # FD = ||mu1 - mu2||^2 + sum_i (s1_i + s2_i - 2 sqrt(s1_i s2_i)); by hand:
    # ||(1, 2, -2)||^2 = 9; variances (1, 4), (9, 1), (0.25, 0.25) -> (1 + 9 - 6) + (4 + 1 - 4) + 0 = 5
    mu1, mu2 = np.array([0.0, 0.0, 1.0]), np.array([1.0, 2.0, -1.0])
    s1, s2 = np.diag([1.0, 4.0, 0.25]), np.diag([9.0, 1.0, 0.25])
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(14.0, abs=1e-9)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(14.0, abs=1e-9)


def test_frechet_distance_rotated_gaussians_and_identity():
    # The same two diagonal Gaussians in a rotated basis: the distance does not change.
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    v1, v2 = np.array([1.0, 2.0, 3.0, 4.0]), np.array([4.0, 1.0, 1.0, 9.0])
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    got = frechet_distance(q @ mu1, q @ np.diag(v1) @ q.T, q @ mu2, q @ np.diag(v2) @ q.T)
    assert got == pytest.approx(expected, rel=1e-7)
    assert frechet_distance(mu1, np.diag(v1), mu1, np.diag(v1)) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_with_singular_covariances_is_finite():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 20)), rng.normal(size=(5, 20)) + 1.0  # 5 samples in 20 dims: rank 4
    value = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert math.isfinite(value) and value > 0


def test_parzen_log_likelihood_of_one_centre_is_the_gaussian_density():
    # one centre at 0, sigma 0.5, in 2D: log N(x; 0, 0.25 I) at x = (1, 0) is -1/(2*0.25) - log(2 pi 0.25)
    ll = parzen_log_likelihood(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]), sigma=0.5)
    assert float(ll[0]) == pytest.approx(-2.0 - math.log(2 * math.pi * 0.25), abs=1e-9)
    # two centres, a point on one of them, far from the other: log(1/2 N(0; 0, s^2) + ~0)
    ll = parzen_log_likelihood(torch.tensor([[0.0], [100.0]]), torch.tensor([[0.0]]), sigma=1.0)
    assert float(ll[0]) == pytest.approx(math.log(0.5) - 0.5 * math.log(2 * math.pi), abs=1e-9)


def test_parzen_sigma_is_chosen_on_validation_and_reported_with_standard_error():
    g = torch.Generator().manual_seed(0)
    samples, val, test = (0.3 * torch.randn(n, 1, generator=g) for n in (4000, 500, 500))
    out = parzen_evaluation(samples, val, test, sigmas=(0.01, 0.05, 0.1, 1.0, 3.0))
    assert out["parzen_sigma"] in (0.05, 0.1)  # Silverman's rule for n = 4000, s = 0.3: ~0.05
    ll = parzen_log_likelihood(samples, test, out["parzen_sigma"])
    assert out["parzen_ll"] == pytest.approx(float(ll.mean()))
    assert out["parzen_se"] == pytest.approx(float(ll.std() / math.sqrt(500)))
    true_ll = -math.log(0.3 * math.sqrt(2 * math.pi)) - 0.5  # E[log N(x; 0, 0.09)]
    assert out["parzen_ll"] == pytest.approx(true_ll, abs=0.1)


def test_classifier_score_extremes():
    sharp_all_classes = np.eye(10)
    assert classifier_score(sharp_all_classes) == pytest.approx(10.0, rel=1e-6)
    one_class = np.tile(np.eye(10)[3], (10, 1))
    assert classifier_score(one_class) == pytest.approx(1.0, rel=1e-6)
    # two classes, each sample 50/50: p(y|x) = p(y), KL = 0
    assert classifier_score(np.full((4, 2), 0.5)) == pytest.approx(1.0)


def test_ring_modes_and_quality_counted_by_hand():
    centres = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0]])
    points = torch.tensor([[2.0, 0.05], [2.01, 0.0], [0.0, 2.0], [0.0, 0.0], [1.0, 1.0], [-2.0, 0.07]])
    out = ring_metrics(points, centres, std=0.02)  # 3 std = 0.06: (-2, 0.07) is out
    assert out == {"modes_covered": 2, "high_quality": pytest.approx(3 / 6)}


def test_shipped_classifier_matches_its_record():
    record = json.loads(CLASSIFIER_RECORD.read_text())
    assert file_sha256(CLASSIFIER_WEIGHTS) == record["sha256"]
    assert CLASSIFIER_WEIGHTS.stat().st_size < 400_000
    assert record["held_out_split"] == "test" and record["accuracy"]["test"] >= 0.95
