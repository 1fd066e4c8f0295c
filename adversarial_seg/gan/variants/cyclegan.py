"""CycleGAN (Zhu et al. 2017): unpaired translation between two domains A and B with two generators
(G_ab, G_ba), two discriminators (D_a judges A images, D_b judges B images), a cycle loss (an image
translated there and back is itself again) and an identity loss (an image already in G's output
domain is left alone), with each D trained on a history of G's outputs (an image pool, Shrivastava
et al. 2017).

On the one core step: ``generator`` is both generators and ``discriminator`` both discriminators (one
optimiser each, as in the authors' code); G's output is the two translations stacked along the batch,
``[G_ab(a); G_ba(b)]``, and D's real sample ``[b; a]``, so the first half goes to D_b and the second to
D_a and every loss is the mean over the two directions. The cycle and identity terms are the task's
supervised loss (``loss.w_sup`` x (``loss.cycle_weight`` x cycle + ``loss.identity_weight`` x identity),
mean absolute differences). The paper's lambda 10 for the cycle and 0.5 lambda for the identity, against
its least-squares G loss E[(D - 1)^2], are ``cycle_weight`` 5 and ``identity_weight`` 2.5 here, where
that loss is 1/2 E[(D - 1)^2] (``gan/losses.py``): the same ratios.

Batches are ``{"real": b (B, C, H, W), "label": a (B, C, H, W)}`` in [-1, 1] (``gan/site_data.py``).
G: the authors' ResNet generator (7 x 7 conv, two stride-2 convs, ``model.residual_blocks`` residual
blocks, two transposed convs, 7 x 7 conv, tanh; reflection padding, instance norm) at width
``model.channels``; D: MONAI's ``PatchDiscriminator`` (70 x 70 receptive field) with instance norm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.nets import PatchDiscriminator
from torch import nn

from adversarial_seg.gan.task import AdversarialTask
from adversarial_seg.runtime import to_device

Tensor = torch.Tensor


class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3), nn.InstanceNorm2d(width), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3), nn.InstanceNorm2d(width),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def resnet_generator(channels: int, width: int, blocks: int) -> nn.Sequential:
    """Zhu et al.'s generator; the image side must be a multiple of 4 (two halvings)."""
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(channels, width, 7), nn.InstanceNorm2d(width), nn.ReLU(True)]
    for k in (1, 2):
        layers += [nn.Conv2d(width * k, width * 2 * k, 3, stride=2, padding=1), nn.InstanceNorm2d(width * 2 * k),
                   nn.ReLU(True)]  # fmt: skip
    layers += [ResidualBlock(width * 4) for _ in range(blocks)]
    for k in (4, 2):
        layers += [nn.ConvTranspose2d(width * k, width * k // 2, 3, stride=2, padding=1, output_padding=1),
                   nn.InstanceNorm2d(width * k // 2), nn.ReLU(True)]  # fmt: skip
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, channels, 7), nn.Tanh()]
    return nn.Sequential(*layers)


class ImagePool(nn.Module):
    """A history of up to ``capacity`` generated images. Each query image is stored while there is room
    and returned; once full, with probability 1/2 a random stored image is returned in its place and the
    new one takes its slot, else the new one is returned. The history lives in buffers, so the checkpoint
    holds it and a resumed run draws what an uninterrupted one would; draws use the global generator,
    which the trainer seeds per epoch. Capacity 0: no history."""

    def __init__(self, capacity: int, shape: tuple[int, ...]):
        super().__init__()
        self.capacity = capacity
        self.register_buffer("images", torch.zeros(capacity, *shape))
        self.register_buffer("stored", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if self.capacity == 0:
            return images
        out = []
        stored = int(self.stored)  # one host read per query, not per image
        for image in images.detach():
            if stored < self.capacity:
                self.images[stored] = image.to(self.images.dtype)
                stored += 1
                out.append(image)
            elif float(torch.rand(())) < 0.5:
                slot = int(torch.randint(self.capacity, ()))
                out.append(self.images[slot].clone().to(image.dtype))
                self.images[slot] = image.to(self.images.dtype)
            else:
                out.append(image)
        self.stored.fill_(stored)
        return torch.stack(out)


def halves(x: Tensor) -> tuple[Tensor, Tensor]:
    """The two directions of a stacked tensor: (the B half, the A half)."""
    n = len(x) // 2
    return x[:n], x[n:]


class CycleGANTask(AdversarialTask):
    conditional = False

    def __init__(self, g_ab: nn.Module, g_ba: nn.Module, d_a: nn.Module, d_b: nn.Module, cycle_weight: float,
                 identity_weight: float, pool: nn.ModuleDict):  # fmt: skip
        self.generator = nn.ModuleDict({"ab": g_ab, "ba": g_ba})
        self.discriminator = nn.ModuleDict({"a": d_a, "b": d_b})
        self.pool = pool
        self.cycle_weight, self.identity_weight = cycle_weight, identity_weight
        self._logged: dict[str, Tensor] = {}

    def modules(self) -> dict[str, nn.Module]:
        return {**super().modules(), "image_pool": self.pool}

    def generate(self, batch) -> Tensor:
        return torch.cat([self.generator["ab"](batch["label"]), self.generator["ba"](batch["real"])])

    def real_sample(self, batch, generated: Tensor) -> Tensor:
        return torch.cat([batch["real"], batch["label"]]).to(generated.dtype)

    def discriminator_fakes(self, batch, fake: Tensor) -> Tensor:
        fake_b, fake_a = halves(fake)
        return torch.cat([self.pool["b"](fake_b), self.pool["a"](fake_a)])

    def discriminate_features(self, batch, sample: Tensor) -> list[Tensor]:
        on_b, on_a = halves(sample)
        return [torch.cat(pair) for pair in zip(self.discriminator["b"](on_b), self.discriminator["a"](on_a))]

    def discriminate(self, batch, sample: Tensor) -> Tensor:
        on_b, on_a = halves(sample)
        return torch.cat([self.discriminator["b"](on_b)[-1], self.discriminator["a"](on_a)[-1]])

    def supervised_loss(self, batch, generated: Tensor) -> Tensor:
        """cycle_weight x mean(|G_ba(G_ab(a)) - a|, |G_ab(G_ba(b)) - b|) + identity_weight x
        mean(|G_ab(b) - b|, |G_ba(a) - a|); ``generated`` holds G_ab(a) and G_ba(b)."""
        a, b = batch["label"].float(), batch["real"].float()
        fake_b, fake_a = halves(generated)
        g_ab, g_ba = self.generator["ab"], self.generator["ba"]
        cycle = (F.l1_loss(g_ba(fake_b).float(), a) + F.l1_loss(g_ab(fake_a).float(), b)) / 2
        self._logged = {"cycle_l1": cycle.detach()}
        loss = self.cycle_weight * cycle
        if self.identity_weight > 0:
            identity = (F.l1_loss(g_ab(batch["real"]).float(), b) + F.l1_loss(g_ba(batch["label"]).float(), a)) / 2
            self._logged["identity_l1"] = identity.detach()
            loss = loss + self.identity_weight * identity
        return loss

    def extra_generator_losses(self, batch, generated: Tensor) -> dict[str, Tensor]:
        """The cycle and identity terms apart, for log.csv (logged only: they are in the supervised loss)."""
        logged, self._logged = self._logged, {}
        return logged

    @torch.no_grad()
    def translate(self, images: Tensor, direction: str = "ba") -> Tensor:
        """``images`` through G_``direction`` ("ab": A to B, "ba": B to A) in eval mode, in [-1, 1]."""
        generator = self.generator[direction]
        was_training = generator.training
        generator.eval()
        try:
            return generator(to_device(images, next(generator.parameters()).device)).float()
        finally:
            generator.train(was_training)


def build(config, data_shape: tuple[int, ...], num_classes: int, images: bool = True) -> CycleGANTask:
    channels, width, blocks = data_shape[0], config.model.channels, config.model.residual_blocks

    def discriminator():
        return PatchDiscriminator(spatial_dims=2, channels=width, in_channels=channels, num_layers_d=3,
                                  norm="INSTANCE")  # fmt: skip

    pool = nn.ModuleDict({d: ImagePool(config.train.pool_size, data_shape) for d in ("a", "b")})
    loss = config.loss
    return CycleGANTask(resnet_generator(channels, width, blocks), resnet_generator(channels, width, blocks),
                        discriminator(), discriminator(), loss.cycle_weight, loss.identity_weight, pool)  # fmt: skip
