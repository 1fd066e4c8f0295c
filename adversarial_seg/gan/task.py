"""What a GAN variant defines: how G produces a sample and how D sees real and fake ones.

The adversarial step (``gan/step.py``) is written once against this interface. A variant
(vanilla GAN, cGAN, InfoGAN, ... in ``gan/variants/``) or the segmentation task
(``seg/task.py``) subclasses ``AdversarialTask`` and overrides only what differs:

- ``generate(batch)``: G's raw output with gradient (images; for segmentation, class logits).
- ``real_sample`` / ``fake_sample``: the tensor D judges (for segmentation a mask encoding;
  for an unconditional GAN the images themselves). Only this tensor is interpolated for the
  gradient penalty and noised for instance noise.
- ``discriminate(batch, sample)``: D's logits; conditioning (the image of an (image, mask)
  pair, a class label) comes from ``batch``. ``discriminator_fakes``: the fakes D trains on, by
  default G's latest (CycleGAN: drawn from a history of G's outputs). ``discriminate_features(batch, sample)``: D's
  output at every layer, logits last, for the feature losses (SegAN's multi-scale L1,
  feature matching); only tasks whose D exposes its layers define it.
- ``supervised_loss``: an optional non-adversarial term on G's output (CE for segmentation,
  L1 for pix2pix). ``extra_generator_losses`` / ``extra_discriminator_losses``: named extra
  terms (InfoGAN's mutual information, DANN's domain loss); those named ``loss_*`` join the loss,
  the others are logged only. A task whose extra terms reach G's parameters other than through
  G's output (DANN: through the encoder's features) sets ``extra_losses_reach_generator``. ``after_discriminator_update``: e.g. weight clipping;
  ``after_generator_update``: e.g. BigGAN's moving average of G's weights.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

Batch = Any
Tensor = torch.Tensor


class AdversarialTask:
    """Base class: subclasses set ``generator`` and ``discriminator`` and override hooks."""

    generator: nn.Module
    discriminator: nn.Module
    extra_losses_reach_generator = False

    def generate(self, batch: Batch) -> Tensor:
        raise NotImplementedError

    def real_sample(self, batch: Batch, generated: Tensor) -> Tensor:
        """The real sample D judges; ``generated`` (detached) is there for encodings that need it."""
        return batch["real"]

    def fake_sample(self, batch: Batch, generated: Tensor) -> Tensor:
        return generated

    def discriminator_fakes(self, batch: Batch, fake: Tensor) -> Tensor:
        """The fake samples of a D update (detached): ``fake`` itself unless the task keeps a history."""
        return fake

    def discriminate(self, batch: Batch, sample: Tensor) -> Tensor:
        return self.discriminator(sample)

    def discriminate_features(self, batch: Batch, sample: Tensor) -> list[Tensor]:
        """D's output at every layer, each (B, C_i, *s_i), the logits last."""
        raise NotImplementedError(
            f"{type(self).__name__}'s discriminator does not expose its layers; the feature losses "
            "(segan_l1, feature matching) need discriminate_features"
        )

    def supervised_loss(self, batch: Batch, generated: Tensor) -> Tensor | None:
        return None

    def extra_generator_losses(self, batch: Batch, generated: Tensor) -> dict[str, Tensor]:
        return {}

    def extra_discriminator_losses(self, batch: Batch, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        return {}

    def after_discriminator_update(self) -> None:
        return None

    def after_generator_update(self) -> None:
        return None

    def modules(self) -> dict[str, nn.Module]:
        """Every module whose state a checkpoint must hold (extra heads included)."""
        return {"generator": self.generator, "discriminator": self.discriminator}

    def auxiliary_modules(self) -> dict[str, nn.Module]:
        """Frozen networks the losses use but a checkpoint does not hold (srgan's content network);
        moved to the device with the others."""
        return {}

    def generator_parameters(self):
        """Parameters the G optimiser updates (InfoGAN adds its Q head here)."""
        return self.generator.parameters()

    def discriminator_parameters(self):
        return self.discriminator.parameters()
