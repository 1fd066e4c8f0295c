"""Goodfellow et al. 2014, Proposition 1: for G fixed, the optimal D is p_data / (p_data + p_g).

1D problem: p_data = N(0, 1), p_g = N(1, 0.5^2) (a fixed "generator"). An MLP discriminator is
trained through the core's discriminator step (logistic loss on logits, fresh samples every step)
until it converges; its D(x) on [-1.5, 2.5] (where both densities have mass) must be within
TOLERANCE of the closed form everywhere on the grid.
"""

import math

import torch
from torch import nn

from adversarial_seg.gan.step import AdversarialStep, StepConfig
from adversarial_seg.gan.task import AdversarialTask
from adversarial_seg.runtime import Precision

TOLERANCE = 0.03  # max |D(x) - D*(x)| on the grid (measured: 0.013)
STEPS = 1500


class FixedGenerator(AdversarialTask):
    def __init__(self):
        self.generator = nn.Linear(1, 1)  # unused: G is fixed
        self.discriminator = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))

    def generate(self, batch):
        return 1.0 + 0.5 * torch.randn(len(batch["real"]), 1)


def normal_pdf(x, mu, sigma):
    return torch.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def test_discriminator_converges_to_proposition_1():
    torch.manual_seed(0)
    task = FixedGenerator()
    optimizer_d = torch.optim.Adam(task.discriminator.parameters(), lr=3e-3)
    optimizer_g = torch.optim.SGD(task.generator.parameters(), lr=0.0)
    step = AdversarialStep(task, optimizer_g, optimizer_d, StepConfig(adversarial="minimax"), Precision("cpu", None))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer_d, STEPS)
    for _ in range(STEPS):
        batch = {"real": torch.randn(4096, 1)}
        step.discriminator_step(batch, task.generate(batch))
        scheduler.step()
    x = torch.linspace(-1.5, 2.5, 81)[:, None]
    p_data, p_g = normal_pdf(x, 0.0, 1.0), normal_pdf(x, 1.0, 0.5)
    optimal = p_data / (p_data + p_g)
    with torch.no_grad():
        learned = torch.sigmoid(task.discriminator(x))
    error = (learned - optimal).abs().max().item()
    assert error < TOLERANCE, f"max |D - D*| = {error:.3f}"
    # the check is sharp enough to tell D* from the answer for a different p_g (N(1, 1))
    wrong = p_data / (p_data + normal_pdf(x, 1.0, 1.0))
    assert (learned - wrong).abs().max().item() > 3 * TOLERANCE
