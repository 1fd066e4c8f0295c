"""Generative metrics computed offline: Parzen-window log-likelihood, classifier score, Fréchet
distance in the feature space of a digits classifier shipped with the package, and mode coverage
on the ring of Gaussians.

Image metrics work in one "metric space": 16x16 images; Parzen on pixel values in [0, 1]
(as Goodfellow et al. did on MNIST), the classifier on [-1, 1] (the generators' range).

Example (the Fréchet distance of two diagonal Gaussians has a closed form):
    >>> import numpy as np
    >>> mu1, mu2 = np.zeros(2), np.array([3.0, 4.0])
    >>> s1, s2 = np.diag([1.0, 4.0]), np.diag([4.0, 1.0])
    >>> round(frechet_distance(mu1, s1, mu2, s2), 6)  # 25 + (1 + 4 - 4) + (4 + 1 - 4)
    27.0
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor

METRIC_SIZE = 16
ASSETS = Path(__file__).with_name("assets")
CLASSIFIER_WEIGHTS = ASSETS / "digits_classifier.pt"
CLASSIFIER_RECORD = ASSETS / "digits_classifier.json"
PARZEN_SIGMAS = tuple(float(s) for s in np.logspace(-2, 0, 21))  # chosen on the validation split


# --------------------------------------------------------------------------- Parzen window
def _squared_distances(centres: Tensor, points: Tensor, chunk: int = 512) -> Tensor:
    centres, points = centres.double().flatten(1), points.double().flatten(1)
    return torch.cat([torch.cdist(points[i : i + chunk], centres).square() for i in range(0, len(points), chunk)])


def _parzen_from_distances(squared: Tensor, dim: int, sigma: float) -> Tensor:
    norm = math.log(squared.shape[1]) + 0.5 * dim * math.log(2 * math.pi * sigma**2)
    return torch.logsumexp(-squared / (2 * sigma**2), dim=1) - norm


def parzen_log_likelihood(centres: Tensor, points: Tensor, sigma: float) -> Tensor:
    """log p(x) under an isotropic Gaussian kernel density on ``centres``, for each row of ``points``.

    centres (N, D), points (M, D) -> (M,) in nats:
    log p(x) = logsumexp_i(-||x - c_i||^2 / (2 sigma^2)) - log N - D/2 log(2 pi sigma^2).
    """
    return _parzen_from_distances(_squared_distances(centres, points), centres[0].numel(), sigma)


def parzen_evaluation(samples: Tensor, val: Tensor, test: Tensor, sigmas=PARZEN_SIGMAS) -> dict[str, float]:
    """Goodfellow et al.'s protocol: fit the window on ``samples``, choose sigma by the mean
    log-likelihood of ``val``, report the mean and its standard error on ``test``."""
    dim = samples[0].numel()
    val_sq = _squared_distances(samples, val)
    scores = {float(s): float(_parzen_from_distances(val_sq, dim, s).mean()) for s in sigmas}
    sigma = max(scores, key=scores.get)
    ll = _parzen_from_distances(_squared_distances(samples, test), dim, sigma)
    return {
        "parzen_ll": float(ll.mean()),
        "parzen_se": float(ll.std(unbiased=True) / math.sqrt(len(ll))),
        "parzen_sigma": sigma,
    }


# --------------------------------------------------------------------------- Fréchet distance
def feature_statistics(features: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), covariance (D, D), ddof 1) of features (N, D)."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrtm(matrix: np.ndarray) -> tuple[np.ndarray, bool]:
    """(sqrtm(matrix), whether scipy warned that it is singular or returned non-finite values)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(matrix)
    singular = any(issubclass(w.category, scipy.linalg.LinAlgWarning) for w in caught)
    return root, singular or not np.isfinite(root).all()


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6, imaginary_tolerance: float = 1e-3) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), the Fréchet distance of two Gaussians.

    (S1 S2)^(1/2) comes from ``scipy.linalg.sqrtm``. When it is not finite (singular covariances,
    e.g. fewer samples than dimensions) it is retried on (S1 + eps I)(S2 + eps I). Imaginary parts
    from rounding are dropped when small relative to the trace, and an error otherwise.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"Fréchet distance of mismatched statistics: {mu1.shape} vs {mu2.shape}")
    covmean, trouble = _sqrtm(sigma1 @ sigma2)
    if trouble:
        offset = np.eye(len(sigma1)) * eps
        covmean, _ = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
        if not np.isfinite(covmean).all():
            raise ValueError("Fréchet distance: the covariance square root is not finite even with a diagonal offset")
    if np.iscomplexobj(covmean):
        scale = max(1.0, abs(np.trace(sigma1)) + abs(np.trace(sigma2)))
        largest = np.max(np.abs(covmean.imag))
        if largest > imaginary_tolerance * scale:
            raise ValueError(
                f"Fréchet distance: sqrtm has an imaginary part of {largest:.3g}; the covariances are ill-conditioned"
            )
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


# --------------------------------------------------------------------------- digits classifier
class DigitsClassifier(nn.Module):
    """16x16 digit (in [-1, 1]) -> 64 features -> 10 logits; two conv blocks and two linear layers."""

    feature_dim = 64

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 4 * 4, self.feature_dim), nn.ReLU(),
        )  # fmt: skip
        self.classifier = nn.Linear(self.feature_dim, 10)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.body(x))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@lru_cache(maxsize=1)
def load_digits_classifier() -> DigitsClassifier:
    """The shipped classifier, in eval mode on the CPU; its sha256 is checked against the record."""
    if not CLASSIFIER_WEIGHTS.is_file() or not CLASSIFIER_RECORD.is_file():
        raise FileNotFoundError(
            f"{CLASSIFIER_WEIGHTS} or its record is missing; run python scripts/train_digits_classifier.py"
        )
    record = json.loads(CLASSIFIER_RECORD.read_text())
    if file_sha256(CLASSIFIER_WEIGHTS) != record["sha256"]:
        raise ValueError(
            f"{CLASSIFIER_WEIGHTS} does not match the sha256 in {CLASSIFIER_RECORD}; re-create it with scripts/train_digits_classifier.py"
        )
    model = DigitsClassifier()
    model.load_state_dict(torch.load(CLASSIFIER_WEIGHTS, map_location="cpu", weights_only=True))
    return model.eval()


def to_metric_space(images: Tensor) -> Tensor:
    """(N, 1, H, W) images in [-1, 1] -> (N, 1, 16, 16) on the CPU, float32, clamped to [-1, 1]."""
    images = images.detach().float().cpu().clamp(-1, 1)
    if images.shape[-1] != METRIC_SIZE:
        mode = "area" if images.shape[-1] > METRIC_SIZE else "bilinear"
        kwargs = {} if mode == "area" else {"align_corners": True}
        images = F.interpolate(images, size=(METRIC_SIZE, METRIC_SIZE), mode=mode, **kwargs)
    return images


@torch.no_grad()
def classifier_outputs(images: Tensor, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, 64), class probabilities (N, 10)) of images in [-1, 1]."""
    model = load_digits_classifier()
    images = to_metric_space(images)
    feats, probs = [], []
    for start in range(0, len(images), chunk):
        f = model.features(images[start : start + chunk])
        feats.append(f)
        probs.append(torch.softmax(model.classifier(f), dim=1))
    return torch.cat(feats).double().numpy(), torch.cat(probs).double().numpy()


def classifier_score(probabilities: np.ndarray) -> float:
    """exp(E_x KL(p(y|x) || p(y))), the Inception Score's analogue: 1 (useless) to 10 (sharp, all classes)."""
    p = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)
    marginal = p.mean(axis=0, keepdims=True)
    return float(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(marginal)), axis=1))))


def digits_metrics(images: Tensor, reference: Tensor | np.ndarray) -> dict[str, float]:
    """Classifier score of ``images``, Fréchet distance to ``reference`` (images, or their classifier
    features (N, 64) computed once) and the share of the most frequent predicted class (1.0: every
    sample is one digit)."""
    feats, probs = classifier_outputs(images)
    ref_feats = reference if isinstance(reference, np.ndarray) else classifier_outputs(reference)[0]
    counts = np.bincount(probs.argmax(axis=1), minlength=10)
    return {
        "classifier_score": classifier_score(probs),
        "frechet_distance": frechet_distance(*feature_statistics(feats), *feature_statistics(ref_feats)),
        "top_class_share": float(counts.max() / counts.sum()),
    }


# --------------------------------------------------------------------------- ring of Gaussians
def ring_metrics(points: Tensor, centres: Tensor, std: float, min_share: float = 0.25) -> dict[str, float]:
    """Mode coverage on the ring (Srivastava et al. 2017's protocol).

    A sample is high quality when it lies within 3 ``std`` of its nearest centre. A mode is
    covered when at least ``min_share`` of its fair share (n / modes) of the samples are high
    quality and nearest to it.

    >>> centres = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    >>> ring_metrics(torch.tensor([[1.0, 0.01], [0.99, 0.0], [0.0, 5.0]]), centres, std=0.02)
    {'modes_covered': 1, 'high_quality': 0.6666666666666666}
    """
    points, centres = points.detach().float().cpu(), centres.float()
    distance, nearest = torch.cdist(points, centres).min(dim=1)
    good = distance <= 3 * std
    counts = torch.bincount(nearest[good], minlength=len(centres))
    needed = min_share * len(points) / len(centres)
    return {"modes_covered": int((counts >= needed).sum()), "high_quality": float(good.double().mean())}


def pairwise_spread(samples: Tensor, limit: int = 500) -> float:
    """Mean pairwise Euclidean distance of (up to ``limit``) flattened samples; low = collapse."""
    x = samples.detach().float().cpu().flatten(1)[:limit]
    if len(x) < 2:
        return 0.0
    d = torch.cdist(x, x)
    return float(d.sum() / (len(x) * (len(x) - 1)))
