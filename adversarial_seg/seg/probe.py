"""The discriminator probe: how well a mask discriminator tells expert from predicted masks.

Each held-out sample (a slice, an image or a patch) gives one pair of scores: D's mean patch
logit on (image, expert mask) and on (image, predicted mask), both encoded exactly as in
training (``MaskDiscriminator.expert_mask`` / ``predicted_mask``). The probe is the ROC AUC of
those scores with the expert pairs as positives: 0.5 means D cannot tell the two apart, 1 that
it ranks every expert pair above every predicted one. ``seg-train`` logs it per epoch as
``d_auc`` (on the same cases as the monitor DSC); ``scripts/probe_discriminator.py`` trains a
fresh D on frozen predictions to see how separable the two are at all.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from adversarial_seg.runtime import Precision, to_device
from adversarial_seg.seg.networks import MaskDiscriminator


def pair_auc(expert_scores, predicted_scores) -> float:
    """ROC AUC of D's scores, expert pairs positive; NaN without a score of each kind.

    >>> pair_auc([2.0, 0.5], [1.0, -1.0])  # 3 of the 4 (expert, predicted) orderings are right
    0.75
    """
    expert, predicted = np.asarray(expert_scores, float), np.asarray(predicted_scores, float)
    if expert.size == 0 or predicted.size == 0:
        return math.nan
    labels = np.r_[np.ones(expert.size), np.zeros(predicted.size)]
    return float(roc_auc_score(labels, np.r_[expert, predicted]))


def patch_score(discriminator: MaskDiscriminator, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """D's mean patch logit per sample: image (B, C, *S), mask (B, K, *S) -> (B,) float32."""
    return discriminator(image, mask).float().flatten(1).mean(1)


@torch.no_grad()
def pair_scores(
    segmentor: torch.nn.Module,
    discriminator: MaskDiscriminator,
    batches,
    device: torch.device,
    precision: Precision,
) -> tuple[np.ndarray, np.ndarray]:
    """(expert scores (N,), predicted scores (N,)) over ``batches`` of {image, label}, in eval mode.

    Both networks are put back into the mode they were in.
    """
    modes = segmentor.training, discriminator.training
    segmentor.eval()
    discriminator.eval()
    expert, predicted = [], []
    try:
        for batch in batches:
            image, label = to_device(batch["image"], device), to_device(batch["label"], device)
            with precision.autocast():
                logits = segmentor(image)
                expert.append(patch_score(discriminator, image, discriminator.expert_mask(label, logits)))
                predicted.append(patch_score(discriminator, image, discriminator.predicted_mask(logits)))
    finally:
        segmentor.train(modes[0])
        discriminator.train(modes[1])
    if not expert:
        return np.zeros(0), np.zeros(0)
    return torch.cat(expert).cpu().numpy(), torch.cat(predicted).cpu().numpy()


def discriminator_probe(
    segmentor, discriminator, dataset, device, precision: Precision, batch_size: int = 16
) -> dict[str, float]:
    """``{"d_auc": AUC, "d_auc_pairs": number of held-out pairs}`` on ``dataset`` (no augmentation)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    expert, predicted = pair_scores(segmentor, discriminator, loader, device, precision)
    return {"d_auc": pair_auc(expert, predicted), "d_auc_pairs": float(expert.size)}
