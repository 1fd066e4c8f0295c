"""The pieces of BigGAN-style class conditioning (Brock et al. 2019; Miyato and Koyama 2018; Zhang
et al. 2019), each small enough to check by hand:

* ``ConditionalBatchNorm2d``: batch norm without its own affine, then a per-class scale and shift
  from embeddings, ``y = BN(x) * (1 + gamma[c]) + beta[c]`` (gamma and beta start at 0, so at
  initialisation it is plain batch norm).
* ``SelfAttention2d``: SAGAN's non-local block, ``x + g * softmax(q k^T) v`` with ``g`` starting
  at 0 (the block is the identity until it learns to attend).
* ``projection_logits``: the projection discriminator's output, ``psi(h) + <embed(c), h>`` for
  D's pooled features ``h``.
* ``truncated_normal``: z ~ N(0, I) with every entry whose magnitude exceeds the threshold drawn
  again (the truncation trick: fidelity for diversity as the threshold falls).
* ``update_ema``: the exponential moving average of G's weights, ``ema = d * ema + (1 - d) * w``
  (buffers such as batch-norm statistics are copied).

Example:
    >>> z = truncated_normal(1000, 4, threshold=0.5, generator=torch.Generator().manual_seed(0))
    >>> bool(z.abs().max() <= 0.5), tuple(z.shape)
    (True, (1000, 4))
"""

from __future__ import annotations

import torch
from torch import nn

Tensor = torch.Tensor


class ConditionalBatchNorm2d(nn.Module):
    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Embedding(num_classes, channels)
        self.beta = nn.Embedding(num_classes, channels)
        nn.init.zeros_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        gamma = self.gamma(labels)[:, :, None, None]
        beta = self.beta(labels)[:, :, None, None]
        return self.norm(x) * (1 + gamma) + beta


class SelfAttention2d(nn.Module):
    """Query and key at ``channels // 8``, value at ``channels // 2`` (Zhang et al.'s widths)."""

    def __init__(self, channels: int, spectral: bool = True):
        super().__init__()
        wrap = nn.utils.spectral_norm if spectral else (lambda m: m)
        inner = max(channels // 8, 1)
        self.query = wrap(nn.Conv2d(channels, inner, 1, bias=False))
        self.key = wrap(nn.Conv2d(channels, inner, 1, bias=False))
        self.value = wrap(nn.Conv2d(channels, max(channels // 2, 1), 1, bias=False))
        self.out = wrap(nn.Conv2d(max(channels // 2, 1), channels, 1, bias=False))
        self.gain = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (B, HW, C')
        k = self.key(x).flatten(2)  # (B, C', HW)
        v = self.value(x).flatten(2).transpose(1, 2)  # (B, HW, C'')
        attention = torch.softmax(q @ k, dim=-1)  # (B, HW, HW): where each position looks
        attended = (attention @ v).transpose(1, 2).reshape(b, -1, h, w)
        return x + self.gain * self.out(attended)


def projection_logits(features: Tensor, labels: Tensor, linear: nn.Linear, embedding: nn.Embedding) -> Tensor:
    """(B, 1) logits of a projection discriminator from pooled features (B, F) and class labels (B,)."""
    return linear(features) + (embedding(labels) * features).sum(dim=1, keepdim=True)


def truncated_normal(n: int, dim: int, threshold: float | None = None, generator: torch.Generator | None = None):
    """(n, dim) standard normal draws, entries beyond ``threshold`` in magnitude redrawn (None: plain)."""
    z = torch.randn(n, dim, generator=generator)
    if threshold is None:
        return z
    if threshold <= 0:
        raise ValueError(f"the truncation threshold must be > 0, got {threshold}")
    outside = z.abs() > threshold
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator)
        outside = z.abs() > threshold
    return z


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema``'s parameters move towards ``model``'s by ``1 - decay``; its buffers are copied."""
    for averaged, current in zip(ema.parameters(), model.parameters(), strict=True):
        averaged.lerp_(current.detach(), 1.0 - decay)
    for averaged, current in zip(ema.buffers(), model.buffers(), strict=True):
        averaged.copy_(current)
