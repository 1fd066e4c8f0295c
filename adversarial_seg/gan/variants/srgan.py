"""SRGAN (Ledig et al. 2017): a residual generator with sub-pixel upsampling turns an image
downsampled ``data.ph2.scale`` times (bicubic, anti-aliased) back into a full-resolution one; D
judges full-resolution images alone. G minimises ``loss.w_sup`` x (pixel MSE + ``loss.content_weight``
x the content loss) + ``loss.w_adv`` (1e-3 in the paper) x the adversarial loss.

The content loss is the MSE between features of the super-resolved and the real image in a
network trained in this project instead of the paper's ImageNet VGG (nothing is downloaded): the
encoder of a segmentor that ``seg-train`` trained on the same kind of images (``loss.content_run``,
its fold ``loss.content_fold``), its first ``loss.content_depth`` down-sampling blocks, on each
image z-scored per channel as seg-train's preprocessing does. gan-train loads that network
(``seg.unet_parts.segmentor_encoder``: the GAN core imports no segmentation code) and hands it to
``build``; it is frozen, never in the checkpoint, and read again from its run on resume.

Batches are ``{"real": image (B, 3, H, W), "label": low-resolution image (B, 3, H / s, W / s)}`` in
[-1, 1] (``gan/paired_data.py``). G: a 9 x 9 conv and PReLU, ``model.residual_blocks`` blocks of
(3 x 3 conv, PReLU, 3 x 3 conv) + skip, a 3 x 3 conv + the long skip, per doubling a 3 x 3 conv to
4x the width, a pixel shuffle and PReLU, and a 9 x 9 conv to the image. Two changes for small
budgets, both in later SR work: no batch norm (Lim et al. 2017) and the bicubic upsampling of the
input added to G's output, so G learns the residual detail (Kim et al. 2016). D is MONAI's
``PatchDiscriminator`` on the image (a logit per patch) rather than the paper's global one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from monai.networks.nets import PatchDiscriminator
from torch import nn

from adversarial_seg.gan.variants.pix2pix import Pix2PixTask

Tensor = torch.Tensor


def bicubic(images: Tensor, scale: int) -> Tensor:
    """Images upsampled ``scale`` times by bicubic interpolation (the baseline and G's long skip)."""
    return F.interpolate(images, scale_factor=scale, mode="bicubic", align_corners=False)


class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.PReLU(width), nn.Conv2d(width, width, 3, padding=1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    def __init__(self, channels: int, width: int, blocks: int, scale: int):
        super().__init__()
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, padding=4), nn.PReLU(width))
        self.body = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)], nn.Conv2d(width, width, 3, padding=1))
        self.upsample = nn.Sequential(
            *[
                layer
                for _ in range(int(math.log2(scale)))
                for layer in (nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(width))
            ]
        )
        self.tail = nn.Conv2d(width, channels, 9, padding=4)

    def forward(self, low: Tensor) -> Tensor:
        h = self.head(low)
        h = self.upsample(h + self.body(h))
        return bicubic(low, self.scale) + self.tail(h)


def z_scored(images: Tensor) -> Tensor:
    """Each image's channels to zero mean and unit variance (seg-train's NormalizeIntensityd, channel-wise)."""
    mean = images.mean(dim=(2, 3), keepdim=True)
    std = images.std(dim=(2, 3), keepdim=True, unbiased=False)
    return (images - mean) / std.clamp_min(1e-8)


class SRGANTask(Pix2PixTask):
    def __init__(self, generator, discriminator, content: nn.Module | None = None, content_weight: float = 0.0):
        super().__init__(generator, discriminator)
        self.content = content
        self.content_weight = content_weight

    def generate(self, batch) -> Tensor:
        return self.generator(batch["label"])

    def discriminate(self, batch, sample):
        return self.discriminator(sample)[-1]

    def discriminate_features(self, batch, sample):
        return list(self.discriminator(sample))

    def content_loss(self, generated: Tensor, real: Tensor) -> Tensor:
        with torch.no_grad():
            target = self.content(z_scored(real.float()))
        return F.mse_loss(self.content(z_scored(generated.float())), target)

    def supervised_loss(self, batch, generated):
        loss = F.mse_loss(generated.float(), batch["real"].float())
        if self.content_weight > 0:
            if self.content is None:
                raise RuntimeError("loss.content_weight > 0 but no content network was handed to srgan's build")
            loss = loss + self.content_weight * self.content_loss(generated, batch["real"])
        return loss

    def auxiliary_modules(self) -> dict[str, nn.Module]:
        return {"content": self.content} if self.content is not None else {}


def build(config, data_shape: tuple[int, ...], num_classes: int, images: bool = True,
          content: nn.Module | None = None) -> SRGANTask:  # fmt: skip
    """``content``: the frozen feature network of ``loss.content_run`` (gan-train loads it; without
    it the task can translate but not train the content term)."""
    model = config.model
    generator = SRResNet(data_shape[0], model.channels, model.residual_blocks, config.data.sr_scale)
    discriminator = PatchDiscriminator(spatial_dims=2, channels=model.channels, in_channels=data_shape[0],
                                       num_layers_d=3)  # fmt: skip
    return SRGANTask(generator, discriminator, content, config.loss.content_weight)
