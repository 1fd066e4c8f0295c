"""Voxel uncertainty and case scores from class probabilities (units: nats).

* ``entropy``: H(p) = -sum_k p_k log p_k of the (mean) class probabilities, 0 .. log K.
* mutual information (BALD) of an ensemble of M members (fold models x TTA passes):
  MI = H(mean_m p_m) - mean_m H(p_m) >= 0; it is 0 where the members agree, whatever their
  entropy, so it separates model disagreement from ambiguity every member sees.
* a case's score: the mean voxel entropy inside the predicted foreground (the label map's
  non-background voxels). Normalising by the foreground keeps a large, confident gland from
  scoring lower than a small one only because it has more confident interior; a case whose
  prediction is empty scores NaN and is ranked first for review (``review_order``).

Example:
    >>> p = np.array([[0.5, 1.0], [0.5, 0.0]])  # (K=2, 2 voxels)
    >>> [round(float(h), 4) for h in entropy(p)]
    [0.6931, 0.0]
"""

from __future__ import annotations

import math

import numpy as np

TINY = 1e-12


def entropy(probabilities: np.ndarray, axis: int = 0) -> np.ndarray:
    """Entropy in nats along the class ``axis``: (K, *S) -> (*S), float32."""
    p = np.asarray(probabilities, dtype=np.float32)
    return (p * np.log(1.0 / np.clip(p, TINY, 1.0))).sum(axis=axis)  # log(1/p): no -0.0 where p = 1


def mutual_information(member_probabilities: np.ndarray) -> np.ndarray:
    """MI of members (M, K, *S) -> (*S): entropy of the mean minus the mean of member entropies,
    clipped at 0 (float rounding).

    >>> same = np.array([[[0.7], [0.3]], [[0.7], [0.3]]])  # two identical members, K=2, 1 voxel
    >>> float(mutual_information(same)[0])
    0.0
    >>> round(float(mutual_information(np.array([[[1.0], [0.0]], [[0.0], [1.0]]]))[0]), 4)
    0.6931
    """
    members = np.asarray(member_probabilities, dtype=np.float32)
    mean_entropy = np.mean([entropy(m) for m in members], axis=0)
    return np.maximum(entropy(members.mean(axis=0)) - mean_entropy, 0.0)


def foreground_mean(voxel_map: np.ndarray, foreground: np.ndarray) -> float:
    """Mean of ``voxel_map`` over the ``foreground`` mask; NaN when the mask is empty.

    >>> foreground_mean(np.array([0.2, 0.4, 0.9]), np.array([True, True, False]))
    0.3
    """
    foreground = np.asarray(foreground, dtype=bool)
    if not foreground.any():
        return float("nan")
    return round(float(np.asarray(voxel_map, dtype=np.float64)[foreground].mean()), 12)


def case_score(probabilities: np.ndarray) -> dict:
    """Scores of one case from its (K, *S) class probabilities: mean entropy inside the predicted
    foreground (argmax != background) and over the whole image, and the foreground size."""
    h = entropy(probabilities)
    foreground = np.asarray(probabilities).argmax(axis=0) != 0
    return {"mean_entropy_foreground": foreground_mean(h, foreground), "mean_entropy": float(h.mean()),
            "foreground_voxels": int(foreground.sum())}  # fmt: skip


def review_order(scores: dict[str, float]) -> list[str]:
    """Cases, most uncertain first (NaN, an empty prediction, first; ties by name).

    >>> review_order({"a": 0.1, "b": float("nan"), "c": 0.5})
    ['b', 'c', 'a']
    """
    return sorted(scores, key=lambda c: (not math.isnan(scores[c]), -scores[c] if not math.isnan(scores[c]) else 0, c))


def review_curve(order: list[str], dsc: dict[str, float]) -> list[dict]:
    """Mean DSC of the cases left after reviewing the first k of ``order``, k = 0 .. n - 1 (cases
    with an undefined DSC, an empty reference, are left out of the means but still cost a review).

    >>> review_curve(["b", "a", "c"], {"a": 0.9, "b": 0.3, "c": 0.6})
    [{'k': 0, 'remaining': 3, 'mean_dsc': 0.6}, {'k': 1, 'remaining': 2, 'mean_dsc': 0.75}, {'k': 2, 'remaining': 1, 'mean_dsc': 0.6}]
    """
    curve = []
    for k in range(len(order)):
        left = [dsc[c] for c in order[k:] if c in dsc and math.isfinite(dsc[c])]
        curve.append({"k": k, "remaining": len(order) - k,
                      "mean_dsc": round(float(np.mean(left)), 6) if left else float("nan")})  # fmt: skip
    return curve


def score_dsc_correlation(scores: dict[str, float], dsc: dict[str, float]) -> dict:
    """Spearman's rank correlation of case score and DSC over cases where both are finite
    (scipy.stats.spearmanr; NaN below 3 cases)."""
    from scipy.stats import spearmanr

    cases = [c for c in scores if c in dsc and math.isfinite(scores[c]) and math.isfinite(dsc[c])]
    if len(cases) < 3:
        return {"rho": float("nan"), "p_value": float("nan"), "n": len(cases)}
    result = spearmanr([scores[c] for c in cases], [dsc[c] for c in cases])
    return {"rho": float(result.statistic), "p_value": float(result.pvalue), "n": len(cases)}


def uncertainty_summary(scores: dict[str, float], dsc_by_class: dict[str, dict[str, float]]) -> dict:
    """Per scored class: the correlation of the case score with DSC, the review curve in score
    order and the oracle's (lowest DSC first: the best any score could do)."""
    order = review_order(scores)
    out = {}
    for name, dsc in dsc_by_class.items():
        oracle = sorted(dsc, key=lambda c: (not math.isfinite(dsc[c]), dsc[c] if math.isfinite(dsc[c]) else 0, c))
        oracle += [c for c in order if c not in dsc]
        out[name] = {"spearman": score_dsc_correlation(scores, dsc), "review": review_curve(order, dsc),
                     "oracle": review_curve(oracle, dsc)}  # fmt: skip
    return out
