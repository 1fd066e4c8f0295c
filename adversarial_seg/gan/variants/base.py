"""What every classic GAN variant shares: G maps noise z ~ N(0, I) to a sample; D judges samples.

``generate`` draws z from the global torch generator (seeded per epoch by the trainer, so a
resumed run draws the same noise); ``sample`` draws from an explicit generator, in eval mode, for
metrics and grids.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from adversarial_seg.gan.task import AdversarialTask
from adversarial_seg.runtime import to_device

Tensor = torch.Tensor


class GANTask(AdversarialTask):
    """Unconditional GAN: batches are ``{"real": x (B, ...), "label": y (B,)}``; labels are unused."""

    conditional = False

    def __init__(self, generator: nn.Module, discriminator: nn.Module, z_dim: int, num_classes: int = 0):
        self.generator = generator
        self.discriminator = discriminator
        self.z_dim = z_dim
        self.num_classes = num_classes

    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z (n, z_dim) ~ N(0, I); drawn on the CPU so CPU and CUDA runs see the same noise."""
        return to_device(torch.randn(n, self.z_dim, generator=generator), self.device())

    def generator_input(self, batch: dict, n: int, generator: torch.Generator | None = None):
        """(z, condition) for ``n`` samples; the condition is None for an unconditional GAN."""
        return self.latent(n, generator), None

    def generate(self, batch: dict) -> Tensor:
        z, condition = self.generator_input(batch, len(batch["real"]))
        return self.generator(z, condition)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, labels: Tensor | None = None) -> Tensor:
        """``n`` samples in eval mode (batch norm uses running statistics)."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            batch = {"label": to_device(labels, self.device())} if labels is not None else {}
            z, condition = self.generator_input(batch, n, generator)
            return self.generator(z, condition).float()
        finally:
            self.generator.train(was_training)

    def one_hot(self, labels: Tensor) -> Tensor:
        return F.one_hot(labels, self.num_classes).float()
