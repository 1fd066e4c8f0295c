"""One adversarial step: k discriminator updates, then one generator update.

The shape follows pix2pix's ``optimize_parameters``: G's output is computed once; D is
updated on it detached; D's parameters are then frozen while G is updated through D.

Mixed precision follows DESIGN.md's step rules: one GradScaler per optimiser, ``unscale_``
before clipping, and the gradient penalty through a scaled ``autograd.grad``. Scalers are
disabled pass-throughs without fp16, so the CPU, bf16 and CUDA fp16 paths are one code path.

The ratio of adversarial to supervised gradient norm at G's output is measured without an
extra backward pass: G's output is split into two detached leaves, one feeding the
supervised term and one feeding D, their gradients are read off, summed and pushed through G.

Two losses look at D's features at every layer instead of its logits alone (the task's
``discriminate_features``): a feature loss as ``adversarial`` (SegAN's ``segan_l1``: D maximises
the multi-scale L1 between the real and the fake sample, G minimises it) and
``feature_matching`` > 0 (G also matches D's mean intermediate features of the real samples,
weighted by it). ``d_real`` / ``d_fake`` are then the raw last-layer outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from adversarial_seg import distributed
from adversarial_seg.gan.losses import (
    FEATURE_LOSSES,
    add_instance_noise,
    adversarial_losses,
    feature_matching,
    gradient_penalty,
)
from adversarial_seg.gan.task import AdversarialTask, Batch
from adversarial_seg.runtime import Precision

LOGISTIC_LOSSES = ("minimax", "non_saturating")


@dataclass(frozen=True)
class StepConfig:
    adversarial: str = "non_saturating"
    w_sup: float = 1.0
    w_adv: float = 1.0
    d_steps: int = 1
    grad_clip: float | None = None
    label_smoothing: float = 0.0
    instance_noise: float = 0.0
    gradient_penalty: float = 0.0
    feature_matching: float = 0.0
    max_adv_grad_ratio: float | None = None  # cap of |adversarial grad| / |supervised grad| at G's output

    @property
    def on_features(self) -> bool:
        """True when the adversarial loss compares D's features at every layer (``segan_l1``)."""
        return self.adversarial in FEATURE_LOSSES

    @classmethod
    def from_sections(cls, loss, train, w_sup: float, w_adv: float) -> StepConfig:
        """From a config's ``loss`` and ``train`` sections (segmentation and GAN configs alike)."""
        return cls(
            adversarial=loss.adversarial,
            w_sup=w_sup,
            w_adv=w_adv,
            d_steps=train.d_steps,
            grad_clip=train.grad_clip,
            label_smoothing=loss.label_smoothing,
            instance_noise=loss.instance_noise,
            gradient_penalty=loss.gradient_penalty,
            feature_matching=getattr(loss, "feature_matching", 0.0),  # gan-train's configs have none
            max_adv_grad_ratio=getattr(loss, "max_adv_grad_ratio", None),
        )


def losses_of(extra: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The terms of a task's extras that join the loss (``loss_*``); the others are only logged."""
    return [value for key, value in extra.items() if key.startswith("loss_")]


@contextmanager
def frozen(module: nn.Module | None):
    """Turn off gradients of ``module``'s parameters for the duration (pix2pix's set_requires_grad)."""
    if module is None:
        yield
        return
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


class AdversarialStep:
    """Owns the two optimisers and scalers; ``__call__`` runs one G update and its D updates.

    Returns a dict of detached scalar tensors (no host sync per step): loss terms, ``d_real`` /
    ``d_fake`` (mean D output, a probability for the logistic losses, the raw critic value
    otherwise), ``grad_ratio_adv_sup`` and ``grad_cos_adv_sup`` (the cosine between the adversarial
    and the supervised gradient at G's output, wherever the task has both terms; with ``w_sup`` 0
    the supervised direction is computed for it alone).
    """

    def __init__(
        self,
        task: AdversarialTask,
        optimizer_g: torch.optim.Optimizer,
        optimizer_d: torch.optim.Optimizer | None,
        config: StepConfig,
        precision: Precision,
    ):
        self.task = task
        self.optimizer_g = optimizer_g
        self.optimizer_d = optimizer_d
        self.config = config
        self.precision = precision
        self.scaler_g = precision.grad_scaler()
        self.scaler_d = precision.grad_scaler()
        self.d_loss, self.g_loss = adversarial_losses(config.adversarial)

    @property
    def adversarial_on(self) -> bool:
        return self.config.w_adv > 0 and self.optimizer_d is not None

    def _d_output(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.detach().float()
        return torch.sigmoid(logits).mean() if self.config.adversarial in LOGISTIC_LOSSES else logits.mean()

    def _update(self, optimizer, scaler, parameters) -> None:
        distributed.average_gradients(parameters())  # torchrun: the mean over the ranks' shards
        scaler.unscale_(optimizer)
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(parameters(), self.config.grad_clip)
        scaler.step(optimizer)
        scaler.update()

    def discriminator_step(self, batch: Batch, generated: torch.Tensor) -> dict[str, torch.Tensor]:
        """One D update on a detached G output."""
        task, cfg = self.task, self.config
        generated = generated.detach()
        self.optimizer_d.zero_grad(set_to_none=True)
        with self.precision.autocast():
            real = task.real_sample(batch, generated)
            fake = task.discriminator_fakes(batch, task.fake_sample(batch, generated))
            real_in = add_instance_noise(real, cfg.instance_noise)
            fake_in = add_instance_noise(fake, cfg.instance_noise)
            if cfg.on_features:
                real_features = task.discriminate_features(batch, real_in)
                fake_features = task.discriminate_features(batch, fake_in)
                real_logits, fake_logits = real_features[-1], fake_features[-1]
                terms = {"loss_d": self.d_loss(real_features, fake_features)}
            else:
                real_logits = task.discriminate(batch, real_in)
                fake_logits = task.discriminate(batch, fake_in)
                terms = {"loss_d": self.d_loss(real_logits.float(), fake_logits.float(), 1.0 - cfg.label_smoothing)}
            if cfg.gradient_penalty > 0:
                scale = self.scaler_d.get_scale() if self.scaler_d.is_enabled() else None
                terms["gradient_penalty"] = gradient_penalty(
                    lambda s: task.discriminate(batch, s).float(), real, fake, grad_scale=scale
                )
            extra = task.extra_discriminator_losses(batch, real, fake)
            terms.update(extra)
            total = terms["loss_d"] + sum(losses_of(extra), cfg.gradient_penalty * terms.get("gradient_penalty", 0.0))
        self.scaler_d.scale(total).backward()
        self._update(self.optimizer_d, self.scaler_d, task.discriminator_parameters)
        task.after_discriminator_update()
        terms = {k: v.detach() for k, v in terms.items()}
        terms["d_real"] = self._d_output(real_logits)
        terms["d_fake"] = self._d_output(fake_logits)
        return terms

    def generator_step(self, batch: Batch, generated: torch.Tensor) -> dict[str, torch.Tensor]:
        """One G update with D frozen; ``generated`` is G's output with its graph."""
        task, cfg = self.task, self.config
        self.optimizer_g.zero_grad(set_to_none=True)
        out_sup = generated.detach().requires_grad_(True)
        out_adv = generated.detach().requires_grad_(True)
        terms: dict[str, torch.Tensor] = {}
        total = generated.new_zeros((), dtype=torch.float32)
        with frozen(task.discriminator), self.precision.autocast():
            supervised = task.supervised_loss(batch, out_sup)
            if supervised is not None:
                terms["loss_sup"] = supervised.float()
                total = total + cfg.w_sup * terms["loss_sup"]
            if self.adversarial_on:
                fake = task.fake_sample(batch, out_adv)
                if cfg.on_features or cfg.feature_matching > 0:
                    fake_features = task.discriminate_features(batch, fake)
                    real = task.real_sample(batch, out_adv.detach())
                    real_features = [f.detach() for f in task.discriminate_features(batch, real)]
                if cfg.on_features:
                    terms["loss_adv"] = self.g_loss(real_features, fake_features)
                else:
                    logits = fake_features[-1] if cfg.feature_matching > 0 else task.discriminate(batch, fake)
                    terms["loss_adv"] = self.g_loss(logits.float())
                total = total + cfg.w_adv * terms["loss_adv"]
                if cfg.feature_matching > 0:
                    terms["loss_feature_matching"] = feature_matching(real_features[:-1], fake_features[:-1])
                    total = total + cfg.feature_matching * terms["loss_feature_matching"]
            extra = task.extra_generator_losses(batch, out_adv)  # with or without D (DANN: a ce term)
            terms.update(extra)
            total = total + sum(losses_of(extra), torch.zeros((), device=total.device))
        sup_direction = None
        if supervised is not None and self.adversarial_on and cfg.w_sup == 0:
            # No supervised gradient reaches G (the adversarial scheme); take its direction anyway,
            # for the cosine below. The loss graph is that of the loss on G's output alone: cheap.
            (sup_direction,) = torch.autograd.grad(terms["loss_sup"], out_sup, retain_graph=True)
        # Extra terms that reach G's parameters other than through its output (DANN's features) share
        # G's graph with ``generated``, which is pushed through G below: keep that graph for it.
        self.scaler_g.scale(total).backward(retain_graph=task.extra_losses_reach_generator)
        grad_sup = out_sup.grad if out_sup.grad is not None else torch.zeros_like(out_sup)
        grad_adv = out_adv.grad if out_adv.grad is not None else torch.zeros_like(out_adv)
        if supervised is not None and self.adversarial_on:
            # Does D push G's output the way the expert labels do? +1: the same way, 0: unrelated.
            direction = grad_sup if sup_direction is None else sup_direction
            terms["grad_cos_adv_sup"] = F.cosine_similarity(
                grad_adv.float().flatten(), direction.float().flatten(), dim=0, eps=1e-20
            )
        ratio = None
        if supervised is not None and self.adversarial_on and cfg.w_sup > 0:  # undefined without both terms
            ratio = grad_adv.float().norm() / grad_sup.float().norm()
            if cfg.max_adv_grad_ratio is not None:
                # A confident D's gradient can swamp the supervised one; scale it down to the cap
                # (and leave it as it is below), without a host sync.
                scale = torch.clamp(cfg.max_adv_grad_ratio / ratio.clamp_min(1e-12), max=1.0)
                grad_adv = grad_adv * scale.to(grad_adv.dtype)
                terms["adv_grad_scale"] = scale
        generated.backward(grad_sup + grad_adv)
        self._update(self.optimizer_g, self.scaler_g, task.generator_parameters)
        task.after_generator_update()
        terms = {k: v.detach() for k, v in terms.items()}
        terms["loss_g"] = total.detach()
        if ratio is not None:
            terms["grad_ratio_adv_sup"] = ratio  # before the cap: how strongly D pulls
        return terms

    def __call__(self, batches: Sequence[Batch]) -> dict[str, torch.Tensor]:
        """Run D updates on each of ``batches`` (``d_steps`` of them), then a G update on the last.

        With one batch, G's forward pass is shared by the D and the G update (the common case for
        segmentation). With k batches (Goodfellow et al.'s k D steps on fresh minibatches), the
        first k - 1 use G's output without a graph.
        """
        task = self.task
        for module in task.modules().values():
            module.train()
        terms: dict[str, torch.Tensor] = {}
        if self.adversarial_on:
            for batch in batches[:-1]:
                with torch.no_grad(), self.precision.autocast():
                    generated = task.generate(batch)
                terms = self.discriminator_step(batch, generated)
        batch = batches[-1]
        with self.precision.autocast():
            generated = task.generate(batch)
        if self.adversarial_on:
            terms = self.discriminator_step(batch, generated)
        terms.update(self.generator_step(batch, generated))
        return terms

    def state_dict(self) -> dict:
        return {
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict() if self.optimizer_d else None,
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.optimizer_g.load_state_dict(state["optimizer_g"])
        if self.optimizer_d is not None and state["optimizer_d"] is not None:
            self.optimizer_d.load_state_dict(state["optimizer_d"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])
