"""Adversarial segmentation on the GAN core: the segmentor is G, the mask discriminator is D.

The hybrid loss is ``w_sup * L_sup(S(x), y) + w_adv * L_adv(D(x, S(x)))``; the schemes of
Kohl et al. 2017 are weight settings (``config.SCHEME_WEIGHTS``). With w_adv = 0 no
discriminator is built at all, so the ``ce`` scheme costs exactly a plain segmentation step.

Batches are dicts: ``image`` (B, C, *S) float, ``label`` (B, 1, *S) int64 class indices; with
DANN (``domain.adapt``) also ``target_image``, a batch of the target site's images without labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss
from torch import nn

from adversarial_seg.config import Config
from adversarial_seg.gan.step import AdversarialStep, StepConfig
from adversarial_seg.gan.task import AdversarialTask
from adversarial_seg.runtime import Precision, to_device
from adversarial_seg.seg.domain import DomainClassifier, FeatureTap, domain_terms, reverse_gradient
from adversarial_seg.seg.networks import MaskDiscriminator, build_segmentor
from adversarial_seg.seg.unet_parts import unet_bottleneck


def supervised_loss_fn(name: str, batch_dice: bool = False):
    """``ce``: multi-class cross-entropy on logits; ``dice_ce``: MONAI DiceCELoss (softmax), its Dice
    per sample and class or, with ``batch_dice``, per class over the whole batch."""
    if name == "ce":
        return lambda logits, label: F.cross_entropy(logits.float(), label[:, 0])
    if name == "dice_ce":
        dice_ce = DiceCELoss(to_onehot_y=True, softmax=True, batch=batch_dice)
        return lambda logits, label: dice_ce(logits.float(), label)
    raise ValueError(f"loss.supervised: {name!r} is not one of ce, dice_ce")


class SegmentationTask(AdversarialTask):
    def __init__(
        self,
        segmentor: nn.Module,
        discriminator: MaskDiscriminator | None,
        num_classes: int,
        supervised: str = "ce",
        batch_dice: bool = False,
        domain_classifier: DomainClassifier | None = None,
        adapt: float = 0.0,
    ):
        self.generator = segmentor
        self.discriminator = discriminator
        self.num_classes = num_classes
        self._supervised = supervised_loss_fn(supervised, batch_dice)
        self.domain_classifier = domain_classifier
        self.adapt = adapt
        self.extra_losses_reach_generator = domain_classifier is not None
        self._tap = FeatureTap(unet_bottleneck(segmentor)) if domain_classifier is not None else None
        self._source_features = None

    def generate(self, batch):
        out = self.generator(batch["image"])
        if self._tap is not None:
            self._source_features = self._tap.output  # the labelled batch's bottleneck, with its graph
        return out

    def extra_generator_losses(self, batch, generated):
        """DANN: the domain classifier on the source batch's and the target batch's bottleneck
        features, each behind the gradient reversal layer (weight ``domain.adapt``)."""
        if self.domain_classifier is None or "target_image" not in batch:
            return {}
        self.generator(batch["target_image"])  # for its bottleneck features; the output is unused
        source = self.domain_classifier(reverse_gradient(self._source_features, self.adapt))
        target = self.domain_classifier(reverse_gradient(self._tap.output, self.adapt))
        return {**domain_terms(source, target), "domain_weight": torch.tensor(self.adapt)}  # logged only

    def after_generator_update(self) -> None:
        if self._tap is not None:  # drop the step's features (and the graphs they hold) once G has moved
            self._source_features = self._tap.output = None

    def real_sample(self, batch, generated):
        return self.discriminator.expert_mask(batch["label"], generated)

    def fake_sample(self, batch, generated):
        return self.discriminator.predicted_mask(generated)

    def discriminate(self, batch, sample):
        return self.discriminator(batch["image"], sample)

    def discriminate_features(self, batch, sample):
        return self.discriminator.features(batch["image"], sample)

    def supervised_loss(self, batch, generated):
        return self._supervised(generated, batch["label"])

    def modules(self):
        modules = {"segmentor": self.generator}
        if self.discriminator is not None:
            modules["discriminator"] = self.discriminator
        if self.domain_classifier is not None:
            modules["domain_classifier"] = self.domain_classifier
        return modules

    def generator_parameters(self):
        """The segmentor's parameters and, with DANN, the domain classifier's (one optimiser: the
        gradient reversal makes the classifier minimise the domain loss the encoder maximises)."""
        if self.domain_classifier is None:
            return self.generator.parameters()
        return [*self.generator.parameters(), *self.domain_classifier.parameters()]


@torch.no_grad()
def bottleneck_channels(segmentor: nn.Module, spatial_dims: int, in_channels: int) -> int:
    """Channels of the segmentor's bottleneck output, from one forward pass of a small input."""
    tap = FeatureTap(unet_bottleneck(segmentor))
    segmentor.eval()
    try:
        segmentor(torch.zeros(1, in_channels, *([32] * spatial_dims)))
        return int(tap.output.shape[1])
    finally:
        segmentor.train()
        tap.remove()


def build_segmentation_step(
    config: Config,
    spatial_dims: int,
    in_channels: int,
    num_classes: int,
    device: torch.device,
    precision: Precision,
) -> AdversarialStep:
    """Networks, optimisers and the adversarial step for one run, from the config.

    Everything is moved to ``device`` here, once.
    """
    w_sup, w_adv = config.loss_weights()
    seg_cfg, disc_cfg = config.model.segmentor, config.model.discriminator
    segmentor = build_segmentor(seg_cfg.name, seg_cfg.kwargs(), spatial_dims, in_channels, num_classes)
    discriminator = None
    if w_adv > 0:
        if disc_cfg.name != "patch":
            raise ValueError(f"model.discriminator.name: {disc_cfg.name!r} is not supported; use patch")
        discriminator = MaskDiscriminator(
            spatial_dims,
            in_channels,
            num_classes,
            mask_encoding=disc_cfg.mask_encoding,
            input_scale=disc_cfg.input_scale,
            **disc_cfg.kwargs(),
        )
    domain_classifier, adapt = None, 0.0
    if config.domain is not None and config.domain.adapt > 0:
        adapt = config.domain.adapt
        domain_classifier = DomainClassifier(
            spatial_dims, bottleneck_channels(segmentor, spatial_dims, in_channels), config.domain.classifier_width
        )
    to_device(segmentor, device)
    to_device(discriminator, device)
    to_device(domain_classifier, device)
    task = SegmentationTask(
        segmentor, discriminator, num_classes, config.loss.supervised, config.loss.batch_dice, domain_classifier, adapt
    )
    train = config.train
    optimizer_g = torch.optim.Adam(
        task.generator_parameters(), lr=train.lr_g, betas=train.betas, weight_decay=train.weight_decay
    )
    optimizer_d = None
    if discriminator is not None:
        optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=train.lr_d, betas=train.betas)
    step_config = StepConfig.from_sections(config.loss, train, w_sup, w_adv)
    return AdversarialStep(task, optimizer_g, optimizer_d, step_config, precision)
