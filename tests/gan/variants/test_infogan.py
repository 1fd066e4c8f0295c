"""InfoGAN: the mutual-information term reaches G and Q (G step) and D's shared body (D step)."""

import torch

from .conftest import tiny_step


def grads_of(module):
    return [p.grad for p in module.parameters()]


def nonzero(grads):
    return any(g is not None and g.abs().sum() > 0 for g in grads)


def test_information_loss_gradient_reaches_generator_and_q_head(digit_batches):
    config, step = tiny_step("infogan")
    task = step.task
    batch = dict(digit_batches[0])
    generated = task.generate(batch)
    (loss,) = task.extra_generator_losses(batch, generated).values()
    loss.backward()
    assert nonzero(grads_of(task.generator)), "L_I does not reach G"
    assert nonzero(grads_of(task.q_head)), "L_I does not reach Q"


def test_generator_step_with_only_the_information_term_updates_g_and_q_not_d(digit_batches):
    config, step = tiny_step("infogan")
    task = step.task
    step.g_loss = lambda logits: logits.sum() * 0.0  # isolate L_I
    before = {name: [p.detach().clone() for p in m.parameters()] for name, m in task.modules().items()}
    batch = dict(digit_batches[0])
    terms = step.generator_step(batch, task.generate(batch))
    assert terms["loss_info"] > 0
    changed = {
        name: any(not torch.equal(a, b) for a, b in zip(before[name], m.parameters()))
        for name, m in task.modules().items()
    }
    assert changed == {"generator": True, "discriminator": False, "q_head": True}


def test_discriminator_step_trains_the_shared_body_with_the_information_term(digit_batches):
    config, step = tiny_step("infogan")
    task = step.task
    batch = dict(digit_batches[0])
    generated = task.generate(batch)
    terms = step.discriminator_step(batch, generated)
    assert "loss_info_d" in terms and terms["loss_info_d"] > 0
    # the body's gradient differs from what the adversarial loss alone gives
    body = task.discriminator.features_net
    with_info = [p.grad.clone() for p in body.parameters() if p.grad is not None]
    task.extra_discriminator_losses = lambda *a: {}
    step.optimizer_d.zero_grad()
    torch.manual_seed(1)
    step.discriminator_step(batch, generated)
    without = [p.grad for p in body.parameters() if p.grad is not None]
    assert any(not torch.allclose(a, b) for a, b in zip(with_info, without))


def test_codes_of_a_generator_pass_are_the_ones_the_loss_reads(digit_batches):
    config, step = tiny_step("infogan")
    task = step.task
    batch = dict(digit_batches[0])
    task.generate(batch)
    first = batch["codes"][0].clone()
    task.generate(batch)  # a new pass draws new codes
    assert batch["codes"][0].shape == (16,) and not torch.equal(first, batch["codes"][0])
