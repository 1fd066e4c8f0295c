"""cGAN: the label reaches G and D."""

import torch

from .conftest import tiny_step


def test_label_conditions_generator_and_discriminator(digit_batches):
    config, step = tiny_step("cgan")
    task = step.task
    zeros = task.sample(4, torch.Generator().manual_seed(0), torch.zeros(4, dtype=torch.long))
    ones = task.sample(4, torch.Generator().manual_seed(0), torch.ones(4, dtype=torch.long))
    assert not torch.allclose(zeros, ones)  # same z, different label
    batch = dict(digit_batches[0])
    other = dict(batch, label=(batch["label"] + 1) % 10)
    with torch.no_grad():
        assert not torch.allclose(task.discriminate(batch, batch["real"]), task.discriminate(other, batch["real"]))
