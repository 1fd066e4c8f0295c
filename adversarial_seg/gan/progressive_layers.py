"""The pieces of progressive growing (Karras et al. 2018), each small enough to check by hand:

* ``EqualizedConv2d`` / ``EqualizedLinear``: weights drawn from N(0, 1) and multiplied at every
  forward pass by He's constant ``gain / sqrt(fan_in)``, so Adam's per-parameter step sizes act
  alike on every layer whatever its fan-in (the "equalised learning rate").
* ``pixel_norm``: each pixel's feature vector divided by its root mean square over the channels.
* ``minibatch_stddev``: one more feature map, the standard deviation of every feature over a
  group of samples averaged to one number per group, so D can see a batch that lacks variety.
* ``fade_in``: ``(1 - alpha) * low + alpha * high``, how a new resolution is blended in.
* ``growth_state``: where a run is on the resolution schedule after ``images`` training images:
  the level (0 = the start size) and the fade-in weight of that level.

Example:
    >>> growth_state(0, levels=2, fade=100, stable=100), growth_state(150, levels=2, fade=100, stable=100)
    ((0, 1.0), (1, 0.5))
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor


class EqualizedConv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, padding: int = 0, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale = gain / math.sqrt(c_in * kernel * kernel)
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Module):
    def __init__(self, f_in: int, f_out: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(f_out, f_in))
        self.bias = nn.Parameter(torch.zeros(f_out))
        self.scale = gain / math.sqrt(f_in)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """x (B, C, ...) / sqrt(mean over C of x^2 + eps)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def minibatch_stddev(x: Tensor, group: int = 4, eps: float = 1e-8) -> Tensor:
    """x (B, C, H, W) -> (B, C + 1, H, W): the extra map holds, for each sample's group, the mean
    over (C, H, W) of the features' standard deviation (biased) across the group's samples. The
    group is the largest size <= ``group`` that divides B, or the whole batch when only 1 does
    (a lone sample's deviation says nothing)."""
    n = len(x)
    size = min(group, n)
    while n % size:
        size -= 1
    if size == 1:
        size = n
    grouped = x.float().view(size, n // size, *x.shape[1:])  # sample i belongs to group i % (n // size)
    std = (grouped.var(dim=0, unbiased=False) + eps).sqrt().mean(dim=(1, 2, 3))  # (n // size,)
    feature = std.repeat(size).view(n, 1, 1, 1).expand(n, 1, *x.shape[2:]).to(x.dtype)
    return torch.cat([x, feature], dim=1)


def fade_in(low: Tensor, high: Tensor, alpha: float) -> Tensor:
    return low + (high - low) * alpha


def growth_state(images: int, levels: int, fade: int, stable: int) -> tuple[int, float]:
    """(level, alpha) after ``images`` training images on a schedule of ``levels`` doublings: the
    start size trains for ``stable`` images, then each doubling fades in over ``fade`` images
    (alpha rising linearly from 0 to 1) and trains ``stable`` more; the last level stays."""
    if images < stable or levels == 0:
        return 0, 1.0
    done = images - stable
    level, into = divmod(done, fade + stable)
    if level >= levels:
        return levels, 1.0
    return level + 1, min(into / fade, 1.0) if fade else 1.0
