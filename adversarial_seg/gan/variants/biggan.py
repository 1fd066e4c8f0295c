"""BigGAN-style class conditioning (Brock et al. 2019), scaled to small images: class-conditional
batch norm in G, a projection discriminator (Miyato and Koyama 2018), spectral norm on every
convolution and linear layer of G and D, one self-attention block (at 8 x 8) in each, the hinge
loss, an exponential moving average of G's weights (what samples and metrics use) and the
truncation trick (``eval.truncation``). Left out at this scale: hierarchical latents, shared
embeddings across blocks and orthogonal regularisation.

G: z -> linear -> (4c, 4, 4), then per doubling a residual block (conditional BN, ReLU, nearest
upsampling, 3 x 3 conv, twice); self-attention after the block that reaches 8 x 8; BN, ReLU,
3 x 3 conv and tanh. D: per halving a residual block (ReLU, 3 x 3 conv, twice, average pooling);
self-attention after the block that reaches 8 x 8; ReLU, sum over space, projection head.
Components: ``gan/biggan_layers.py``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from adversarial_seg.gan.biggan_layers import (
    ConditionalBatchNorm2d,
    SelfAttention2d,
    projection_logits,
    truncated_normal,
    update_ema,
)
from adversarial_seg.gan.networks import doublings
from adversarial_seg.gan.variants.base import GANTask
from adversarial_seg.runtime import to_device

Tensor = torch.Tensor
sn = nn.utils.spectral_norm


class GeneratorBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, num_classes: int):
        super().__init__()
        self.bn1, self.bn2 = ConditionalBatchNorm2d(c_in, num_classes), ConditionalBatchNorm2d(c_out, num_classes)
        self.conv1, self.conv2 = sn(nn.Conv2d(c_in, c_out, 3, padding=1)), sn(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = sn(nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x, labels)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), labels)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class BigGANGenerator(nn.Module):
    def __init__(self, z_dim: int, size: int, channels: int, out_channels: int, num_classes: int):
        super().__init__()
        levels = doublings(size, "BigGAN")
        widths = [channels * max(2 ** (levels - i), 1) for i in range(levels + 1)]  # 4c ... c for 16 px
        self.widths = widths
        self.linear = sn(nn.Linear(z_dim, widths[0] * 16))
        self.blocks = nn.ModuleList(GeneratorBlock(a, b, num_classes) for a, b in zip(widths[:-1], widths[1:]))
        self.attention_after = 0  # the first block doubles 4 -> 8
        self.attention = SelfAttention2d(widths[1])
        self.out = nn.Sequential(
            nn.BatchNorm2d(widths[-1]), nn.ReLU(), sn(nn.Conv2d(widths[-1], out_channels, 3, padding=1)), nn.Tanh()
        )

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        h = self.linear(z).view(len(z), self.widths[0], 4, 4)
        for index, block in enumerate(self.blocks):
            h = block(h, labels)
            if index == self.attention_after:
                h = self.attention(h)
        return self.out(h)


class DiscriminatorBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, first: bool):
        super().__init__()
        self.first = first  # no ReLU before the first convolution (it sees the image)
        self.conv1, self.conv2 = sn(nn.Conv2d(c_in, c_out, 3, padding=1)), sn(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = sn(nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(x if self.first else F.relu(x))
        h = F.avg_pool2d(self.conv2(F.relu(h)), 2)
        return h + F.avg_pool2d(self.skip(x), 2)


class ProjectionDiscriminator(nn.Module):
    def __init__(self, size: int, channels: int, in_channels: int, num_classes: int):
        super().__init__()
        levels = doublings(size, "BigGAN")  # halvings down to 4 x 4
        widths = [in_channels] + [channels * 2**i for i in range(levels)]
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(a, b, first=i == 0) for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))
        )
        self.attention_after = levels - 2 if levels >= 2 else None  # the block that reaches 8 x 8
        self.attention = SelfAttention2d(widths[max(levels - 1, 1)]) if self.attention_after is not None else None
        self.linear = sn(nn.Linear(widths[-1], 1))
        self.embedding = sn(nn.Embedding(num_classes, widths[-1]))
        self.feature_dim = widths[-1]

    def features(self, x: Tensor) -> Tensor:
        h = x
        for index, block in enumerate(self.blocks):
            h = block(h)
            if index == self.attention_after:
                h = self.attention(h)
        return F.relu(h).sum(dim=(2, 3))  # (B, F): summed, as BigGAN does

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        return projection_logits(self.features(x), labels, self.linear, self.embedding)


class BigGANTask(GANTask):
    """Labels enter G through conditional batch norm and D through the projection; ``sample``
    draws from the EMA generator with the truncation threshold of ``eval.truncation``."""

    conditional = True

    def __init__(self, generator, discriminator, z_dim: int, num_classes: int, ema_decay: float,
                 truncation: float | None = None):  # fmt: skip
        super().__init__(generator, discriminator, z_dim, num_classes)
        self.generator_ema = copy.deepcopy(generator)
        for parameter in self.generator_ema.parameters():
            parameter.requires_grad_(False)
        self.ema_decay = ema_decay
        self.truncation = truncation

    def labels_for(self, batch, n: int, generator=None) -> Tensor:
        labels = batch.get("label")
        if labels is None:
            labels = to_device(torch.randint(0, self.num_classes, (n,), generator=generator), self.device())
        return labels[:n]

    def generate(self, batch) -> Tensor:
        n = len(batch["real"])
        return self.generator(self.latent(n), self.labels_for(batch, n))

    def discriminate(self, batch, sample):
        return self.discriminator(sample, batch["label"])

    def after_generator_update(self) -> None:
        update_ema(self.generator_ema, self.generator, self.ema_decay)

    def modules(self):
        return {"generator": self.generator, "discriminator": self.discriminator, "generator_ema": self.generator_ema}

    @torch.no_grad()
    def sample(self, n, generator=None, labels=None) -> Tensor:
        """``n`` samples of the EMA generator (eval mode), z truncated at ``self.truncation``."""
        z = to_device(truncated_normal(n, self.z_dim, self.truncation, generator), self.device())
        labels = self.labels_for({} if labels is None else {"label": to_device(labels, self.device())}, n, generator)
        self.generator_ema.eval()
        return self.generator_ema(z, labels).float()


def build(config, data_shape: tuple[int, ...], num_classes: int, images: bool = True) -> BigGANTask:
    channels, size = data_shape[0], data_shape[-1]
    model = config.model
    generator = BigGANGenerator(model.z_dim, size, model.channels, channels, num_classes)
    discriminator = ProjectionDiscriminator(size, model.channels, channels, num_classes)
    return BigGANTask(generator, discriminator, model.z_dim, num_classes, model.ema_decay, config.eval.truncation)
