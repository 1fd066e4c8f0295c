"""The GAN variants, one small module each, and the step builder shared by ``gan-train``.

Example:
    >>> from adversarial_seg.gan.config import gan_config_from_mapping
    >>> from adversarial_seg.runtime import Precision
    >>> cfg = gan_config_from_mapping({"variant": "wgan"})
    >>> step = build_gan_step(cfg, (1, 16, 16), 10, torch.device("cpu"), Precision("cpu", None))
    >>> type(step.task).__name__, type(step.optimizer_d).__name__
    ('ClippedCriticTask', 'RMSprop')
"""

from __future__ import annotations

import importlib

import torch

from adversarial_seg.gan.config import VARIANTS
from adversarial_seg.gan.step import AdversarialStep, StepConfig
from adversarial_seg.runtime import Precision, to_device

VARIANT_MODULES = VARIANTS  # one module per variant, named after it


def build_task(config, data_shape: tuple[int, ...], num_classes: int, **auxiliary):
    """The variant's ``GANTask`` for data of ``data_shape`` ((C, H, W) images or (2,) points);
    ``auxiliary``: networks the caller loaded for it (srgan's ``content``)."""
    if config.variant not in VARIANT_MODULES:
        raise ValueError(f"variant {config.variant!r} is not one of {', '.join(VARIANT_MODULES)}")
    module = importlib.import_module(f"adversarial_seg.gan.variants.{config.variant}")
    return module.build(config, data_shape, num_classes, images=len(data_shape) == 3, **auxiliary)


def make_optimizer(name: str, parameters, lr: float, train) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, betas=tuple(train.betas))
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=train.momentum)
    if name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr)
    raise ValueError(f"train.optimizer: {name!r} is not one of adam, sgd, rmsprop")


def build_lr_schedulers(schedule, step: AdversarialStep) -> dict:
    """``train.lr_schedule`` as one ``MultiStepLR`` per optimiser (G's and D's), named ``lr_g`` / ``lr_d``
    like the learning rates they scale; ``{}`` for none (constant rates). The trainer steps them after
    every epoch and keeps their state in its checkpoint, so a resumed run continues the schedule."""
    if schedule is None:
        return {}
    optimizers = {"lr_g": step.optimizer_g, "lr_d": step.optimizer_d}
    return {
        name: torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=list(schedule.milestones), gamma=schedule.gamma
        )
        for name, optimizer in optimizers.items()
        if optimizer is not None
    }


def build_gan_step(
    config, data_shape, num_classes: int, device: torch.device, precision: Precision, **auxiliary
) -> AdversarialStep:
    """Task, optimisers (separate learning rates for G and D) and the core step, on ``device``."""
    task = build_task(config, data_shape, num_classes, **auxiliary)
    for module in [*task.modules().values(), *task.auxiliary_modules().values()]:
        to_device(module, device)
    train = config.train
    optimizer_g = make_optimizer(train.optimizer, list(task.generator_parameters()), train.lr_g, train)
    optimizer_d = make_optimizer(train.optimizer, list(task.discriminator_parameters()), train.lr_d, train)
    step_config = StepConfig.from_sections(config.loss, train, w_sup=config.loss.w_sup, w_adv=config.loss.w_adv)
    return AdversarialStep(task, optimizer_g, optimizer_d, step_config, precision)
