"""Calibration metrics by hand, temperature scaling on synthetic logits, the cross-fitted report."""

import numpy as np
import pytest
import torch

from adversarial_seg.seg.calibration import (
    VoxelSample,
    brier_score,
    calibrate_cross_validation,
    equal_mass_bins,
    expected_calibration_error,
    fit_temperatures,
    log_probabilities,
    reliability_bins,
    sample_voxels,
    scale_probabilities,
)


def test_ece_and_brier_by_hand():
    confidence = np.array([0.1, 0.3, 0.6, 0.9, 0.2, 0.8])
    outcome = np.array([0, 1, 1, 1, 0, 0])
    # 3 equal-mass bins of 2 in confidence order: (0.1, 0.2) (0.3, 0.6) (0.8, 0.9)
    # gaps |0.15 - 0| + |0.45 - 1| + |0.85 - 0.5| = 0.15 + 0.55 + 0.35, each bin a third
    assert expected_calibration_error(confidence, outcome, n_bins=3) == pytest.approx((0.15 + 0.55 + 0.35) / 3)
    squared = [0.01, 0.49, 0.16, 0.01, 0.04, 0.64]
    assert brier_score(confidence, outcome) == pytest.approx(np.mean(squared))
    bins = reliability_bins(confidence, outcome, n_bins=3)
    assert bins["mean_confidence"] == pytest.approx([0.15, 0.45, 0.85])
    assert bins["observed_frequency"] == pytest.approx([0.0, 1.0, 0.5])
    assert bins["count"] == [2.0, 2.0, 2.0]


def test_weights_count_as_repeated_voxels():
    # a sample is never split across bins, so weights equal repetition when the bin edges fall between samples;
    # bins of weight 3: {0.2 x2, 0.4} (confidence 0.8 / 3, frequency 1 / 3) and {0.7 x3} (frequency 1)
    confidence, outcome = np.array([0.2, 0.7, 0.4]), np.array([0, 1, 1])
    repeated = expected_calibration_error(np.repeat(confidence, [2, 3, 1]), np.repeat(outcome, [2, 3, 1]), n_bins=2)
    weighted = expected_calibration_error(confidence, outcome, np.array([2.0, 3.0, 1.0]), n_bins=2)
    assert weighted == pytest.approx(repeated) == pytest.approx((3 * abs(0.8 / 3 - 1 / 3) + 3 * 0.3) / 6)
    assert brier_score(confidence, outcome, np.array([2.0, 3.0, 1.0])) == pytest.approx(
        (2 * 0.04 + 3 * 0.09 + 0.36) / 6
    )


def test_a_calibrated_predictor_has_small_ece_and_equal_mass_bins_are_equal():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(size=200_000)
    outcome = rng.uniform(size=confidence.size) < confidence
    assert expected_calibration_error(confidence, outcome) < 0.01
    assert np.bincount(equal_mass_bins(confidence, n_bins=15)).tolist() == [200_000 // 15 + (i < 200_000 % 15) for i in range(15)] or \
        np.ptp(np.bincount(equal_mass_bins(confidence, n_bins=15))) <= 1  # fmt: skip
    assert np.isnan(expected_calibration_error(np.array([]), np.array([])))


@pytest.mark.parametrize("true_temperature", [0.7, 2.5])
def test_temperature_scaling_recovers_a_known_temperature(true_temperature):
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, size=(40_000, 3))
    true = torch.softmax(torch.as_tensor(logits) / true_temperature, dim=1).numpy()
    labels = np.array([rng.choice(3, p=p) for p in true])
    given = torch.softmax(torch.as_tensor(logits), dim=1).numpy()  # what the model says: T = 1
    per_class = fit_temperatures(log_probabilities(given), labels)
    shared = fit_temperatures(log_probabilities(given), labels, per_class=False)
    assert per_class == pytest.approx([true_temperature] * 3, rel=0.08)
    assert shared == pytest.approx([true_temperature] * 3, rel=0.05)
    assert len(set(shared.tolist())) == 1


def test_scaling_numpy_and_torch_agree_and_unit_temperatures_change_nothing():
    p = np.array([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]], dtype=np.float32)
    assert scale_probabilities(p, [1, 1, 1]) == pytest.approx(p, abs=1e-6)
    t = [1.5, 0.8, 2.0]
    along_first = scale_probabilities(torch.as_tensor(p.T), t, axis=0).numpy().T
    assert scale_probabilities(p, t) == pytest.approx(along_first, abs=1e-6)
    assert scale_probabilities(p, t).sum(axis=1) == pytest.approx([1, 1])


def test_voxel_samples_are_seeded_by_case_and_weighted_by_the_stratum():
    probabilities = np.random.default_rng(0).dirichlet([1, 1], size=(10, 10)).transpose(2, 0, 1)
    target = (probabilities[1] > 0.5).astype(int)
    mask = np.zeros((10, 10), bool)
    mask[:5] = True
    a = sample_voxels(probabilities, target, mask, "case_a", samples=20)
    assert a.probabilities.shape == (20, 2) and a.weights.sum() == pytest.approx(50)
    assert np.array_equal(a.target, sample_voxels(probabilities, target, mask, "case_a", samples=20).target)
    every = sample_voxels(probabilities, target, None, "case_a", samples=1000)
    assert len(every.target) == 100 and np.all(every.weights == 1)


def test_cross_validation_reports_before_after_and_honest_fold_temperatures():
    rng = np.random.default_rng(2)
    strata = {"overall": {}}
    folds = {}
    for i in range(6):
        logits = rng.normal(0, 4, size=(3000, 2))
        labels = (rng.uniform(size=3000) < torch.softmax(torch.as_tensor(logits) / 3, 1).numpy()[:, 1]).astype(int)
        p = torch.softmax(torch.as_tensor(logits), 1).numpy().astype(np.float32)
        strata["overall"][f"c{i}"] = VoxelSample(p, labels, np.ones(3000))
        folds[f"c{i}"] = i % 2
    body = calibrate_cross_validation(strata, folds, ("background", "lesion"), {"lesion": [1]})
    block = body["metrics"]["lesion"]["overall"]
    assert block["after"]["ece"] < block["before"]["ece"] / 3
    assert set(body["fold_temperatures"]) == {"0", "1"}
    assert body["temperatures"]["lesion"] == pytest.approx(3, rel=0.15)
    assert body["fitted_temperatures"] == body["temperatures"] and body["scaling"]["applied"] == "temperature"
    assert body["scaling"]["mean_ece_after"] == pytest.approx(block["after"]["ece"])  # one scored class
    assert body["binning"] == "equal-mass" and body["n_bins"] == 15


def test_temperatures_that_raise_the_cross_validated_ece_are_not_applied():
    # fold 0 is over-confident (true T 3), fold 1 under-confident (true T 1/3): each fold's temperature,
    # fitted on the other fold, pushes it the wrong way, so the honest ECE rises and T stays 1
    rng = np.random.default_rng(4)
    strata, folds = {"overall": {}}, {}
    for i, true_t in enumerate([3.0, 3.0, 1 / 3, 1 / 3]):
        logits = rng.normal(0, 2, size=(3000, 2))
        labels = (rng.uniform(size=3000) < torch.softmax(torch.as_tensor(logits) / true_t, 1).numpy()[:, 1]).astype(int)
        p = torch.softmax(torch.as_tensor(logits), 1).numpy().astype(np.float32)
        strata["overall"][f"c{i}"] = VoxelSample(p, labels, np.ones(3000))
        folds[f"c{i}"] = 0 if true_t > 1 else 1
    body = calibrate_cross_validation(strata, folds, ("background", "lesion"), {"lesion": [1]})
    block = body["metrics"]["lesion"]["overall"]
    assert block["after"]["ece"] > block["before"]["ece"]
    assert body["scaling"]["applied"] == "identity" and body["scaling"]["stratum"] == "overall"
    assert body["temperatures"] == {"background": 1.0, "lesion": 1.0}
    assert body["fitted_temperatures"]["lesion"] != 1.0


def test_voxels_outside_the_field_of_view_stay_zero_and_read_as_background():
    from adversarial_seg.seg.calibration import fill_outside_view

    p = np.array([[0.0, 0.6], [0.0, 0.4]], dtype=np.float32)  # (K=2, 2 voxels): the first beyond a crop
    scaled = scale_probabilities(p, [2.0, 2.0], axis=0)
    assert scaled[:, 0].tolist() == [0.0, 0.0] and scaled[:, 1].sum() == pytest.approx(1)
    assert scale_probabilities(torch.as_tensor(p), [2.0, 2.0], axis=0)[:, 0].tolist() == [0.0, 0.0]
    assert fill_outside_view(p)[:, 0].tolist() == [1.0, 0.0]


def test_a_single_fold_has_no_honest_after():
    rng = np.random.default_rng(3)
    p = rng.dirichlet([1, 1], size=500).astype(np.float32)
    sample = VoxelSample(p, (rng.uniform(size=500) < p[:, 1]).astype(int), np.ones(500))
    body = calibrate_cross_validation(
        {"overall": {"a": sample, "b": sample}}, {"a": 0, "b": 0}, ("bg", "fg"), {"fg": [1]}
    )
    block = body["metrics"]["fg"]["overall"]
    assert np.isfinite(block["before"]["ece"]) and np.isnan(block["after"]["ece"])
    assert body["fold_temperatures"] == {} and body["fitted_temperatures"]["fg"] > 0
    assert body["temperatures"]["fg"] == 1.0 and body["scaling"]["applied"] == "identity"  # nothing shows it helps
