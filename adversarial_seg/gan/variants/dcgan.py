"""DCGAN (Radford et al. 2016): strided-conv D, transposed-conv G, batch norm, no fully connected
hidden layers (``networks.DCGANGenerator`` / ``DCGANDiscriminator``); Adam(2e-4, beta1 0.5).
LSGAN and hinge are this variant with ``loss.adversarial: least_squares`` or ``hinge``."""

from __future__ import annotations

from adversarial_seg.gan.networks import build_networks
from adversarial_seg.gan.variants.base import GANTask


def build(config, data_shape: tuple[int, ...], num_classes: int, images: bool = True) -> GANTask:
    generator, discriminator = build_networks("dcgan", data_shape, config.model)
    return GANTask(generator, discriminator, config.model.z_dim, num_classes)
