"""The original GAN (Goodfellow et al. 2014): MLP G and D, k D steps per G step (``train.d_steps``),
``loss.adversarial: minimax`` (saturating) or ``non_saturating``, optional dropout / maxout D and
SGD with momentum (``train.optimizer: sgd``). Nothing to override: the core does the rest."""

from __future__ import annotations

from adversarial_seg.gan.networks import build_networks
from adversarial_seg.gan.variants.base import GANTask


def build(config, data_shape: tuple[int, ...], num_classes: int, images: bool = True) -> GANTask:
    generator, discriminator = build_networks(config.model.architecture, data_shape, config.model, images=images)
    return GANTask(generator, discriminator, config.model.z_dim, num_classes)
