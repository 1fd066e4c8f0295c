"""WGAN (Arjovsky et al. 2017): a critic with the Wasserstein loss, ``train.d_steps`` (n_critic,
5) critic updates per G update, RMSprop, and every critic weight clipped to
[-``loss.weight_clip``, ``loss.weight_clip``] after each critic update."""

from __future__ import annotations

import torch

from adversarial_seg.gan.networks import build_networks
from adversarial_seg.gan.variants.base import GANTask


class ClippedCriticTask(GANTask):
    def __init__(self, generator, discriminator, z_dim, num_classes=0, weight_clip: float = 0.01):
        super().__init__(generator, discriminator, z_dim, num_classes)
        self.weight_clip = weight_clip

    @torch.no_grad()
    def after_discriminator_update(self) -> None:
        for parameter in self.discriminator.parameters():
            parameter.clamp_(-self.weight_clip, self.weight_clip)


def build(config, data_shape: tuple[int, ...], num_classes: int, images: bool = True) -> GANTask:
    generator, discriminator = build_networks(config.model.architecture, data_shape, config.model, images=images)
    task = ClippedCriticTask(generator, discriminator, config.model.z_dim, num_classes, config.loss.weight_clip)
    task.after_discriminator_update()  # the critic starts inside the clipping box
    return task
