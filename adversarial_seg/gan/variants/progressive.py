"""Progressive growing (Karras et al. 2018): G and D start at a low resolution and gain a block per
doubling, each new block faded in with a weight alpha that rises from 0 to 1 over
``train.growth.fade_images`` training images; the resolution schedule is ``train.growth``
(``gan/progressive_layers.py``: ``growth_state``). Both networks hold every block from the start
(so checkpoints and optimisers never change shape); a block trains once the schedule reaches it.

G: pixel-normed z -> equalised linear to (w0, 4, 4) -> 3 x 3 conv; per doubling nearest upsampling
and two 3 x 3 convs; LeakyReLU 0.2 and pixel norm after every conv; a 1 x 1 "to image" conv per
resolution (linear output). While a level fades in, the image is the blend of the previous
level's image (upsampled) and the new one. D mirrors it: a 1 x 1 "from image" conv per resolution,
per halving two 3 x 3 convs and average pooling, blended with the previous level's input path
while fading; at 4 x 4 the minibatch standard deviation map, a 3 x 3 and a 4 x 4 conv and a
linear logit. Every layer of both has the equalised learning rate; no batch norm. Real images are
shown to D at the current resolution (area downsampling), blended like G's output during a fade.

The count of training images (G updates x their batch size) lives in a buffer of G, so
``checkpoint_last.pt`` holds the schedule position and a run resumed in the middle of a fade-in
continues exactly. The baseline "full resolution from the start" is this variant with
``train.growth.start_size`` equal to ``data.size``: the same final networks, no growth.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from adversarial_seg.gan.networks import doublings
from adversarial_seg.gan.progressive_layers import (
    EqualizedConv2d,
    EqualizedLinear,
    fade_in,
    growth_state,
    minibatch_stddev,
    pixel_norm,
)
from adversarial_seg.gan.variants.base import GANTask

Tensor = torch.Tensor


def _act(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


def widths_for(size: int, channels: int) -> list[int]:
    """Feature widths at 4 x 4, 8 x 8, ..., size x size: ``channels`` at the top, doubling downwards."""
    levels = doublings(size, "Progressive GAN")
    return [channels * 2 ** (levels - i) for i in range(levels + 1)]


class ProgressiveGenerator(nn.Module):
    def __init__(self, z_dim: int, size: int, channels: int, out_channels: int):
        super().__init__()
        widths = widths_for(size, channels)
        self.widths = widths
        self.linear = EqualizedLinear(z_dim, widths[0] * 16, gain=2**0.5 / 4)  # Karras' gain for the 4 x 4 map
        self.base = EqualizedConv2d(widths[0], widths[0], 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualizedConv2d(a, b, 3, padding=1), EqualizedConv2d(b, b, 3, padding=1)])
            for a, b in zip(widths[:-1], widths[1:])
        )
        self.to_image = nn.ModuleList(EqualizedConv2d(w, out_channels, 1, gain=1.0) for w in widths)
        self.register_buffer("images_seen", torch.zeros((), dtype=torch.int64))

    def forward(self, z: Tensor, index: int, alpha: float = 1.0) -> Tensor:
        """Images at resolution ``4 * 2**index``; ``alpha`` < 1 blends in that resolution's block."""
        h = pixel_norm(_act(self.linear(pixel_norm(z)).view(len(z), self.widths[0], 4, 4)))
        h = pixel_norm(_act(self.base(h)))
        previous = h
        for block in self.blocks[:index]:
            previous = h
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            for conv in block:
                h = pixel_norm(_act(conv(h)))
        image = self.to_image[index](h)
        if alpha < 1 and index > 0:
            low = F.interpolate(self.to_image[index - 1](previous), scale_factor=2, mode="nearest")
            image = fade_in(low, image, alpha)
        return image


class ProgressiveDiscriminator(nn.Module):
    def __init__(self, size: int, channels: int, in_channels: int):
        super().__init__()
        widths = widths_for(size, channels)
        self.from_image = nn.ModuleList(EqualizedConv2d(in_channels, w, 1) for w in widths)
        # blocks[i - 1] takes resolution i (width widths[i]) down to i - 1 (width widths[i - 1])
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualizedConv2d(b, b, 3, padding=1), EqualizedConv2d(b, a, 3, padding=1)])
            for a, b in zip(widths[:-1], widths[1:])
        )
        self.final_conv = EqualizedConv2d(widths[0] + 1, widths[0], 3, padding=1)
        self.final_dense = EqualizedConv2d(widths[0], widths[0], 4)  # 4 x 4 -> 1 x 1
        self.linear = EqualizedLinear(widths[0], 1, gain=1.0)

    def _down(self, h: Tensor, index: int) -> Tensor:
        for conv in self.blocks[index - 1]:
            h = _act(conv(h))
        return F.avg_pool2d(h, 2)

    def forward(self, x: Tensor, index: int, alpha: float = 1.0) -> Tensor:
        """Logits (B, 1) for images at resolution ``4 * 2**index``."""
        h = _act(self.from_image[index](x))
        if index > 0:
            h = self._down(h, index)
            if alpha < 1:
                h = fade_in(_act(self.from_image[index - 1](F.avg_pool2d(x, 2))), h, alpha)
        for level in range(index - 1, 0, -1):
            h = self._down(h, level)
        h = _act(self.final_conv(minibatch_stddev(h)))
        h = _act(self.final_dense(h)).flatten(1)
        return self.linear(h)


class ProgressiveTask(GANTask):
    """Unconditional GAN whose G and D work at the schedule's current resolution and fade-in weight."""

    def __init__(self, generator, discriminator, z_dim: int, size: int, growth, drift: float = 0.0):
        super().__init__(generator, discriminator, z_dim)
        self.size = size
        self.start = doublings(growth.start_size, "train.growth.start_size") if growth.start_size > 4 else 0
        self.levels = doublings(size, "Progressive GAN") - self.start
        self.fade, self.stable = growth.fade_images, growth.stable_images
        self.drift = drift
        self._batch = 0
        self._step_growth = None  # this step's (index, alpha): read once, not on every D call

    def growth(self) -> tuple[int, float]:
        """(resolution index, alpha) now: index 0 is 4 x 4 (reads G's image count: a host sync)."""
        level, alpha = growth_state(int(self.generator.images_seen), self.levels, self.fade, self.stable)
        return self.start + level, alpha

    def _now(self) -> tuple[int, float]:
        if self._step_growth is None:
            self._step_growth = self.growth()
        return self._step_growth

    def generate(self, batch) -> Tensor:
        self._batch = len(batch["real"])
        return self.generator(self.latent(self._batch), *self._now())

    def real_sample(self, batch, generated) -> Tensor:
        """The real images at the current resolution, blended with their half-resolution copy
        (upsampled) as G's output is while a level fades in."""
        index, alpha = self._now()
        real = batch["real"]
        if real.shape[-1] != 4 * 2**index:
            real = F.adaptive_avg_pool2d(real, 4 * 2**index)
        if alpha < 1:
            real = fade_in(F.interpolate(F.avg_pool2d(real, 2), scale_factor=2, mode="nearest"), real, alpha)
        return real

    def discriminate(self, batch, sample) -> Tensor:
        return self.discriminator(sample, *self._now())

    def extra_discriminator_losses(self, batch, real, fake) -> dict[str, Tensor]:
        """Karras et al.'s drift term, ``drift * E[D(real)^2]``, which keeps the critic near 0."""
        if self.drift <= 0:
            return {}
        return {"loss_drift": self.drift * self.discriminate(batch, real).float().pow(2).mean()}

    def after_generator_update(self) -> None:
        self.generator.images_seen += self._batch
        self._step_growth = None  # the next step may be at a new position

    @torch.no_grad()
    def sample(self, n, generator=None, labels=None) -> Tensor:
        """``n`` images in eval mode at the current resolution, upsampled (nearest) to ``data.size``
        so metrics and grids see every stage at one size; clamped to the data range [-1, 1]."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            images = self.generator(self.latent(n, generator), *self.growth()).float()
        finally:
            self.generator.train(was_training)
        if images.shape[-1] != self.size:
            images = F.interpolate(images, size=self.size, mode="nearest")
        return images.clamp(-1, 1)


def build(config, data_shape: tuple[int, ...], num_classes: int, images: bool = True) -> ProgressiveTask:
    channels, size = data_shape[0], data_shape[-1]
    model = config.model
    generator = ProgressiveGenerator(model.z_dim, size, model.channels, channels)
    discriminator = ProgressiveDiscriminator(size, model.channels, channels)
    return ProgressiveTask(generator, discriminator, model.z_dim, size, config.train.growth, config.loss.drift)
