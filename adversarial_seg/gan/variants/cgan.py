"""Conditional GAN (Mirza & Osindero 2014): the class label, one-hot, is joined to z in G and to
D's input, so D judges (sample, label) pairs. G is trained on the labels of the real batch."""

from __future__ import annotations

import torch

from adversarial_seg.gan.networks import build_networks
from adversarial_seg.gan.variants.base import GANTask
from adversarial_seg.runtime import to_device


class ConditionalGANTask(GANTask):
    conditional = True

    def generator_input(self, batch, n, generator=None):
        labels = batch.get("label")
        if labels is None:  # unlabelled sampling: uniform classes
            labels = to_device(torch.randint(0, self.num_classes, (n,), generator=generator), self.device())
        return self.latent(n, generator), self.one_hot(labels[:n])

    def discriminate(self, batch, sample):
        return self.discriminator(sample, self.one_hot(batch["label"]))


def build(config, data_shape: tuple[int, ...], num_classes: int, images: bool = True) -> GANTask:
    generator, discriminator = build_networks(
        config.model.architecture,
        data_shape,
        config.model,
        generator_condition=num_classes,
        discriminator_condition=num_classes,
        images=images,
    )
    return ConditionalGANTask(generator, discriminator, config.model.z_dim, num_classes)
