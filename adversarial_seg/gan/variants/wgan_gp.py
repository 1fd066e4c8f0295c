"""WGAN-GP (Gulrajani et al. 2017): the Wasserstein critic with a gradient penalty on per-sample
interpolates (``loss.gradient_penalty``, lambda = 10; the core's ``gradient_penalty``), n_critic 5,
Adam(1e-4, betas (0, 0.9)), and no batch norm in the critic (``model.norm: layer``)."""

from __future__ import annotations

from adversarial_seg.gan.networks import build_networks
from adversarial_seg.gan.variants.base import GANTask


def build(config, data_shape: tuple[int, ...], num_classes: int, images: bool = True) -> GANTask:
    generator, discriminator = build_networks(config.model.architecture, data_shape, config.model, images=images)
    return GANTask(generator, discriminator, config.model.z_dim, num_classes)
