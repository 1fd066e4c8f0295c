"""Generators and discriminators of the classic GANs: MLP (Goodfellow et al. 2014) and DCGAN
(Radford et al. 2016).

Every discriminator is ``head(body(x, condition))``: ``body`` gives features, ``head`` one logit
per sample (B, 1). InfoGAN's Q head reads the same ``body`` features. A condition (cGAN) is a
(B, K) one-hot vector: joined to z in G, to the flattened input (MLP) or as K constant planes
(DCGAN) in D.

Example:
    >>> g = DCGANGenerator(z_dim=8, size=16, channels=4)
    >>> d = DCGANDiscriminator(size=16, channels=4)
    >>> x = g(torch.randn(3, 8))
    >>> tuple(x.shape), tuple(d(x).shape), tuple(d.body(x).shape)
    ((3, 1, 16, 16), (3, 1), (3, 8, 4, 4))
"""

from __future__ import annotations

import math

import torch
from torch import nn

Tensor = torch.Tensor


def _join(x: Tensor, condition: Tensor | None) -> Tensor:
    return x if condition is None else torch.cat([x, condition.to(x.dtype)], dim=1)


class MLPGenerator(nn.Module):
    """z (B, z_dim) [+ condition (B, K)] -> (B, *out_shape); ReLU hidden layers, tanh or linear out."""

    def __init__(
        self, z_dim: int, out_shape: tuple[int, ...], hidden: int = 256, condition_dim: int = 0, tanh: bool = True
    ):
        super().__init__()
        self.out_shape = tuple(out_shape)
        out = math.prod(out_shape)
        self.net = nn.Sequential(
            nn.Linear(z_dim + condition_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, out), nn.Tanh() if tanh else nn.Identity(),
        )  # fmt: skip

    def forward(self, z: Tensor, condition: Tensor | None = None) -> Tensor:
        return self.net(_join(z, condition)).view(-1, *self.out_shape)


class Maxout(nn.Module):
    """Linear layer with ``pieces`` outputs per unit, keeping the largest (Goodfellow et al. 2013)."""

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        self.pieces = pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).unflatten(1, (-1, self.pieces)).amax(dim=2)


class MLPDiscriminator(nn.Module):
    """(B, *in_shape) [+ condition (B, K)] -> logits (B, 1); LeakyReLU or maxout units, optional dropout."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        hidden: int = 256,
        condition_dim: int = 0,
        dropout: float = 0.0,
        maxout: int = 1,
    ):
        super().__init__()
        width = math.prod(in_shape) + condition_dim

        def layer(n_in: int) -> list[nn.Module]:
            unit = [Maxout(n_in, hidden, maxout)] if maxout > 1 else [nn.Linear(n_in, hidden), nn.LeakyReLU(0.2)]
            return unit + ([nn.Dropout(dropout)] if dropout > 0 else [])

        self.features_net = nn.Sequential(*layer(width), *layer(hidden))
        self.head = nn.Linear(hidden, 1)
        self.feature_dim = hidden

    def body(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        return self.features_net(_join(x.flatten(1), condition))

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        return self.head(self.body(x, condition))


def doublings(size: int, network: str = "DCGAN") -> int:
    """How many times a 4 x 4 grid doubles to reach ``size`` (8, 16, 32, ...)."""
    levels = int(round(math.log2(size / 4)))
    if size < 8 or 4 * 2**levels != size:
        raise ValueError(f"{network} image size must be 8, 16, 32, ... (got {size})")
    return levels


def dcgan_init(module: nn.Module) -> None:
    """Radford et al.'s initialisation: conv weights N(0, 0.02), norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """z -> 4x4 by a transposed conv, then stride-2 transposed convs up to ``size``; batch norm and
    ReLU inside, tanh out; no fully connected layer."""

    def __init__(self, z_dim: int, size: int = 16, channels: int = 32, out_channels: int = 1, condition_dim: int = 0):
        super().__init__()
        levels = doublings(size)
        widths = [channels * 2 ** (levels - 1 - i) for i in range(levels)]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim + condition_dim, widths[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], out_channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: Tensor, condition: Tensor | None = None) -> Tensor:
        return self.net(_join(z, condition)[:, :, None, None])


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # per sample over (C, H, W): safe under the gradient penalty
        return nn.GroupNorm(1, channels)
    return nn.Identity()


class DCGANDiscriminator(nn.Module):
    """Stride-2 convs from ``size`` down to 4x4 (LeakyReLU 0.2, no norm on the first layer), then a
    4x4 conv to one logit; no fully connected layer. ``norm``: batch, layer (for WGAN-GP) or none."""

    def __init__(
        self, size: int = 16, channels: int = 32, in_channels: int = 1, condition_dim: int = 0, norm: str = "batch"
    ):
        super().__init__()
        levels = doublings(size)
        widths = [channels * 2**i for i in range(levels)]
        layers: list[nn.Module] = [nn.Conv2d(in_channels + condition_dim, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [
                nn.Conv2d(w_in, w_out, 4, 2, 1, bias=norm == "none"),
                _norm(norm, w_out),
                nn.LeakyReLU(0.2, True),
            ]
        self.features_net = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Conv2d(widths[-1], 1, 4, 1, 0), nn.Flatten())
        self.feature_dim = widths[-1]
        dcgan_init(self)

    def body(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        if condition is not None:
            planes = condition.to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, planes], dim=1)
        return self.features_net(x)

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        return self.head(self.body(x, condition))


class QHead(nn.Module):
    """InfoGAN's Q: D's body features -> (categorical logits (B, K), continuous means (B, L))."""

    def __init__(self, discriminator: nn.Module, categorical: int, continuous: int, hidden: int = 64):
        super().__init__()
        self.categorical, self.continuous = categorical, continuous
        out = categorical + continuous
        if isinstance(discriminator, DCGANDiscriminator):
            w = discriminator.feature_dim
            self.net = nn.Sequential(
                nn.Conv2d(w, hidden, 4, 1, 0), nn.LeakyReLU(0.2, True), nn.Conv2d(hidden, out, 1), nn.Flatten()
            )
        else:
            self.net = nn.Sequential(
                nn.Linear(discriminator.feature_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, out)
            )

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        out = self.net(features)
        return out[:, : self.categorical], out[:, self.categorical :]


def build_networks(
    architecture: str,
    data_shape: tuple[int, ...],
    model,
    generator_condition: int = 0,
    discriminator_condition: int = 0,
    images: bool = True,
):
    """(generator, discriminator) for ``model`` (a ``gan.config.ModelConfig``) and data of ``data_shape``;
    the conditions are the widths of the vectors joined to z (G) and to D's input."""
    z_in = model.z_dim
    if architecture == "mlp":
        return (
            MLPGenerator(z_in, data_shape, model.hidden, generator_condition, tanh=images),
            MLPDiscriminator(data_shape, model.hidden, discriminator_condition, model.dropout, model.maxout),
        )
    if architecture == "dcgan":
        channels, size = data_shape[0], data_shape[-1]
        return (
            DCGANGenerator(z_in, size, model.channels, channels, generator_condition),
            DCGANDiscriminator(size, model.channels, channels, discriminator_condition, model.norm),
        )
    raise ValueError(f"model.architecture: {architecture!r} is not one of mlp, dcgan")
