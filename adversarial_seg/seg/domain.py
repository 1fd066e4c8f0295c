"""DANN (Ganin et al. 2016) for the segmentor: a domain classifier on the segmentor's bottleneck
features learns to tell the source site's images from the target site's, and a gradient reversal
layer in front of it hands the segmentor the opposite gradient, so the encoder learns features the
classifier cannot tell apart while the supervised loss on the source site keeps them useful.

* ``reverse_gradient(x, weight)``: the identity forward; backward it multiplies the gradient by
  ``-weight``.
* ``DomainClassifier``: the features standardised per sample (zero mean, unit variance over
  channels and space), two 3 x 3 convolutions (2D or 3D), a spatial mean and a linear logit per
  sample (target site = 1). Without the standardisation the encoder wins the game by inflating
  its features (a MONAI UNet's bottleneck ends in an unnormalised residual sum, and the
  classifier is nearly positively homogeneous): on the prostate sites at a constant reversal
  weight 0.1 the domain loss rose from 0.69 to 11.6 by epoch 16 of fold 0 at accuracy 0.5, a
  classifier confidently wrong (docs/configuration.md, ``domain.adapt_ramp``).
* ``FeatureTap``: keeps the output of the segmentor's bottleneck (the innermost block of a MONAI
  UNet, ``seg.unet_parts.unet_bottleneck``) at every forward pass.
* ``ganin_ramp``: Ganin et al.'s schedule of the reversal weight over training.
* ``domain_terms``: the classifier's loss (binary cross-entropy, source 0, target 1, the mean of the
  two sites' means) and its accuracy, which falls towards 0.5 as the features align.

Example:
    >>> x = torch.ones(3, requires_grad=True)
    >>> reverse_gradient(x, 0.5).sum().backward()
    >>> x.grad.tolist()
    [-0.5, -0.5, -0.5]
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: float) -> Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return -ctx.weight * grad, None


def reverse_gradient(x: Tensor, weight: float) -> Tensor:
    return _ReverseGradient.apply(x, weight)


class FeatureTap:
    """The last output of ``module`` (a forward hook); ``output`` keeps its graph."""

    def __init__(self, module: nn.Module):
        self.output: Tensor | None = None
        self._handle = module.register_forward_hook(self._keep)

    def _keep(self, module, inputs, output) -> None:
        self.output = output

    def remove(self) -> None:
        self._handle.remove()
        self.output = None


class DomainClassifier(nn.Module):
    def __init__(self, spatial_dims: int, in_channels: int, width: int = 64):
        super().__init__()
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        self.body = nn.Sequential(
            conv(in_channels, width, 3, padding=1),
            nn.LeakyReLU(0.2),
            conv(width, width, 3, padding=1),
            nn.LeakyReLU(0.2),
        )
        self.head = nn.Linear(width, 1)

    def forward(self, features: Tensor) -> Tensor:
        """(B, C, *S) features -> (B,) logits, target site positive; the features' scale is not seen."""
        return self.head(self.body(F.group_norm(features, 1)).flatten(2).mean(2))[:, 0]


def ganin_ramp(progress: float, gamma: float = 10.0) -> float:
    """2 / (1 + exp(-gamma p)) - 1 at training progress p in [0, 1]: 0 at the start, 0.987 at p = 0.5
    (Ganin et al. 2016, section 5.2.2), so the classifier learns the domains before the encoder is
    pushed to hide them.

    >>> [round(ganin_ramp(p), 3) for p in (0.0, 0.1, 0.5, 1.0)]
    [0.0, 0.462, 0.987, 1.0]
    """
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


def domain_terms(source_logits: Tensor, target_logits: Tensor) -> dict[str, Tensor]:
    """``loss_domain`` (BCE, the mean of the source and the target mean) and ``domain_accuracy``."""
    source_logits, target_logits = source_logits.float(), target_logits.float()
    loss = 0.5 * (
        F.binary_cross_entropy_with_logits(source_logits, torch.zeros_like(source_logits))
        + F.binary_cross_entropy_with_logits(target_logits, torch.ones_like(target_logits))
    )
    accuracy = 0.5 * ((source_logits < 0).float().mean() + (target_logits > 0).float().mean())
    return {"loss_domain": loss, "domain_accuracy": accuracy.detach()}
