"""Entropy, mutual information, case scores, Spearman and the review curve, by hand."""

import math

import numpy as np
import pytest
import torch

from adversarial_seg.seg.inference import predict_probabilities, predict_probabilities_and_information
from adversarial_seg.seg.uncertainty import (
    case_score,
    entropy,
    mutual_information,
    review_curve,
    review_order,
    score_dsc_correlation,
    uncertainty_summary,
)


def test_entropy_and_mutual_information_by_hand():
    assert entropy(np.array([[0.25], [0.25], [0.5]]))[0] == pytest.approx(
        -2 * 0.25 * math.log(0.25) - 0.5 * math.log(0.5)
    )
    members = np.array([[[0.9], [0.1]], [[0.1], [0.9]]])
    h_mean = math.log(2)
    h_member = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert mutual_information(members)[0] == pytest.approx(h_mean - h_member, abs=1e-6)


class Constant(torch.nn.Module):
    """A "model" whose logits are fixed per voxel (identical fold models)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1, -1, -1)


class Precision:
    def autocast(self):
        return torch.autocast("cpu", enabled=False)


def test_identical_fold_models_have_zero_mutual_information_and_the_same_mean():
    logits = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    models = [Constant(logits), Constant(logits)]
    image = torch.zeros(1, 1, 8, 8)
    inferer = lambda x, model: model(x)  # noqa: E731
    mean, information = predict_probabilities_and_information(models, image, inferer, Precision())
    assert torch.equal(mean, predict_probabilities(models, image, inferer, Precision()))
    assert information.shape == (1, 1, 8, 8) and float(information.abs().max()) == 0.0
    different = [Constant(logits), Constant(-logits)]
    _, information = predict_probabilities_and_information(different, image, inferer, Precision())
    assert float(information.min()) >= 0 and float(information.mean()) > 0.1


def test_case_score_is_the_mean_entropy_inside_the_predicted_foreground():
    p = np.array([[0.9, 0.5, 0.2], [0.1, 0.5, 0.8]])  # voxel 0 background; 1 and 2 foreground (ties go to 0)
    score = case_score(p)
    assert score["foreground_voxels"] == 1
    assert score["mean_entropy_foreground"] == pytest.approx(entropy(p)[2])
    assert math.isnan(case_score(np.array([[1.0], [0.0]]))["mean_entropy_foreground"])


def test_review_order_curve_and_correlation():
    scores = {"a": 0.1, "b": 0.9, "c": 0.5, "d": float("nan")}
    dsc = {"a": 0.95, "b": 0.40, "c": 0.80, "d": 0.0}
    assert review_order(scores) == ["d", "b", "c", "a"]
    curve = review_curve(review_order(scores), dsc)
    assert [p["mean_dsc"] for p in curve] == pytest.approx([np.mean([0, 0.4, 0.8, 0.95]), np.mean([0.4, 0.8, 0.95]),
                                                            np.mean([0.8, 0.95]), 0.95])  # fmt: skip
    rho = score_dsc_correlation(scores, dsc)
    assert rho["n"] == 3 and rho["rho"] == pytest.approx(-1.0)
    summary = uncertainty_summary(scores, {"gland": dsc})
    assert [p["mean_dsc"] for p in summary["gland"]["oracle"]][:2] == pytest.approx([0.5375, np.mean([0.4, 0.8, 0.95])])
