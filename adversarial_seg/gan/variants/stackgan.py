"""Text-conditional StackGAN (Zhang et al. 2017) on PH2: a lesion image from a sentence of its
diagnosis and dermoscopic criteria (``gan/ph2_text.py``).

* Text: the frozen ``TextEncoder`` of ``model.encoders`` (trained in the project as a joint text-image
  embedding, ``scripts/train_ph2_encoders.py``), one vector per sentence.
* Conditioning augmentation: a linear map of that vector to a mean and a log-variance; G's condition is
  c = mean + exp(log-variance / 2) x N(0, I), and ``loss_kl`` = ``loss.kl_weight`` x KL(N(mean, var) ||
  N(0, I)) keeps the condition manifold smooth (the paper's lambda 1).
* Stage I (``model.stage: 1``): G maps (z, c) to an image at half of ``data.ph2.size`` (nearest
  upsampling and 3 x 3 convs from 4 x 4); D sees that image (the real one area-downsampled).
* Stage II (``model.stage: 2``): the frozen stage I generator of ``model.stage1_run`` draws the low
  resolution image, and a second G refines it with the text again (its own conditioning augmentation):
  an encoder to a quarter of the size, the condition joined as planes, residual blocks, two
  upsamplings to ``data.ph2.size``; D judges the full-size image. With ``model.refine: residual`` its
  output is added (before the tanh) to the stage I image upsampled bilinearly, the last conv starting
  at zero: training starts from stage I's own images and only learns what to change.
* Matching-aware D (Reed et al. 2016's GAN-CLS, as StackGAN uses it): D judges (image, sentence) pairs;
  besides real pairs (positive) and generated ones (negative), real images with another case's sentence
  are negatives too (``loss_mismatch``, weight ``loss.mismatch_weight``; pairs whose sentences happen
  to be equal are left out). StackGAN's code halves the fake and the mismatched terms; here the ratio
  real : fake : mismatched is 1 : 1 : ``mismatch_weight``.

D (both stages): stride-2 4 x 4 convs with batch norm down to 4 x 4, the sentence vector compressed to
``model.condition_dim`` and joined as planes, a 3 x 3 conv and a 4 x 4 conv to one logit.
Batches are ``{"real": image (B, 3, H, W) in [-1, 1], "label": word ids (B, L)}``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from adversarial_seg.gan.ph2_encoders import TEXT_DIM
from adversarial_seg.gan.task import AdversarialTask
from adversarial_seg.runtime import to_device

Tensor = torch.Tensor


class ConditioningAugmentation(nn.Module):
    def __init__(self, condition_dim: int):
        super().__init__()
        self.fc = nn.Linear(TEXT_DIM, 2 * condition_dim)

    def forward(self, text: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(c, KL per sample): c = mean + std x eps, eps drawn on the CPU from ``generator`` (or the global one)."""
        mean, log_var = F.leaky_relu(self.fc(text), 0.2).chunk(2, dim=1)
        eps = to_device(torch.randn(mean.shape, generator=generator), mean.device).to(mean.dtype)
        return mean + torch.exp(0.5 * log_var) * eps, kl_divergence(mean, log_var)


def kl_divergence(mean: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) per sample: 1/2 sum(mean^2 + var - 1 - log_var).

    >>> kl_divergence(torch.zeros(1, 3), torch.zeros(1, 3)).item()
    0.0
    >>> round(kl_divergence(torch.ones(1, 2), torch.zeros(1, 2)).item(), 3)  # 1/2 (1 + 1)
    1.0
    """
    return 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(1)


def up_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1),
                         nn.BatchNorm2d(c_out), nn.ReLU(True))  # fmt: skip


class Residual(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(True),
                                  nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.body(x))


class StageOneGenerator(nn.Module):
    """(z, c) -> (B, 3, size, size) in [-1, 1]."""

    def __init__(self, z_dim: int, condition_dim: int, width: int, size: int):
        super().__init__()
        self.ca = ConditioningAugmentation(condition_dim)
        self.width = width
        self.fc = nn.Sequential(nn.Linear(z_dim + condition_dim, 8 * width * 16), nn.BatchNorm1d(8 * width * 16),
                                nn.ReLU(True))  # fmt: skip
        blocks, channels = [], 8 * width
        for _ in range(int(math.log2(size // 4))):
            blocks.append(up_block(channels, max(channels // 2, width)))
            channels = max(channels // 2, width)
        self.up = nn.Sequential(*blocks, nn.Conv2d(channels, 3, 3, padding=1), nn.Tanh())

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        return self.up(self.fc(torch.cat([z, c], 1)).view(len(z), 8 * self.width, 4, 4))


class StageTwoGenerator(nn.Module):
    """(stage I image at size / 2, c) -> (B, 3, size, size): encode to size / 4, join c, residual blocks, up x 2."""

    def __init__(self, condition_dim: int, width: int, blocks: int = 2, residual: bool = False):
        super().__init__()
        self.residual = residual
        self.ca = ConditioningAugmentation(condition_dim)
        self.encode = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(True),
                                    nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.BatchNorm2d(2 * width),
                                    nn.ReLU(True))  # fmt: skip
        self.join = nn.Sequential(nn.Conv2d(2 * width + condition_dim, 2 * width, 3, padding=1),
                                  nn.BatchNorm2d(2 * width), nn.ReLU(True))  # fmt: skip
        self.refine = nn.Sequential(*[Residual(2 * width) for _ in range(blocks)])
        last = nn.Conv2d(width, 3, 3, padding=1)
        if residual:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.up = nn.Sequential(up_block(2 * width, width), up_block(width, width), last)

    def forward(self, low: Tensor, c: Tensor) -> Tensor:
        h = self.encode(low)
        planes = c[:, :, None, None].expand(-1, -1, *h.shape[2:])
        out = self.up(self.refine(self.join(torch.cat([h, planes], 1))))
        if self.residual:  # tanh(atanh(upsampled) + out): exactly the upsampled stage I image while out is 0
            base = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
            out = out + torch.atanh(base.clamp(-0.999, 0.999))
        return torch.tanh(out)


class MatchingDiscriminator(nn.Module):
    """(image (B, 3, size, size), sentence vector (B, TEXT_DIM)) -> (B,) logits."""

    def __init__(self, condition_dim: int, width: int, size: int):
        super().__init__()
        layers, channels = [nn.Conv2d(3, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)], width
        for _ in range(int(math.log2(size // 8))):
            out = min(2 * channels, 8 * width)
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, True)]
            channels = out
        self.body = nn.Sequential(*layers)
        self.compress = nn.Sequential(nn.Linear(TEXT_DIM, condition_dim), nn.LeakyReLU(0.2, True))
        self.head = nn.Sequential(nn.Conv2d(channels + condition_dim, channels, 3, padding=1), nn.BatchNorm2d(channels),
                                  nn.LeakyReLU(0.2, True), nn.Conv2d(channels, 1, 4))  # fmt: skip

    def forward(self, images: Tensor, text: Tensor) -> Tensor:
        h = self.body(images)
        planes = self.compress(text)[:, :, None, None].expand(-1, -1, *h.shape[2:])
        return self.head(torch.cat([h, planes], 1)).flatten()


def mismatched(tokens: Tensor) -> tuple[Tensor, Tensor]:
    """(each sample's neighbour in the batch, whether their sentences differ): the wrong sentences."""
    wrong = tokens.roll(1, dims=0)
    return wrong, (wrong != tokens).any(1)


class StackGANTask(AdversarialTask):
    conditional = False
    extra_losses_reach_generator = True  # the KL term reaches G's CA layer through G's own graph

    def __init__(self, generator: nn.Module, discriminator: nn.Module, text_encoder: nn.Module, z_dim: int,
                 kl_weight: float, mismatch_weight: float, stage_one: nn.Module | None = None):  # fmt: skip
        self.generator, self.discriminator = generator, discriminator
        self.text_encoder, self.stage_one = text_encoder, stage_one
        self.z_dim, self.kl_weight, self.mismatch_weight = z_dim, kl_weight, mismatch_weight
        self._kl: Tensor | None = None

    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @torch.no_grad()
    def embed(self, tokens: Tensor) -> Tensor:
        return self.text_encoder(tokens)

    def _generate(self, tokens: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        text = self.embed(tokens)
        z = to_device(torch.randn(len(tokens), self.z_dim, generator=generator), self.device())
        if self.stage_one is None:
            c, kl = self.generator.ca(text, generator)
            return self.generator(z, c), kl
        with torch.no_grad():
            c_low, _ = self.stage_one.ca(text, generator)
            low = self.stage_one(z, c_low)
        c, kl = self.generator.ca(text, generator)
        return self.generator(low, c), kl

    def generate(self, batch) -> Tensor:
        images, self._kl = self._generate(batch["label"])
        return images

    def real_sample(self, batch, generated: Tensor) -> Tensor:
        real = batch["real"]
        if real.shape[-1] != generated.shape[-1]:  # stage I: the real image at its resolution
            real = F.interpolate(real, size=generated.shape[-2:], mode="area")
        return real.to(generated.dtype)

    def discriminate(self, batch, sample: Tensor) -> Tensor:
        return self.discriminator(sample, self.embed(batch["label"]))

    def extra_generator_losses(self, batch, generated: Tensor) -> dict[str, Tensor]:
        """``loss_kl``: the conditioning augmentation's KL term (it reaches the CA layer, not G's output)."""
        kl, self._kl = self._kl, None
        return {"loss_kl": self.kl_weight * kl.mean()} if kl is not None else {}

    def extra_discriminator_losses(self, batch, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """``loss_mismatch``: real images with another case's sentence, judged as negatives (-log(1 - D))."""
        if self.mismatch_weight == 0:
            return {}
        wrong, differs = mismatched(batch["label"])
        logits = self.discriminator(real, self.embed(wrong)).float()
        term = (F.softplus(logits) * differs).sum() / differs.sum().clamp_min(1)
        return {"loss_mismatch": self.mismatch_weight * term}

    def auxiliary_modules(self) -> dict[str, nn.Module]:
        return {"text_encoder": self.text_encoder, **({"stage_one": self.stage_one} if self.stage_one else {})}

    @torch.no_grad()
    def sample_text(self, tokens: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Images for ``tokens`` (B, L) in eval mode, float, on the CPU."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self._generate(to_device(tokens, self.device()), generator)[0].float().cpu()
        finally:
            self.generator.train(was_training)


def load_stage_one(run: str | Path, config) -> nn.Module:
    """The trained stage I generator of a stackgan run (frozen, eval mode)."""
    from adversarial_seg.gan.config import ConfigError, gan_config_from_mapping
    from adversarial_seg.provenance import read_resolved_config

    run = Path(run)
    if not (run / "config.yaml").is_file() or not (run / "checkpoint_last.pt").is_file():
        raise ConfigError(
            f"model.stage1_run {run} holds no finished gan-train run; train configs/gan/stackgan_stage1.yaml"
        )
    first = gan_config_from_mapping(read_resolved_config(run / "config.yaml")[0])
    if first.variant != "stackgan" or first.model.stage != 1:
        raise ConfigError(f"model.stage1_run {run} is not a stackgan stage 1 run")
    size = config.data.ph2.size[0] // 2
    if first.data.ph2.size != config.data.ph2.size or first.model.encoders != config.model.encoders:
        raise ConfigError(f"model.stage1_run {run} was trained on another data.ph2.size or model.encoders")
    model = StageOneGenerator(first.model.z_dim, first.model.condition_dim, first.model.channels, size)
    state = torch.load(run / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state["modules"]["generator"])
    return model.eval().requires_grad_(False)


def build(config, data_shape: tuple[int, ...], num_classes: int, images: bool = True) -> StackGANTask:
    from adversarial_seg.gan.ph2_encoders import load_encoders

    model, loss = config.model, config.loss
    size = config.data.ph2.size[0]
    text_encoder = load_encoders(model.encoders)["text"]
    if model.stage == 1:
        generator = StageOneGenerator(model.z_dim, model.condition_dim, model.channels, size // 2)
        discriminator = MatchingDiscriminator(model.condition_dim, model.channels, size // 2)
        stage_one = None
    else:
        generator = StageTwoGenerator(model.condition_dim, model.channels, residual=model.refine == "residual")
        discriminator = MatchingDiscriminator(model.condition_dim, model.channels, size)
        stage_one = load_stage_one(model.stage1_run, config)
    return StackGANTask(generator, discriminator, text_encoder, model.z_dim, loss.kl_weight, loss.mismatch_weight,
                        stage_one)  # fmt: skip
