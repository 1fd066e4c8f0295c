"""Calibration of voxel class probabilities: ECE, Brier, reliability bins, temperature scaling.

Every metric here is one-vs-rest for one scored class (a region of ``data.regions``: its
probability is the sum of the probabilities of the label values it unites) over voxels:
``confidence`` is that probability, ``outcome`` whether the reference voxel lies in the region.

* Expected calibration error (ECE) with **equal-mass bins** (default ``DEFAULT_BINS`` = 15):
  voxels sorted by confidence are cut into bins of equal total weight, and
  ``ECE = sum_b W_b / W * |mean confidence_b - observed frequency_b|``. Equal-mass bins matter
  here: segmentation probabilities are polarised (most voxels near 0 or 1), so equal-width bins
  would leave the middle bins nearly empty and the ECE would be set by a handful of voxels.
* Brier score: ``sum w (confidence - outcome)^2 / sum w`` (the one-vs-rest, binary form).
* Temperature scaling (``fit_temperatures``): ``logits = log(clamped probabilities)``,
  ``p_T = softmax(logits / T_k)``, fitted by minimising the weighted negative log-likelihood
  with LBFGS on ``log T`` (so T stays > 0). Runs fit **one temperature shared by all classes**
  (``per_class=False``, stored once per class in calibration.json): dividing log-probabilities by
  unequal ``T_k`` is not shift-invariant (the result depends on the arbitrary normalisation of the
  logits) and changes the argmax, and on the 5-fold prostate ce run per-class temperatures raised
  the honest in-gland ECE of the gland from 0.235 to 0.289 where one temperature left it at
  0.237. One T keeps the argmax, so the label maps seg-predict writes stay the maps the
  cross-validation scored; ``argmax_changed_fraction`` in calibration.json records it (0).
* The fitted temperature is **applied only where it helped** (``choose_scaling``), decided like
  postprocessing.json's keep-largest-component: when the honest cross-validated ECE (mean over
  the scored classes, inside the region when one is set) is not lower after scaling, the frozen
  temperatures are 1 (identity) and ``fitted_temperatures`` keeps what the fit gave. On the PH2
  small-data runs NLL scaling raised the in-lesion ECE from about 0.06 to 0.09 (its confidently
  wrong regions pull T up), so scaling there would have made seg-predict's probabilities worse.

Voxels are **subsampled** with a fixed seed, not histogrammed: per case and stratum (all voxels;
voxels inside the ``metrics.specificity_region`` reference region) at most ``samples`` voxels are
drawn uniformly without replacement (seeded by the case name, so a case's sample does not depend
on the other cases), each weighted by stratum voxels / voxels drawn, so pooled weighted metrics
estimate the metric over every voxel of every case (a prostate volume holds 2-3 M voxels; 30
cases of all voxels would not fit a 2-core machine's patience).

Example (2 bins: [0.1, 0.2] and [0.8, 0.9]):
    >>> confidence = np.array([0.1, 0.2, 0.8, 0.9]); outcome = np.array([0, 0, 1, 0])
    >>> round(expected_calibration_error(confidence, outcome, n_bins=2), 4)
    0.25
    >>> round(brier_score(confidence, outcome), 4)
    0.225
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

DEFAULT_BINS = 15
EPSILON = 1e-6  # probabilities are clamped here before the log: float16 files hold exact 0s
DEFAULT_SAMPLES = 50_000  # voxels drawn per case and stratum
METHOD = "temperature scaling, one T for all classes, on log(clamped probabilities), NLL minimised by LBFGS on log T"


# --------------------------------------------------------------------------- metrics


def _weights(confidence: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    return np.ones(len(confidence)) if weights is None else np.asarray(weights, dtype=np.float64)


def equal_mass_bins(
    confidence: np.ndarray, weights: np.ndarray | None = None, n_bins: int = DEFAULT_BINS
) -> np.ndarray:
    """Bin index (0..n_bins-1) of each sample, bins holding equal total weight in confidence order.

    A sample goes to the bin holding the midpoint of its weight; ties are broken by input order
    (stable sort), so equal confidences may straddle a bin edge.

    >>> equal_mass_bins(np.array([0.9, 0.1, 0.5, 0.3]), n_bins=2).tolist()
    [1, 0, 1, 0]
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    w = _weights(confidence, weights)
    order = np.argsort(confidence, kind="stable")
    cumulative = np.cumsum(w[order]) - w[order] / 2
    total = float(w.sum())
    bins = np.empty(len(confidence), dtype=np.int64)
    bins[order] = np.clip(np.floor(n_bins * cumulative / max(total, 1e-300)), 0, n_bins - 1)
    return bins


def _bin_statistics(confidence, outcome, weights, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(total weight, mean confidence, observed frequency) of each non-empty equal-mass bin."""
    confidence = np.asarray(confidence, dtype=np.float64)
    outcome = np.asarray(outcome, dtype=np.float64)
    w = _weights(confidence, weights)
    bins = equal_mass_bins(confidence, w, n_bins)
    mass = np.bincount(bins, weights=w, minlength=n_bins)
    conf = np.bincount(bins, weights=w * confidence, minlength=n_bins)
    freq = np.bincount(bins, weights=w * outcome, minlength=n_bins)
    kept = mass > 0
    return mass[kept], conf[kept] / mass[kept], freq[kept] / mass[kept]


def reliability_bins(
    confidence: np.ndarray, outcome: np.ndarray, weights: np.ndarray | None = None, n_bins: int = DEFAULT_BINS
) -> dict[str, list[float]]:
    """Reliability diagram of equal-mass bins: per non-empty bin the weighted mean confidence,
    observed frequency of the outcome and total weight (``count``: voxels, when weights are the
    sampling weights), rounded to 6 decimals for the report.

    >>> reliability_bins(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 0]), n_bins=2)
    {'mean_confidence': [0.15, 0.85], 'observed_frequency': [0.0, 0.5], 'count': [2.0, 2.0]}
    """
    mass, conf, freq = _bin_statistics(confidence, outcome, weights, n_bins)
    return {
        "mean_confidence": [round(float(v), 6) for v in conf],
        "observed_frequency": [round(float(v), 6) for v in freq],
        "count": [float(v) for v in mass],
    }


def expected_calibration_error(
    confidence: np.ndarray, outcome: np.ndarray, weights: np.ndarray | None = None, n_bins: int = DEFAULT_BINS
) -> float:
    """ECE of equal-mass bins (see the module docstring); NaN without samples."""
    if len(confidence) == 0:
        return float("nan")
    mass, conf, freq = _bin_statistics(confidence, outcome, weights, n_bins)
    return float((mass * np.abs(conf - freq)).sum() / mass.sum())


def brier_score(confidence: np.ndarray, outcome: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Weighted mean of (confidence - outcome)^2; NaN without samples."""
    if len(confidence) == 0:
        return float("nan")
    confidence = np.asarray(confidence, dtype=np.float64)
    w = _weights(confidence, weights)
    return float((w * (confidence - np.asarray(outcome, dtype=np.float64)) ** 2).sum() / w.sum())


# --------------------------------------------------------------------------- temperature scaling


def log_probabilities(probabilities, epsilon: float = EPSILON, axis: int = -1):
    """log of probabilities clamped to [epsilon, 1] and renormalised along ``axis`` (numpy or torch)."""
    if isinstance(probabilities, np.ndarray):
        p = np.clip(probabilities.astype(np.float32), epsilon, 1.0)
        return np.log(p / p.sum(axis=axis, keepdims=True))
    p = probabilities.float().clamp(epsilon, 1.0)
    return (p / p.sum(dim=axis, keepdim=True)).log()


def scale_probabilities(probabilities, temperatures, axis: int = -1, epsilon: float = EPSILON):
    """``softmax(log(clamped p) / T_k)`` along the class ``axis`` (numpy or torch, any shape).

    >>> p = np.array([[0.9, 0.1]])
    >>> [round(float(v), 3) for v in scale_probabilities(p, [1.0, 1.0])[0]]
    [0.9, 0.1]
    >>> [round(float(v), 3) for v in scale_probabilities(p, [2.0, 2.0])[0]]
    [0.75, 0.25]

    Voxels whose probabilities sum to less than 0.5 lie outside the model's field of view (the
    native grid beyond a ``data.size`` crop holds zeros after inverting it): they stay as they are.
    Voxels at the edge of that view, blended with the zeros by the linear inversion (sum between 0.5
    and 1), come out renormalised to sum 1.
    """
    if isinstance(probabilities, np.ndarray):
        shape = [1] * probabilities.ndim
        shape[axis] = -1
        z = log_probabilities(probabilities, epsilon, axis) / np.asarray(temperatures, dtype=np.float32).reshape(shape)
        z = z - z.max(axis=axis, keepdims=True)
        e = np.exp(z)
        scaled = e / e.sum(axis=axis, keepdims=True)
        return np.where(probabilities.sum(axis=axis, keepdims=True) < 0.5, probabilities, scaled)
    import torch

    shape = [1] * probabilities.dim()
    shape[axis] = -1
    t = torch.as_tensor(np.asarray(temperatures, dtype=np.float32), device=probabilities.device).reshape(shape)
    scaled = torch.softmax(log_probabilities(probabilities, epsilon, axis) / t, dim=axis)
    return torch.where(probabilities.sum(dim=axis, keepdim=True) < 0.5, probabilities.float(), scaled)


def fill_outside_view(probabilities: np.ndarray, axis: int = 0) -> np.ndarray:
    """Probabilities with certain background (class 0 = 1) where every class is 0: voxels outside
    the model's field of view, which the label map calls background.

    >>> fill_outside_view(np.array([[0.0, 0.2], [0.0, 0.8]])).tolist()
    [[1.0, 0.2], [0.0, 0.8]]
    """
    outside = probabilities.sum(axis=axis) < 0.5
    if outside.any():
        probabilities = probabilities.copy()
        np.moveaxis(probabilities, axis, 0)[0][outside] = 1.0
    return probabilities


def fit_temperatures(
    log_p: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None, per_class: bool = True
) -> np.ndarray:
    """Temperatures (K,) minimising the weighted NLL of ``softmax(log_p / T)``.

    ``log_p``: (N, K) log-probabilities (``log_probabilities``); ``target``: (N,) class indices;
    ``per_class=False`` fits one temperature shared by all classes (returned K times).
    """
    import torch

    z = torch.as_tensor(np.asarray(log_p, dtype=np.float32))
    y = torch.as_tensor(np.asarray(target, dtype=np.int64))
    w = torch.as_tensor(_weights(z, weights), dtype=torch.float32)
    w = w / w.sum()
    log_t = torch.zeros(z.shape[1] if per_class else 1, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = (w * torch.nn.functional.cross_entropy(z / log_t.exp(), y, reduction="none")).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    t = log_t.detach().exp().numpy().astype(np.float64)
    return np.repeat(t, z.shape[1]) if not per_class else t


# --------------------------------------------------------------------------- voxel samples of a run


@dataclass
class VoxelSample:
    """Sampled voxels of one case and one stratum: ``probabilities`` (n, K) float32, ``target``
    (n,) class indices, ``weights`` (n,) stratum voxels per drawn voxel."""

    probabilities: np.ndarray
    target: np.ndarray
    weights: np.ndarray

    @staticmethod
    def concatenate(samples: list[VoxelSample]) -> VoxelSample:
        if not samples:
            return VoxelSample(np.zeros((0, 0), np.float32), np.zeros(0, np.int64), np.zeros(0))
        return VoxelSample(
            *(np.concatenate([getattr(s, f) for s in samples]) for f in ("probabilities", "target", "weights"))
        )


def sample_voxels(
    probabilities: np.ndarray, target: np.ndarray, mask: np.ndarray | None, case: str,
    samples: int = DEFAULT_SAMPLES, seed: int = 0,
) -> VoxelSample:  # fmt: skip
    """Up to ``samples`` voxels of ``mask`` (all voxels when None), uniformly without replacement.

    ``probabilities``: (K, *S); ``target``: (*S) class indices; the draw is seeded by (seed, case).
    """
    flat = np.flatnonzero(mask) if mask is not None else np.arange(target.size)
    rng = np.random.default_rng([seed, zlib.crc32(case.encode())])
    chosen = np.sort(rng.choice(flat, size=samples, replace=False)) if flat.size > samples else flat
    k = probabilities.shape[0]
    picked = probabilities.reshape(k, -1)[:, chosen].T.astype(np.float32)
    weight = np.full(chosen.size, flat.size / max(chosen.size, 1), dtype=np.float64)
    return VoxelSample(picked, target.reshape(-1)[chosen].astype(np.int64), weight)


def region_metrics(sample: VoxelSample, class_indices: list[int], n_bins: int = DEFAULT_BINS) -> dict:
    """ECE, Brier and reliability bins of one region (the sum of ``class_indices``' probabilities)."""
    if len(sample.target) == 0:
        return {"ece": float("nan"), "brier": float("nan"), "reliability": None}
    confidence = sample.probabilities[:, class_indices].sum(axis=1).clip(0.0, 1.0)
    outcome = np.isin(sample.target, class_indices)
    return {
        "ece": expected_calibration_error(confidence, outcome, sample.weights, n_bins),
        "brier": brier_score(confidence, outcome, sample.weights),
        "reliability": reliability_bins(confidence, outcome, sample.weights, n_bins),
    }


def choose_scaling(metrics: dict, stratum: str) -> dict:
    """Whether the fitted temperatures are applied: only when they lower the mean (over the scored
    classes of ``metrics``) cross-validated ECE in ``stratum``; ``identity`` otherwise, also when no
    honest "after" exists (a single fold)."""
    blocks = [places[stratum] for places in metrics.values() if stratum in places]
    before = float(np.mean([b["before"]["ece"] for b in blocks])) if blocks else float("nan")
    after = float(np.mean([b["after"]["ece"] for b in blocks])) if blocks else float("nan")
    helps = math.isfinite(after) and math.isfinite(before) and after < before
    return {
        "applied": "temperature" if helps else "identity",
        "stratum": stratum,
        "mean_ece_before": before,
        "mean_ece_after": after,
        "rule": "temperatures applied only when they lower the mean cross-validated ECE of the scored classes",
    }


def calibrate_cross_validation(
    strata: dict[str, dict[str, VoxelSample]],
    folds: dict[str, int],
    class_names: tuple[str, ...],
    regions: dict[str, list[int]],
    n_bins: int = DEFAULT_BINS,
    per_class: bool = False,
) -> dict:
    """Temperatures and ECE / Brier before and after scaling, honest per fold.

    ``strata``: stratum name (``overall``, and ``region`` when one is set) -> case -> VoxelSample;
    ``folds``: case -> its validation fold; ``regions``: scored class -> class indices it sums.
    The temperatures are fitted on the ``overall`` samples (the voxels seg-predict will scale:
    it knows no reference region). Each case's "after" probabilities use temperatures fitted on
    the other folds' cases only; ``fitted_temperatures`` are fitted on every case, and
    ``temperatures`` (the frozen ones) are those or 1 as ``choose_scaling`` decides.
    Returns the body of ``report/calibration.json``.
    """
    fit_on = strata["overall"]
    cases = sorted(fit_on)

    def fit(chosen: list[str]) -> np.ndarray:
        pooled = VoxelSample.concatenate([fit_on[c] for c in chosen])
        return fit_temperatures(log_probabilities(pooled.probabilities), pooled.target, pooled.weights, per_class)

    all_folds = sorted({folds[c] for c in cases})
    fitted = fit(cases)
    # one fold alone has no other folds to fit on: its "after" would not be honest, so it is left undefined
    per_fold = {f: fit([c for c in cases if folds[c] != f]) for f in all_folds} if len(all_folds) > 1 else {}
    results: dict = {}
    for stratum, by_case in strata.items():
        before = VoxelSample.concatenate([by_case[c] for c in sorted(by_case)])
        scaled = [VoxelSample(scale_probabilities(s.probabilities, per_fold[folds[c]]), s.target, s.weights)
                  for c, s in sorted(by_case.items()) if folds[c] in per_fold]  # fmt: skip
        after = VoxelSample.concatenate(scaled)
        for name, indices in regions.items():
            results.setdefault(name, {})[stratum] = {
                "before": region_metrics(before, indices, n_bins),
                "after": region_metrics(after, indices, n_bins),
                "voxels": float(before.weights.sum()),
                "sampled_voxels": int(len(before.target)),
            }
    overall = VoxelSample.concatenate([fit_on[c] for c in cases])
    scaling = choose_scaling(results, "region" if "region" in strata else "overall")
    applied = fitted if scaling["applied"] == "temperature" else np.ones_like(fitted)
    changed = np.mean(scale_probabilities(overall.probabilities, fitted).argmax(1) != overall.probabilities.argmax(1))
    return {
        "method": METHOD,
        "classes": list(class_names),
        "temperatures": {name: round(float(t), 6) for name, t in zip(class_names, applied)},
        "fitted_temperatures": {name: round(float(t), 6) for name, t in zip(class_names, fitted)},
        "scaling": scaling,
        "fold_temperatures": {
            str(f): {n: round(float(t), 6) for n, t in zip(class_names, ts)} for f, ts in per_fold.items()
        },  # fmt: skip
        "per_class": per_class,
        "epsilon": EPSILON,
        "n_bins": n_bins,
        "binning": "equal-mass",
        "n_cases": len(cases),
        "argmax_changed_fraction": float(changed) if len(overall.target) else float("nan"),
        "argmax": "label maps stay the argmax of the uncalibrated probabilities",
        "metrics": results,
    }
