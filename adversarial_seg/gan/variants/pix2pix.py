"""pix2pix (Isola et al. 2017): a U-Net G translates a source image into a target image and a
PatchGAN D judges (source, image) pairs patch by patch; G minimises the adversarial loss plus
``loss.w_sup`` (100 in the paper) times the L1 distance to the target. No noise input: the
paper's dropout noise is left out (its authors saw G ignore it). With ``loss.w_adv: 0`` it is the
L1-only baseline of the same G.

Batches are ``{"real": target (B, C_t, H, W), "label": source (B, C_s, H, W)}``, both in [-1, 1]
(``gan/paired_data.py``). G is MONAI's UNet (widths ``model.channels`` x 1, 2, 4, 8, 8, strides 2,
instance norm) with a tanh; D is MONAI's ``PatchDiscriminator`` (``model.channels`` x 1, 2, 4, 8,
batch norm, 4 x 4 kernels: the 70 x 70 receptive field of the paper's default).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.nets import PatchDiscriminator, UNet

from adversarial_seg.gan.task import AdversarialTask
from adversarial_seg.runtime import to_device

Tensor = torch.Tensor


class Pix2PixTask(AdversarialTask):
    conditional = False

    def __init__(self, generator: torch.nn.Module, discriminator: torch.nn.Module):
        self.generator = generator
        self.discriminator = discriminator

    def generate(self, batch) -> Tensor:
        return torch.tanh(self.generator(batch["label"]))

    def pair(self, batch, sample: Tensor) -> Tensor:
        """What D sees: the source and an image (real or generated) stacked as channels."""
        return torch.cat([batch["label"].to(sample.dtype), sample], dim=1)

    def discriminate(self, batch, sample):
        return self.discriminator(self.pair(batch, sample))[-1]

    def discriminate_features(self, batch, sample):
        return list(self.discriminator(self.pair(batch, sample)))

    def supervised_loss(self, batch, generated):
        return F.l1_loss(generated.float(), batch["real"].float())

    @torch.no_grad()
    def translate(self, sources: Tensor) -> Tensor:
        """``generate``'s images for ``sources``, in eval mode, in [-1, 1]."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            device = next(self.generator.parameters()).device
            return self.generate({"label": to_device(sources, device)}).float().clamp(-1, 1)
        finally:
            self.generator.train(was_training)


def build(config, data_shape: tuple[int, ...], num_classes: int, images: bool = True, source_channels: int = 1):
    width = config.model.channels
    generator = UNet(spatial_dims=2, in_channels=source_channels, out_channels=data_shape[0],
                     channels=(width, 2 * width, 4 * width, 8 * width, 8 * width), strides=(2, 2, 2, 2),
                     num_res_units=2)  # fmt: skip
    discriminator = PatchDiscriminator(spatial_dims=2, channels=width, in_channels=source_channels + data_shape[0],
                                       num_layers_d=3)  # fmt: skip
    return Pix2PixTask(generator, discriminator)
