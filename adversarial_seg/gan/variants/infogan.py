"""InfoGAN (Chen et al. 2016): G reads (z, c) with a categorical code c_cat ~ Cat(K) and
continuous codes c_cont ~ U(-1, 1); a Q head on D's body predicts c from a fake, and the
mutual-information bound L_I = CE(Q_cat, c_cat) + 1/2 ||Q_cont - c_cont||^2 (a unit-variance
Gaussian Q) is minimised by G and Q (``extra_generator_losses``, Q in ``generator_parameters``)
and by D's shared body (``extra_discriminator_losses``), each weighted by ``loss.info_weight``.

The codes drawn by ``generate`` are stored in the batch (``batch["codes"]``) so the losses of the
same step read the codes that made the fake.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from adversarial_seg.gan.networks import QHead, build_networks
from adversarial_seg.gan.variants.base import GANTask
from adversarial_seg.runtime import to_device

Tensor = torch.Tensor


class InfoGANTask(GANTask):
    def __init__(
        self, generator, discriminator, q_head: QHead, z_dim: int, num_classes: int = 0, info_weight: float = 1.0
    ):
        super().__init__(generator, discriminator, z_dim, num_classes)
        self.q_head = q_head
        self.categorical, self.continuous = q_head.categorical, q_head.continuous
        self.info_weight = info_weight

    def draw_codes(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(c_cat (n,) int64, c_cont (n, L) in [-1, 1])."""
        cat = torch.randint(0, max(self.categorical, 1), (n,), generator=generator)
        cont = torch.rand(n, self.continuous, generator=generator) * 2 - 1
        return to_device(cat, self.device()), to_device(cont, self.device())

    def code_vector(self, cat: Tensor, cont: Tensor) -> Tensor:
        parts = [F.one_hot(cat, self.categorical).float()] if self.categorical else []
        return torch.cat(parts + [cont], dim=1)

    def generator_input(self, batch, n, generator=None):
        codes = batch.get("codes")
        if codes is None:
            codes = self.draw_codes(n, generator)
            batch["codes"] = codes
        return self.latent(n, generator), self.code_vector(*codes)

    def generate(self, batch):
        batch.pop("codes", None)  # fresh codes for every generator pass
        return super().generate(batch)

    def information_loss(self, batch, sample: Tensor) -> Tensor:
        """L_I on ``sample`` (fakes made from ``batch["codes"]``): CE + 1/2 squared error, batch means."""
        cat, cont = batch["codes"]
        q_cat, q_cont = self.q_head(self.discriminator.body(sample))
        loss = sample.new_zeros((), dtype=torch.float32)
        if self.categorical:
            loss = loss + F.cross_entropy(q_cat.float(), cat)
        if self.continuous:
            loss = loss + 0.5 * ((q_cont.float() - cont) ** 2).sum(dim=1).mean()
        return self.info_weight * loss

    def extra_generator_losses(self, batch, generated):
        return {"loss_info": self.information_loss(batch, generated)}

    def extra_discriminator_losses(self, batch, real, fake):
        return {"loss_info_d": self.information_loss(batch, fake)}

    def modules(self):
        return {**super().modules(), "q_head": self.q_head}

    def generator_parameters(self):
        return itertools.chain(self.generator.parameters(), self.q_head.parameters())

    @torch.no_grad()
    def sample_with_codes(self, z: Tensor, cat: Tensor, cont: Tensor) -> Tensor:
        """G(z, c) in eval mode for given codes (latent traversals)."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(
                to_device(z, self.device()),
                self.code_vector(to_device(cat, self.device()), to_device(cont, self.device())),
            ).float()
        finally:
            self.generator.train(was_training)


def build(config, data_shape: tuple[int, ...], num_classes: int, images: bool = True) -> GANTask:
    m = config.model
    generator, discriminator = build_networks(
        m.architecture, data_shape, m, generator_condition=m.categorical + m.continuous, images=images
    )
    q_head = QHead(discriminator, m.categorical, m.continuous)
    return InfoGANTask(generator, discriminator, q_head, m.z_dim, num_classes, config.loss.info_weight)
