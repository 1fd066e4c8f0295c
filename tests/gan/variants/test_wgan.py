"""WGAN: every critic weight lies in [-c, c] after a step, even with a step size that would leave it."""

import pytest
import torch

from .conftest import tiny_step


def largest_weight(module) -> float:
    with torch.no_grad():
        return max(float(p.abs().max()) for p in module.parameters())


def test_weight_clipping_holds_after_a_step(digit_batches):
    config, step = tiny_step("wgan", train={"lr_d": 0.5, "d_steps": 5})  # a huge step pushes weights far out
    clip = config.loss.weight_clip
    critic = step.task.discriminator
    assert largest_weight(critic) <= clip  # clipped at construction
    step(digit_batches)
    largest = largest_weight(critic)
    assert largest <= clip
    assert largest == pytest.approx(clip)  # some weights were pushed to the box's edge: the clip did work


def test_without_the_clip_hook_weights_leave_the_box(digit_batches):
    config, step = tiny_step("wgan", train={"lr_d": 0.5, "d_steps": 5})
    step.task.after_discriminator_update = lambda: None
    step(digit_batches)
    assert largest_weight(step.task.discriminator) > 10 * config.loss.weight_clip


def test_wgan_gp_logs_the_penalty(digit_batches):
    config, step = tiny_step("wgan_gp")
    terms = step(digit_batches)
    assert float(terms["gradient_penalty"]) >= 0 and "loss_adv" in terms
